// PartitionState and PartitionLeader, as transcripts: a leader prepares and proposes batches the
// way src/node/hosted-partition.ts does (validate, prepare, propose, proposed), the entries are
// applied as Raft commits them, and each test states the offsets, lookups and answers that follow.
// The last block is the regression of a bug the simulation found: restore forgot the producers.
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { PartitionLeader, PartitionState, decodePartitionSnapshot, encodePartitionSnapshot, type PrepareOutcome } from './partition-state.js';
import { encodeRecordBatch, readBatchHeader, validateBatch } from './record-batch.js';

const utf8 = new TextEncoder();
const producerId = 1000n;

/** batch encodes what a producer sends: `records` records at `timestamp`, from producer (id, epoch) at sequence. */
function batch(options: { sequence?: number; records?: number; epoch?: number; producer?: bigint; timestamp?: number } = {}): Uint8Array {
  const records = Array.from({ length: options.records ?? 1 }, (_, i) => ({ timestamp: options.timestamp ?? 1_000, key: null, value: utf8.encode(`v${i}`), headers: [] }));
  return encodeRecordBatch({
    baseOffset: 0n,
    partitionLeaderEpoch: -1,
    producerId: options.producer ?? producerId,
    producerEpoch: options.epoch ?? 0,
    baseSequence: options.sequence ?? 0,
    compression: 'none',
    timestampType: 'create',
    records,
  });
}

