// The last records of a trail and, in follow mode, the records appended after
// them. Follow mode polls the active file and detects rotation when the
// file's inode changes. Records that passed through a rotated file between
// two polls are read back from the rotated files by seq.

import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { listTrailEntries, listTrailFiles, resolveTrailLocation } from './files.js';
import { matchesFilter, type RecordFilter } from './filters.js';
import { readLinesFromHandle, readTrailLines } from './lines.js';
import type { AuditRecord } from './record.js';
import { closeAll, openTrailFiles, parseRecordLine, type ReadOptions } from './records.js';
import { readFirstSeq } from './scan.js';

export const DEFAULT_TAIL_LINES = 10;
export const DEFAULT_POLL_INTERVAL_MS = 500;

export interface TailOptions extends ReadOptions {
  /** Matching records to yield before following; default 10. */
  lines?: number;
  /** Keep yielding records as they are appended, until `signal` aborts. */
  follow?: boolean;
  filter?: RecordFilter;
  /** Milliseconds between checks for new records in follow mode; default 500. */
  pollIntervalMs?: number;
  /** Ends follow mode; the generator then returns normally. */
  signal?: AbortSignal;
}

/** The active file as follow mode reads it. */
interface FollowedFile {
  handle: FileHandle;
  inode: number;
  /** Byte offset after the last complete line consumed. */
  offset: number;
  /** Lines consumed so far, for the line numbers of skipped lines. */
  lineCount: number;
}

/**
 * Yields the last `lines` records of a trail that pass the filter, oldest
 * first, then in follow mode every new matching record. `trail` is the trail
 * directory or the path of one of its files.
 */
export async function* tail(trail: string, options: TailOptions = {}): AsyncGenerator<AuditRecord> {
  const { directory, fileName } = await resolveTrailLocation(trail);
  const activePath = join(directory, fileName);
  const filter = options.filter ?? {};
  const count = options.lines ?? DEFAULT_TAIL_LINES;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`invalid tail lines ${count}: pass a whole number of records, 0 or more`);
  }

  const opened = await openTrailFiles(await listTrailFiles(directory, fileName));
  let followed: FollowedFile | null = null;
  try {
    const active = opened.find((item) => item.file === activePath);
    if (active !== undefined) {
      const { ino, size } = await active.handle.stat();
      followed = { handle: active.handle, inode: ino, offset: size, lineCount: 0 };
    }

    const initial = await lastMatching(opened, followed, count, filter, options);
    let lastSeq = initial.maxSeq;
    yield* initial.records;

    if (options.follow !== true) {
      return;
    }

    // The followed handle now belongs to the follow loop, which closes it.
    const others = opened.filter((item) => item.handle !== followed?.handle);
    await closeAll(others);
    opened.length = 0;

    const interval = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    while (options.signal?.aborted !== true) {
      let fresh: AuditRecord[] = followed === null ? [] : await drain(followed, activePath, options);

      const current = await statOrNull(activePath);
      if (current !== null && current.ino !== followed?.inode) {
        // Rotated (or created): the old handle was drained just above and
        // keeps its content after the rename, so switch to the new file.
        // The inode comparison is safe because the inode of a file held open
        // cannot be reused.
        await followed?.handle.close();
        followed = await openFollowed(activePath);

        if (followed !== null) {
          const seqBefore = fresh.reduce((max, record) => Math.max(max, record.seq), lastSeq);
          const fromNewFile = await drain(followed, activePath, options);
          fresh = [...fresh, ...(await fillRotationGap(directory, fileName, seqBefore, fromNewFile, options))];
        }
      } else if (current !== null && followed !== null && current.size < followed.offset) {
        // Truncated in place, which the writer never does: start over.
        options.onSkippedLine?.({
          file: activePath,
          line: 0,
          reason: `file shrank from ${followed.offset} to ${current.size} bytes; reading it again from the start`,
        });
        followed.offset = 0;
        followed.lineCount = 0;
      }

      for (const record of fresh) {
        lastSeq = Math.max(lastSeq, record.seq);
        if (matchesFilter(record, filter)) {
          yield record;
        }
      }

      await sleep(interval, undefined, { signal: options.signal }).catch(() => undefined);
    }
  } finally {
    await closeAll(opened);
    if (followed !== null && !opened.some((item) => item.handle === followed?.handle)) {
      await followed.handle.close();
    }
  }
}

/**
 * Collects the last `count` matching records, reading files from newest to
 * oldest and stopping as soon as enough are found. Returns them oldest first,
 * with the highest seq seen in any record read.
 */
