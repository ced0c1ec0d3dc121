// Builds records with their fields in a fixed, readable order: seq first,
// then time, kind and node, the kind's own fields, and prevHash and hash last.
// The order only serves people reading the file; the hash is computed over
// canonical JSON, which sorts keys.

import { computeRecordHash } from './canonical.js';
import {
  isFileOperation,
  type AuditRecord,
  type DecisionEvent,
  type DropSource,
  type OperationDetail,
  type ResumeSource,
  type UnchainedRecord,
} from './record.js';

/** Formats a time as RFC 3339 UTC with milliseconds; names the fix for an invalid Date. */
export function formatTime(time: Date): string {
  if (Number.isNaN(time.getTime())) {
    throw new RangeError('failed to format audit record time: the Date is invalid; pass a valid Date or omit time to use the current time');
  }
  return time.toISOString();
}

/**
 * Copies a decision event into record order, keeping only the fields the
 * record format defines, so that a caller's extra properties never reach the
 * trail.
 */
export function buildDecision(event: DecisionEvent, node: string, now: Date): UnchainedRecord {
  return {
    time: formatTime(event.time ?? now),
    kind: 'decision',
    node,
    namespace: event.namespace,
    pod: event.pod,
    container: event.container,
    cgroupId: event.cgroupId,
    pid: event.pid,
    ppid: event.ppid,
    uid: event.uid,
    comm: event.comm,
    executable: event.executable,
    ...copyOperation(event),
    decision: event.decision,
    enforced: event.enforced,
    mode: event.mode,
    policy: event.policy,
    rule: event.rule,
    severity: event.severity,
    reason: event.reason,
    message: event.message,
  };
}

function copyOperation(event: OperationDetail): OperationDetail {
  if (isFileOperation(event.operation) && 'access' in event) {
    return { operation: event.operation, access: event.access, resource: { path: event.resource.path } };
  }
  switch (event.operation) {
    case 'exec':
      return { operation: event.operation, resource: { path: event.resource.path } };
    case 'connect':
    case 'bind': {
      const { address, port, protocol } = event.resource;
      return { operation: event.operation, resource: { address, port, protocol } };
    }
    case 'socket-create': {
      const { family, type } = event.resource;
      return { operation: event.operation, resource: { family, type } };
    }
    default:
      // Unknown operations pass through so that schema validation names them.
      return event;
  }
}

export function buildDropped(count: number, source: DropSource, node: string, now: Date): UnchainedRecord {
  return { time: formatTime(now), kind: 'dropped', node, count, source };
}

export function buildStart(resumedFrom: ResumeSource, message: string, node: string, now: Date): UnchainedRecord {
  return { time: formatTime(now), kind: 'start', node, resumedFrom, message };
}

export function buildStop(message: string, node: string, now: Date): UnchainedRecord {
  return { time: formatTime(now), kind: 'stop', node, message };
}

/** Links a record into the chain after the record with hash `prevHash`. */
export function chainRecord(body: UnchainedRecord, seq: number, prevHash: string): AuditRecord {
  const unhashed = { seq, ...body, prevHash };
  const hash = computeRecordHash(unhashed);
  return { ...unhashed, hash } as AuditRecord;
}