function snapshotAt(index: number, data: Uint8Array): Snapshot {
  return { metadata: { index, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data };
}

function normal(index: number, data: Uint8Array, term = 2): Entry {
  return { index, term, type: 'normal', data };
}

/**
 * Replica is one replica's partition: its Raft log (entries after the snapshot), its state and its
 * leader view. propose() is the leader's path of HostedPartition.produce; commit() applies the log
 * up to an index, as Raft hands committed entries over.
 */
class Replica {
  readonly state = new PartitionState();
  readonly leader = new PartitionLeader(this.state);
  readonly log: Entry[] = [];
  applied: number;

  constructor(snapshot: Snapshot = snapshotAt(1, encodePartitionSnapshot({ nextOffset: 0, producers: { producers: [] } }))) {
    this.state.restore(snapshot);
    this.applied = snapshot.metadata.index;
  }

  /** lead starts a term: begin() with the entries after the applied index, as the node does when the term changed. */
  lead(term: number): void {
    this.leader.begin(term, this.pending());
  }

  pending(): Entry[] {
    return this.log.filter((entry) => entry.index > this.applied);
  }

  lastIndex(): number {
    return this.log[this.log.length - 1]?.index ?? this.applied;
  }

  propose(bytes: Uint8Array): PrepareOutcome {
    const validation = validateBatch(bytes);
    if (validation.kind !== 'ok') throw new Error(`test batch invalid: ${validation.reason}`);
    const outcome = this.leader.prepare(bytes, validation.header);
    if (outcome.kind !== 'append') return outcome;
    this.log.push(normal(this.lastIndex() + 1, outcome.bytes, this.leader.term));
    this.leader.proposed(outcome.bytes);
    return outcome;
  }

  /** append adds entries another leader sent (a follower's log). */
  append(...entries: Entry[]): void {
    this.log.push(...entries);
  }

  commit(index: number): void {
    this.state.apply(this.log.filter((entry) => entry.index > this.applied && entry.index <= index));
    this.applied = index;
  }
}

const appendAt = (baseOffset: number, nextOffset: number): Partial<PrepareOutcome> => ({ kind: 'append', baseOffset, nextOffset });

describe('PartitionState', () => {
  it('gives batches contiguous offsets and moves the high watermark past each batch applied', () => {
    const replica = new Replica();
    replica.lead(2);
    expect(replica.propose(batch({ sequence: 0, records: 3 }))).toMatchObject(appendAt(0, 3));
    expect(replica.propose(batch({ sequence: 3, records: 1 }))).toMatchObject(appendAt(3, 4));
    expect(replica.propose(batch({ sequence: 4, records: 2 }))).toMatchObject(appendAt(4, 6));
    expect(replica.state.highWatermark).toBe(0); // proposed is not committed
    replica.commit(3);
    expect(replica.state.highWatermark).toBe(4);
    replica.commit(4);
    expect(replica.state.highWatermark).toBe(6);
    expect(replica.state.batches().map(({ baseOffset, nextOffset, raftIndex }) => [baseOffset, nextOffset, raftIndex])).toEqual([
      [0, 3, 2],
      [3, 4, 3],
      [4, 6, 4],
    ]);
    expect(replica.state.lastBatchIndex()).toBe(4);
    expect(replica.state.bytes).toBe(replica.log.reduce((sum, entry) => sum + entry.data.length, 0));
  });

  it('skips entries that are not batches (a leader\'s empty entry, a membership change)', () => {
    const state = new PartitionState();
    let advances = 0;
    state.onAdvance(() => advances++);
    state.apply([normal(2, new Uint8Array(0)), { index: 3, term: 2, type: 'confChange', data: new Uint8Array(70) }]);
    expect(state.highWatermark).toBe(0);
    expect(state.batches()).toEqual([]);
    expect(advances).toBe(0);
  });

  it('lookup finds the batch holding an offset, atEnd at the high watermark, outOfRange below the log start and above the high watermark', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 3 })); // offsets 0-2 at index 2
    replica.append(normal(3, new Uint8Array(0))); // not a batch
    replica.propose(batch({ sequence: 3, records: 2 })); // offsets 3-4 at index 4
    replica.commit(4);
    const { state } = replica;
    expect([0, 1, 2, 3, 4].map((offset) => state.lookup(offset))).toEqual([
      { kind: 'found', raftIndex: 2 },
      { kind: 'found', raftIndex: 2 },
      { kind: 'found', raftIndex: 2 },
      { kind: 'found', raftIndex: 4 },
      { kind: 'found', raftIndex: 4 },
    ]);
    expect(state.lookup(5)).toEqual({ kind: 'atEnd' });
    expect(state.lookup(6)).toEqual({ kind: 'outOfRange', logStartOffset: 0, highWatermark: 5 });
    expect(state.lookup(-1)).toEqual({ kind: 'outOfRange', logStartOffset: 0, highWatermark: 5 });
  });

  it('tells onAdvance listeners when the high watermark moves, until they are removed', () => {
    const replica = new Replica();
    const heard: number[] = [];
    const remove = replica.state.onAdvance(() => heard.push(replica.state.highWatermark));
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 2 }));
    replica.propose(batch({ sequence: 2 }));
    replica.commit(3); // one apply of two batches: one call
    expect(heard).toEqual([3]);
    remove();
    replica.propose(batch({ sequence: 3 }));
    replica.commit(4);
    expect(heard).toEqual([3]);
  });

  it('restore from a snapshot starts at the snapshot offset, holding nothing below it', () => {
    const replica = new Replica(snapshotAt(10, encodePartitionSnapshot({ nextOffset: 42, producers: { producers: [] } })));
    const { state } = replica;
    expect([state.logStartOffset, state.highWatermark, state.bytes]).toEqual([42, 42, 0]);
    expect(state.lookup(41)).toEqual({ kind: 'outOfRange', logStartOffset: 42, highWatermark: 42 });
    expect(state.lookup(42)).toEqual({ kind: 'atEnd' });
    replica.lead(3);
    expect(replica.propose(batch({ sequence: 0, records: 2 }))).toMatchObject(appendAt(42, 44));
    replica.commit(11);
    expect(state.lookup(43)).toEqual({ kind: 'found', raftIndex: 11 });
    expect(state.highWatermark).toBe(44);
  });

  it('restore replaces what was held, and tells the onAdvance listeners', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 5 }));
    replica.commit(2);
    let advances = 0;
    replica.state.onAdvance(() => advances++);
    replica.state.restore(snapshotAt(9, encodePartitionSnapshot({ nextOffset: 20, producers: { producers: [] } })));
    expect([replica.state.logStartOffset, replica.state.highWatermark, replica.state.batches().length, advances]).toEqual([20, 20, 0, 1]);
  });

  it('writes its snapshot as the next offset, and reads an empty snapshot as offset 0', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 7 }));
    replica.commit(2);
    expect(decodePartitionSnapshot(replica.state.snapshotData()).nextOffset).toBe(7);
    expect(decodePartitionSnapshot(encodePartitionSnapshot({ nextOffset: 2 ** 40, producers: { producers: [] } })).nextOffset).toBe(2 ** 40);
    expect(decodePartitionSnapshot(new Uint8Array(0))).toEqual({ nextOffset: 0, producers: { producers: [] } });
    expect(() => decodePartitionSnapshot(new Uint8Array(4))).toThrow(AssertionError);
    expect(() => encodePartitionSnapshot({ nextOffset: -1, producers: { producers: [] } })).toThrow(AssertionError);
  });

  it('carries a batch listener\'s state in its snapshots and hands it back on restore', () => {
    // The listener counts the batches it heard: its state is that count, as one byte.
    const listener = (state: PartitionState) => {
      const heard = { count: 0, restores: [] as (number | undefined)[] };
      state.onBatches({ batch: () => void heard.count++, snapshot: () => new Uint8Array([heard.count]), restore: (data) => { heard.restores.push(data?.[0]); heard.count = data?.[0] ?? 0; } });
      return heard;
    };
    const replica = new Replica();
    const heard = listener(replica.state);
    expect(replica.state.keepsRecordState).toBe(true);
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 2 })); // at 2
    replica.propose(batch({ sequence: 2, records: 1 })); // at 3
    replica.commit(3);
    const below3 = decodePartitionSnapshot(replica.state.snapshotDataBelow(3));
    expect(below3).toMatchObject({ nextOffset: 2, recordState: new Uint8Array([2]) }); // the state as applied, newer than the cut
    const whole = replica.state.snapshotData();
    expect(decodePartitionSnapshot(whole)).toMatchObject({ nextOffset: 3, recordState: new Uint8Array([2]) });

    const other = new Replica();
    const otherHeard = listener(other.state);
    other.state.restore(snapshotAt(3, whole));
    expect(otherHeard).toEqual({ count: 2, restores: [undefined, 2] });
    // A snapshot without a state (a partition that had no listener) restores an empty one.
    other.state.restore(snapshotAt(3, encodePartitionSnapshot({ nextOffset: 3, producers: { producers: [] } })));
    expect(otherHeard).toEqual({ count: 0, restores: [undefined, 2, undefined] });
    expect(heard.restores).toEqual([undefined]); // once, by onBatches: its replica was restored before the listener came
  });

  it('reads every snapshot layout, and refuses a record state whose length does not match', () => {
    const producers = { producers: [{ producerId: 5n, producerEpoch: 1, batches: [{ baseSequence: 0, lastSequence: 2, baseOffset: 7n }] }] };
    const withState = encodePartitionSnapshot({ nextOffset: 10, producers, recordState: new Uint8Array([1, 2, 3]) });
    expect(withState[0]).toBe(3);
    expect(decodePartitionSnapshot(withState)).toEqual({ nextOffset: 10, producers, recordState: new Uint8Array([1, 2, 3]) });
    const without = encodePartitionSnapshot({ nextOffset: 10, producers });
    expect(without[0]).toBe(2);
    expect(decodePartitionSnapshot(without).recordState).toBeUndefined();
    expect(decodePartitionSnapshot(encodePartitionSnapshot({ nextOffset: 4, producers: { producers: [] }, recordState: new Uint8Array(0) }))).toMatchObject({ nextOffset: 4, recordState: new Uint8Array(0) });
    expect(() => decodePartitionSnapshot(withState.subarray(0, withState.length - 1))).toThrow(AssertionError);
    expect(() => decodePartitionSnapshot(new Uint8Array([...withState, 0]))).toThrow(AssertionError);
  });

  it('dropBelow forgets the batches below a Raft index and moves the log start to the first batch kept', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 2 })); // [0, 2) at 2
    replica.propose(batch({ sequence: 2, records: 3 })); // [2, 5) at 3
    replica.append(normal(4, new Uint8Array(0)));
    replica.propose(batch({ sequence: 5, records: 1 })); // [5, 6) at 5
    replica.commit(5);
    const { state } = replica;
    const bytesOfLast = replica.log[3]!.data.length;
    expect([state.nextOffsetBelow(2), state.nextOffsetBelow(3), state.nextOffsetBelow(4), state.nextOffsetBelow(5), state.nextOffsetBelow(6)]).toEqual([0, 2, 5, 5, 6]);
    state.dropBelow(4);
    expect([state.logStartOffset, state.highWatermark, state.bytes]).toEqual([5, 6, bytesOfLast]);
    expect(state.lookup(4)).toEqual({ kind: 'outOfRange', logStartOffset: 5, highWatermark: 6 });
    expect(state.lookup(5)).toEqual({ kind: 'found', raftIndex: 5 });
    state.dropBelow(2); // never back
    expect(state.logStartOffset).toBe(5);
    state.dropBelow(100); // everything: the log is empty at the high watermark
    expect([state.logStartOffset, state.bytes, state.batches().length]).toEqual([6, 0, 0]);
    expect(state.lookup(6)).toEqual({ kind: 'atEnd' });
    expect(state.lookup(5)).toEqual({ kind: 'outOfRange', logStartOffset: 6, highWatermark: 6 });
  });

  it('offsetForTimestamp answers the first batch whose largest timestamp reaches the one asked, else the high watermark', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 2, timestamp: 100 }));
    replica.propose(batch({ sequence: 2, records: 1, timestamp: 300 }));
    replica.propose(batch({ sequence: 3, records: 1, timestamp: 200 }));
    replica.commit(4);
    expect([0, 100, 101, 200, 300, 301].map((timestampMs) => replica.state.offsetForTimestamp(timestampMs))).toEqual([0, 0, 2, 2, 2, 4]);
  });

  it('asserts that each committed batch starts exactly at the high watermark', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 3 }));
    replica.commit(2);
    // The next batch as a leader with a wrong view of the log would have proposed it: past or before the high watermark (3).
    const [gap, overlap] = [5, 1].map((baseOffset) => {
      const bytes = replica.log[0]!.data.slice();
      new DataView(bytes.buffer).setBigInt64(0, BigInt(baseOffset));
      return normal(3, bytes);
    });
    expect(() => replica.state.apply([gap!])).toThrow(AssertionError);
    expect(() => replica.state.apply([overlap!])).toThrow(AssertionError);
    expect(() => replica.state.apply([gap!])).toThrow(/a committed batch starts at the high watermark/);
    expect(replica.state.highWatermark).toBe(3);
  });
});

