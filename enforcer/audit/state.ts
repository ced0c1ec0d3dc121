// The trail's state file: the last record known to be on disk and the oldest
// record the trail still keeps. Verification uses it to detect records removed
// from either end of the trail, which the hash chain alone cannot show.

import { open, readFile, rename } from 'node:fs/promises';

import { isHash } from './canonical.js';

export interface TrailState {
  /** seq of the newest record that was fsynced before this state was written. */
  seq: number;
  /** hash of that record. */
  hash: string;
  /** Base name of the file that held that record when the state was written. */
  file: string;
  /** seq of the oldest record the trail keeps: 1 until rotation first deletes a file. */
  firstSeq: number;
}

/** Raised when the state file exists but cannot be used. */
export class StateFileError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`failed to read audit state file ${path}: ${reason}`);
    this.name = 'StateFileError';
  }
}

/** Reads a state file; returns null when it does not exist. */
export async function readState(path: string): Promise<TrailState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return null;
    }
    throw new StateFileError(path, (error as Error).message);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(path, `invalid JSON (${(error as Error).message}); delete it to let the writer rebuild it`);
  }

  const problem = describeStateProblem(parsed);
  if (problem !== null) {
    throw new StateFileError(path, `${problem}; delete it to let the writer rebuild it`);
  }
  return parsed as TrailState;
}

function describeStateProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'expected a JSON object with seq, hash, file and firstSeq';
  }
  const state = value as Record<string, unknown>;
  if (!isPositiveSeq(state['seq'])) {
    return `seq must be a positive integer, got ${JSON.stringify(state['seq'])}`;
  }
  if (!isHash(state['hash'])) {
    return `hash must be 64 lowercase hex digits, got ${JSON.stringify(state['hash'])}`;
  }
  if (typeof state['file'] !== 'string') {
    return `file must be a string, got ${JSON.stringify(state['file'])}`;
  }
  if (!isPositiveSeq(state['firstSeq'])) {
    return `firstSeq must be a positive integer, got ${JSON.stringify(state['firstSeq'])}`;
  }
  return null;
}

function isPositiveSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

/**
 * Writes a state file atomically: a temporary file is written and fsynced,
 * then renamed over the old one, so a crash leaves either the old or the new
 * state and never a partial one.
 */
export async function writeState(path: string, state: TrailState): Promise<void> {
  const temporary = `${path}.tmp`;
  const text = `${JSON.stringify({ seq: state.seq, hash: state.hash, file: state.file, firstSeq: state.firstSeq })}\n`;

  const handle = await open(temporary, 'w', 0o640);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
