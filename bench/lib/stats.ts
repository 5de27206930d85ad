// Small statistics helpers for the benches: nearest-rank percentiles and median/min/max over runs.

export interface LatencySummary {
  readonly n: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

/** percentile of an ascending-sorted array, nearest rank; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** summarizeLatencies summarizes the first n samples (milliseconds). */
export function summarizeLatencies(samples: Float64Array, n: number): LatencySummary {
  const sorted = samples.slice(0, n).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n: sorted.length,
    meanMs: round3(sorted.length === 0 ? Number.NaN : sum / sorted.length),
    p50Ms: round3(percentile(sorted, 50)),
    p90Ms: round3(percentile(sorted, 90)),
    p99Ms: round3(percentile(sorted, 99)),
    p999Ms: round3(percentile(sorted, 99.9)),
    maxMs: round3(sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!),
  };
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** spreadPct is (max - min) / median in percent. */
  readonly spreadPct: number;
  readonly n: number;
}

/** spreadOf gives median, min and max of the finite values. */
export function spreadOf(values: readonly number[]): Spread {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, spreadPct: Number.NaN, n: 0 };
  const middle = finite.length >> 1;
  const median = finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
  const min = finite[0]!;
  const max = finite[finite.length - 1]!;
  return { median, min, max, spreadPct: median === 0 ? Number.NaN : Math.round(((max - min) / median) * 1000) / 10, n: finite.length };
}

/** formatNumber prints a value with a precision that suits its size. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** formatSpread prints `median (min–max)`. */
export function formatSpread(spread: Spread): string {
  if (spread.n === 0) return '–';
  if (spread.n === 1) return formatNumber(spread.median);
  return `${formatNumber(spread.median)} (${formatNumber(spread.min)}–${formatNumber(spread.max)})`;
}
