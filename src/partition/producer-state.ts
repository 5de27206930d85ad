// The idempotent-producer state of one partition: for each producer id, its epoch and the last few
// batches it appended, so the leader can tell a retry (answer the original offset) from a gap
// (refuse) from a zombie (fence). Pure: no I/O, no clock, no randomness.
//
// The leader calls check() before it proposes a batch; every replica calls apply() for each batch
// as it applies the partition log, in log order, so the state is a function of the log and a new
// leader already has it. check() reads only: recency (for eviction) moves on apply() alone, so all
// replicas evict the same producers.
//
// Note for the caller: apply() runs at commit, so a leader that checks a retry while the first
// copy is still proposed-but-uncommitted would answer 'append' twice. The leader must check
// against a table that already includes its pending proposals (for example a copy kept with
// restore(snapshot()) plus apply() at propose time), or keep one batch per producer in flight.
//
// Kafka's rules followed (ProducerStateManager / ProducerAppendInfo in apache/kafka):
//   - producerId -1 (NO_PRODUCER_ID): no checks.
//   - same epoch and (baseSequence, lastSequence) equal to one of the last 5 batches: duplicate,
//     answered with that batch's offset (DUPLICATE_SEQUENCE_NUMBER handling in the Java broker).
//   - lower epoch: fenced (INVALID_PRODUCER_EPOCH / PRODUCER_FENCED).
//   - higher epoch: the producer starts over, baseSequence must be 0 (else OUT_OF_ORDER_SEQUENCE,
//     "Invalid sequence number for new epoch").
//   - same epoch: baseSequence must be lastSequence + 1, with lastSequence = Integer.MAX_VALUE
//     followed by 0 (DefaultRecordBatch.incrementSequence, ProducerAppendInfo.inSequence).
//   - lastSequence = baseSequence + recordCount - 1, wrapping the same way. From the log it is
//     baseSequence + lastOffsetDelta, as Kafka reads it (compaction may drop records, never the delta).
//
// Decision, unknown producer: a producer the table does not hold (never seen, or evicted) may
// start only at sequence 0; any other sequence is answered 'unknownProducer' (Kafka's
// UNKNOWN_PRODUCER_ID; the Java client >= 2.5, KIP-360, then bumps its epoch and restarts at 0).
// Kafka >= 2.5 instead accepts any sequence when it holds no state, because its state is lost only
// to retention; ours is lost to eviction too, and accepting would let a lost first batch become a
// silent gap. Refusing costs an idle, evicted producer one epoch bump; it never costs data.

import { assert } from '../raft/assert.js';

/** batchesPerProducerMax is how many recent batches are remembered per producer: Kafka's 5, its max.in.flight bound for idempotence. */
export const batchesPerProducerMax = 5;

/** producersTrackedMax is the default bound on producers held per partition; beyond it the least recently applied is evicted. */
export const producersTrackedMax = 10_000;

/** noProducerId is Kafka's NO_PRODUCER_ID: a batch from a producer that is not idempotent. */
export const noProducerId = -1n;

const sequenceMax = 0x7fff_ffff; // Integer.MAX_VALUE: sequences are int32 and wrap to 0
const epochMax = 0x7fff; // producerEpoch is an int16
const recordsPerBatchMax = 0x7fff_ffff;

/** ProducerBatch is what check() needs of a batch. recordCount: at least 1. */
export interface ProducerBatch {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly recordCount: number;
}

/** AppendedProducerBatch is a batch as appended to the log, at baseOffset. */
export interface AppendedProducerBatch extends ProducerBatch {
  readonly baseOffset: bigint;
}

/** ProducerBatchHeader is what rebuild() needs of a log batch header; BatchHeader (record-batch.ts) fits it. */
export interface ProducerBatchHeader {
  readonly baseOffset: bigint;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly lastOffsetDelta: number;
  readonly isControl: boolean;
}

/** ProducerCheck is the answer of check(). */
export type ProducerCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: bigint }
  | { kind: 'outOfOrder'; expectedSequence: number; receivedSequence: number }
  | { kind: 'fenced'; currentEpoch: number }
  | { kind: 'unknownProducer' }
  | { kind: 'notIdempotent' }
  | { kind: 'invalid'; field: string; reason: string };

/** RememberedBatch is one of a producer's recent batches. Invariant: lastSequence = baseSequence + count - 1 (wrapping). */
export interface RememberedBatch {
  readonly baseSequence: number;
  readonly lastSequence: number;
  readonly baseOffset: bigint;
}

