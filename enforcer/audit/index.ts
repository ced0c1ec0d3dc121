// Public API of the audit trail: the writer the enforcer appends decisions
// with, and the readers behind `sabpf audit verify|query|tail`.

export * from './record.js';
export { canonicalJson, computeRecordHash } from './canonical.js';
export { AUDIT_RECORD_SCHEMA, validateRecord } from './schema.js';
export { DEFAULT_FILE_NAME, STATE_FILE_NAME, listTrailFiles, resolveTrailLocation, type TrailLocation } from './files.js';
export { readState, writeState, StateFileError, type TrailState } from './state.js';
export type { ResumePoint } from './resume.js';
export {
  AuditBacklogFullError,
  AuditWriter,
  DEFAULT_FSYNC_POLICY,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_PENDING,
  type AuditWriterOptions,
  type AuditWriterStats,
  type FsyncPolicy,
} from './writer.js';
export { verify, type ProblemCode, type TrailAnchor, type VerifyOptions, type VerifyProblem, type VerifyResult } from './verify.js';
export { matchesFilter, parseTimeBound, type RecordFilter } from './filters.js';
export { query } from './query.js';
export { tail, DEFAULT_POLL_INTERVAL_MS, DEFAULT_TAIL_LINES, type TailOptions } from './tail.js';
export type { ReadOptions, SkippedLine } from './records.js';
export { formatRecord, printable } from './format.js';
