// Kernel benchmark: boots the test VM once and runs bench/kernel/guest.ts,
// which measures hooked operations with and without the sabpf programs.
//
//   npx tsc -p tsconfig.json && make build-bpf build-native
//   node dist/bench/kernel/run.js [--seconds 60] [--burst-ms 100] [--rounds 10]
//        [--stats-seconds 3] [--ops open,exec,connect] [--compare OLD/sabpf.bpf.o] [--empty] [--icount]
//   node dist/bench/kernel/run.js --breakdown [--compare OLD/sabpf.bpf.o] [--icount]
//
// --seconds is the measured time per operation, shared by all configurations;
// the loop alternates between them every --burst-ms (see guest.ts), and the
// cycles are grouped into --rounds for the spread. --breakdown runs
// breakdown.ts instead: file_open's run time by part of the check and path
// depth.
// --empty adds configuration e: the programs attached, and a config with no
// rules, so they return right after finding it. e against a is what running
// any program through the cgroup dispatch costs.
// --compare loads a second build (say, the previous commit's object) into its
// own cgroup in the same VM, so both builds are measured under the same
// conditions, interleaved. Prints the guest's JSON, then tables of cost ratios
// (median and min-max over rounds) and of per-invocation program run time.
// Absolute rates under TCG emulation are far below real hardware: only the
// ratios and the bpf_stats comparisons carry over, and only roughly.
// --icount boots the VM with one vCPU whose clock advances one nanosecond per
// emulated instruction (test/vm/qemu.ts): every "ns" and rate then counts
// instructions, the same in every run whatever the host's load, and the
// software-TLB cost of emulation drops out. Cache misses drop out too, which
// hardware does pay, so it complements the timed run rather than replacing it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { projectRoot, vmOutDir } from '../../test/vm/paths.js';
import { runInVm } from '../../test/vm/run.js';
import { median, type KernelBenchResult, type Op, type Spread } from './summary.js';

/** Samples the host's 1-minute load average while the VM runs. */
function sampleHostLoad(): { stop: () => { min: number; median: number; max: number; samples: number } } {
  const samples: number[] = [loadavg()[0]!];
  const timer = setInterval(() => samples.push(loadavg()[0]!), 10_000);
  return {
    stop: () => {
      clearInterval(timer);
      samples.push(loadavg()[0]!);
      const fixed = (x: number): number => Number(x.toFixed(2));
      return {
        min: fixed(Math.min(...samples)),
        median: fixed(median(samples)),
        max: fixed(Math.max(...samples)),
        samples: samples.length,
      };
    },
  };
}

const fmtSpread = (s: Spread | undefined, digits = 3): string =>
  s ? `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]` : '-';