describe('PartitionLeader', () => {
  it('prepare gives the bytes their offset and the leader epoch (CRC still valid) and changes nothing until proposed', () => {
    const replica = new Replica();
    replica.lead(7);
    replica.propose(batch({ sequence: 0, records: 4 }));
    const sent = batch({ sequence: 4, records: 2 });
    const header = readBatchHeader(sent);
    const first = replica.leader.prepare(sent, header);
    const again = replica.leader.prepare(sent, header);
    expect(first).toMatchObject(appendAt(4, 6));
    expect(again).toEqual(first); // prepare alone moved nothing
    if (first.kind !== 'append') throw new Error('expected append');
    const patched = readBatchHeader(first.bytes);
    expect([patched.baseOffset, patched.partitionLeaderEpoch]).toEqual([4n, 7]);
    expect(validateBatch(first.bytes).kind).toBe('ok');
    expect(readBatchHeader(sent).baseOffset).toBe(0n); // the producer's bytes are untouched
    replica.leader.proposed(first.bytes);
    expect(replica.leader.prepare(batch({ sequence: 6 }), readBatchHeader(batch({ sequence: 6 })))).toMatchObject(appendAt(6, 7));
  });

  it('proposed asserts that batches are proposed in the order they were prepared', () => {
    const replica = new Replica();
    replica.lead(2);
    const one = replica.leader.prepare(batch({ sequence: 0 }), readBatchHeader(batch({ sequence: 0 })));
    if (one.kind !== 'append') throw new Error('expected append');
    replica.leader.proposed(one.bytes);
    expect(() => replica.leader.proposed(one.bytes)).toThrow(AssertionError); // offset 0 again, next is 1
  });

  it('a leader begun with pending entries continues the offsets after them', () => {
    // Node A leads term 2 and replicates three batches to B; only the first is committed on B.
    const a = new Replica();
    a.lead(2);
    a.propose(batch({ sequence: 0, records: 2 }));
    a.propose(batch({ sequence: 0, records: 3, producer: 2000n }));
    a.propose(batch({ sequence: 2, records: 1 }));
    const b = new Replica();
    b.append(...a.log);
    b.commit(2);
    expect(b.state.highWatermark).toBe(2);
    b.lead(3);
    expect(b.propose(batch({ sequence: 3, records: 2, producer: 2000n }))).toMatchObject(appendAt(6, 8));
    b.commit(5);
    expect(b.state.highWatermark).toBe(8);
  });

  it('begin asserts that pending batches follow the high watermark', () => {
    const a = new Replica();
    a.lead(2);
    a.propose(batch({ sequence: 0, records: 2 }));
    a.propose(batch({ sequence: 2, records: 1 }));
    const b = new Replica();
    expect(() => b.leader.begin(3, [a.log[1]!])).toThrow(AssertionError); // starts at 2, high watermark 0
  });

  it('answers a retry of a proposed batch as in flight, and of an applied one as committed, with the original offset', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 3 }));
    replica.propose(batch({ sequence: 3, records: 1 }));
    replica.commit(2);
    expect(replica.propose(batch({ sequence: 0, records: 3 }))).toEqual({ kind: 'duplicate', baseOffset: 0, committed: true });
    expect(replica.propose(batch({ sequence: 3, records: 1 }))).toEqual({ kind: 'duplicate', baseOffset: 3, committed: false });
    replica.commit(3);
    expect(replica.propose(batch({ sequence: 3, records: 1 }))).toEqual({ kind: 'duplicate', baseOffset: 3, committed: true });
    expect(replica.log).toHaveLength(2);
  });

  it('a new leader recognises retries of batches pending in its log (from the last term) and applied ones', () => {
    const a = new Replica();
    a.lead(2);
    a.propose(batch({ sequence: 0, records: 3 }));
    a.propose(batch({ sequence: 3, records: 1 }));
    const b = new Replica();
    b.append(...a.log);
    b.commit(2);
    b.lead(3);
    expect(b.propose(batch({ sequence: 3, records: 1 }))).toEqual({ kind: 'duplicate', baseOffset: 3, committed: false });
    expect(b.propose(batch({ sequence: 0, records: 3 }))).toEqual({ kind: 'duplicate', baseOffset: 0, committed: true });
    expect(b.propose(batch({ sequence: 4 }))).toMatchObject(appendAt(4, 5));
  });

  it('a leader begun again in a new term forgets the proposals its log lost', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 2 }));
    replica.log.length = 0; // a leader of term 3 overwrote the uncommitted entry
    replica.lead(4);
    expect(replica.propose(batch({ sequence: 0, records: 2 }))).toMatchObject(appendAt(0, 2));
  });

  it('refuses a sequence gap as out of order, an older epoch as fenced, and an unknown producer that does not start at 0', () => {
    const replica = new Replica();
    replica.lead(2);
    replica.propose(batch({ sequence: 0, records: 3 }));
    expect(replica.propose(batch({ sequence: 5 }))).toEqual({ kind: 'outOfOrder', expectedSequence: 3, receivedSequence: 5 });
    expect(replica.propose(batch({ sequence: 2, records: 2 }))).toEqual({ kind: 'outOfOrder', expectedSequence: 3, receivedSequence: 2 });
    expect(replica.propose(batch({ sequence: 4, epoch: 1 }))).toEqual({ kind: 'outOfOrder', expectedSequence: 0, receivedSequence: 4 });
    expect(replica.propose(batch({ sequence: 0, epoch: 1 }))).toMatchObject(appendAt(3, 4));
    expect(replica.propose(batch({ sequence: 3, epoch: 0 }))).toEqual({ kind: 'fenced', currentEpoch: 1 });
    expect(replica.propose(batch({ sequence: 7, producer: 3000n }))).toEqual({ kind: 'unknownProducer' });
    expect(replica.propose(batch({ sequence: 0, producer: -1n, epoch: -1 }))).toMatchObject(appendAt(4, 5));
    expect(replica.propose(batch({ sequence: 0, producer: -1n, epoch: -1 }))).toMatchObject(appendAt(5, 6)); // not idempotent: no dedupe
    expect(replica.propose(batch({ sequence: 0, producer: 4000n, epoch: -1 }))).toMatchObject({ kind: 'invalid', field: 'producerEpoch' });
    expect(replica.log).toHaveLength(4);
  });
});

