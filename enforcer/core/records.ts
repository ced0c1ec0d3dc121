// Translation of a kernel event into a decision record: which container,
// policy and rule. The kernel reports the deciding policy's bit; the rule is
// found by replaying the operation through compiler/decide.ts, which tests
// keep in agreement with the compiled tables.

import type { CompiledProgram } from '../../compiler/compile.js';
import { decide, type Operation } from '../../compiler/decide.js';
import { EventFlag, Hook } from '../../compiler/layout.js';
import { formatAddress } from '../../compiler/net.js';
import type { Policy } from '../../compiler/types.js';
import type { DecisionEvent, DecisionReason, FileOperation } from '../audit/index.js';
import type { SabpfEvent } from '../kernel/index.js';
import type { DecisionRecord, NodeContainer } from './types.js';

const AF_INET = 2;
const AF_INET6 = 10;
const AF_PACKET = 17;
const SOCK_RAW = 3;

/** Record operation of each hook that a file decision comes from. */
const FILE_OPERATIONS: Partial<Record<number, FileOperation>> = {
  [Hook.fileOpen]: 'file-open',
  [Hook.fileLink]: 'file-link',
  [Hook.fileRename]: 'file-rename',
  [Hook.fileCreate]: 'file-create',
  [Hook.fileMkdir]: 'file-mkdir',
  [Hook.fileSymlink]: 'file-symlink',
  [Hook.fileUnlink]: 'file-unlink',
  [Hook.fileRmdir]: 'file-rmdir',
  [Hook.fileTruncate]: 'file-truncate',
  [Hook.fileChmod]: 'file-chmod',
};

export interface Resolved {
  audit: DecisionEvent;
  record: DecisionRecord;
  /** The replayed decision names another policy than the kernel did: a bug worth a metric. */
  mismatch: boolean;
}

/** Rebuilds the operation the kernel decided on, for the reference decision. */
export function operationOf(event: SabpfEvent): Operation | undefined {
  switch (event.hook) {
    // A link or rename is judged as an open of the path that decided, with
    // the access that decided (either is denied when an access to the file would be).
    // Creating, removing, truncating or changing the mode of a name is judged as a write open of it.
    case Hook.fileOpen:
    case Hook.fileLink:
    case Hook.fileRename:
    case Hook.fileCreate:
    case Hook.fileMkdir:
    case Hook.fileSymlink:
    case Hook.fileUnlink:
    case Hook.fileRmdir:
    case Hook.fileTruncate:
    case Hook.fileChmod:
      return { kind: 'open', path: event.path, access: event.access === 1 ? 'write' : 'read', executable: event.exe };
    case Hook.exec:
      return { kind: 'exec', path: event.path, executable: event.exe };
    case Hook.socketConnect:
    case Hook.socketBind:
      return {
        kind: event.hook === Hook.socketConnect ? 'connect' : 'bind',
        protocol: event.proto === 17 ? 'udp' : 'tcp',
        address: event.addr,
        port: event.port,
        v6only: (event.flags & EventFlag.v6only) !== 0,
      };
    case Hook.socketCreate:
      return { kind: event.family === AF_PACKET ? 'packet-socket' : 'raw-socket' };
    default:
      return undefined;
  }
}

/** Resolves a kernel event of `container`, whose program and selected policies are given. */
export function resolveEvent(
  event: SabpfEvent,
  container: NodeContainer,
  program: CompiledProgram,
  selected: readonly Policy[],
  node: string,
): Resolved | undefined {
  const operation = operationOf(event);
  const ref = program.policies[event.policy];
  if (!operation || !ref) return undefined;

  const truncated = (event.flags & EventFlag.truncated) !== 0;
  const rulesBelow = (event.flags & EventFlag.rulesBelow) !== 0;
  const replayed = decide(selected, operation);
  // A move denied for the rules below a directory has no rule of its own to replay.
  const mismatch = !truncated && !rulesBelow && replayed.policy !== ref.policy;
  let reason: DecisionReason = 'rule';
  let rule = mismatch ? 'unknown' : (replayed.rule ?? 'unknown');
  if (rulesBelow) {
    reason = 'rules-below';
    rule = 'rules-below';
  } else if (truncated) {
    reason = 'path-truncated';
    rule = 'posture';
  } else if ((event.flags & EventFlag.posture) !== 0) {
    reason = 'posture';
    rule = 'posture';
  }

  const context = {
    namespace: container.namespace,
    pod: container.pod,
    container: container.container,
    cgroupId: event.cgroupId.toString(),
    pid: event.pid,
    ppid: event.ppid,
    uid: event.uid,
    comm: event.comm,
    executable: event.exe,
    decision: event.decision === 1 ? ('deny' as const) : ('allow' as const),
    enforced: (event.flags & EventFlag.enforced) !== 0,
    mode: ref.mode,
    policy: ref.policy,
    rule,
    severity: ref.severity,
    message: ref.message ?? '',
    reason,
  };

  let detail: Pick<DecisionEvent, 'operation' | 'resource'> & { access?: 'read' | 'write' };
  switch (operation.kind) {
    case 'open':
      detail = {
        operation: FILE_OPERATIONS[event.hook] ?? 'file-open',
        access: operation.access,
        resource: { path: operation.path },
      };
      break;
    case 'exec':
      detail = { operation: 'exec', resource: { path: operation.path } };
      break;
    case 'connect':
    case 'bind':
      detail = {
        operation: operation.kind,
        resource: { address: formatAddress(operation.address), port: operation.port, protocol: operation.protocol },
      };
      break;
    default:
      detail = {
        operation: 'socket-create',
        resource: { family: familyName(event.family), type: event.proto === SOCK_RAW ? 'SOCK_RAW' : `type ${event.proto}` },
      };
  }

  const time = decisionTime(event.timeBootNs);
  const audit = { ...context, ...detail, time } as DecisionEvent;
  const record: DecisionRecord = {
    time: time.toISOString(),
    node,
    ...context,
    ...(container.podUid !== undefined ? { podUid: container.podUid } : {}),
    operation: detail.operation,
    ...(detail.access !== undefined ? { access: detail.access } : {}),
    resource: detail.resource as unknown as Record<string, string | number>,
  };
  return { audit, record, mismatch };
}

/**
 * Converts the kernel's boot-time stamp of a decision to wall-clock time.
 * NOTE: process.hrtime is CLOCK_MONOTONIC, which equals CLOCK_BOOTTIME
 * unless the machine suspended; after a suspend the times shift by its length.
 */
function decisionTime(timeBootNs: bigint): Date {
  const ageNs = process.hrtime.bigint() - timeBootNs;
  const ageMs = ageNs > 0n ? Number(ageNs / 1_000_000n) : 0;
  return new Date(Date.now() - ageMs);
}

function familyName(family: number): string {
  if (family === AF_INET) return 'AF_INET';
  if (family === AF_INET6) return 'AF_INET6';
  if (family === AF_PACKET) return 'AF_PACKET';
  return `family ${family}`;
}
