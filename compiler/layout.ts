// Binary layout of the kernel maps. Mirrors enforcer/bpf/sabpf.h byte for
// byte (x86-64, little endian); test/unit/layout.test.ts compiles a C program
// against the header and checks every size and offset below.

export const MAX_POLICIES = 32;
export const NAME_MAX_BYTES = 256;
/** Components of fewer bytes key sabpf_nodes, longer ones sabpf_long_nodes (SABPF_SHORT_NAME). */
export const SHORT_NAME_BYTES = 32;
export const PATH_MAX_BYTES = 4096;

export const Hook = {
  fileOpen: 1 << 0,
  exec: 1 << 1,
  socketConnect: 1 << 2,
  socketBind: 1 << 3,
  socketCreate: 1 << 4,
  /** path_link: a hard link is judged by the file rules of both names. */
  fileLink: 1 << 5,
  /** socket_sendmsg: addressed UDP sends and TCP Fast Open, judged by the connect rules. */
  socketSendmsg: 1 << 6,
  /** path_rename: a move is judged by the file rules of both names, as a link. */
  fileRename: 1 << 7,
  // Node-wide hooks (NODE_WIDE_HOOKS), each judged as a write at the name by the file rules.
  /** path_mknod: a new file, including open(2) with O_CREAT, or a fifo, socket or device. */
  fileCreate: 1 << 8,
  fileMkdir: 1 << 9,
  /** path_symlink: also denied where rules lie at or below the new name. */
  fileSymlink: 1 << 10,
  fileUnlink: 1 << 11,
  fileRmdir: 1 << 12,
  /** path_truncate: truncate(2); file_open judges open(2) with O_TRUNC as a write. */
  fileTruncate: 1 << 13,
  fileChmod: 1 << 14,
} as const;
export type HookName = keyof typeof Hook;

/** Kernel LSM hook behind each sabpf hook. */
export const LSM_HOOK: Record<HookName, string> = {
  fileOpen: 'file_open',
  exec: 'bprm_check_security',
  socketConnect: 'socket_connect',
  socketBind: 'socket_bind',
  socketCreate: 'socket_create',
  fileLink: 'path_link',
  socketSendmsg: 'socket_sendmsg',
  fileRename: 'path_rename',
  fileCreate: 'path_mknod',
  fileMkdir: 'path_mkdir',
  fileSymlink: 'path_symlink',
  fileUnlink: 'path_unlink',
  fileRmdir: 'path_rmdir',
  fileTruncate: 'path_truncate',
  fileChmod: 'path_chmod',
};

/**
 * Hooks attached for every task of the node in every attach mode: the
 * kernel runs at most 10 distinct lsm_cgroup hooks on a node, and the
 * per-container programs use 8. Their programs find the container by cgroup id.
 */
export const NODE_WIDE_HOOKS: readonly HookName[] = [
  'fileCreate',
  'fileMkdir',
  'fileSymlink',
  'fileUnlink',
  'fileRmdir',
  'fileTruncate',
  'fileChmod',
];

/** Hooks whose programs cgroup mode attaches to each container's cgroup. */
export const CGROUP_HOOKS = (Object.keys(Hook) as HookName[]).filter((hook) => !NODE_WIDE_HOOKS.includes(hook));

/** The hooks a config with file rules or a restrictive file posture needs. */
export const FILE_HOOKS = Hook.fileOpen | Hook.fileLink | Hook.fileRename | NODE_WIDE_HOOKS.reduce((bits, h) => bits | Hook[h], 0);

export const Section = { file: 0, exec: 1, network: 2 } as const;
export const Scope = { exact: 0, children: 1, subtree: 2 } as const;
export const Access = { read: 0, write: 1 } as const;
export const Table = { file: 0, exec: 1 } as const;
export const NetOp = { connect: 0, bind: 1 } as const;
export const IpProto = { tcp: 6, udp: 17 } as const;
export const ConfigFlag = { hasFileSources: 1 << 0, hasExecSources: 1 << 1 } as const;
export const Counter = {
  eventsDropped: 0,
  pathTruncated: 1,
  noConfig: 2,
  denied: 3,
  audited: 4,
  dirCacheHits: 5,
  dirCacheFills: 6,
  fileCacheHits: 7,
} as const;
export const COUNTERS = 8;
export const EventFlag = {
  enforced: 1 << 0,
  audit: 1 << 1,
  posture: 1 << 2,
  truncated: 1 << 3,
  v6only: 1 << 4,
  /** A directory or symlink given a name with rules below it, denied for those rules. */
  rulesBelow: 1 << 5,
} as const;

/** struct sabpf_verdict: policy masks. */
export interface Verdict {
  deny: number;
  audit: number;
  allow: number;
}

export const emptyVerdict = (): Verdict => ({ deny: 0, audit: 0, allow: 0 });

export const SIZE = {
  verdict: 12,
  config: 80,
  nodeKey: 40,
  longNodeKey: 264,
  node: 80,
  sourceRootKey: 12,
  sourceRoot: 4,
  netKey: 28,
  netPrefix: 8,
  portKey: 16,
  event: 8288,
} as const;

