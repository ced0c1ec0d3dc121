// One-line text form of a record for people reading `sabpf audit query` and
// `tail` in a terminal. Paths, commands and messages come from containers, so
// control characters are escaped: a file named with an ANSI escape sequence
// must not be able to rewrite the operator's terminal.

import { isFileOperation, type AuditRecord, type DecisionRecord } from './record.js';

// C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Replaces control characters with \xNN or \uNNNN escapes, and backslashes with \\. */
export function printable(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(UNPRINTABLE, (character) => {
    const code = character.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Formats a record as one line of text that starts with its time and ends with its seq. */
export function formatRecord(record: AuditRecord): string {
  switch (record.kind) {
    case 'decision':
      return formatDecision(record);
    case 'dropped':
      return `${record.time}  DROPPED  ${record.count} events lost (${record.source})  node=${printable(record.node)}  seq=${record.seq}`;
    case 'start':
      return `${record.time}  START  ${printable(record.message)} (resumed from ${record.resumedFrom})  node=${printable(record.node)}  seq=${record.seq}`;
    case 'stop':
      return `${record.time}  STOP  ${printable(record.message)}  node=${printable(record.node)}  seq=${record.seq}`;
    default:
      return `${String((record as { time: unknown }).time)}  ${printable(String((record as { kind: unknown }).kind))}  seq=${String((record as { seq: unknown }).seq)}`;
  }
}

function formatDecision(record: DecisionRecord): string {
  let verdict: string = record.decision === 'allow' ? 'ALLOW' : 'DENY';
  if (record.decision === 'deny' && !record.enforced) {
    verdict = 'DENY(not enforced)';
  }

  const workload = printable(`${record.namespace}/${record.pod}/${record.container}`);
  const operation = 'access' in record ? `${record.operation} ${record.access}` : record.operation;
  const process = `pid=${record.pid} uid=${record.uid} comm=${printable(record.comm)}`;
  const policy = `policy=${printable(record.policy)} rule=${printable(record.rule)} reason=${record.reason}`;

  return `${record.time}  ${verdict}  ${workload}  ${operation} ${describeResource(record)}  ${process}  ${policy}  seq=${record.seq}`;
}

function describeResource(record: DecisionRecord): string {
  if (isFileOperation(record.operation) && 'path' in record.resource) return printable(record.resource.path);
  switch (record.operation) {
    case 'exec':
      return printable(record.resource.path);
    case 'connect':
    case 'bind': {
      const { address, port, protocol } = record.resource;
      const host = address.includes(':') ? `[${address}]` : address;
      return printable(`${protocol} ${host}:${port}`);
    }
    case 'socket-create':
      return printable(`${record.resource.family} ${record.resource.type}`);
    default:
      return '';
  }
}
