// Record filters for query and tail, and the parsing of their time bounds.

import type { AuditRecord, Decision, Operation, RecordKind } from './record.js';

export interface RecordFilter {
  namespace?: string;
  pod?: string;
  container?: string;
  decision?: Decision;
  /** `namespace/name` of the deciding policy. */
  policy?: string;
  operation?: Operation;
  kind?: RecordKind;
  /** Records at or after this time. */
  since?: Date;
  /** Records at or before this time. */
  until?: Date;
}

// Fields that only decision records carry: filtering on any of them leaves
// start, stop and dropped records out.
const DECISION_FIELDS = ['namespace', 'pod', 'container', 'decision', 'policy', 'operation'] as const;

/** Reports whether a record passes every filter that is set. */
export function matchesFilter(record: AuditRecord, filter: RecordFilter): boolean {
  if (filter.kind !== undefined && record.kind !== filter.kind) {
    return false;
  }

  for (const field of DECISION_FIELDS) {
    const expected = filter[field];
    if (expected === undefined) {
      continue;
    }
    if (record.kind !== 'decision' || record[field] !== expected) {
      return false;
    }
  }

  if (filter.since !== undefined || filter.until !== undefined) {
    const time = Date.parse(record.time);
    if (Number.isNaN(time)) {
      return false;
    }
    if (filter.since !== undefined && time < filter.since.getTime()) {
      return false;
    }
    if (filter.until !== undefined && time > filter.until.getTime()) {
      return false;
    }
  }
  return true;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const DURATION = /^(\d+(ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+)(ms|s|m|h|d)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a time bound: an RFC 3339 timestamp (2024-05-01T12:00:00Z, offsets
 * allowed) or a duration before `now` such as 90s, 15m, 1h30m or 7d.
 * Throws an error that names the value and the accepted forms.
 */
export function parseTimeBound(text: string, now: Date = new Date()): Date {
  if (RFC3339.test(text)) {
    const time = Date.parse(text);
    if (!Number.isNaN(time)) {
      return new Date(time);
    }
  }

  if (DURATION.test(text)) {
    let milliseconds = 0;
    for (const match of text.matchAll(DURATION_PART)) {
      milliseconds += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
    }
    return new Date(now.getTime() - milliseconds);
  }

  throw new Error(
    `invalid time ${JSON.stringify(text)}: pass an RFC 3339 time such as 2024-05-01T12:00:00Z or a duration before now such as 15m, 2h or 1h30m (units ms, s, m, h, d)`,
  );
}