/** Offsets of struct sabpf_config fields. */
export const CONFIG_OFFSET = {
  slot: 0,
  hooks: 4,
  enforce: 8,
  policyCount: 12,
  fileRoot: 16,
  execRoot: 20,
  sourceRoot: 24,
  flags: 28,
  postureDeny: 32,
  postureAudit: 44,
  rawSocket: 56,
  packetSocket: 68,
} as const;

/** Offsets of struct sabpf_event fields. */
export const EVENT_OFFSET = {
  timeBootNs: 0,
  cgroupId: 8,
  pid: 16,
  ppid: 20,
  uid: 24,
  hook: 28,
  access: 32,
  decision: 36,
  flags: 40,
  policy: 44,
  netOp: 48,
  port: 52,
  proto: 54,
  family: 55,
  addr: 56,
  comm: 72,
  pathLen: 88,
  exeLen: 90,
  path: 96,
  exe: 4192,
} as const;

export interface Config {
  slot: number;
  hooks: number;
  enforce: number;
  policyCount: number;
  fileRoot: number;
  execRoot: number;
  sourceRoot: number;
  flags: number;
  postureDeny: [number, number, number];
  postureAudit: [number, number, number];
  rawSocket: Verdict;
  packetSocket: Verdict;
}

function writeVerdict(buffer: Buffer, offset: number, verdict: Verdict): void {
  buffer.writeUInt32LE(verdict.deny >>> 0, offset);
  buffer.writeUInt32LE(verdict.audit >>> 0, offset + 4);
  buffer.writeUInt32LE(verdict.allow >>> 0, offset + 8);
}

function readVerdict(buffer: Buffer, offset: number): Verdict {
  return { deny: buffer.readUInt32LE(offset), audit: buffer.readUInt32LE(offset + 4), allow: buffer.readUInt32LE(offset + 8) };
}

export function encodeConfig(config: Config): Buffer {
  const buffer = Buffer.alloc(SIZE.config);
  const o = CONFIG_OFFSET;
  buffer.writeUInt32LE(config.slot >>> 0, o.slot);
  buffer.writeUInt32LE(config.hooks >>> 0, o.hooks);
  buffer.writeUInt32LE(config.enforce >>> 0, o.enforce);
  buffer.writeUInt32LE(config.policyCount, o.policyCount);
  buffer.writeUInt32LE(config.fileRoot, o.fileRoot);
  buffer.writeUInt32LE(config.execRoot, o.execRoot);
  buffer.writeUInt32LE(config.sourceRoot, o.sourceRoot);
  buffer.writeUInt32LE(config.flags, o.flags);
  config.postureDeny.forEach((mask, i) => buffer.writeUInt32LE(mask >>> 0, o.postureDeny + 4 * i));
  config.postureAudit.forEach((mask, i) => buffer.writeUInt32LE(mask >>> 0, o.postureAudit + 4 * i));
  writeVerdict(buffer, o.rawSocket, config.rawSocket);
  writeVerdict(buffer, o.packetSocket, config.packetSocket);
  return buffer;
}

export function decodeConfig(buffer: Buffer): Config {
  const o = CONFIG_OFFSET;
  const masks = (offset: number): [number, number, number] => [
    buffer.readUInt32LE(offset),
    buffer.readUInt32LE(offset + 4),
    buffer.readUInt32LE(offset + 8),
  ];
  return {
    slot: buffer.readUInt32LE(o.slot),
    hooks: buffer.readUInt32LE(o.hooks),
    enforce: buffer.readUInt32LE(o.enforce),
    policyCount: buffer.readUInt32LE(o.policyCount),
    fileRoot: buffer.readUInt32LE(o.fileRoot),
    execRoot: buffer.readUInt32LE(o.execRoot),
    sourceRoot: buffer.readUInt32LE(o.sourceRoot),
    flags: buffer.readUInt32LE(o.flags),
    postureDeny: masks(o.postureDeny),
    postureAudit: masks(o.postureAudit),
    rawSocket: readVerdict(buffer, o.rawSocket),
    packetSocket: readVerdict(buffer, o.packetSocket),
  };
}

/** Returns the map whose key fits a component of this many UTF-8 bytes. */
export function nodeMapOf(nameBytes: number): 'sabpf_nodes' | 'sabpf_long_nodes' {
  return nameBytes < SHORT_NAME_BYTES ? 'sabpf_nodes' : 'sabpf_long_nodes';
}

/**
 * struct sabpf_node_key for a component of up to 31 bytes, else struct
 * sabpf_long_node_key (see nodeMapOf). Throws if it does not fit NAME_MAX.
 */
export function encodeNodeKey(slot: number, parent: number, name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length >= NAME_MAX_BYTES) throw new Error(`path component of ${bytes.length} bytes exceeds NAME_MAX (255)`);
  const buffer = Buffer.alloc(nodeMapOf(bytes.length) === 'sabpf_nodes' ? SIZE.nodeKey : SIZE.longNodeKey);
  buffer.writeUInt32LE(slot >>> 0, 0);
  buffer.writeUInt32LE(parent >>> 0, 4);
  bytes.copy(buffer, 8);
  return buffer;
}

