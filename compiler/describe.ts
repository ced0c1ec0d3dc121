// Readable rendering of a compiled program: the tables decoded back into
// paths, scopes and policy bits, for `sabpf compile` and for debugging.

import type { CompiledProgram } from './compile.js';
import { decodeConfig, decodeNetKey, decodeNode, decodeNodeKey, decodeVerdict, LSM_HOOK, type Verdict } from './layout.js';
import { formatAddress } from './net.js';

const SCOPES = ['', '/*', '/**'];
const ACCESSES = ['read', 'write'];
const SECTIONS = ['file', 'exec', 'network'];

function bits(mask: number): string {
  const out: number[] = [];
  for (let bit = 0; bit < 32; bit++) if (mask & (1 << bit)) out.push(bit);
  return out.join(',');
}

function verdictText(verdict: Verdict): string {
  const parts: string[] = [];
  if (verdict.deny) parts.push(`deny[${bits(verdict.deny)}]`);
  if (verdict.audit) parts.push(`audit[${bits(verdict.audit)}]`);
  if (verdict.allow) parts.push(`allow[${bits(verdict.allow)}]`);
  return parts.join(' ');
}

/** Renders a compiled program as lines of text. */
export function describeProgram(program: CompiledProgram, options: { tables: boolean }): string[] {
  const lines: string[] = [];
  const { container } = program;
  const config = decodeConfig(program.config);
  lines.push(`container ${container.namespace}/${container.pod}/${container.container}`);
  lines.push(`  policies (bit: name, mode):`);
  for (const ref of program.policies) lines.push(`    ${ref.index}: ${ref.policy} (${ref.mode})`);
  lines.push(`  hooks: ${program.hooks.map((h) => LSM_HOOK[h]).join(', ') || '(none: every operation is allowed)'}`);
  lines.push(`  rules: ${program.ruleCount}`);
  lines.push(`  hash: ${program.hash}`);
  SECTIONS.forEach((name, i) => {
    const deny = config.postureDeny[i] ?? 0;
    const audit = config.postureAudit[i] ?? 0;
    if (deny || audit) {
      const parts = [deny ? `deny by [${bits(deny)}]` : '', audit ? `audit by [${bits(audit)}]` : ''].filter(Boolean);
      lines.push(`  ${name} posture: ${parts.join(', ')}`);
    }
  });
  lines.push(
    `  map entries: nodes ${program.nodes.length}, long-name nodes ${program.longNodes.length}, source roots ${program.sourceRoots.length}, net prefixes ${program.netPrefixes.length}, ports ${program.ports.length}`,
  );
  if (!options.tables) return lines;

  // Rebuild each node's path from its parent chain.
  const pathOf = new Map<number, string>();
  const rootIds = new Set([config.fileRoot, config.execRoot, config.sourceRoot]);
  for (const entry of program.sourceRoots) rootIds.add(entry.value.readUInt32LE(0));
  const sourceTableOf = new Map<number, string>();
  for (const entry of program.sourceRoots) {
    const table = entry.key.readUInt32LE(8) === 0 ? 'file' : 'exec';
    sourceTableOf.set(entry.value.readUInt32LE(0), `${table} fromSource #${entry.key.readUInt32LE(4)}`);
  }
  const tableOf = (rootId: number): string =>
    rootId === config.fileRoot
      ? 'file'
      : rootId === config.execRoot
        ? 'exec'
        : rootId === config.sourceRoot
          ? 'sources'
          : (sourceTableOf.get(rootId) ?? '?');
  const rootOf = new Map<number, number>();
  // Ids grow depth first, so in id order every parent comes before its children, whichever map contains them.
  const allNodes = [...program.nodes, ...program.longNodes].sort((a, b) => a.value.readUInt32LE(0) - b.value.readUInt32LE(0));
  for (const entry of allNodes) {
    const key = decodeNodeKey(entry.key);
    const node = decodeNode(entry.value);
    if (key.name === '') {
      pathOf.set(node.id, '');
      rootOf.set(node.id, node.id);
    } else {
      pathOf.set(node.id, `${pathOf.get(key.parent) ?? '?'}/${key.name}`);
      rootOf.set(node.id, rootOf.get(key.parent) ?? 0);
    }
    const ruleTexts: string[] = [];
    node.rules.forEach((byAccess, scope) =>
      byAccess.forEach((verdict, access) => {
        const text = verdictText(verdict);
        if (text) ruleTexts.push(`${SCOPES[scope] === '' ? 'exact' : SCOPES[scope]} ${ACCESSES[access]}: ${text}`);
      }),
    );
    if (ruleTexts.length > 0 || node.sourceId) {
      const root = rootOf.get(node.id) ?? 0;
      const source = node.sourceId ? ` source #${node.sourceId}` : '';
      lines.push(`    ${tableOf(root)} ${pathOf.get(node.id) || '/'}${source} ${ruleTexts.join('; ')}`.trimEnd());
    }
  }
  for (const entry of program.netPrefixes) {
    const key = decodeNetKey(entry.key);
    const netId = entry.value.readUInt32LE(0);
    const op = key.op === 0 ? 'connect' : 'bind';
    const proto = key.proto === 6 ? 'tcp' : 'udp';
    const mapped = key.prefixLength >= 96 && formatAddress(key.address).includes('.');
    const length = mapped ? key.prefixLength - 96 : key.prefixLength;
    const ports = program.ports
      .filter((p) => p.key.readUInt32LE(4) === netId)
      .map((p) => {
        const plen = p.key.readUInt32LE(8);
        const prefix = p.key.readUInt32LE(12);
        const first = prefix << (16 - plen);
        const last = first + (1 << (16 - plen)) - 1;
        const range = plen === 0 ? 'any port' : first === last ? `${first}` : `${first}-${last}`;
        return `${range} ${verdictText(decodeVerdict(p.value))}`;
      });
    lines.push(`    ${op} ${proto} ${formatAddress(key.address)}/${length}: ${ports.join('; ')}`);
  }
  const raw = verdictText(config.rawSocket);
  const packet = verdictText(config.packetSocket);
  if (raw) lines.push(`    raw-socket: ${raw}`);
  if (packet) lines.push(`    packet-socket: ${packet}`);
  return lines;
}

