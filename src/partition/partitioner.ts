// Partitioners: which partition a record goes to when the producer does not name one.
//
// A record with a key goes where Kafka's Java client puts it: toPositive(murmur2(keyBytes)) %
// partitionCount (DefaultPartitioner before Kafka 3.3, BuiltInPartitioner since), so a user moving
// from Kafka keeps the per-key order and the partition of every key. A record without a key sticks
// to one partition per topic until that partition's batch is sent, then moves to another one
// (Kafka's sticky partitioner, KIP-480; the switch-on-batch part of KIP-794, without its adaptive,
// load-aware choice). Pure code: no I/O, and randomness is handed in.

import { assert } from '../raft/assert.js';
import type { Random } from '../raft/prng.js';

/** murmur2Seed, murmur2Multiplier and murmur2Shift are the constants of Kafka's Utils.murmur2. */
const murmur2Seed = 0x9747b28c;
const murmur2Multiplier = 0x5bd1e995;
const murmur2Shift = 24;

/** partitionCountMax is the largest partition count Kafka can express (a Java int). */
export const partitionCountMax = 0x7fffffff;

/**
 * murmur2 returns the 32-bit MurmurHash2 of bytes exactly as Kafka's Utils.murmur2 computes it:
 * a signed int32 (a JS number in [-2^31, 2^31)), little-endian 4-byte blocks, Kafka's tail for 1-3
 * remaining bytes (with the extra multiply only when a tail exists), Java's wrapping int arithmetic.
 * Only the bytes of the view count (its byteOffset and length), not the rest of its buffer.
 */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  let h = murmur2Seed ^ length;
  const blocksEnd = length - (length & 3);
  for (let i = 0; i < blocksEnd; i += 4) {
    // The loop bound keeps i + 3 inside the view.
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, murmur2Multiplier);
    k ^= k >>> murmur2Shift;
    k = Math.imul(k, murmur2Multiplier);
    h = Math.imul(h, murmur2Multiplier);
    h ^= k;
  }
  // Java's `switch (length % 4)` falls through from case 3 to case 1; only case 1 multiplies.
  const tailLength = length - blocksEnd;
  if (tailLength >= 3) h ^= bytes[blocksEnd + 2]! << 16;
  if (tailLength >= 2) h ^= bytes[blocksEnd + 1]! << 8;
  if (tailLength >= 1) {
    h ^= bytes[blocksEnd]!;
    h = Math.imul(h, murmur2Multiplier);
  }
  h ^= h >>> 13;
  h = Math.imul(h, murmur2Multiplier);
  h ^= h >>> 15;
  return h;
}

/**
 * toPositive returns n with its sign bit cleared, as Kafka's Utils.toPositive: n & 0x7fffffff, a
 * value in [0, 2^31). It is not Math.abs: toPositive(-1) is 2^31 - 1 and toPositive(-2^31) is 0.
 * n is read as an int32 (as every bitwise operator in JS does).
 */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/**
 * partitionForKey returns the partition, in [0, partitionCount), that Kafka's Java producer picks
 * for a record whose serialized key is `key` (an empty key is a key; only a null key is sticky).
 * Throws AssertionError unless partitionCount is an integer in [1, partitionCountMax].
 */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  assertPartitionCount(partitionCount);
  return toPositive(murmur2(key)) % partitionCount;
}

/** StickyChoice is a topic's current sticky partition; `batchSent` means: move off it on the next record. */
type StickyChoice = { readonly partition: number; readonly batchSent: boolean };

/**
 * StickyPartitioner picks partitions for records without a key, as Kafka's sticky partitioner: per
 * topic it returns the same partition until `onNewBatch` reports that partition's batch sent, then
 * moves to another one, drawn uniformly from the candidates without the previous one (when there
 * is more than one candidate; with one, it stays).
 *
 * Candidates are `availablePartitions` (partitions with a leader) when it is given and non-empty,
 * otherwise all of [0, partitionCount) (Kafka too falls back to every partition when none is
 * available). Unlike Kafka's KIP-480 cache, which keeps sending to a partition that lost its
 * leader until the batch completes, a sticky partition that is no longer a candidate (not
 * available, or beyond partitionCount) is replaced at once, so `partition` never returns an
 * unavailable partition while some are available.
 *
 * Randomness comes only from the injected `random` (values in [0, 1)); one seed replays every
 * choice. State is one entry per topic seen, so its size is bounded by the topics of the cluster.
 */
