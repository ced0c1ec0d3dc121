// A model of the BPF programs' lookups over the compiled map entries. Tests
// run it against decide.ts on random policies: when both agree, the tables
// carry the policies' meaning. The BPF programs in enforcer/bpf/ implement the
// same steps in C (path.h, decide.h, net.bpf.c).

import type { CompiledProgram, MapEntry } from './compile.js';
import type { Operation, SocketOperation } from './decide.js';
import { pathComponents } from './paths.js';
import {
  Access,
  ConfigFlag,
  decodeConfig,
  decodeNode,
  decodeVerdict,
  emptyVerdict,
  encodeNetKey,
  encodeNodeKey,
  nodeMapOf,
  encodePortKey,
  encodeSourceRootKey,
  IpProto,
  NetOp,
  Scope,
  Section,
  Table,
  type Verdict,
} from './layout.js';
import { alsoAddresses, maskAddress } from './net.js';

export interface KernelDecision {
  allowed: boolean;
  recorded: boolean;
  /** Bit index of the deciding policy, -1 when nothing was recorded. */
  policy: number;
  posture: boolean;
}

const index = (entries: MapEntry[]): Map<string, Buffer> => new Map(entries.map((e) => [e.key.toString('hex'), e.value]));

export class KernelModel {
  private readonly nodes: Map<string, Buffer>;
  private readonly longNodes: Map<string, Buffer>;
  private readonly sourceRoots: Map<string, Buffer>;
  private readonly netPrefixes: Map<string, Buffer>;
  private readonly ports: Map<string, Buffer>;

  constructor(private readonly program: CompiledProgram) {
    this.nodes = index(program.nodes);
    this.longNodes = index(program.longNodes);
    this.sourceRoots = index(program.sourceRoots);
    this.netPrefixes = index(program.netPrefixes);
    this.ports = index(program.ports);
  }

  decide(operation: Operation): KernelDecision {
    const config = decodeConfig(this.program.config);
    const masks = emptyVerdict();
    let section: number;

    if (operation.kind === 'open' || operation.kind === 'exec') {
      const isFile = operation.kind === 'open';
      section = isFile ? Section.file : Section.exec;
      const access = isFile ? Access[operation.access] : Access.read;
      const root = isFile ? config.fileRoot : config.execRoot;
      if (root !== 0) this.walk(root, operation.path, access, masks);
      const usesSources = (config.flags & (isFile ? ConfigFlag.hasFileSources : ConfigFlag.hasExecSources)) !== 0;
      if (usesSources && operation.executable !== undefined) {
        const sourceId = this.sourceIdOf(config.sourceRoot, operation.executable);
        const sourceRoot =
          sourceId === 0
            ? undefined
            : this.sourceRoots.get(encodeSourceRootKey(0, sourceId, isFile ? Table.file : Table.exec).toString('hex'));
        if (sourceRoot) this.walk(sourceRoot.readUInt32LE(0), operation.path, access, masks);
      }
    } else if (operation.kind === 'raw-socket' || operation.kind === 'packet-socket') {
      section = Section.network;
      or(masks, operation.kind === 'raw-socket' ? config.rawSocket : config.packetSocket);
    } else {
      section = Section.network;
      this.lookupNetwork(operation, masks);
    }

    const postureDeny = config.postureDeny[section] ?? 0;
    const postureAudit = config.postureAudit[section] ?? 0;
    const matched = masks.deny | masks.audit | masks.allow;
    const postureDenyBits = postureDeny & ~matched;
    const policyDeny = (masks.deny | postureDenyBits) >>> 0;
    const policyAudit = ((masks.audit & ~masks.deny) | (postureAudit & ~matched)) >>> 0;

    const pick = (mask: number, postureBits: number): KernelDecision => {
      const bit = lowestBit(mask);
      return { allowed: true, recorded: true, policy: bit, posture: (postureBits & (1 << bit)) !== 0 };
    };
    const enforced = (policyDeny & config.enforce) >>> 0;
    if (enforced !== 0) return { ...pick(enforced, postureDenyBits), allowed: false };
    if (policyDeny !== 0) return pick(policyDeny, postureDenyBits);
    if (policyAudit !== 0) return pick(policyAudit, postureAudit & ~matched);
    return { allowed: true, recorded: false, policy: -1, posture: false };
  }

