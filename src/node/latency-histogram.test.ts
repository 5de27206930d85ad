import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LatencyHistogram, latencyBucketBoundsMicros, quantileUpperBoundMicros } from './latency-histogram.js';
import { syncLatency } from '../cli/cluster-describe.js';

describe('LatencyHistogram', () => {
  it('puts a duration in the first bucket whose bound is above it; a bound itself goes up a bucket', () => {
    const histogram = new LatencyHistogram();
    for (const micros of [0, 63.9, 64, 100, 65_535, 65_536, 10_000_000, -5]) histogram.record(micros);
    const counts = histogram.counts();
    expect(counts).toHaveLength(latencyBucketBoundsMicros.length + 1);
    expect(counts[0]).toBe(3); // 0, 63.9 and the negative one, counted as 0
    expect(counts[1]).toBe(2); // 64 and 100
    expect(counts[10]).toBe(1); // 65,535 < 65,536
    expect(counts[11]).toBe(2); // 65,536 and ten seconds
    expect(histogram.totalMicros).toBe(Math.round(63.9 + 64 + 100 + 65_535 + 65_536 + 10_000_000));
  });

  it('answers a quantile with the bound of the bucket that holds it', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 200_000, noNaN: true }), { minLength: 1, maxLength: 200 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (durations, q) => {
        const histogram = new LatencyHistogram();
        for (const micros of durations) histogram.record(micros);
        const bound = quantileUpperBoundMicros(histogram.counts(), q)!;
        const sorted = [...durations].sort((a, b) => a - b);
        const exact = sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
        // The exact quantile lies in the bucket the answer bounds: below it, and not below the bound before.
        expect(exact < bound).toBe(true);
        const index = latencyBucketBoundsMicros.indexOf(bound);
        const lower = bound === Infinity ? latencyBucketBoundsMicros.at(-1)! : index === 0 ? 0 : latencyBucketBoundsMicros[index - 1]!;
        expect(exact >= lower).toBe(true);
      }),
    );
  });

  it('has no quantile before anything was counted', () => {
    expect(quantileUpperBoundMicros(new LatencyHistogram().counts(), 0.5)).toBeUndefined();
  });
});

describe('syncLatency (cluster describe)', () => {
  const bounds = latencyBucketBoundsMicros;
  const counts = (entries: [number, number][]): number[] => {
    const all = new Array<number>(bounds.length + 1).fill(0);
    for (const [bucket, count] of entries) all[bucket] = count;
    return all;
  };

  it('shows the bounds of the median and 99th percentile', () => {
    // 98 waits under 256 µs, 2 between 1,024 and 2,048 µs: p50 < 256 µs, p99 < 2.0 ms.
    expect(syncLatency({ syncWaitBuckets: counts([[2, 98], [5, 2]]), syncWaitBucketBoundsMicros: bounds })).toBe('<256µs/<2.0ms');
  });

  it('shows a wait past the last bound as longer than it, and nothing as a dash', () => {
    expect(syncLatency({ syncWaitBuckets: counts([[11, 1]]), syncWaitBucketBoundsMicros: bounds })).toBe('>66ms/>66ms');
    expect(syncLatency({ syncWaitBuckets: counts([]), syncWaitBucketBoundsMicros: bounds })).toBe('-/-');
  });
});
