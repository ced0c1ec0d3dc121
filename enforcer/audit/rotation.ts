// Size-based rotation of trail files: audit.log becomes audit.log.1, each
// audit.log.n becomes audit.log.n+1, and files past the retention limit are
// deleted. The chain itself is untouched: the next record written to the new
// audit.log links to the last record of audit.log.1.

import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { listTrailEntries, trailFileName } from './files.js';
import { readFirstSeq } from './scan.js';

/**
 * Returns the seq of the oldest record that survives the next rotation when
 * rotation will delete at least one file, or null when nothing is deleted.
 * Falls back to `nextSeq` when no surviving file has a record.
 */
export async function firstSeqAfterRotation(directory: string, base: string, maxFiles: number, nextSeq: number): Promise<number | null> {
  const entries = await listTrailEntries(directory, base);
  const deletesFile = entries.some((entry) => entry.index >= maxFiles - 1);
  if (!deletesFile) {
    return null;
  }

  const survivors = entries.filter((entry) => entry.index < maxFiles - 1);
  for (const entry of survivors) {
    const seq = await readFirstSeq(entry.path);
    if (seq !== null) {
      return seq;
    }
  }
  return nextSeq;
}

/**
 * Deletes the files that fall out of retention and shifts the others up by
 * one index, then fsyncs the directory so the renames survive a power loss.
 * `maxFiles` counts the active file, so at most maxFiles - 1 rotated files remain.
 */
export async function shiftTrailFiles(directory: string, base: string, maxFiles: number): Promise<void> {
  const entries = await listTrailEntries(directory, base);

  for (const entry of entries) {
    if (entry.index >= maxFiles - 1) {
      await rm(entry.path, { force: true });
    }
  }

  // Entries are oldest first, so each rename targets a name already vacated.
  for (const entry of entries) {
    if (entry.index < maxFiles - 1) {
      await rename(entry.path, join(directory, trailFileName(base, entry.index + 1)));
    }
  }

  await fsyncDirectory(directory);
}

export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
