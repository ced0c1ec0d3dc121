// Compilation of the policies that select one container into the program the
// kernel runs: the hooks to attach, the container's config, and the entries
// of each map in the exact layout of enforcer/bpf/sabpf.h.

import { createHash } from 'node:crypto';
import { ANY_ADDRESS, maskAddress, portRangeBlocks } from './net.js';
import { selectPolicies, type ContainerRef } from './selector.js';
import { PathTrie } from './trie.js';
import {
  ConfigFlag,
  emptyVerdict,
  encodeConfig,
  encodeNetKey,
  encodeNetPrefix,
  encodePortKey,
  encodeSourceRootKey,
  encodeU32,
  encodeVerdict,
  FILE_HOOKS,
  Hook,
  IpProto,
  MAX_POLICIES,
  NetOp,
  Section,
  Table,
  type Config,
  type HookName,
  type Verdict,
} from './layout.js';
import type { Action, Cidr, NetworkRule, Policy } from './types.js';
import { policyKey } from './types.js';

export interface MapEntry {
  key: Buffer;
  value: Buffer;
}

export interface CompiledPolicyRef {
  /** Bit index of the policy in every mask. */
  index: number;
  policy: string;
  mode: Policy['spec']['mode'];
  severity: Policy['spec']['severity'];
  message?: string;
  generation?: number;
}

export interface CompiledProgram {
  container: Omit<ContainerRef, 'labels'>;
  policies: CompiledPolicyRef[];
  hooks: HookName[];
  /** Rule entries: one per path pattern of file and exec rules, one per network rule. */
  ruleCount: number;
  /** sha256 of the config and all entries: changes exactly when the decision tables change. */
  hash: string;
  config: Buffer;
  /** Trie nodes whose component has up to 31 bytes (sabpf_nodes), and the longer ones (sabpf_long_nodes). */
  nodes: MapEntry[];
  longNodes: MapEntry[];
  sourceRoots: MapEntry[];
  netPrefixes: MapEntry[];
  ports: MapEntry[];
}

export class CompileError extends Error {}

/**
 * Compiles the policies that select `container`. Returns undefined when no
 * policy selects it. Throws CompileError when more than 32 policies do.
 */
export function compileContainer(policies: readonly Policy[], container: ContainerRef): CompiledProgram | undefined {
  const selected = selectPolicies(policies, container);
  if (selected.length === 0) return undefined;
  if (selected.length > MAX_POLICIES) {
    throw new CompileError(
      `container ${container.namespace}/${container.pod}/${container.container} is selected by ${selected.length} policies, more than the ${MAX_POLICIES} one program supports; merge some of them`,
    );
  }
  return compileSelected(selected, { namespace: container.namespace, pod: container.pod, container: container.container });
}

