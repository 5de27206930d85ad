// Tests of the idempotent-producer state: scripted transcripts of Kafka's rules first, then
// fast-check properties (seed replayed from RAFTBUS_SEED by test/setup.ts): rebuild and snapshot
// equal the incrementally built table, and retries in any order within 5 in flight append each
// batch exactly once, in sequence order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import {
  batchesPerProducerMax,
  lastSequenceOf,
  ProducerStateTable,
  type AppendedProducerBatch,
  type ProducerBatch,
  type ProducerBatchHeader,
} from './producer-state.js';
import { encodeRecordBatch, readBatchHeader } from './record-batch.js';

const sequenceMax = 2 ** 31 - 1;
const pid = 1000n;

const batch = (baseSequence: number, recordCount = 1, producerEpoch = 0, producerId = pid): ProducerBatch => ({
  producerId,
  producerEpoch,
  baseSequence,
  recordCount,
});

/** Log is a partition log of the test: it appends what check() accepts and applies it, as a replica would. */
class Log {
  readonly table = new ProducerStateTable();
  readonly appended: AppendedProducerBatch[] = [];
  logEndOffset = 0n;

  send(input: ProducerBatch): ReturnType<ProducerStateTable['check']> {
    const answer = this.table.check(input);
    if (answer.kind === 'append' || answer.kind === 'notIdempotent') {
      const appended = { ...input, baseOffset: this.logEndOffset };
      this.logEndOffset += BigInt(input.recordCount);
      this.appended.push(appended);
      this.table.apply(appended);
    }
    return answer;
  }
}

