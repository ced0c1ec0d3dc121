// Guest side of the kernel benchmark (bench/kernel/run.ts boots the VM).
//
// Configurations (slots), each a cgroup:
//   a, a'        no sabpf program attached anywhere (no policy); two slots, so
//                that a' against a gives the noise floor
//   b<N>         confined, policy of N rules (N = 10, 1,000, 10,000)
//   before-b<N>  the same with the comparison build, when one is given
//   c            an unconfined cgroup while the confined ones are attached
//   e            with SABPF_BENCH_EMPTY=1: attached, with a config of no rules,
//                so the programs return right after finding it
// sabpf-bench-loop runs one operation in all slots in turn, a burst of about
// a tenth of a second each, detaching the programs for a and a' and attaching
// them for the others. Drift in the emulator's speed (other work on the host)
// then hits every slot alike. The cycles are grouped into rounds;
// each round gives one cost ratio per slot against a and a' together.
//
// Then, with kernel.bpf_stats_enabled on, each build's program run time per
// invocation in each b configuration.
//
// Environment: SABPF_BENCH_LOOP (sabpf-bench-loop path), SABPF_BENCH_SECONDS
// (measured seconds per operation), SABPF_BENCH_BURST_MS, SABPF_BENCH_ROUNDS,
// SABPF_BENCH_STATS_SECONDS, SABPF_BENCH_OPS (comma list), SABPF_BENCH_OBJECT
// (default enforcer/bpf/sabpf.bpf.o), SABPF_BENCH_COMPARE (another build's
// sabpf.bpf.o, optional), SABPF_BENCH_EMPTY (1 adds e). Writes
// $SABPF_OUT/bench-kernel.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';

import { CGROUP_HOOKS, HOOK_PROGRAMS, cgroupId, removePins } from '../../enforcer/kernel/index.js';
import { loadObject, type BenchObject } from './objects.js';
import { configWith } from '../../test/vm/scenarios/entries.js';
import { BENCH_EXEC, BENCH_TARGET, BENCH_UDP_PORT, setConfig, writeRules } from './rules.js';
import { nsPerRun, runStats, setBpfStats } from './stats.js';
import { OPS, spread, type KernelBenchResult, type Op, type Spread } from './summary.js';

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const loopBin = env('SABPF_BENCH_LOOP', '');
const seconds = Number(env('SABPF_BENCH_SECONDS', '60'));
const burstMs = Number(env('SABPF_BENCH_BURST_MS', '100'));
const rounds = Number(env('SABPF_BENCH_ROUNDS', '10'));
const statsSeconds = env('SABPF_BENCH_STATS_SECONDS', '3');
const ops = env('SABPF_BENCH_OPS', OPS.join(',')).split(',') as Op[];
const objectPath = env('SABPF_BENCH_OBJECT', 'enforcer/bpf/sabpf.bpf.o');
const comparePath = process.env['SABPF_BENCH_COMPARE'];
const withEmpty = process.env['SABPF_BENCH_EMPTY'] === '1';

const cgRoot = '/sys/fs/cgroup/sabpf-bench';
const pinRoot = '/sys/fs/bpf/sabpf-bench';
const ruleCounts = [10, 1000, 10000];

/** The program that serves each measured operation. */
const PROGRAM_OF: Record<Op, string> = {
  open: 'sabpf_file_open',
  exec: 'sabpf_bprm_check_security',
  connect: 'sabpf_socket_connect',
};

const CGROUP_PROGRAMS = new Set(CGROUP_HOOKS.map((hook) => HOOK_PROGRAMS[hook]));

const ARG_OF: Record<Op, string> = { open: BENCH_TARGET, exec: BENCH_EXEC, connect: String(BENCH_UDP_PORT) };

/** A fork+exec takes milliseconds under emulation: its bursts are longer. */
const BURST_SCALE: Record<Op, number> = { open: 1, exec: 5, connect: 1 };

/** One build: its programs pinned for the loop, one cgroup per rule count. */
interface Build {
  object: BenchObject;
  /** Program name to bpffs pin. */
  pins: Record<string, string>;
  /** Slot name (b10, before-b10, ...) to cgroup directory. */
  cgroups: Record<string, string>;
}

