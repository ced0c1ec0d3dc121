// Statistics of the kernel benchmark, shared by the guest (which computes
// them) and the host (which prints them).

export const OPS = ['open', 'exec', 'connect'] as const;
export type Op = (typeof OPS)[number];

/** Median and spread of one quantity over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in round order. */
  values: number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function spread(values: readonly number[]): Spread {
  const round = (x: number): number => Number(x.toFixed(4));
  return {
    median: round(median(values)),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
    values: values.map(round),
  };
}

/** Shape of bench-kernel.json, the guest's result. */
export interface KernelBenchResult {
  settings: {
    /** Measured seconds per operation, shared by all slots. */
    secondsPerOperation: number;
    /** Length of one slot's burst (exec's are longer). */
    burstMs: number;
    /** Groups of consecutive cycles, each giving one ratio per slot. */
    rounds: number;
    /** Length of each of the three bpf_stats measurements. */
    statsSeconds: number;
    ops: Op[];
    object: string;
    compare?: string;
    operations: Record<Op, string>;
  };
  guest: { kernel: string; cpus: number; cpuModel: string; loadavgStart: string; loadavgEnd: string };
  /** Configurations (slots) in the order the loop visits them. */
  configs: string[];
  /** Operations per second, per configuration, operation and round. */
  rates: Record<string, Partial<Record<Op, number[]>>>;
  /**
   * Cost of an operation relative to a, the same round's rate with no
   * program attached anywhere: rate(a) / rate(config). 1.10 is 10% slower.
   */
  costRatios: Record<string, Partial<Record<Op, Spread>>>;
  /** rate(a) / rate(a'), two slots without programs: the noise floor. */
  noiseFloor: Partial<Record<Op, Spread>>;
  /** Time to attach every link (creating the trampolines) and to detach them all. */
  toggles: Partial<Record<Op, { attachMs: Spread; detachMs: Spread }>>;
  /** Nanoseconds per program run (bpf_stats), per configuration and operation. */
  bpfStats: Record<string, Partial<Record<Op, Spread & { program: string }>>>;
}
