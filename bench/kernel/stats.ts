// Per-program run time from the kernel's BPF statistics: with the sysctl
// kernel.bpf_stats_enabled set, every program run adds its duration to
// run_time_ns and one to run_cnt, which the fdinfo of a program fd shows.
// This measures the program body alone (helpers and bpf_loop callbacks
// included; the trampoline and the cgroup lookup before it excluded), and is
// far less noisy than a syscall rate because nothing else is in it.
import { readFileSync, writeFileSync } from 'node:fs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface RunStats {
  runTimeNs: bigint;
  runCount: bigint;
}

/**
 * Turns statistics on or off. They cost two clock reads per program run,
 * so throughput is measured with them off.
 */
export function setBpfStats(enabled: boolean): void {
  writeFileSync(SYSCTL, enabled ? '1' : '0');
}

/** run_time_ns and run_cnt of the program behind an fd of this process. */
export function runStats(progFd: number): RunStats {
  const text = readFileSync(`/proc/self/fdinfo/${progFd}`, 'utf8');
  const field = (name: string): bigint => {
    const match = new RegExp(`^${name}:\\s+(\\d+)$`, 'mu').exec(text);
    if (!match) throw new Error(`failed to read ${name} of program fd ${progFd}: the kernel's fdinfo has no such line; it needs 5.1+`);
    return BigInt(match[1]!);
  };
  return { runTimeNs: field('run_time_ns'), runCount: field('run_cnt') };
}

/** Mean nanoseconds per run between two readings, or undefined if it never ran. */
export function nsPerRun(before: RunStats, after: RunStats): { ns: number; runs: number } | undefined {
  const runs = after.runCount - before.runCount;
  if (runs <= 0n) return undefined;
  return { ns: Number(after.runTimeNs - before.runTimeNs) / Number(runs), runs: Number(runs) };
}