describe('ProducerStateTable.check, scripted', () => {
  it('answers a retry within the last 5 batches with its original offset', () => {
    const log = new Log();
    const sent = [batch(0, 3), batch(3, 1), batch(4, 2), batch(6, 5), batch(11, 1)];
    for (const b of sent) expect(log.send(b)).toEqual({ kind: 'append' });
    expect(log.appended.map((b) => b.baseOffset)).toEqual([0n, 3n, 4n, 6n, 11n]);
    sent.forEach((b, i) => expect(log.send(b)).toEqual({ kind: 'duplicate', baseOffset: log.appended[i]?.baseOffset }));
    expect(log.appended).toHaveLength(5);
  });

  it('does not answer duplicate beyond the window: the retry is out of order', () => {
    const log = new Log();
    for (let sequence = 0; sequence <= batchesPerProducerMax; sequence++) log.send(batch(sequence));
    expect(log.send(batch(0))).toEqual({ kind: 'outOfOrder', expectedSequence: 6, receivedSequence: 0 });
    expect(log.send(batch(1))).toEqual({ kind: 'duplicate', baseOffset: 1n });
  });

  it('needs the same lastSequence for a duplicate: an overlapping batch is out of order', () => {
    const log = new Log();
    log.send(batch(0, 4));
    expect(log.send(batch(0, 2))).toEqual({ kind: 'outOfOrder', expectedSequence: 4, receivedSequence: 0 });
  });

  it('refuses a gap and answers the expected sequence', () => {
    const log = new Log();
    log.send(batch(0, 2));
    expect(log.send(batch(3))).toEqual({ kind: 'outOfOrder', expectedSequence: 2, receivedSequence: 3 });
    expect(log.send(batch(2))).toEqual({ kind: 'append' });
  });

  it('starts a producer over on a higher epoch and fences the lower one', () => {
    const log = new Log();
    log.send(batch(0, 1, 0));
    log.send(batch(1, 1, 0));
    expect(log.send(batch(5, 1, 1))).toEqual({ kind: 'outOfOrder', expectedSequence: 0, receivedSequence: 5 });
    expect(log.send(batch(0, 1, 1))).toEqual({ kind: 'append' });
    expect(log.send(batch(2, 1, 0))).toEqual({ kind: 'fenced', currentEpoch: 1 });
    expect(log.send(batch(1, 1, 0))).toEqual({ kind: 'fenced', currentEpoch: 1 }); // old epoch's retry too
    expect(log.send(batch(0, 1, 1))).toEqual({ kind: 'duplicate', baseOffset: 2n });
    expect(log.send(batch(1, 1, 1))).toEqual({ kind: 'append' });
  });

  it('wraps sequences from 2^31-1 to 0', () => {
    expect(lastSequenceOf(sequenceMax, 1)).toBe(sequenceMax);
    expect(lastSequenceOf(sequenceMax, 3)).toBe(1);
    expect(lastSequenceOf(sequenceMax - 1, 2)).toBe(sequenceMax);
    const table = new ProducerStateTable();
    table.apply({ ...batch(sequenceMax - 3, 2), baseOffset: 0n }); // last = 2^31-2
    expect(table.check(batch(sequenceMax, 3))).toEqual({ kind: 'outOfOrder', expectedSequence: sequenceMax - 1, receivedSequence: sequenceMax });
    expect(table.check(batch(sequenceMax - 1, 4))).toEqual({ kind: 'append' });
    table.apply({ ...batch(sequenceMax - 1, 4), baseOffset: 2n }); // 2^31-2, 2^31-1, 0, 1
    expect(table.check(batch(sequenceMax - 1, 4))).toEqual({ kind: 'duplicate', baseOffset: 2n });
    expect(table.check(batch(0))).toEqual({ kind: 'outOfOrder', expectedSequence: 2, receivedSequence: 0 });
    expect(table.check(batch(2))).toEqual({ kind: 'append' });
    const exact = new ProducerStateTable();
    exact.apply({ ...batch(sequenceMax), baseOffset: 0n });
    expect(exact.check(batch(0))).toEqual({ kind: 'append' });
  });

  it('lets an unknown producer start at 0 only, else answers unknownProducer', () => {
    const table = new ProducerStateTable();
    expect(table.check(batch(0, 1, 3))).toEqual({ kind: 'append' });
    expect(table.check(batch(7, 1, 3))).toEqual({ kind: 'unknownProducer' });
  });

  it('evicts the least recently applied producer beyond its bound, and forgets it', () => {
    const table = new ProducerStateTable({ producersMax: 2 });
    const apply = (producerId: bigint, baseSequence: number, baseOffset: bigint): void =>
      table.apply({ ...batch(baseSequence, 1, 0, producerId), baseOffset });
    apply(1n, 0, 0n);
    apply(2n, 0, 1n);
    apply(1n, 1, 2n); // 1 is now the most recent
    expect(table.check(batch(0, 1, 0, 3n))).toEqual({ kind: 'append' }); // check moves no recency
    apply(3n, 0, 3n); // evicts 2
    expect(table.size).toBe(2);
    expect(table.snapshot().producers.map((p) => p.producerId)).toEqual([1n, 3n]);
    expect(table.check(batch(1, 1, 0, 2n))).toEqual({ kind: 'unknownProducer' });
    expect(table.check(batch(2, 1, 0, 1n))).toEqual({ kind: 'append' });
  });

  it('appends producerId -1 without checks and ignores it in apply', () => {
    const table = new ProducerStateTable();
    const plain = { producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 4 };
    expect(table.check(plain)).toEqual({ kind: 'notIdempotent' });
    table.apply({ ...plain, baseOffset: 0n });
    expect(table.size).toBe(0);
  });

  it('answers invalid for out-of-range idempotent fields, and apply asserts on them', () => {
    const table = new ProducerStateTable();
    expect(table.check(batch(-1))).toMatchObject({ kind: 'invalid', field: 'baseSequence' });
    expect(table.check(batch(0, 0))).toMatchObject({ kind: 'invalid', field: 'recordCount' });
    expect(table.check(batch(0, 1, -1))).toMatchObject({ kind: 'invalid', field: 'producerEpoch' });
    expect(table.check(batch(0, 1, 0, -2n))).toMatchObject({ kind: 'invalid', field: 'producerId' });
    expect(() => table.apply({ ...batch(-1), baseOffset: 0n })).toThrow(AssertionError);
  });
});

describe('ProducerStateTable.rebuild and snapshot', () => {
  it('rebuilds from real batch headers, skipping control and non-idempotent batches', () => {
    const encode = (baseOffset: bigint, producerId: bigint, producerEpoch: number, baseSequence: number, records: number) =>
      readBatchHeader(
        encodeRecordBatch({
          baseOffset,
          partitionLeaderEpoch: 1,
          producerId,
          producerEpoch,
          baseSequence,
          compression: 'none',
          timestampType: 'create',
          records: Array.from({ length: records }, (_, i) => ({ timestamp: 1_000 + i, key: null, value: null, headers: [] })),
        }),
      );
    const headers = [encode(0n, pid, 0, 0, 3), encode(3n, -1n, -1, -1, 2), encode(5n, pid, 0, 3, 2), encode(7n, 7n, 2, 0, 1)];
    const control: ProducerBatchHeader = { ...encode(8n, 7n, 2, 1, 1), isControl: true };
    const table = ProducerStateTable.rebuild([...headers, control]);
    expect(table.check(batch(3, 2))).toEqual({ kind: 'duplicate', baseOffset: 5n });
    expect(table.check(batch(5))).toEqual({ kind: 'append' });
    expect(table.check(batch(1, 1, 2, 7n))).toEqual({ kind: 'append' });
    expect(table.size).toBe(2);
  });

  const appendedBatch = fc.record({
    producerId: fc.bigInt({ min: 0n, max: 6n }),
    producerEpoch: fc.integer({ min: 0, max: 2 }),
    baseSequence: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: sequenceMax - 5, max: sequenceMax })),
    recordCount: fc.integer({ min: 1, max: 8 }),
  });

  it('property: rebuild from the log and restore(snapshot) equal the incrementally built table', () => {
    fc.assert(
      fc.property(fc.array(appendedBatch, { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (batches, producersMax) => {
        const incremental = new ProducerStateTable({ producersMax });
        const headers: ProducerBatchHeader[] = [];
        let offset = 0n;
        for (const b of batches) {
          incremental.apply({ ...b, baseOffset: offset });
          headers.push({ ...b, baseOffset: offset, lastOffsetDelta: b.recordCount - 1, isControl: false });
          offset += BigInt(b.recordCount);
        }
        const rebuilt = ProducerStateTable.rebuild(headers, { producersMax });
        expect(rebuilt.snapshot()).toEqual(incremental.snapshot());
        const restored = ProducerStateTable.restore(structuredClone(incremental.snapshot()), { producersMax });
        expect(restored.snapshot()).toEqual(incremental.snapshot());
        expect(incremental.size).toBeLessThanOrEqual(producersMax);
        for (const b of batches) expect(restored.check(b)).toEqual(incremental.check(b));
      }),
    );
  });
});