export class StickyPartitioner {
  readonly #random: Random;
  readonly #choiceByTopic = new Map<string, StickyChoice>();

  constructor(random: Random) {
    this.#random = random;
  }

  /**
   * partition returns the partition for the next keyless record of `topic`, in [0, partitionCount),
   * and in availablePartitions when that is non-empty. Throws AssertionError unless partitionCount
   * is an integer in [1, partitionCountMax], every available partition is an integer in
   * [0, partitionCount), and the random source returns values in [0, 1).
   */
  partition(topic: string, partitionCount: number, availablePartitions?: readonly number[]): number {
    assertPartitionCount(partitionCount);
    const available = availablePartitions ?? [];
    for (const partition of available) {
      assert(Number.isInteger(partition) && partition >= 0 && partition < partitionCount, 'sticky partitioner: available partition out of range', { topic, partition, partitionCount });
    }
    const current = this.#choiceByTopic.get(topic);
    if (current !== undefined && !current.batchSent && isCandidate(current.partition, partitionCount, available)) return current.partition;
    const next = this.#choose(partitionCount, available, current?.partition);
    this.#choiceByTopic.set(topic, { partition: next, batchSent: false });
    return next;
  }

  /**
   * onNewBatch reports that the batch on previousPartition of `topic` was sent (closed): the next
   * keyless record of the topic goes elsewhere. A report about a partition that is not the topic's
   * sticky one (stale: the topic has moved on already) changes nothing, as in Kafka.
   */
  onNewBatch(topic: string, previousPartition: number): void {
    const current = this.#choiceByTopic.get(topic);
    if (current === undefined || current.partition !== previousPartition) return;
    this.#choiceByTopic.set(topic, { partition: current.partition, batchSent: true });
  }

  /** #choose draws a candidate uniformly, avoiding `previous` when another candidate exists. */
  #choose(partitionCount: number, available: readonly number[], previous: number | undefined): number {
    if (available.length > 0) {
      const others = previous === undefined ? available : available.filter((partition) => partition !== previous);
      const candidates = others.length > 0 ? others : available;
      const chosen = candidates[this.#randomIndex(candidates.length)];
      assert(chosen !== undefined, 'sticky partitioner: random index out of range', { candidates: candidates.length });
      return chosen;
    }
    if (previous === undefined || previous >= partitionCount || partitionCount === 1) return this.#randomIndex(partitionCount);
    // Draw from the partitionCount - 1 partitions other than previous, skipping over it.
    const drawn = this.#randomIndex(partitionCount - 1);
    return drawn >= previous ? drawn + 1 : drawn;
  }

  /** #randomIndex returns an integer in [0, count) drawn from the injected random source. */
  #randomIndex(count: number): number {
    const draw = this.#random();
    assert(draw >= 0 && draw < 1, 'sticky partitioner: random source out of [0, 1)', { draw });
    // min: draw * count can round up to count when draw is within 2^-53 of 1 and count is large.
    return Math.min(count - 1, Math.floor(draw * count));
  }
}

/** isCandidate says whether partition may take records: in range, and available if any are. */
function isCandidate(partition: number, partitionCount: number, available: readonly number[]): boolean {
  return partition < partitionCount && (available.length === 0 || available.includes(partition));
}

function assertPartitionCount(partitionCount: number): void {
  assert(Number.isInteger(partitionCount) && partitionCount >= 1 && partitionCount <= partitionCountMax, 'partitioner: partition count must be an integer in [1, 2^31 - 1]', { partitionCount });
}