function setUpBuild(label: string, path: string, prefix: string): Build {
  const object = loadObject(label, path, pinRoot);
  const progDir = join(pinRoot, label, 'progs');
  mkdirSync(progDir, { recursive: true });
  const pins: Record<string, string> = {};
  for (const [name, fd] of Object.entries(object.programs)) {
    // The node-wide programs attach for all tasks, not per cgroup, and no measured operation reaches them.
    if (!CGROUP_PROGRAMS.has(name)) continue;
    pins[name] = join(progDir, name);
    object.addon.objPin(fd, pins[name]);
  }
  const cgroups: Record<string, string> = {};
  ruleCounts.forEach((count, slot) => {
    const name = `${prefix}b${count}`;
    const dir = `${cgRoot}/${name}`;
    mkdirSync(dir, { recursive: true });
    cgroups[name] = dir;
    // The config exists before any program is attached: one without it denies.
    setConfig(object, cgroupId(dir), writeRules(object, slot, count));
  });
  if (withEmpty && prefix === '') {
    const dir = `${cgRoot}/e`;
    mkdirSync(dir, { recursive: true });
    cgroups['e'] = dir;
    setConfig(object, cgroupId(dir), configWith({ slot: ruleCounts.length }));
  }
  return { object, pins, cgroups };
}

/** Per burst: slot index, cycle, operations, nanoseconds. */
interface Burst {
  slot: number;
  cycle: number;
  ops: number;
  ns: number;
}

/** Bursts, and attach and detach times in milliseconds. */
interface Interleaved {
  bursts: Burst[];
  attachMs: number[];
  detachMs: number[];
}

function interleave(op: Op, slots: string[], builds: Build[]): Interleaved {
  const links = builds.flatMap((b) =>
    Object.values(b.pins).flatMap((pin) => Object.values(b.cgroups).map((dir) => ['-l', `${pin}:${dir}`])),
  );
  const args = ['interleave', String(seconds), String(burstMs * BURST_SCALE[op]), op, ARG_OF[op], ...links.flat(), ...slots];
  const r = spawnSync(loopBin, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`failed to run the interleaved ${op} loop: ${r.stderr || r.stdout}`);
  const out: Interleaved = { bursts: [], attachMs: [], detachMs: [] };
  for (const line of r.stdout.trim().split('\n')) {
    const fields = line.split(' ');
    if (fields[0] === 'toggle') {
      (fields[1] === '1' ? out.attachMs : out.detachMs).push(Number(fields[2]) / 1e6);
      continue;
    }
    const [slot, cycle, count, ns] = fields.map(Number) as [number, number, number, number];
    out.bursts.push({ slot, cycle, ops: count, ns });
  }
  return out;
}

/**
 * Groups cycles into rounds and returns, per slot, each round's rate
 * (operations per second over all of the slot's bursts in the round).
 */
function roundRates(bursts: Burst[], slotCount: number): number[][] {
  const cycles = Math.max(...bursts.map((b) => b.cycle)) + 1;
  const groups = Math.min(rounds, cycles);
  const ops = Array.from({ length: slotCount }, () => new Array<number>(groups).fill(0));
  const ns = Array.from({ length: slotCount }, () => new Array<number>(groups).fill(0));
  for (const b of bursts) {
    const round = Math.floor((b.cycle * groups) / cycles);
    ops[b.slot]![round]! += b.ops;
    ns[b.slot]![round]! += b.ns;
  }
  return ops.map((row, s) => row.map((n, r) => (n * 1e9) / ns[s]![r]!));
}

/** Run time per invocation of each build's programs, one b configuration at a time. */
function measureStats(builds: Build[]): KernelBenchResult['bpfStats'] {
  const out: KernelBenchResult['bpfStats'] = {};
  const links: number[] = [];
  setBpfStats(true);
  try {
    for (const b of builds) {
      for (const [name, fd] of Object.entries(b.object.programs)) {
        if (!CGROUP_PROGRAMS.has(name)) continue;
        for (const dir of Object.values(b.cgroups)) links.push(b.object.addon.attachCgroupFd(fd, dir));
      }
    }
    for (const b of builds) {
      for (const [name, dir] of Object.entries(b.cgroups)) {
        for (const op of ops) {
          const fd = b.object.programs[PROGRAM_OF[op]];
          if (fd === undefined) continue;
          const values: number[] = [];
          for (let i = 0; i < 3; i++) {
            const before = runStats(fd);
            const r = spawnSync(loopBin, ['-c', dir, statsSeconds, op, ARG_OF[op]], { encoding: 'utf8' });
            if (r.status !== 0) throw new Error(`failed to run ${op} in ${dir}: ${r.stderr || r.stdout}`);
            const per = nsPerRun(before, runStats(fd));
            if (per) values.push(per.ns);
          }
          (out[name] ??= {})[op] = { ...spread(values), program: PROGRAM_OF[op] };
        }
      }
    }
  } finally {
    const addon = builds[0]?.object.addon;
    for (const fd of links) {
      addon?.detachLink(fd);
      addon?.closeFd(fd);
    }
    setBpfStats(false);
  }
  return out;
}

