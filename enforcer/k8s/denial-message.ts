// The words of a denial, shared by Events and the CSP status' lastDenial.

import { isFileOperation } from '../audit/record.js';
import type { DecisionRecord } from '../core/types.js';

/** Event reason of an enforced denial. */
export const REASON_DENIED = 'PolicyDenied';
/** Event reason of a denial that audit mode recorded and let through. */
export const REASON_AUDIT_DENIED = 'PolicyAuditDenied';

/** Longest Event message; the API server has no hard limit but events.k8s.io caps notes at 1 kB. */
const MAX_MESSAGE_LENGTH = 1024;

export function denialReason(record: DecisionRecord): string {
  return record.enforced ? REASON_DENIED : REASON_AUDIT_DENIED;
}

/** Returns the operation name as a person reads it: open, link, unlink, truncate, exec, connect, bind, socket. */
export function operationName(record: DecisionRecord): string {
  if (isFileOperation(record.operation)) return record.operation.slice('file-'.length);
  return record.operation === 'socket-create' ? 'socket' : record.operation;
}

/** Formats the resource: a path, `tcp 10.0.0.1:443`, or `AF_PACKET SOCK_RAW`. */
export function resourceText(record: DecisionRecord): string {
  const resource = record.resource;
  if (typeof resource.path === 'string') return resource.path;
  if (resource.address !== undefined) {
    const address = String(resource.address);
    const host = address.includes(':') ? `[${address}]` : address;
    return `${resource.protocol ?? ''} ${host}:${resource.port ?? '?'}`.trim();
  }
  if (resource.family !== undefined) return `${resource.family} ${resource.type ?? ''}`.trim();
  return Object.entries(resource)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}

/** `open /etc/shadow (read)`, `exec /usr/bin/curl`, `connect tcp 10.0.0.1:443`. */
export function operationText(record: DecisionRecord): string {
  const access = record.access ? ` (${record.access})` : '';
  return `${operationName(record)} ${resourceText(record)}${access}`;
}

/** `rule spec.file.rules[0]`, or `file posture` when no rule matched. */
function decidedBy(record: DecisionRecord): string {
  let section = 'network';
  if (isFileOperation(record.operation)) section = 'file';
  if (record.operation === 'exec') section = 'exec';
  if (record.reason === 'posture') return `${section} posture`;
  if (record.reason === 'path-truncated') return `${section} posture (the path was too long to match a rule)`;
  if (record.reason === 'rules-below') return `${section} rules below this path`;
  return `rule ${record.rule}`;
}

function verdict(record: DecisionRecord): string {
  return record.enforced ? 'denied' : 'would be denied (audit mode, allowed)';
}

function withPolicyMessage(text: string, record: DecisionRecord): string {
  const full = record.message ? `${text}: ${record.message}` : text;
  return full.length > MAX_MESSAGE_LENGTH ? `${full.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : full;
}

/** Message of the Event on the pod: `open /etc/shadow (read) denied by shop/protect-creds rule spec.file.rules[0] in container web`. */
export function podEventMessage(record: DecisionRecord): string {
  return withPolicyMessage(
    `${operationText(record)} ${verdict(record)} by ${record.policy} ${decidedBy(record)} in container ${record.container}`,
    record,
  );
}

/** Message of the Event on the policy; it names the pod, since the policy is the involved object. */
export function policyEventMessage(record: DecisionRecord): string {
  return withPolicyMessage(
    `${operationText(record)} ${verdict(record)} by ${record.policy} ${decidedBy(record)} in pod ${record.namespace}/${record.pod} container ${record.container}`,
    record,
  );
}