/** ProducerEntrySnapshot is one producer: its epoch and recent batches, oldest first (1..batchesPerProducerMax). */
export interface ProducerEntrySnapshot {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly batches: readonly RememberedBatch[];
}

/** ProducerStateSnapshot is the table as plain data, producers least recently applied first. */
export interface ProducerStateSnapshot {
  readonly producers: readonly ProducerEntrySnapshot[];
}

/** ProducerStateOptions bounds a table; producersMax defaults to producersTrackedMax. */
export interface ProducerStateOptions {
  readonly producersMax?: number;
}

interface ProducerEntry {
  producerEpoch: number;
  batches: RememberedBatch[]; // oldest first
}

/** nextSequence returns the sequence after sequence, wrapping from 2^31-1 to 0. */
export function nextSequence(sequence: number): number {
  return sequence === sequenceMax ? 0 : sequence + 1;
}

/** lastSequenceOf returns baseSequence + recordCount - 1, wrapping past 2^31-1 to 0 as Kafka does. */
export function lastSequenceOf(baseSequence: number, recordCount: number): number {
  const last = baseSequence + recordCount - 1; // exact: both below 2^31
  return last > sequenceMax ? last - sequenceMax - 1 : last;
}

/** invalidField returns why an idempotent batch's fields are out of range, or undefined when they are in range. */
function invalidField(batch: ProducerBatch): { field: string; reason: string } | undefined {
  if (batch.producerId < 0n) return { field: 'producerId', reason: `must be -1 or at least 0, got ${batch.producerId}` };
  if (!Number.isInteger(batch.producerEpoch) || batch.producerEpoch < 0 || batch.producerEpoch > epochMax)
    return { field: 'producerEpoch', reason: `must be 0..${epochMax} for an idempotent producer, got ${batch.producerEpoch}` };
  if (!Number.isInteger(batch.baseSequence) || batch.baseSequence < 0 || batch.baseSequence > sequenceMax)
    return { field: 'baseSequence', reason: `must be 0..${sequenceMax} for an idempotent producer, got ${batch.baseSequence}` };
  if (!Number.isInteger(batch.recordCount) || batch.recordCount < 1 || batch.recordCount > recordsPerBatchMax)
    return { field: 'recordCount', reason: `must be 1..${recordsPerBatchMax}, got ${batch.recordCount}` };
  return undefined;
}

/**
 * ProducerStateTable is the idempotence state of one partition (rules and decisions at the top of
 * this file). Invariants: size <= producersMax; each producer holds 1..batchesPerProducerMax
 * batches of its current epoch, oldest first; Map order is recency of apply(), oldest first.
 */
export class ProducerStateTable {
  readonly producersMax: number;
  readonly #producers = new Map<bigint, ProducerEntry>();

  constructor(options: ProducerStateOptions = {}) {
    this.producersMax = options.producersMax ?? producersTrackedMax;
    assert(Number.isInteger(this.producersMax) && this.producersMax >= 1, 'producersMax must be a positive integer', {
      producersMax: this.producersMax,
    });
  }

  /** size returns how many producers the table holds. */
  get size(): number {
    return this.#producers.size;
  }

  /** check returns what the leader should do with batch; it changes nothing. */
  check(batch: ProducerBatch): ProducerCheck {
    if (batch.producerId === noProducerId) return { kind: 'notIdempotent' };
    const invalid = invalidField(batch);
    if (invalid !== undefined) return { kind: 'invalid', ...invalid };
    const entry = this.#producers.get(batch.producerId);
    if (entry === undefined) return batch.baseSequence === 0 ? { kind: 'append' } : { kind: 'unknownProducer' };
    if (batch.producerEpoch < entry.producerEpoch) return { kind: 'fenced', currentEpoch: entry.producerEpoch };
    if (batch.producerEpoch > entry.producerEpoch) {
      return batch.baseSequence === 0
        ? { kind: 'append' }
        : { kind: 'outOfOrder', expectedSequence: 0, receivedSequence: batch.baseSequence };
    }
    const lastSequence = lastSequenceOf(batch.baseSequence, batch.recordCount);
    for (const remembered of entry.batches) {
      if (remembered.baseSequence === batch.baseSequence && remembered.lastSequence === lastSequence) {
        return { kind: 'duplicate', baseOffset: remembered.baseOffset };
      }
    }
    const newest = entry.batches[entry.batches.length - 1];
    assert(newest !== undefined, 'a tracked producer remembers at least one batch', { producerId: batch.producerId });
    const expectedSequence = nextSequence(newest.lastSequence);
    if (batch.baseSequence === expectedSequence) return { kind: 'append' };
    return { kind: 'outOfOrder', expectedSequence, receivedSequence: batch.baseSequence };
  }

