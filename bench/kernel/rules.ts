// Policies of the kernel benchmark: one per rule count, each in its own slot,
// so switching the confined cgroup between them is one config write.
import { IpProto, NetOp } from '../../compiler/layout.js';
import { nextEpoch } from '../../enforcer/kernel/programs.js';
import { Ids, Trie, configWith, netEntries, type NetRule } from '../../test/vm/scenarios/entries.js';
import { mapFd, type BenchObject } from './objects.js';

export const BENCH_TARGET = '/tmp/bench/target';
export const BENCH_EXEC = '/bin/true';
export const BENCH_UDP_PORT = 9;

function writeBatch(o: BenchObject, map: string, entries: Array<[Buffer, Buffer]>): void {
  if (entries.length === 0) return;
  const keys = Buffer.concat(entries.map(([k]) => k));
  const values = Buffer.concat(entries.map(([, v]) => v));
  o.addon.mapUpdateBatch(mapFd(o, map), keys, values, entries.length, 0);
}

/**
 * Writes a policy of count rules per section into slot and returns the
 * config that selects it. The measured operations walk rule-bearing nodes
 * (tmp, bench; usr, bin; the 127.0.0.1 prefix) but match no rule, so they
 * are allowed without an event: the cost measured is the lookup itself.
 */
export function writeRules(o: BenchObject, slot: number, count: number): Buffer {
  const ids = new Ids();
  const file = new Trie(ids, slot).rule('/tmp/bench', 'subtree', 'write', 'deny');
  const exec = new Trie(ids, slot).rule('/usr/bin/not-busybox', 'exact', 'read', 'deny');
  const net: NetRule[] = [];
  for (let i = 0; i < count; i++) {
    file.rule(`/srv/app${i % 100}/file${i}`, 'exact', 'read', 'deny');
    exec.rule(`/opt/tools${i % 100}/bin${i}`, 'exact', 'read', 'deny');
    net.push({ op: NetOp.connect, proto: IpProto.udp, ip: '127.0.0.1', cidr: 32, port: 20000 + (i % 40000), action: 'deny' });
  }
  const { prefixes, ports } = netEntries(ids, net, slot);
  writeBatch(o, 'sabpf_nodes', [...file.entries(), ...exec.entries()]);
  writeBatch(o, 'sabpf_long_nodes', [...file.entries('sabpf_long_nodes'), ...exec.entries('sabpf_long_nodes')]);
  writeBatch(o, 'sabpf_net_prefixes', prefixes);
  writeBatch(o, 'sabpf_ports', ports);

  // Every hook bit (the default): a build that lacks a hook ignores its bit.
  return configWith({ slot, fileRoot: file.root, execRoot: exec.root });
}

/**
 * Points a cgroup at a config (cgroup id -> struct sabpf_config), bumping
 * the policy epoch before and after, as the enforcer does (see setConfig in
 * enforcer/kernel/programs.ts): the programs keep per-CPU memos of configs.
 */
export function setConfig(o: BenchObject, cgroupId: bigint, config: Buffer): void {
  const key = Buffer.alloc(8);
  key.writeBigUInt64LE(cgroupId);
  bumpEpoch(o);
  o.addon.mapUpdate(mapFd(o, 'sabpf_configs'), key, config, 0);
  bumpEpoch(o);
}

function bumpEpoch(o: BenchObject): void {
  const fd = mapFd(o, 'sabpf_epoch');
  const key = Buffer.alloc(4);
  const epoch = o.addon.mapLookup(fd, key);
  if (epoch === null) throw new Error('failed to read map sabpf_epoch: entry 0 is missing; rebuild enforcer/bpf');
  o.addon.mapUpdate(fd, key, nextEpoch(epoch), 0);
}
