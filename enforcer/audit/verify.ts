// Verification of an audit trail: recomputes every record's hash, follows the
// seq and prevHash links across files, and compares both ends of the trail
// with the state file. Files are read as streams. Bad content never throws
// but becomes a problem with its file and line; only failures to list a
// directory propagate.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { computeRecordHash } from './canonical.js';
import { DEFAULT_FILE_NAME, listTrailFiles, orderTrailPaths, STATE_FILE_NAME } from './files.js';
import { parseObjectLine, readTrailLines } from './lines.js';
import { GENESIS_HASH } from './record.js';
import { chainFieldsOf } from './scan.js';
import { readState, StateFileError, type TrailState } from './state.js';

export type ProblemCode =
  /** A file could not be read. */
  | 'unreadable-file'
  /** No trail file was found, or the files hold no record. */
  | 'no-records'
  /** A line is not a JSON object. */
  | 'invalid-json'
  /** The last line of a file stops mid-record: an interrupted write or a cut. */
  | 'truncated-line'
  /** A JSON object without well-formed seq, prevHash and hash. */
  | 'invalid-record'
  /** The recomputed hash differs from the stored one: the record was edited. */
  | 'hash-mismatch'
  /** seq 1 whose prevHash is not the genesis hash. */
  | 'genesis-mismatch'
  /** seq jumps forward: records were deleted. */
  | 'seq-gap'
  /** seq repeats the previous one: a record was inserted or duplicated. */
  | 'seq-repeat'
  /** seq goes backward: records were reordered or inserted. */
  | 'seq-reorder'
  /** seq follows on but prevHash is not the previous record's hash. */
  | 'prev-hash-mismatch'
  /** The state file exists but cannot be parsed. */
  | 'state-invalid'
  /** The state file's record is present with another hash, or absent from the middle of the trail. */
  | 'state-mismatch'
  /** The trail ends before the state file's record: the newest records were removed. */
  | 'tail-truncated'
  /** The trail starts after the state file's firstSeq: the oldest records were removed outside rotation. */
  | 'head-truncated';

export interface VerifyProblem {
  file: string;
  /** 1-based line in `file`, or null for problems of a whole file or of the state file. */
  line: number | null;
  /** seq of the record concerned when known. */
  seq: number | null;
  problem: ProblemCode;
  /** Readable explanation naming the values involved. */
  detail: string;
}

/** The first record of a trail whose older records are gone: its prevHash is trusted as given. */
export interface TrailAnchor {
  file: string;
  line: number;
  seq: number;
  prevHash: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records with well-formed chain fields, intact or not. */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** True when the trail starts after seq 1, so its first prevHash is accepted as an anchor. */
  anchored: boolean;
  anchor: TrailAnchor | null;
  /** Files read, oldest first. */
  files: string[];
  /** State file compared with the trail, or null when there was none. */
  stateFile: string | null;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /**
   * State file to compare with. A directory defaults to its audit.state.json
   * when present. A list of files defaults to no state file, because the
   * files may be a copy of part of a trail. null disables the check.
   */
  stateFile?: string | null;
  /** Base name of the trail's files in a directory; defaults to audit.log. */
  fileName?: string;
}

interface ChainLink {
  seq: number;
  hash: string;
}

/**
 * Verifies an audit trail given as a directory, or as files of one trail
 * (ordered oldest first when their names show rotation indexes, else taken
 * in the order given).
 */