/** Decodes either key size. */
export function decodeNodeKey(buffer: Buffer): { slot: number; parent: number; name: string } {
  const nameBytes = buffer.subarray(8, 8 + NAME_MAX_BYTES);
  const end = nameBytes.indexOf(0);
  return {
    slot: buffer.readUInt32LE(0),
    parent: buffer.readUInt32LE(4),
    name: nameBytes.subarray(0, end === -1 ? nameBytes.length : end).toString('utf8'),
  };
}

/** struct sabpf_node: rules indexed [scope][access]. */
export interface TrieNode {
  id: number;
  sourceId: number;
  rules: Verdict[][];
}

export function emptyTrieNode(id: number): TrieNode {
  return { id, sourceId: 0, rules: [0, 1, 2].map(() => [emptyVerdict(), emptyVerdict()]) };
}

export function encodeNode(node: TrieNode): Buffer {
  const buffer = Buffer.alloc(SIZE.node);
  buffer.writeUInt32LE(node.id >>> 0, 0);
  buffer.writeUInt32LE(node.sourceId >>> 0, 4);
  for (let scope = 0; scope < 3; scope++) {
    for (let access = 0; access < 2; access++) {
      const verdict = node.rules[scope]?.[access] ?? emptyVerdict();
      writeVerdict(buffer, 8 + (scope * 2 + access) * SIZE.verdict, verdict);
    }
  }
  return buffer;
}

export function decodeNode(buffer: Buffer): TrieNode {
  const node = emptyTrieNode(buffer.readUInt32LE(0));
  node.sourceId = buffer.readUInt32LE(4);
  node.rules = [0, 1, 2].map((scope) => [0, 1].map((access) => readVerdict(buffer, 8 + (scope * 2 + access) * SIZE.verdict)));
  return node;
}

export function encodeSourceRootKey(slot: number, sourceId: number, table: number): Buffer {
  const buffer = Buffer.alloc(SIZE.sourceRootKey);
  buffer.writeUInt32LE(slot >>> 0, 0);
  buffer.writeUInt32LE(sourceId >>> 0, 4);
  buffer.writeUInt32LE(table >>> 0, 8);
  return buffer;
}

export function encodeU32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value >>> 0, 0);
  return buffer;
}

/** Bits of a sabpf_net_key before the address: slot, op, proto and padding. */
export const NET_KEY_HEADER_BITS = 64;

export function encodeNetKey(slot: number, op: number, proto: number, address: Uint8Array, addressPrefixLength: number): Buffer {
  const buffer = Buffer.alloc(SIZE.netKey);
  buffer.writeUInt32LE(NET_KEY_HEADER_BITS + addressPrefixLength, 0);
  buffer.writeUInt32LE(slot >>> 0, 4);
  buffer.writeUInt8(op, 8);
  buffer.writeUInt8(proto, 9);
  Buffer.from(address).copy(buffer, 12);
  return buffer;
}

export function decodeNetKey(buffer: Buffer): { prefixLength: number; slot: number; op: number; proto: number; address: Uint8Array } {
  return {
    prefixLength: buffer.readUInt32LE(0) - NET_KEY_HEADER_BITS,
    slot: buffer.readUInt32LE(4),
    op: buffer.readUInt8(8),
    proto: buffer.readUInt8(9),
    address: new Uint8Array(buffer.subarray(12, 28)),
  };
}

export function encodeNetPrefix(id: number, portPlenMask: number): Buffer {
  const buffer = Buffer.alloc(SIZE.netPrefix);
  buffer.writeUInt32LE(id >>> 0, 0);
  buffer.writeUInt32LE(portPlenMask >>> 0, 4);
  return buffer;
}

export function encodePortKey(slot: number, netId: number, plen: number, portPrefix: number): Buffer {
  const buffer = Buffer.alloc(SIZE.portKey);
  buffer.writeUInt32LE(slot >>> 0, 0);
  buffer.writeUInt32LE(netId >>> 0, 4);
  buffer.writeUInt32LE(plen, 8);
  buffer.writeUInt32LE(portPrefix, 12);
  return buffer;
}

export function encodeVerdict(verdict: Verdict): Buffer {
  const buffer = Buffer.alloc(SIZE.verdict);
  writeVerdict(buffer, 0, verdict);
  return buffer;
}

export function decodeVerdict(buffer: Buffer): Verdict {
  return readVerdict(buffer, 0);
}

/** Writes `slot` into bytes 0-3 of a trie, source-root or port key, or 4-7 of a net key. */
export function withSlot(key: Buffer, slot: number, map: 'nodes' | 'sourceRoots' | 'ports' | 'netPrefixes'): Buffer {
  const copy = Buffer.from(key);
  copy.writeUInt32LE(slot >>> 0, map === 'netPrefixes' ? 4 : 0);
  return copy;
}