/** Compiles policies already selected and sorted by selectPolicies(). */
export function compileSelected(selected: readonly Policy[], container: CompiledProgram['container']): CompiledProgram {
  const config: Config = {
    slot: 0,
    hooks: 0,
    enforce: 0,
    policyCount: selected.length,
    fileRoot: 0,
    execRoot: 0,
    sourceRoot: 0,
    flags: 0,
    postureDeny: [0, 0, 0],
    postureAudit: [0, 0, 0],
    rawSocket: emptyVerdict(),
    packetSocket: emptyVerdict(),
  };

  // Sources: every distinct fromSource executable gets an id from 1, in sorted order.
  const sources = new Map<string, number>();
  const sourceList = new Set<string>();
  for (const policy of selected) {
    for (const rule of [...(policy.spec.file?.rules ?? []), ...(policy.spec.exec?.rules ?? [])]) {
      for (const source of rule.fromSource) sourceList.add(source);
    }
  }
  [...sourceList].sort().forEach((source, i) => sources.set(source, i + 1));

  const fileTrie = new PathTrie();
  const execTrie = new PathTrie();
  const sourceTries = new Map<string, PathTrie>(); // key `${table}:${sourceId}`
  const sourceTrie = (table: number, sourceId: number): PathTrie => {
    const key = `${table}:${sourceId}`;
    let trie = sourceTries.get(key);
    if (!trie) {
      trie = new PathTrie();
      sourceTries.set(key, trie);
    }
    return trie;
  };

  let ruleCount = 0;
  let fileRules = 0;
  let execRules = 0;
  selected.forEach((policy, bit) => {
    const spec = policy.spec;
    if (spec.mode === 'enforce') config.enforce |= 1 << bit;
    const setPosture = (section: number, posture: Action): void => {
      if (posture === 'deny') config.postureDeny[section] = ((config.postureDeny[section] ?? 0) | (1 << bit)) >>> 0;
      if (posture === 'audit') config.postureAudit[section] = ((config.postureAudit[section] ?? 0) | (1 << bit)) >>> 0;
    };

    if (spec.file) {
      setPosture(Section.file, spec.file.posture);
      if (spec.file.posture !== 'allow' || spec.file.rules.length > 0) config.hooks |= FILE_HOOKS;
      for (const rule of spec.file.rules) {
        const accesses: ('read' | 'write')[] = rule.access === 'readwrite' ? ['read', 'write'] : [rule.access];
        for (const pattern of rule.paths) {
          ruleCount++;
          fileRules++;
          if (rule.fromSource.length === 0) {
            fileTrie.add(pattern, accesses, rule.action, bit);
            continue;
          }
          config.flags |= ConfigFlag.hasFileSources;
          for (const source of rule.fromSource) {
            sourceTrie(Table.file, sources.get(source) as number).add(pattern, accesses, rule.action, bit);
          }
        }
      }
    }

    if (spec.exec) {
      setPosture(Section.exec, spec.exec.posture);
      if (spec.exec.posture !== 'allow' || spec.exec.rules.length > 0) config.hooks |= Hook.exec;
      for (const rule of spec.exec.rules) {
        for (const pattern of rule.paths) {
          ruleCount++;
          execRules++;
          if (rule.fromSource.length === 0) {
            execTrie.add(pattern, ['read'], rule.action, bit);
            continue;
          }
          config.flags |= ConfigFlag.hasExecSources;
          for (const source of rule.fromSource) {
            sourceTrie(Table.exec, sources.get(source) as number).add(pattern, ['read'], rule.action, bit);
          }
        }
      }
    }

    if (spec.network) {
      setPosture(Section.network, spec.network.posture);
      ruleCount += spec.network.rules.length;
      const strict = spec.network.posture !== 'allow';
      const has = (op: NetworkRule['operation']): boolean => spec.network?.rules.some((r) => r.operation === op) ?? false;
      // A send that names its destination reaches a peer as a connect does.
      if (strict || has('connect')) config.hooks |= Hook.socketConnect | Hook.socketSendmsg;
      if (strict || has('bind')) config.hooks |= Hook.socketBind;
      if (strict || has('raw-socket') || has('packet-socket')) config.hooks |= Hook.socketCreate;
      for (const rule of spec.network.rules) {
        if (rule.operation === 'raw-socket') addBit(config.rawSocket, rule.action, bit);
        if (rule.operation === 'packet-socket') addBit(config.packetSocket, rule.action, bit);
      }
    }
  });

  // Emit tries in a fixed order so node ids, and so the bytes, are deterministic.
  const nodes: MapEntry[] = [];
  const longNodes: MapEntry[] = [];
  let nextId = 1;
  if (fileRules > 0 && hasUnconditional(selected, 'file')) {
    const emitted = fileTrie.emit(nextId, nodes, longNodes);
    config.fileRoot = emitted.rootId;
    nextId = emitted.nextId;
  }
  if (execRules > 0 && hasUnconditional(selected, 'exec')) {
    const emitted = execTrie.emit(nextId, nodes, longNodes);
    config.execRoot = emitted.rootId;
    nextId = emitted.nextId;
  }
  const sourceRoots: MapEntry[] = [];
  if (sources.size > 0) {
    const executables = new PathTrie();
    for (const [path, id] of sources) executables.markSource(path, id);
    const emitted = executables.emit(nextId, nodes, longNodes);
    config.sourceRoot = emitted.rootId;
    nextId = emitted.nextId;
    const keys = [...sourceTries.keys()].sort((a, b) => compareSourceKeys(a, b));
    for (const key of keys) {
      const [table, sourceId] = key.split(':').map(Number) as [number, number];
      const trieEmitted = (sourceTries.get(key) as PathTrie).emit(nextId, nodes, longNodes);
      nextId = trieEmitted.nextId;
      sourceRoots.push({ key: encodeSourceRootKey(0, sourceId, table), value: encodeU32(trieEmitted.rootId) });
    }
  }

  const { netPrefixes, ports } = compileNetwork(selected);

  const configBuffer = encodeConfig(config);
  const hash = createHash('sha256');
  hash.update(configBuffer);
  for (const list of [nodes, longNodes, sourceRoots, netPrefixes, ports]) {
    hash.update(encodeU32(list.length));
    // One update per entry is measurably slow for 10,000 rules; concatenate first.
    hash.update(Buffer.concat(list.flatMap((entry) => [entry.key, entry.value])));
  }

  const hooks = (Object.keys(Hook) as HookName[]).filter((name) => (config.hooks & Hook[name]) !== 0);
  return {
    container,
    policies: selected.map((policy, index) => {
      const ref: CompiledPolicyRef = { index, policy: policyKey(policy), mode: policy.spec.mode, severity: policy.spec.severity };
      if (policy.spec.message !== undefined) ref.message = policy.spec.message;
      if (policy.generation !== undefined) ref.generation = policy.generation;
      return ref;
    }),
    hooks,
    ruleCount,
    hash: hash.digest('hex'),
    config: configBuffer,
    nodes,
    longNodes,
    sourceRoots,
    netPrefixes,
    ports,
  };
}