describe('ProducerStateTable, retries', () => {
  // A producer sends batches in sequence with at most 5 in flight: its window is its 5 lowest batches
  // not yet acknowledged. Each step the schedule picks a batch of a window to (re)send, at most 3
  // sends each, and whether the response is lost (the batch may be appended, the producer not know).
  // Then a liveness phase sends each producer's lowest unacknowledged batch with responses delivered.
  const producerCountMax = 3;
  const sendsPerBatchMax = 3;
  const scenario = fc.record({
    recordCounts: fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 12 }), {
      minLength: 1,
      maxLength: producerCountMax,
    }),
    schedule: fc.array(
      fc.record({ producer: fc.nat(), slot: fc.nat({ max: batchesPerProducerMax - 1 }), responseLost: fc.boolean() }),
      { maxLength: 120 },
    ),
  });

  it('property: appending only what check answers append yields each batch once, in sequence order', () => {
    fc.assert(
      fc.property(scenario, ({ recordCounts, schedule }) => {
        const producers = recordCounts.map((counts, index) => {
          let sequence = 0;
          const batches = counts.map((recordCount) => {
            const b = batch(sequence, recordCount, 0, BigInt(index + 1));
            sequence += recordCount;
            return b;
          });
          return { batches, acked: new Map<number, bigint>(), sends: batches.map(() => 0) };
        });
        const log = new Log();
        const offsetOf = new Map<ProducerBatch, bigint>();
        const window = (p: (typeof producers)[number]): number[] =>
          p.batches.map((_, i) => i).filter((i) => !p.acked.has(i)).slice(0, batchesPerProducerMax);
        const send = (p: (typeof producers)[number], index: number, responseLost: boolean): void => {
          const b = p.batches[index];
          if (b === undefined) throw new Error('no such batch');
          const before = log.appended.length;
          const answer = log.send(b);
          if (answer.kind === 'append') offsetOf.set(b, log.appended[before]?.baseOffset ?? -1n);
          if (answer.kind === 'duplicate') expect(answer.baseOffset).toBe(offsetOf.get(b));
          expect(['append', 'duplicate', 'outOfOrder', 'unknownProducer']).toContain(answer.kind);
          if (responseLost) return;
          if (answer.kind === 'append' || answer.kind === 'duplicate') p.acked.set(index, offsetOf.get(b) ?? -1n);
        };
        for (const step of schedule) {
          const p = producers[step.producer % producers.length];
          if (p === undefined) continue;
          const index = window(p)[step.slot];
          if (index === undefined || (p.sends[index] ?? 0) >= sendsPerBatchMax) continue;
          p.sends[index] = (p.sends[index] ?? 0) + 1;
          send(p, index, step.responseLost);
        }
        for (const p of producers) {
          // Liveness: each send of the lowest unacknowledged batch must be acknowledged.
          for (let index = window(p)[0]; index !== undefined; index = window(p)[0]) {
            send(p, index, false);
            expect(p.acked.has(index)).toBe(true);
          }
        }
        for (const p of producers) {
          const producerId = p.batches[0]?.producerId;
          const ofProducer = log.appended.filter((a) => a.producerId === producerId);
          expect(ofProducer.map((a) => a.baseSequence)).toEqual(p.batches.map((b) => b.baseSequence));
          p.batches.forEach((b, i) => expect(p.acked.get(i)).toBe(offsetOf.get(b)));
        }
      }),
    );
  });
});
