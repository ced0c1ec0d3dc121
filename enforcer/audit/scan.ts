// Finds points of an existing chain without verifying it: the last record a
// restarted writer continues from, and the first seq a file holds. Both accept
// any line that carries well-formed chain fields; judging the chain is the
// job of verify().

import { isHash } from './canonical.js';
import { parseObjectLine, readTrailLines } from './lines.js';

/** A record's place in the chain and in the files. */
export interface ChainPoint {
  seq: number;
  hash: string;
  file: string;
  lineNumber: number;
}

/** Returns a record's seq and hashes when they are well formed, else null. */
export function chainFieldsOf(record: Record<string, unknown>): { seq: number; prevHash: string; hash: string } | null {
  const { seq, prevHash, hash } = record;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    return null;
  }
  if (!isHash(prevHash) || !isHash(hash)) {
    return null;
  }
  return { seq, prevHash, hash };
}

/**
 * Returns the last record with well-formed chain fields, searching files from
 * newest to oldest, or null when no file has one. A last line cut short by an
 * interrupted write does not parse, so it is skipped.
 */
export async function findLastRecord(filesOldestFirst: readonly string[]): Promise<ChainPoint | null> {
  for (const file of [...filesOldestFirst].reverse()) {
    let last: ChainPoint | null = null;
    for await (const line of readTrailLines(file)) {
      const record = parseObjectLine(line.text);
      const fields = record === null ? null : chainFieldsOf(record);
      if (fields !== null) {
        last = { seq: fields.seq, hash: fields.hash, file, lineNumber: line.lineNumber };
      }
    }
    if (last !== null) {
      return last;
    }
  }
  return null;
}

/** Returns the seq of the first record with well-formed chain fields in a file, or null. */
export async function readFirstSeq(file: string): Promise<number | null> {
  for await (const line of readTrailLines(file)) {
    const record = parseObjectLine(line.text);
    const fields = record === null ? null : chainFieldsOf(record);
    if (fields !== null) {
      return fields.seq;
    }
  }
  return null;
}