function hasUnconditional(selected: readonly Policy[], section: 'file' | 'exec'): boolean {
  return selected.some((p) => (p.spec[section]?.rules ?? []).some((r) => r.fromSource.length === 0 && r.paths.length > 0));
}

function compareSourceKeys(a: string, b: string): number {
  const [ta = 0, sa = 0] = a.split(':').map(Number);
  const [tb = 0, sb = 0] = b.split(':').map(Number);
  return ta - tb || sa - sb;
}

function addBit(verdict: Verdict, action: Action, bit: number): void {
  verdict[action] = (verdict[action] | (1 << bit)) >>> 0;
}

function cidrKey(cidr: Cidr): string {
  return `${cidr.prefixLength}:${Buffer.from(maskAddress(cidr.address, cidr.prefixLength)).toString('hex')}`;
}

/**
 * Builds the LPM prefixes and port entries. Each prefix carries the rules of
 * every CIDR that contains it, so the kernel's single longest-prefix lookup
 * finds every rule that applies to an address.
 */
function compileNetwork(selected: readonly Policy[]): { netPrefixes: MapEntry[]; ports: MapEntry[] } {
  const netPrefixes: MapEntry[] = [];
  const ports: MapEntry[] = [];
  let nextNetId = 1;

  for (const [opName, op] of Object.entries(NetOp) as ['connect' | 'bind', number][]) {
    for (const [protoName, proto] of Object.entries(IpProto) as ['tcp' | 'udp', number][]) {
      // Rules of this operation and protocol, grouped by the CIDRs they name.
      const byCidr = new Map<string, { cidr: Cidr; rules: { rule: NetworkRule; bit: number }[] }>();
      selected.forEach((policy, bit) => {
        for (const rule of policy.spec.network?.rules ?? []) {
          if (rule.operation !== opName || !rule.protocols.includes(protoName)) continue;
          for (const cidr of rule.cidrs.length > 0 ? rule.cidrs : [ANY_ADDRESS]) {
            const key = cidrKey(cidr);
            let group = byCidr.get(key);
            if (!group) {
              group = { cidr, rules: [] };
              byCidr.set(key, group);
            }
            group.rules.push({ rule, bit });
          }
        }
      });

      const keys = [...byCidr.keys()].sort();
      for (const key of keys) {
        const group = byCidr.get(key) as { cidr: Cidr; rules: { rule: NetworkRule; bit: number }[] };
        // Fold in the rules of every enclosing CIDR (shorter prefixes of this address).
        const applicable: { rule: NetworkRule; bit: number }[] = [];
        for (let length = 0; length <= group.cidr.prefixLength; length++) {
          const enclosing = byCidr.get(cidrKey({ text: '', address: group.cidr.address, prefixLength: length }));
          if (enclosing) applicable.push(...enclosing.rules);
        }

        const netId = nextNetId++;
        const blocks = new Map<string, { plen: number; prefix: number; verdict: Verdict }>();
        for (const { rule, bit } of applicable) {
          const ranges = rule.ports.length > 0 ? rule.ports : [{ port: 0, endPort: 65535 }];
          for (const range of ranges) {
            for (const block of portRangeBlocks(range)) {
              const blockKey = `${block.plen}:${block.prefix}`;
              let entry = blocks.get(blockKey);
              if (!entry) {
                entry = { ...block, verdict: emptyVerdict() };
                blocks.set(blockKey, entry);
              }
              addBit(entry.verdict, rule.action, bit);
            }
          }
        }
        let plenMask = 0;
        const sortedBlocks = [...blocks.values()].sort((a, b) => a.plen - b.plen || a.prefix - b.prefix);
        for (const block of sortedBlocks) {
          plenMask |= 1 << block.plen;
          ports.push({ key: encodePortKey(0, netId, block.plen, block.prefix), value: encodeVerdict(block.verdict) });
        }
        const address = maskAddress(group.cidr.address, group.cidr.prefixLength);
        netPrefixes.push({
          key: encodeNetKey(0, op, proto, address, group.cidr.prefixLength),
          value: encodeNetPrefix(netId, plenMask >>> 0),
        });
      }
    }
  }
  return { netPrefixes, ports };
}