async function lastMatching(
  opened: readonly { file: string; handle: FileHandle }[],
  followed: FollowedFile | null,
  count: number,
  filter: RecordFilter,
  options: ReadOptions,
): Promise<{ records: AuditRecord[]; maxSeq: number }> {
  let records: AuditRecord[] = [];
  let maxSeq = 0;

  for (const { file, handle } of [...opened].reverse()) {
    const isActive = followed !== null && handle === followed.handle;
    const matches: AuditRecord[] = [];

    for await (const line of readLinesFromHandle(handle, file, isActive ? followed.offset : undefined)) {
      if (isActive && !line.complete) {
        // A line still being written: follow mode reads it once it is complete.
        followed.offset -= Buffer.byteLength(line.text, 'utf8');
        continue;
      }
      if (isActive) {
        followed.lineCount = line.lineNumber;
      }
      const parsed = parseRecordLine(line);
      if (typeof parsed === 'string') {
        options.onSkippedLine?.({ file, line: line.lineNumber, reason: parsed });
        continue;
      }
      maxSeq = Math.max(maxSeq, parsed.seq);
      if (matchesFilter(parsed, filter)) {
        matches.push(parsed);
        if (matches.length > count) {
          matches.shift();
        }
      }
    }

    records = [...matches, ...records].slice(-count);
    if (records.length >= count) {
      break;
    }
  }
  return { records: count === 0 ? [] : records, maxSeq };
}

/** Reads the complete lines appended since the last drain and advances the offset past them. */
async function drain(followed: FollowedFile, file: string, options: ReadOptions): Promise<AuditRecord[]> {
  const { size } = await followed.handle.stat();
  if (size <= followed.offset) {
    return [];
  }

  const length = size - followed.offset;
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await followed.handle.read(buffer, 0, length, followed.offset);
  const end = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
  if (end < 0) {
    return [];
  }

  const records: AuditRecord[] = [];
  for (const text of buffer.subarray(0, end).toString('utf8').split('\n')) {
    followed.lineCount += 1;
    const parsed = parseRecordLine({ text, complete: true });
    if (typeof parsed === 'string') {
      options.onSkippedLine?.({ file, line: followed.lineCount, reason: parsed });
    } else {
      records.push(parsed);
    }
  }
  followed.offset += end + 1;
  return records;
}

/**
 * Prepends the records that passed through rotated files between two polls.
 * When the first fresh record skips seqs after `lastSeq`, the missing ones
 * are read back from the rotated files. The search goes from the newest
 * rotated file back to the first one that starts at or before the gap.
 */
async function fillRotationGap(
  directory: string,
  fileName: string,
  lastSeq: number,
  fresh: AuditRecord[],
  options: ReadOptions,
): Promise<AuditRecord[]> {
  const first = fresh[0];
  if (first === undefined || lastSeq === 0 || first.seq <= lastSeq + 1) {
    return fresh;
  }

  const rotated = (await listTrailEntries(directory, fileName)).filter((entry) => entry.index > 0).reverse();
  const sources: string[] = [];
  for (const entry of rotated) {
    sources.unshift(entry.path);
    const firstSeq = await readFirstSeq(entry.path);
    if (firstSeq !== null && firstSeq <= lastSeq + 1) {
      break;
    }
  }

  const missing: AuditRecord[] = [];
  for (const file of sources) {
    for await (const line of readTrailLines(file)) {
      const parsed = parseRecordLine(line);
      if (typeof parsed === 'string') {
        options.onSkippedLine?.({ file, line: line.lineNumber, reason: parsed });
      } else if (parsed.seq > lastSeq && parsed.seq < first.seq) {
        missing.push(parsed);
      }
    }
  }
  const expected = first.seq - lastSeq - 1;
  if (missing.length < expected) {
    // More rotations than maxFiles - 1 happened between two polls, so the
    // files that held these records were already deleted.
    options.onSkippedLine?.({
      file: directory,
      line: 0,
      reason: `${expected - missing.length} records between seq ${lastSeq} and seq ${first.seq} were rotated away before tail read them; lower --poll-interval`,
    });
  }
  return [...missing, ...fresh];
}

/** Opens the active file for following; null when a rotation removed it since the stat. */
async function openFollowed(path: string): Promise<FollowedFile | null> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return null;
    }
    throw error;
  }
  return { handle, inode: (await handle.stat()).ino, offset: 0, lineCount: 0 };
}

async function statOrNull(path: string): Promise<{ ino: number; size: number } | null> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return null;
    }
    throw error;
  }
}