export async function verify(target: string | readonly string[], options: VerifyOptions = {}): Promise<VerifyResult> {
  const { files, stateFile, problems } = await resolveTarget(target, options);
  const result: VerifyResult = {
    ok: false,
    records: 0,
    firstSeq: null,
    lastSeq: null,
    anchored: false,
    anchor: null,
    files,
    stateFile,
    problems,
  };

  let state: TrailState | null = null;
  if (stateFile !== null) {
    state = await loadState(stateFile, problems);
  }

  let previous: ChainLink | null = null;
  let stateHashSeen: string | null = null;

  for (const file of files) {
    try {
      for await (const line of readTrailLines(file)) {
        const record = parseObjectLine(line.text);
        if (record === null) {
          problems.push(describeUnparsedLine(file, line.lineNumber, line.text, line.complete));
          continue;
        }

        const fields = chainFieldsOf(record);
        if (fields === null) {
          problems.push({
            file,
            line: line.lineNumber,
            seq: null,
            problem: 'invalid-record',
            detail: 'record lacks a positive integer seq or 64-hex-digit prevHash and hash',
          });
          continue;
        }

        const where = { file, line: line.lineNumber, seq: fields.seq };
        checkHash(record, fields, where, problems);
        if (previous === null) {
          result.anchor = checkFirstRecord(fields, where, problems);
        } else {
          checkLink(previous, fields, where, problems);
        }

        if (state !== null && fields.seq === state.seq) {
          stateHashSeen = fields.hash;
        }
        previous = { seq: fields.seq, hash: fields.hash };
        result.records += 1;
        result.firstSeq ??= fields.seq;
        result.lastSeq = fields.seq;
      }
    } catch (error) {
      problems.push({
        file,
        line: null,
        seq: null,
        problem: 'unreadable-file',
        detail: `failed to read ${file}: ${(error as Error).message}`,
      });
    }
  }

  if (result.records === 0 && files.length > 0 && !problems.some((problem) => problem.problem === 'unreadable-file')) {
    problems.push({ file: files[0] ?? String(target), line: null, seq: null, problem: 'no-records', detail: 'no audit record found' });
  }

  if (state !== null && stateFile !== null) {
    checkState(state, stateFile, stateHashSeen, result, problems);
  }

  result.anchored = result.anchor !== null;
  result.ok = problems.length === 0;
  return result;
}

async function resolveTarget(
  target: string | readonly string[],
  options: VerifyOptions,
): Promise<{ files: string[]; stateFile: string | null; problems: VerifyProblem[] }> {
  const problems: VerifyProblem[] = [];
  const paths = typeof target === 'string' ? [target] : [...target];
  const fileName = options.fileName ?? DEFAULT_FILE_NAME;

  const only = paths.length === 1 ? paths[0] : undefined;
  if (only !== undefined && (await isDirectory(only))) {
    const files = await listTrailFiles(only, fileName);
    if (files.length === 0) {
      problems.push({
        file: only,
        line: null,
        seq: null,
        problem: 'no-records',
        detail: `no ${fileName} or ${fileName}.N file in ${only}`,
      });
    }
    let stateFile = options.stateFile ?? null;
    if (options.stateFile === undefined) {
      const defaultState = join(only, STATE_FILE_NAME);
      stateFile = (await exists(defaultState)) ? defaultState : null;
    }
    return { files, stateFile, problems };
  }

  return { files: orderTrailPaths(paths), stateFile: options.stateFile ?? null, problems };
}

async function loadState(stateFile: string, problems: VerifyProblem[]): Promise<TrailState | null> {
  try {
    const state = await readState(stateFile);
    if (state === null) {
      problems.push({ file: stateFile, line: null, seq: null, problem: 'state-invalid', detail: `state file ${stateFile} does not exist` });
    }
    return state;
  } catch (error) {
    const detail = error instanceof StateFileError ? error.message : `failed to read state file ${stateFile}: ${(error as Error).message}`;
    problems.push({ file: stateFile, line: null, seq: null, problem: 'state-invalid', detail });
    return null;
  }
}

function describeUnparsedLine(file: string, line: number, text: string, complete: boolean): VerifyProblem {
  if (!complete) {
    return {
      file,
      line,
      seq: null,
      problem: 'truncated-line',
      detail: `last line stops after ${Buffer.byteLength(text)} bytes without completing a record`,
    };
  }
  const detail = text.trim() === '' ? 'empty line' : 'line is not a JSON object';
  return { file, line, seq: null, problem: 'invalid-json', detail };
}

