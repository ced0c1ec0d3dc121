// Hand-built map entries for the guest scenarios: small path tries and net
// rules written with the compiler's layout encoders, without the compiler,
// so a scenario states exactly which masks the kernel sees.
import { isIPv4 } from 'node:net';

import {
  Access,
  Hook,
  Scope,
  emptyTrieNode,
  encodeConfig,
  encodeNetKey,
  encodeNetPrefix,
  encodeNode,
  encodeNodeKey,
  nodeMapOf,
  encodePortKey,
  encodeVerdict,
  type Config,
  type TrieNode,
  type Verdict,
} from '../../../compiler/layout.js';
import { parseAddress } from '../../../compiler/net.js';

export type ScopeName = keyof typeof Scope;
export type AccessName = keyof typeof Access;
export type Action = keyof Verdict;

const NO_VERDICT = { deny: 0, audit: 0, allow: 0 };

/**
 * Encodes a config of one policy in enforce mode, slot 0, every hook on, no
 * tries, no postures and no socket rules, with the given fields replaced.
 */
export function configWith(fields: Partial<Config>): Buffer {
  return encodeConfig({
    slot: 0,
    hooks: Object.values(Hook).reduce((all, bit) => all | bit, 0),
    enforce: 1,
    policyCount: 1,
    fileRoot: 0,
    execRoot: 0,
    sourceRoot: 0,
    flags: 0,
    postureDeny: [0, 0, 0],
    postureAudit: [0, 0, 0],
    rawSocket: NO_VERDICT,
    packetSocket: NO_VERDICT,
    ...fields,
  });
}

/** Allocator of trie and net node ids, from 1 (0 means "none" in the maps). */
export class Ids {
  private next = 1;
  take(): number {
    return this.next++;
  }
}

/** One trie (file, exec or source table) rooted at its own node id. */
export class Trie {
  readonly root: number;
  private readonly nodes = new Map<string, { parent: number; name: string; node: TrieNode }>();

  constructor(
    private readonly ids: Ids,
    readonly slot = 0,
  ) {
    this.root = ids.take();
    this.nodes.set('', { parent: this.root, name: '', node: emptyTrieNode(this.root) });
  }

  /** The node of an absolute path, created with its ancestors. */
  node(path: string): TrieNode {
    const parts = path.split('/').filter((p) => p !== '');
    let key = '';
    let parent = this.nodes.get('')!;
    for (const part of parts) {
      key = `${key}/${part}`;
      let entry = this.nodes.get(key);
      if (!entry) {
        entry = { parent: parent.node.id, name: part, node: emptyTrieNode(this.ids.take()) };
        this.nodes.set(key, entry);
      }
      parent = entry;
    }
    return parent.node;
  }

  /** Sets the bit of policy in the masks of path for scope, access and action. */
  rule(path: string, scope: ScopeName, access: AccessName, action: Action, policy = 0): this {
    const verdict = this.node(path).rules[Scope[scope]]![Access[access]]!;
    verdict[action] = (verdict[action] | (1 << policy)) >>> 0;
    return this;
  }

  /** Marks path as a source executable (source trie only). */
  source(path: string, sourceId: number): this {
    this.node(path).sourceId = sourceId;
    return this;
  }

  /** Entries of one node map: names of up to 31 bytes go to sabpf_nodes, longer ones to sabpf_long_nodes. */
  entries(map: 'sabpf_nodes' | 'sabpf_long_nodes' = 'sabpf_nodes'): Array<[Buffer, Buffer]> {
    return [...this.nodes.values()]
      .filter(({ name }) => nodeMapOf(Buffer.byteLength(name)) === map)
      .map(({ parent, name, node }) => [encodeNodeKey(this.slot, parent, name), encodeNode(node)]);
  }
}

/** Parses an IPv4 or IPv6 address into the 16 bytes of a net key (IPv4 mapped). */
function keyAddress(ip: string): Uint8Array {
  const address = parseAddress(ip);
  if (address === undefined) {
    throw new Error(`failed to build a net rule: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  }
  return address;
}

export interface NetRule {
  op: number;
  proto: number;
  /** IPv4 or IPv6 address, and CIDR bits within its own family (IPv4 is stored mapped). */
  ip: string;
  cidr: number;
  /** A single port, or undefined for every port. */
  port?: number;
  action: Action;
  policy?: number;
}

/** Builds net prefixes and port blocks, with one net node per distinct prefix. */
export function netEntries(ids: Ids, rules: NetRule[], slot = 0): { prefixes: Array<[Buffer, Buffer]>; ports: Array<[Buffer, Buffer]> } {
  const nodes = new Map<string, { key: Buffer; id: number; mask: number; ports: Map<string, Verdict> }>();
  for (const rule of rules) {
    const key = encodeNetKey(slot, rule.op, rule.proto, keyAddress(rule.ip), (isIPv4(rule.ip) ? 96 : 0) + rule.cidr);
    const name = key.toString('hex');
    let node = nodes.get(name);
    if (!node) {
      node = { key, id: ids.take(), mask: 0, ports: new Map() };
      nodes.set(name, node);
    }
    const plen = rule.port === undefined ? 0 : 16;
    const prefix = rule.port === undefined ? 0 : rule.port;
    node.mask |= 1 << plen;
    const portKey = `${plen}/${prefix}`;
    const verdict = node.ports.get(portKey) ?? { deny: 0, audit: 0, allow: 0 };
    verdict[rule.action] |= 1 << (rule.policy ?? 0);
    node.ports.set(portKey, verdict);
  }
  const prefixes: Array<[Buffer, Buffer]> = [];
  const ports: Array<[Buffer, Buffer]> = [];
  for (const node of nodes.values()) {
    prefixes.push([node.key, encodeNetPrefix(node.id, node.mask)]);
    for (const [portKey, verdict] of node.ports) {
      const [plen, prefix] = portKey.split('/').map(Number) as [number, number];
      ports.push([encodePortKey(slot, node.id, plen, prefix), encodeVerdict(verdict)]);
    }
  }
  return { prefixes, ports };
}