describe('restore() keeps the producers of the log below the snapshot', () => {
  // A replica restored from a snapshot (at a restart after retention, or installing the leader's)
  // must know the producers every other replica remembers. Else, once it leads, a retry of a
  // producer's first batch would be appended a second time, and the next batch of a producer it
  // forgot refused as from an unknown producer (the partition simulation found both).
  function restoredFrom(): { a: Replica; b: Replica } {
    const a = new Replica();
    a.lead(2);
    a.propose(batch({ sequence: 0, records: 2 })); // its answer is lost: the producer will retry
    a.commit(2);
    const b = new Replica(snapshotAt(2, a.state.snapshotData()));
    b.lead(3);
    return { a, b };
  }

  it('a retry of a first batch committed below the snapshot is a duplicate, not a second copy', () => {
    const { b } = restoredFrom();
    expect(b.propose(batch({ sequence: 0, records: 2 }))).toEqual({ kind: 'duplicate', baseOffset: 0, committed: true });
  });

  it('the next batch of a producer known below the snapshot is appended', () => {
    const { b } = restoredFrom();
    expect(b.propose(batch({ sequence: 2 }))).toMatchObject(appendAt(2, 3));
  });
});

describe('batchesBetween', () => {
  it('sums the bytes and the newest timestamp of the batches stored in an index range, and nothing outside it', () => {
    const state = new PartitionState();
    state.restore(snapshotAt(1, encodePartitionSnapshot({ nextOffset: 0, producers: { producers: [] } })));
    const entries = [2, 3, 4].map((index, i) => ({ index, term: 1, type: 'normal' as const, data: encodeRecordBatch({ baseOffset: BigInt(i), partitionLeaderEpoch: 1, producerId: -1n, producerEpoch: -1, baseSequence: -1, compression: 'none', timestampType: 'create', records: [{ timestamp: 1000 * (i + 1), key: null, value: new Uint8Array(i + 1), headers: [] }] }) }));
    state.apply(entries);
    const held = state.batches();
    expect(state.batchesBetween(2, 4)).toEqual({ bytes: held[0]!.bytes + held[1]!.bytes, maxTimestamp: 2000 });
    expect(state.batchesBetween(4, 100)).toEqual({ bytes: held[2]!.bytes, maxTimestamp: 3000 });
    expect(state.batchesBetween(5, 9)).toEqual({ bytes: 0, maxTimestamp: Number.NEGATIVE_INFINITY });
  });
});
