// Shapes of the records in an audit trail. Each line of a trail file is one
// record serialized as JSON; field names are part of the on-disk format, so
// renaming one breaks every reader and every verification of older trails.

/** prevHash of the first record of a brand-new trail. */
export const GENESIS_HASH = '0'.repeat(64);

export const RECORD_KINDS = ['decision', 'dropped', 'start', 'stop'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Operations judged by the file rules; each record of one carries the access that decided. */
export const FILE_OPERATIONS = [
  'file-open',
  'file-link',
  'file-rename',
  'file-create',
  'file-mkdir',
  'file-symlink',
  'file-unlink',
  'file-rmdir',
  'file-truncate',
  'file-chmod',
] as const;
export type FileOperation = (typeof FILE_OPERATIONS)[number];

export const OPERATIONS = [...FILE_OPERATIONS, 'exec', 'connect', 'bind', 'socket-create'] as const;
export type Operation = (typeof OPERATIONS)[number];

export function isFileOperation(operation: string): operation is FileOperation {
  return (FILE_OPERATIONS as readonly string[]).includes(operation);
}

export const DECISIONS = ['allow', 'deny'] as const;
export type Decision = (typeof DECISIONS)[number];

export type Mode = 'enforce' | 'audit';
export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type FileAccess = 'read' | 'write';
export type Protocol = 'tcp' | 'udp';

/**
 * Why a policy reached its decision: a rule matched, no rule matched and the
 * section's posture applied, or the path was longer than the BPF program can
 * walk and the posture applied to the truncated path.
 */
export type DecisionReason = 'rule' | 'posture' | 'path-truncated' | 'rules-below';

/**
 * Place where events were lost: in the kernel, which could not deliver them
 * because the ring buffer was full, or in the writer, which could not append
 * them to the trail (a write failed) or rejected them (too many were waiting).
 */
export type DropSource = 'ring-buffer' | 'audit-write' | 'audit-backlog';

/**
 * Origin of the chain a writer continues: a brand-new trail, the state file,
 * or the last complete record of the newest file when the state file is
 * missing or unreadable.
 */
export type ResumeSource = 'new' | 'state-file' | 'last-record';

export interface PathResource {
  path: string;
}

export interface NetworkResource {
  /** IPv4 dotted quad or IPv6 text form. */
  address: string;
  port: number;
  protocol: Protocol;
}

export interface SocketResource {
  /** Address family name, such as AF_INET or AF_PACKET. */
  family: string;
  /** Socket type name, such as SOCK_RAW. */
  type: string;
}

/**
 * The operation and its resource; `access` exists for the file operations
 * only. A file-link (a hard link made by the container) or a file-rename
 * names the path that decided, the existing file unless only the new name
 * is protected, and the access of that path that decided. The operations
 * that create, remove or truncate a name are judged as writes to it.
 */
export type OperationDetail =
  | { operation: FileOperation; access: FileAccess; resource: PathResource }
  | { operation: 'exec'; resource: PathResource }
  | { operation: 'connect' | 'bind'; resource: NetworkResource }
  | { operation: 'socket-create'; resource: SocketResource };

/** Fields of a decision that the enforcer fills from a kernel event and the policy. */
export interface DecisionContext {
  namespace: string;
  pod: string;
  container: string;
  /** The container's cgroup id, a u64 kept as decimal text because JSON numbers lose precision above 2^53. */
  cgroupId: string;
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  executable: string;
  decision: Decision;
  /** True only when the operation was actually blocked: a deny in enforce mode. */
  enforced: boolean;
  mode: Mode;
  /** `namespace/name` of the deciding policy. */
  policy: string;
  /** Field path of the matching rule, such as spec.file.rules[2], or `posture`. */
  rule: string;
  severity: Severity;
  message: string;
  reason: DecisionReason;
}

/** A decision as the enforcer hands it to the writer; `time` defaults to now. */
export type DecisionEvent = DecisionContext & OperationDetail & { time?: Date };

/** Fields that link a record into the hash chain. */
export interface ChainFields {
  /** 1 for the first record of a trail, then +1 per record, across rotations and restarts. */
  seq: number;
  /** hash of the previous record, or GENESIS_HASH for seq 1. */
  prevHash: string;
  /** sha256 hex of prevHash followed by the canonical JSON of the record without `hash`. */
  hash: string;
}

interface RecordHeader {
  /** RFC 3339 UTC with milliseconds, as Date.prototype.toISOString writes it. */
  time: string;
  node: string;
}

export type DecisionRecord = ChainFields & RecordHeader & { kind: 'decision' } & DecisionContext & OperationDetail;

export type DroppedRecord = ChainFields &
  RecordHeader & {
    kind: 'dropped';
    /** Events lost since the previous dropped record from the same source. */
    count: number;
    source: DropSource;
  };

export type StartRecord = ChainFields &
  RecordHeader & {
    kind: 'start';
    resumedFrom: ResumeSource;
    message: string;
  };

export type StopRecord = ChainFields &
  RecordHeader & {
    kind: 'stop';
    message: string;
  };

export type AuditRecord = DecisionRecord | DroppedRecord | StartRecord | StopRecord;

/** A record before the writer links it into the chain. */
export type UnchainedRecord = DistributiveOmit<AuditRecord, keyof ChainFields>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
