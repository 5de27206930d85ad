// LatencyHistogram counts durations in fixed power-of-two buckets, so that a node can say how long
// its disk takes to make a round durable (as etcd's wal_fsync_duration) in constant memory however
// long it runs. Bucket i counts durations below latencyBucketBoundsMicros[i] (and at or above the
// bound before it); the last bucket counts everything from the last bound up.

/** latencyBucketBoundsMicros are the upper bounds of every bucket but the last: 64 µs to 65,536 µs. */
export const latencyBucketBoundsMicros: readonly number[] = Object.freeze(Array.from({ length: 11 }, (_, i) => 64 * 2 ** i));

export class LatencyHistogram {
  readonly #counts = new Array<number>(latencyBucketBoundsMicros.length + 1).fill(0);
  #totalMicros = 0;

  /** record counts one duration; a negative one (a clock that stepped back) counts as 0. */
  record(micros: number): void {
    const value = Math.max(0, micros);
    let bucket = 0;
    while (bucket < latencyBucketBoundsMicros.length && value >= latencyBucketBoundsMicros[bucket]!) bucket++;
    this.#counts[bucket]!++;
    this.#totalMicros += value;
  }

  /** counts returns a copy of the per-bucket counts (one more than there are bounds). */
  counts(): number[] {
    return [...this.#counts];
  }

  /** totalMicros is the sum of every duration recorded, rounded to whole µs. */
  get totalMicros(): number {
    return Math.round(this.#totalMicros);
  }
}

/**
 * quantileUpperBoundMicros returns the upper bound of the bucket that holds quantile q (0 < q <= 1)
 * of the counts: at most that many µs. Infinity when it falls in the last, open bucket; undefined
 * when nothing was counted.
 */
export function quantileUpperBoundMicros(counts: readonly number[], q: number, bounds: readonly number[] = latencyBucketBoundsMicros): number | undefined {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let bucket = 0; bucket < counts.length; bucket++) {
    seen += counts[bucket]!;
    if (seen >= rank) return bucket < bounds.length ? bounds[bucket]! : Infinity;
  }
  return Infinity;
}