type Where = { file: string; line: number; seq: number };

function checkHash(record: Record<string, unknown>, fields: { hash: string }, where: Where, problems: VerifyProblem[]): void {
  let computed: string;
  try {
    computed = computeRecordHash(record as Record<string, unknown> & { prevHash: string });
  } catch (error) {
    problems.push({ ...where, problem: 'hash-mismatch', detail: `record cannot be hashed: ${(error as Error).message}` });
    return;
  }
  if (computed !== fields.hash) {
    problems.push({
      ...where,
      problem: 'hash-mismatch',
      detail: `stored hash ${fields.hash} but the record hashes to ${computed}: the record was edited`,
    });
  }
}

function checkFirstRecord(fields: { seq: number; prevHash: string }, where: Where, problems: VerifyProblem[]): TrailAnchor | null {
  if (fields.seq > 1) {
    return { file: where.file, line: where.line, seq: fields.seq, prevHash: fields.prevHash };
  }
  if (fields.prevHash !== GENESIS_HASH) {
    problems.push({ ...where, problem: 'genesis-mismatch', detail: `seq 1 has prevHash ${fields.prevHash}, expected ${GENESIS_HASH}` });
  }
  return null;
}

/** Reports at most one link problem per record, the one that explains the break. */
function checkLink(previous: ChainLink, fields: { seq: number; prevHash: string }, where: Where, problems: VerifyProblem[]): void {
  const expected = previous.seq + 1;

  if (fields.seq > expected) {
    const missing = fields.seq - expected === 1 ? `record ${expected} is` : `records ${expected} to ${fields.seq - 1} are`;
    problems.push({ ...where, problem: 'seq-gap', detail: `seq ${fields.seq} follows seq ${previous.seq}: ${missing} missing` });
    return;
  }
  if (fields.seq === previous.seq) {
    problems.push({
      ...where,
      problem: 'seq-repeat',
      detail: `seq ${fields.seq} appears twice in a row: a record was inserted or duplicated`,
    });
    return;
  }
  if (fields.seq < previous.seq) {
    problems.push({ ...where, problem: 'seq-reorder', detail: `seq ${fields.seq} follows seq ${previous.seq}: records are out of order` });
    return;
  }
  if (fields.prevHash !== previous.hash) {
    problems.push({
      ...where,
      problem: 'prev-hash-mismatch',
      detail: `prevHash ${fields.prevHash} is not the hash ${previous.hash} of seq ${previous.seq}`,
    });
  }
}

function checkState(state: TrailState, stateFile: string, hashSeen: string | null, result: VerifyResult, problems: VerifyProblem[]): void {
  const at = { file: stateFile, line: null, seq: state.seq };

  if (hashSeen !== null && hashSeen !== state.hash) {
    problems.push({
      ...at,
      problem: 'state-mismatch',
      detail: `state file records seq ${state.seq} with hash ${state.hash}, but the trail's seq ${state.seq} has hash ${hashSeen}`,
    });
  } else if (hashSeen === null && (result.lastSeq === null || result.lastSeq < state.seq)) {
    const end = result.lastSeq === null ? 'the trail has no record' : `the trail ends at seq ${result.lastSeq}`;
    problems.push({
      ...at,
      problem: 'tail-truncated',
      detail: `state file records seq ${state.seq} (${state.file}) but ${end}: the newest records were removed`,
    });
  } else if (hashSeen === null) {
    problems.push({
      ...at,
      problem: 'state-mismatch',
      detail: `state file records seq ${state.seq} (${state.file}) but no record of the trail has that seq`,
    });
  }

  if (result.firstSeq !== null && result.firstSeq > state.firstSeq) {
    problems.push({
      file: result.anchor?.file ?? stateFile,
      line: result.anchor?.line ?? null,
      seq: result.firstSeq,
      problem: 'head-truncated',
      detail: `the trail starts at seq ${result.firstSeq} but the state file keeps records from seq ${state.firstSeq}: records were removed outside rotation`,
    });
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
