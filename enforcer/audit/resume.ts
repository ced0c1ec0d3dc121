// Where a writer that opens an existing trail continues the chain. The state
// file is written only after an fsync, so it may lag the trail by the records
// written since. Those records survive a process crash (only power loss
// drops them), and continuing from the state file alone would then fork the
// chain. The writer therefore continues from whichever is newer: the state
// file or the last complete record.

import { basename } from 'node:path';

import { GENESIS_HASH, type ResumeSource } from './record.js';
import { findLastRecord, readFirstSeq } from './scan.js';
import { readState, StateFileError, type TrailState } from './state.js';

export interface ResumePoint {
  /** seq of the last record; the next record gets seq + 1. */
  seq: number;
  /** hash of the last record, the next record's prevHash. */
  hash: string;
  /** seq of the oldest record the trail keeps. */
  firstSeq: number;
  resumedFrom: ResumeSource;
  /** Readable account of how the point was found, copied into the start record. */
  message: string;
}

/** Finds the resume point of a trail from its state file and its files (oldest first). */
export async function findResumePoint(filesOldestFirst: readonly string[], statePath: string): Promise<ResumePoint> {
  let state: TrailState | null = null;
  let stateProblem: string | null = null;
  try {
    state = await readState(statePath);
  } catch (error) {
    if (!(error instanceof StateFileError)) {
      throw error;
    }
    stateProblem = error.message;
  }

  const last = await findLastRecord(filesOldestFirst);

  if (state !== null && last !== null) {
    return resumeWithStateAndRecords(state, last.seq, last.hash, `${basename(last.file)} line ${last.lineNumber}`);
  }

  if (state !== null) {
    return {
      seq: state.seq,
      hash: state.hash,
      // Keeping the state's firstSeq makes verify() report the lost files
      // instead of treating the new records as a clean anchor.
      firstSeq: state.firstSeq,
      resumedFrom: 'state-file',
      message: `no records found in the trail files; continued from the state file at seq ${state.seq}, so records up to seq ${state.seq} are missing`,
    };
  }

  if (last !== null) {
    const oldest = filesOldestFirst[0];
    const firstSeq = oldest === undefined ? last.seq : ((await readFirstSeq(oldest)) ?? last.seq);
    const reason = stateProblem ?? `state file ${statePath} is missing`;
    return {
      seq: last.seq,
      hash: last.hash,
      firstSeq,
      resumedFrom: 'last-record',
      message: `${reason}; continued from the last complete record, seq ${last.seq} in ${basename(last.file)} line ${last.lineNumber}`,
    };
  }

  const prefix = stateProblem === null ? '' : `${stateProblem}; `;
  return {
    seq: 0,
    hash: GENESIS_HASH,
    firstSeq: 1,
    resumedFrom: 'new',
    message: `${prefix}started a new trail`,
  };
}

function resumeWithStateAndRecords(state: TrailState, lastSeq: number, lastHash: string, where: string): ResumePoint {
  if (lastSeq === state.seq) {
    return {
      seq: lastSeq,
      hash: lastHash,
      firstSeq: state.firstSeq,
      resumedFrom: 'state-file',
      message: `continued from the state file at seq ${state.seq}`,
    };
  }

  if (lastSeq > state.seq) {
    return {
      seq: lastSeq,
      hash: lastHash,
      firstSeq: state.firstSeq,
      resumedFrom: 'state-file',
      message: `continued from seq ${lastSeq} (${where}), ${lastSeq - state.seq} records past the state file's seq ${state.seq}`,
    };
  }

  // Records the state file vouches for are gone. Continuing from the state
  // keeps the gap visible to verify() instead of reusing their seqs.
  return {
    seq: state.seq,
    hash: state.hash,
    firstSeq: state.firstSeq,
    resumedFrom: 'state-file',
    message: `the trail ends at seq ${lastSeq} (${where}) but the state file records seq ${state.seq}; records ${lastSeq + 1} to ${state.seq} are missing; continued from the state file`,
  };
}