  /**
   * apply records batch as appended at baseOffset. Called on every replica in log order; the log is
   * the truth, so it does not re-check sequences: a batch of another epoch than the held one starts
   * the producer over with this batch (as Kafka does when it replicates). A batch with producerId
   * -1 is ignored. Throws AssertionError on out-of-range fields (check() refuses those, so one in
   * the log is a bug). A batch at or below the producer's newest remembered offset is ignored:
   * applying the log again over a table that already holds it changes nothing.
   */
  apply(batch: AppendedProducerBatch): void {
    if (batch.producerId === noProducerId) return;
    const invalid = invalidField(batch);
    assert(invalid === undefined, 'an applied batch has fields check() accepts', { ...invalid });
    const remembered: RememberedBatch = {
      baseSequence: batch.baseSequence,
      lastSequence: lastSequenceOf(batch.baseSequence, batch.recordCount),
      baseOffset: batch.baseOffset,
    };
    const entry = this.#producers.get(batch.producerId);
    // Offsets rise in log order: a batch at or below the newest one held was applied already (a
    // snapshot holds the table as of a later index than the one it stands for; replay repeats it).
    const newest = entry?.batches[entry.batches.length - 1];
    if (newest !== undefined && batch.baseOffset <= newest.baseOffset) return;
    this.#producers.delete(batch.producerId); // re-inserted below: most recently applied last
    if (entry === undefined || entry.producerEpoch !== batch.producerEpoch) {
      this.#producers.set(batch.producerId, { producerEpoch: batch.producerEpoch, batches: [remembered] });
    } else {
      entry.batches.push(remembered);
      if (entry.batches.length > batchesPerProducerMax) entry.batches.shift();
      this.#producers.set(batch.producerId, entry);
    }
    this.#evictBeyondBound();
  }

  /** rebuild returns the table apply() builds from the log's batch headers in log order; control batches and producerId -1 are skipped. */
  static rebuild(headers: Iterable<ProducerBatchHeader>, options: ProducerStateOptions = {}): ProducerStateTable {
    const table = new ProducerStateTable(options);
    for (const header of headers) {
      if (header.isControl || header.producerId === noProducerId) continue;
      table.apply({
        baseOffset: header.baseOffset,
        producerId: header.producerId,
        producerEpoch: header.producerEpoch,
        baseSequence: header.baseSequence,
        recordCount: header.lastOffsetDelta + 1,
      });
    }
    return table;
  }

  /** snapshot returns the table as plain data (fresh arrays and objects; bigints stay bigints). */
  snapshot(): ProducerStateSnapshot {
    const producers: ProducerEntrySnapshot[] = [];
    for (const [producerId, entry] of this.#producers) {
      producers.push({ producerId, producerEpoch: entry.producerEpoch, batches: entry.batches.map((b) => ({ ...b })) });
    }
    return { producers };
  }

  /** restore returns the table snapshot describes. Throws AssertionError when snapshot breaks the table's invariants. */
  static restore(snapshot: ProducerStateSnapshot, options: ProducerStateOptions = {}): ProducerStateTable {
    const table = new ProducerStateTable(options);
    assert(snapshot.producers.length <= table.producersMax, 'snapshot holds at most producersMax producers', {
      producers: snapshot.producers.length,
      producersMax: table.producersMax,
    });
    for (const producer of snapshot.producers) {
      const count = producer.batches.length;
      assert(count >= 1 && count <= batchesPerProducerMax, 'snapshot producer holds 1..5 batches', { count });
      assert(!table.#producers.has(producer.producerId), 'snapshot producer ids are unique', {
        producerId: producer.producerId,
      });
      table.#producers.set(producer.producerId, {
        producerEpoch: producer.producerEpoch,
        batches: producer.batches.map((b) => ({ baseSequence: b.baseSequence, lastSequence: b.lastSequence, baseOffset: b.baseOffset })),
      });
    }
    return table;
  }

  #evictBeyondBound(): void {
    while (this.#producers.size > this.producersMax) {
      const leastRecent = this.#producers.keys().next();
      assert(leastRecent.done !== true, 'a table over its bound is not empty');
      this.#producers.delete(leastRecent.value);
    }
  }
}