/** JSON form of a compiled program: buffers as hex. */
export function programToJson(program: CompiledProgram): Record<string, unknown> {
  const entries = (list: { key: Buffer; value: Buffer }[]): { key: string; value: string }[] =>
    list.map((e) => ({ key: e.key.toString('hex'), value: e.value.toString('hex') }));
  return {
    container: program.container,
    policies: program.policies,
    hooks: program.hooks,
    ruleCount: program.ruleCount,
    hash: program.hash,
    config: program.config.toString('hex'),
    maps: {
      sabpf_nodes: entries(program.nodes),
      sabpf_long_nodes: entries(program.longNodes),
      sabpf_source_roots: entries(program.sourceRoots),
      sabpf_net_prefixes: entries(program.netPrefixes),
      sabpf_ports: entries(program.ports),
    },
  };
}

/** Inverse of programToJson. */
export function programFromJson(json: Record<string, unknown>): CompiledProgram {
  const maps = json.maps as Record<string, { key: string; value: string }[]>;
  const entries = (name: string): { key: Buffer; value: Buffer }[] =>
    (maps[name] ?? []).map((e) => ({ key: Buffer.from(e.key, 'hex'), value: Buffer.from(e.value, 'hex') }));
  return {
    container: json.container as CompiledProgram['container'],
    policies: json.policies as CompiledProgram['policies'],
    hooks: json.hooks as CompiledProgram['hooks'],
    ruleCount: json.ruleCount as number,
    hash: json.hash as string,
    config: Buffer.from(json.config as string, 'hex'),
    nodes: entries('sabpf_nodes'),
    longNodes: entries('sabpf_long_nodes'),
    sourceRoots: entries('sabpf_source_roots'),
    netPrefixes: entries('sabpf_net_prefixes'),
    ports: entries('sabpf_ports'),
  };
}