function main(): void {
  if (!loopBin) throw new Error('failed to find sabpf-bench-loop: set SABPF_BENCH_LOOP to its path in the guest');
  const loadavgStart = readFileSync('/proc/loadavg', 'utf8').trim();
  mkdirSync('/tmp/bench', { recursive: true });
  writeFileSync(BENCH_TARGET, 'x');
  for (const name of ['a', 'a2', 'c']) mkdirSync(`${cgRoot}/${name}`, { recursive: true });
  setBpfStats(false);

  removePins(pinRoot);
  const builds = [setUpBuild('after', objectPath, '')];
  if (comparePath) builds.push(setUpBuild('before', comparePath, 'before-'));

  // The no-policy slots, then the policy slots: two toggles per cycle, since
  // each attach or detach takes long under emulation.
  const policySlots = [...Object.keys(builds[0]!.cgroups), 'c', ...(builds[1] ? Object.keys(builds[1].cgroups) : [])];
  const names = ['a', "a'", ...policySlots];
  const dirOf = (name: string): string => {
    if (name === 'a') return `${cgRoot}/a`;
    if (name === "a'") return `${cgRoot}/a2`;
    return `+${cgRoot}/${name}`;
  };

  const rates: KernelBenchResult['rates'] = {};
  const costRatios: KernelBenchResult['costRatios'] = {};
  const noiseFloor: KernelBenchResult['noiseFloor'] = {};
  const toggles: KernelBenchResult['toggles'] = {};
  for (const op of ops) {
    const run = interleave(
      op,
      names.map((name) => dirOf(name)),
      builds,
    );
    toggles[op] = { attachMs: spread(run.attachMs), detachMs: spread(run.detachMs) };
    const perSlot = roundRates(run.bursts, names.length);
    names.forEach((name, s) => ((rates[name] ??= {})[op] = perSlot[s]!.map((x) => Number(x.toFixed(1)))));

    // a is both no-policy slots of the round together; a' against a is the noise floor.
    const a1 = perSlot[0]!;
    const a2 = perSlot[1]!;
    const a = a1.map((x, r) => 2 / (1 / x + 1 / a2[r]!));
    noiseFloor[op] = spread(a1.map((x, r) => x / a2[r]!));
    policySlots.forEach((name) => {
      (costRatios[name] ??= {})[op] = spread(perSlot[names.indexOf(name)]!.map((x, r) => a[r]! / x));
    });
  }

  const bpfStats = measureStats(builds);
  for (const b of builds) b.object.object.close();
  removePins(pinRoot);

  const result: KernelBenchResult = {
    settings: {
      secondsPerOperation: seconds,
      burstMs,
      rounds,
      statsSeconds: Number(statsSeconds),
      ops,
      object: objectPath,
      ...(comparePath ? { compare: comparePath } : {}),
      operations: {
        open: `open+close ${BENCH_TARGET}`,
        exec: `fork+exec ${BENCH_EXEC}+wait`,
        connect: `UDP socket+connect 127.0.0.1:${BENCH_UDP_PORT}+close`,
      },
    },
    guest: {
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadavgStart,
      loadavgEnd: readFileSync('/proc/loadavg', 'utf8').trim(),
    },
    configs: names,
    rates,
    costRatios,
    noiseFloor,
    toggles,
    bpfStats: bpfStats as Record<string, Partial<Record<Op, Spread & { program: string }>>>,
  };
  const text = JSON.stringify(result, null, 1);
  if (process.env['SABPF_OUT']) writeFileSync(`${process.env['SABPF_OUT']}/bench-kernel.json`, text);
  process.stdout.write(`${text}\n`);
}

main();
