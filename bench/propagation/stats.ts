// Percentiles of the propagation benchmark's samples.

export interface Summary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
}

/**
 * Nearest-rank percentile: the smallest sample with at least p percent of the
 * samples at or below it. With 20 samples, p99 is the largest one.
 * Throws on an empty list.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('failed to compute a percentile: there are no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const round = (ms: number): number => Math.round(ms);
  return {
    count: samples.length,
    p50Ms: round(percentile(samples, 50)),
    p99Ms: round(percentile(samples, 99)),
    minMs: round(Math.min(...samples)),
    maxMs: round(Math.max(...samples)),
  };
}