  /** Looks a node up in the map path.h picks by the name's length. */
  private node(parent: number, name: string): Buffer | undefined {
    const map = nodeMapOf(Buffer.byteLength(name)) === 'sabpf_nodes' ? this.nodes : this.longNodes;
    return map.get(encodeNodeKey(0, parent, name).toString('hex'));
  }

  /** Walks the trie as path.h does, stopping at the first missing component. */
  private walk(rootId: number, path: string, access: number, masks: Verdict): void {
    const components = pathComponents(path);
    const rootValue = this.node(rootId, '');
    if (!rootValue) return;
    let node = decodeNode(rootValue);
    let parent = node;
    or(masks, node.rules[Scope.subtree]?.[access]);
    let matchedAll = true;
    for (let i = 0; i < components.length; i++) {
      const value = this.node(node.id, components[i] as string);
      if (!value) {
        // "/dir/*" still applies to a last component that has no node of its own.
        if (i === components.length - 1) or(masks, node.rules[Scope.children]?.[access]);
        matchedAll = false;
        break;
      }
      parent = node;
      node = decodeNode(value);
      or(masks, node.rules[Scope.subtree]?.[access]);
    }
    if (!matchedAll) return;
    or(masks, node.rules[Scope.exact]?.[access]);
    if (components.length > 0) or(masks, parent.rules[Scope.children]?.[access]);
  }

  private sourceIdOf(rootId: number, executable: string): number {
    if (rootId === 0) return 0;
    let value = this.node(rootId, '');
    if (!value) return 0;
    let node = decodeNode(value);
    for (const component of pathComponents(executable)) {
      value = this.node(node.id, component);
      if (!value) return 0;
      node = decodeNode(value);
    }
    return node.sourceId;
  }

  private lookupNetwork(operation: SocketOperation, masks: Verdict): void {
    this.lookupPrefix(operation, operation.address, masks);

    // net.bpf.c folds in the other addresses the unspecified address reaches:
    // a deny for any wins, and a rule allows or audits only if it does for all.
    for (const other of alsoAddresses(operation.kind, operation.address, operation.v6only)) {
      const next = emptyVerdict();
      this.lookupPrefix(operation, other, next);
      const ruled = (masks.allow | masks.audit) & (next.allow | next.audit);
      masks.deny |= next.deny;
      masks.audit = (masks.audit | next.audit) & ruled;
      masks.allow = ruled;
    }
  }

  /** ORs the port masks of the longest prefix holding address, as BPF_MAP_TYPE_LPM_TRIE finds it. */
  private lookupPrefix(operation: SocketOperation, address: Uint8Array, masks: Verdict): void {
    const op = NetOp[operation.kind];
    const proto = IpProto[operation.protocol];
    for (let length = 128; length >= 0; length--) {
      const key = encodeNetKey(0, op, proto, maskAddress(address, length), length).toString('hex');
      const prefix = this.netPrefixes.get(key);
      if (!prefix) continue;
      const netId = prefix.readUInt32LE(0);
      const plenMask = prefix.readUInt32LE(4);
      for (let plen = 0; plen <= 16; plen++) {
        if ((plenMask & (1 << plen)) === 0) continue;
        const verdict = this.ports.get(encodePortKey(0, netId, plen, operation.port >> (16 - plen)).toString('hex'));
        if (verdict) or(masks, decodeVerdict(verdict));
      }
      return;
    }
  }
}

function or(into: Verdict, from: Verdict | undefined): void {
  if (!from) return;
  into.deny = (into.deny | from.deny) >>> 0;
  into.audit = (into.audit | from.audit) >>> 0;
  into.allow = (into.allow | from.allow) >>> 0;
}

function lowestBit(mask: number): number {
  for (let bit = 0; bit < 32; bit++) if (mask & (1 << bit)) return bit;
  return -1;
}
