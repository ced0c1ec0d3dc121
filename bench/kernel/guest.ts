// Guest side of the kernel benchmark (bench/kernel/run.ts boots the VM):
// rates of open+close, exec and connect in a cgroup without programs (the
// baseline), in a confined cgroup whose policy has 10, 1,000 and 10,000
// rules, and in an unconfined cgroup while another one is confined. Prints
// one JSON object. Every ratio is to the baseline of the same run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

import { Hook, IpProto, NetOp, encodeConfig } from '../../compiler/layout.js';
import { cgroupId, loadPrograms, removePins, type KernelPrograms } from '../../enforcer/kernel/index.js';
import { Ids, Trie, netEntries, type NetRule } from '../../test/vm/scenarios/entries.js';

const loopBin = process.env['SABPF_BENCH_LOOP'] ?? '';
const seconds = process.env['SABPF_BENCH_SECONDS'] ?? '1';
const rounds = Number(process.env['SABPF_BENCH_ROUNDS'] ?? '3');
const cgRoot = '/sys/fs/cgroup/sabpf-bench';
const pinRoot = '/sys/fs/bpf/sabpf-bench';
const target = '/tmp/bench/target';
const execTarget = '/bin/true';
const udpPort = '9';
const ruleCounts = [10, 1000, 10000];
const ops = ['open', 'exec', 'connect'] as const;
type Op = (typeof ops)[number];
type Rates = Record<Op, number>;

function rate(cgroup: string, op: Op): number {
  const arg = op === 'open' ? target : op === 'exec' ? execTarget : udpPort;
  const r = spawnSync(loopBin, ['-c', `${cgRoot}/${cgroup}`, seconds, op, arg], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`failed to measure ${op} in ${cgroup}: ${r.stderr || r.stdout}`);
  const value = Number(r.stdout.trim().split(' ')[2]);
  if (!Number.isFinite(value)) throw new Error(`failed to parse the rate of ${op} in ${cgroup}: ${r.stdout}`);
  return value;
}

function measure(cgroup: string): Rates {
  return Object.fromEntries(ops.map((op) => [op, rate(cgroup, op)])) as Rates;
}

/**
 * Writes a policy of count rules per section into slot and returns the
 * config that selects it. The measured operations walk rule-bearing nodes
 * (tmp, bench; usr, bin; the 127.0.0.1 prefix) but match no rule, so they
 * are allowed without an event: the cost measured is the lookup itself.
 */
function writeRules(k: KernelPrograms, slot: number, count: number): Buffer {
  const ids = new Ids();
  const file = new Trie(ids, slot).rule('/tmp/bench', 'subtree', 'write', 'deny');
  const exec = new Trie(ids, slot).rule('/usr/bin/not-busybox', 'exact', 'read', 'deny');
  const net: NetRule[] = [];
  for (let i = 0; i < count; i++) {
    file.rule(`/srv/app${i % 100}/file${i}`, 'exact', 'read', 'deny');
    exec.rule(`/opt/tools${i % 100}/bin${i}`, 'exact', 'read', 'deny');
    net.push({ op: NetOp.connect, proto: IpProto.udp, ipv4: '127.0.0.1', cidr: 32, port: 20000 + (i % 40000), action: 'deny' });
  }
  const { prefixes, ports } = netEntries(ids, net, slot);
  k.updateElems('sabpf_nodes', [...file.entries(), ...exec.entries()]);
  k.updateElems('sabpf_net_prefixes', prefixes);
  k.updateElems('sabpf_ports', ports);
  return encodeConfig({
    slot,
    hooks: Hook.fileOpen | Hook.exec | Hook.socketConnect | Hook.socketBind | Hook.socketCreate,
    enforce: 1,
    policyCount: 1,
    fileRoot: file.root,
    execRoot: exec.root,
    sourceRoot: 0,
    flags: 0,
    postureDeny: [0, 0, 0],
    postureAudit: [0, 0, 0],
    rawSocket: { deny: 0, audit: 0, allow: 0 },
    packetSocket: { deny: 0, audit: 0, allow: 0 },
  });
}

function ratios(rates: Rates, baseline: Rates): Rates {
  return Object.fromEntries(ops.map((op) => [op, Number((rates[op] / baseline[op]).toFixed(3))])) as Rates;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Per-operation medians over rounds. */
function medians(rounds: Rates[]): Rates {
  return Object.fromEntries(ops.map((op) => [op, median(rounds.map((r) => r[op]))])) as Rates;
}

function main(): void {
  if (!loopBin) throw new Error('failed to find sabpf-bench-loop: set SABPF_BENCH_LOOP to its path in the guest');
  mkdirSync('/tmp/bench', { recursive: true });
  writeFileSync(target, 'x');
  for (const name of ['baseline', 'confined', 'other']) mkdirSync(`${cgRoot}/${name}`, { recursive: true });

  // Every policy size in its own slot, so switching is one config write.
  removePins(pinRoot);
  const k = loadPrograms({ mode: 'cgroup', pinRoot });
  const configs = ruleCounts.map((count, slot) => writeRules(k, slot, count));
  const confinedId = cgroupId(`${cgRoot}/confined`);
  k.setConfig(confinedId, configs[0]!);
  const links = k.attachContainer(`${cgRoot}/confined`);

  // Rounds interleave the settings, so drift in the emulator's speed (other
  // work on the host) spreads over all of them. Each cell is a median.
  const samples = { baseline: [] as Rates[], unconfined: [] as Rates[], confined: ruleCounts.map(() => [] as Rates[]) };
  for (let round = 0; round < rounds; round++) {
    // (a) A cgroup without programs.
    samples.baseline.push(measure('baseline'));

    // (b) The confined cgroup, one policy size at a time.
    ruleCounts.forEach((_, slot) => {
      k.setConfig(confinedId, configs[slot]!);
      samples.confined[slot]!.push(measure('confined'));
    });

    // (c) A cgroup without programs while the other one is confined.
    samples.unconfined.push(measure('other'));
  }
  const baseline = medians(samples.baseline);
  const confined = Object.fromEntries(ruleCounts.map((count, slot) => [String(count), medians(samples.confined[slot]!)]));
  const unconfined = medians(samples.unconfined);
  const counters = Object.fromEntries(Object.entries(k.counters()).map(([n, v]) => [n, v.toString()]));
  k.detach(links);
  k.close();
  removePins(pinRoot);

  const result = {
    secondsPerMeasurement: Number(seconds),
    rounds,
    operations: {
      open: `open+close ${target}`,
      exec: `fork+exec ${execTarget}+wait`,
      connect: `UDP socket+connect 127.0.0.1:${udpPort}+close`,
    },
    baseline,
    confined,
    unconfined,
    ratios: {
      confined: Object.fromEntries(Object.entries(confined).map(([n, r]) => [n, ratios(r, baseline)])),
      unconfined: ratios(unconfined, baseline),
    },
    counters,
  };
  const text = JSON.stringify(result, null, 1);
  if (process.env['SABPF_OUT']) writeFileSync(`${process.env['SABPF_OUT']}/bench-kernel.json`, text);
  process.stdout.write(`${text}\n`);
}

main();
