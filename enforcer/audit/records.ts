// Reading records for query and tail. Unlike verify(), these readers trust
// the chain and only skip lines that are not records at all, reporting each
// skip so that a caller can point the user to `sabpf audit verify`.

import { open, type FileHandle } from 'node:fs/promises';

import { parseObjectLine, type TrailLine } from './lines.js';
import type { AuditRecord } from './record.js';
import { chainFieldsOf } from './scan.js';

/** A line that was not returned because it is not an audit record. */
export interface SkippedLine {
  file: string;
  line: number;
  reason: string;
}

export interface ReadOptions {
  /** Called for each line that is skipped; skips are silent without it. */
  onSkippedLine?: (skipped: SkippedLine) => void;
}

/** Parses a line into a record, or describes why it is not one. */
export function parseRecordLine(line: Pick<TrailLine, 'text' | 'complete'>): AuditRecord | string {
  const object = parseObjectLine(line.text);
  if (object === null) {
    return line.complete ? 'not a JSON object' : 'truncated last line';
  }
  if (chainFieldsOf(object) === null || typeof object['kind'] !== 'string' || typeof object['time'] !== 'string') {
    return 'not an audit record: seq, prevHash, hash, kind or time missing or malformed';
  }
  return object as unknown as AuditRecord;
}

export interface OpenTrailFile {
  file: string;
  handle: FileHandle;
}

/**
 * Opens every file before any is read. An open file keeps its content when a
 * rotation renames or deletes it meanwhile, so a rotation during a long read
 * neither duplicates nor loses records. A file that rotation deleted between
 * the listing and the open is skipped, because its records left the trail.
 * NOTE: a rotation that happens between two of these opens can still make
 * one file's records missing from the read.
 */
export async function openTrailFiles(files: readonly string[]): Promise<OpenTrailFile[]> {
  const opened: OpenTrailFile[] = [];
  try {
    for (const file of files) {
      try {
        opened.push({ file, handle: await open(file, 'r') });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw error;
        }
      }
    }
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  return opened;
}

export async function closeAll(opened: readonly OpenTrailFile[]): Promise<void> {
  await Promise.all(opened.map(({ handle }) => handle.close()));
}