function printTables(result: KernelBenchResult): void {
  const ops = result.settings.ops;
  const width = 28;
  const out: string[] = [];
  out.push('Cost relative to a (no program attached anywhere), median [min-max] over rounds:');
  out.push(`${'config'.padEnd(14)}${ops.map((op) => op.padStart(width)).join('')}`);
  out.push(`${"a vs a'".padEnd(14)}${ops.map((op) => fmtSpread(result.noiseFloor[op]).padStart(width)).join('')}`);
  for (const name of result.configs.filter((c) => c !== 'a' && c !== "a'")) {
    out.push(`${name.padEnd(14)}${ops.map((op) => fmtSpread(result.costRatios[name]?.[op]).padStart(width)).join('')}`);
  }
  out.push('');
  out.push('Attaching and detaching every link, ms, median [min-max] (not timed in the rates):');
  for (const op of ops) {
    const t = result.toggles[op];
    out.push(`${op.padEnd(14)}attach ${fmtSpread(t?.attachMs, 1)}   detach ${fmtSpread(t?.detachMs, 1)}`);
  }
  out.push('');
  out.push('Program run time per invocation (bpf_stats), ns, median [min-max]:');
  out.push(`${'config'.padEnd(14)}${ops.map((op) => op.padStart(width)).join('')}`);
  for (const [name, byOp] of Object.entries(result.bpfStats)) {
    out.push(`${name.padEnd(14)}${ops.map((op) => fmtSpread(byOp[op as Op], 0).padStart(width)).join('')}`);
  }
  out.push('');
  out.push('Median rates over rounds (operations/s):');
  for (const [name, byOp] of Object.entries(result.rates)) {
    out.push(`${name.padEnd(14)}${ops.map((op) => (byOp[op] ? median(byOp[op]).toFixed(0) : '-').padStart(width)).join('')}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

interface BreakdownResult {
  nsPerRun: Record<string, Record<string, { min: number; median: number; fillsPerRun?: number }>>;
}

/** Runs breakdown.ts in the VM and prints ns per file_open run by config and depth. */
async function breakdown(loopBin: string, compare: string, icount: boolean): Promise<number> {
  const script = [
    `export SABPF_BENCH_LOOP=${loopBin}`,
    ...(compare ? [`export SABPF_BENCH_COMPARE=${compare}`] : []),
    'node dist/bench/kernel/breakdown.js >"$SABPF_OUT/breakdown.stdout" 2>"$SABPF_OUT/breakdown.stderr"',
  ].join('\n');
  const hostLoad = sampleHostLoad();
  const run = await runInVm({ script, timeoutMs: 1_800_000, icount });
  const load = hostLoad.stop();
  if (run.exitCode !== 0) {
    const stderr = await readFile(join(run.outputs, 'breakdown.stderr'), 'utf8').catch(() => '');
    process.stderr.write(`failed to run the breakdown in the VM (exit ${run.exitCode}):\n${stderr}\n`);
    return 1;
  }
  const result = JSON.parse(await readFile(join(run.outputs, 'bench-breakdown.json'), 'utf8')) as BreakdownResult;
  process.stdout.write(`${JSON.stringify({ ...result, hostLoad1m: load }, null, 1)}\n\n`);
  const builds = Object.keys(result.nsPerRun);
  const rows = Object.keys(result.nsPerRun[builds[0]!] ?? {});
  process.stdout.write(`file_open run time, ns: min (median) [directory cache fills per run]; host 1-min load ${load.min}-${load.max}\n`);
  process.stdout.write(`${'config.depth'.padEnd(16)}${builds.map((b) => b.padStart(26)).join('')}\n`);
  for (const row of rows) {
    const cells = builds.map((b) => {
      const v = result.nsPerRun[b]?.[row];
      return (v ? `${v.min} (${v.median}) [${v.fillsPerRun ?? '-'}]` : '-').padStart(26);
    });
    process.stdout.write(`${row.padEnd(16)}${cells.join('')}\n`);
  }
  return 0;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      'burst-ms': { type: 'string', default: '100' },
      rounds: { type: 'string', default: '10' },
      'stats-seconds': { type: 'string', default: '3' },
      ops: { type: 'string', default: 'open,exec,connect' },
      compare: { type: 'string' },
      breakdown: { type: 'boolean', default: false },
      empty: { type: 'boolean', default: false },
      icount: { type: 'boolean', default: false },
    },
  });
  const binDir = join(vmOutDir, 'bin');
  mkdirSync(binDir, { recursive: true });
  const loopBin = join(binDir, 'sabpf-bench-loop');
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', loopBin, join(projectRoot, 'bench', 'kernel', 'loop.c')]);

  // The guest sees only the project tree: a comparison build is copied in.
  let compare = '';
  if (values.compare) {
    const copy = join(vmOutDir, 'bench', 'compare.bpf.o');
    mkdirSync(join(vmOutDir, 'bench'), { recursive: true });
    copyFileSync(resolve(values.compare), copy);
    compare = relative(projectRoot, copy);
  }

  if (values.breakdown) return breakdown(loopBin, compare, values.icount);

  const script = [
    `export SABPF_BENCH_LOOP=${loopBin} SABPF_BENCH_SECONDS=${values.seconds} SABPF_BENCH_ROUNDS=${values.rounds}`,
    `export SABPF_BENCH_BURST_MS=${values['burst-ms']} SABPF_BENCH_STATS_SECONDS=${values['stats-seconds']} SABPF_BENCH_OPS=${values.ops}`,
    ...(compare ? [`export SABPF_BENCH_COMPARE=${compare}`] : []),
    ...(values.empty ? ['export SABPF_BENCH_EMPTY=1'] : []),
    'node dist/bench/kernel/guest.js >"$SABPF_OUT/bench.stdout" 2>"$SABPF_OUT/bench.stderr"',
  ].join('\n');
  const hostLoad = sampleHostLoad();
  const run = await runInVm({ script, timeoutMs: 3_600_000, icount: values.icount });
  const load = hostLoad.stop();
  if (run.exitCode !== 0) {
    const stderr = await readFile(join(run.outputs, 'bench.stderr'), 'utf8').catch(() => '');
    process.stderr.write(`failed to run the kernel benchmark in the VM (exit ${run.exitCode}):\n${stderr}\n`);
    return 1;
  }

  const result = JSON.parse(await readFile(join(run.outputs, 'bench-kernel.json'), 'utf8')) as KernelBenchResult;
  const host = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadavg1m: load, vmWallSeconds: run.durationMs / 1000 };
  process.stdout.write(`${JSON.stringify({ ...result, host }, null, 1)}\n\n`);
  process.stdout.write(
    `host: ${host.cpus} CPUs (${host.cpuModel}), 1-min load ${load.min}-${load.max} (median ${load.median}); ` +
      `guest: ${result.guest.kernel}, ${result.guest.cpus} vCPUs under TCG${values.icount ? ' with icount (times are instruction counts)' : ''}, ` +
      `loadavg ${result.guest.loadavgStart} -> ${result.guest.loadavgEnd}\n\n`,
  );
  printTables(result);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
