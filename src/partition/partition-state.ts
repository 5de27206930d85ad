// PartitionState is the state machine of one partition replica: the Raft group's committed entries
// are record batches (RecordBatch v2, offsets already assigned by the leader that proposed them).
// Applying one records where its offsets live in the Raft log, moves the high watermark and
// updates the idempotent-producer table. The batches themselves stay in the Raft log: that log
// is the partition's data log, read back by Fetch. Pure: no I/O, no clock.
//
// Offsets are assigned at propose time by the leader (PartitionLeader below), from the end offset
// of its own log. Raft's Log Matching property makes that safe: an entry that survives at index i
// comes with every entry before it unchanged, so the offsets computed from that prefix stay right.
// Invariant (checked on apply): each batch starts exactly at the high watermark.
import { assert } from '../raft/assert.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { TypedColumns } from '../typed-columns.js';
import { batchHeaderBytes, readBatchHeader, withBaseOffset, type BatchHeader } from './record-batch.js';
import { ProducerStateTable, type ProducerCheck, type ProducerEntrySnapshot, type ProducerStateSnapshot, type RememberedBatch } from './producer-state.js';

/**
 * PartitionSnapshot is what a partition's Raft snapshot carries: the offset its next batch starts
 * at, the idempotent-producer table, and for a partition whose records are replayed into a state
 * (the offsets topic: see BatchListener) that state. The table and the state may be newer than the
 * snapshot's index (they are taken at the applied index); replaying the batches after the index
 * over them changes nothing, because ProducerStateTable.apply ignores a batch it already holds and
 * a replayed state is built of last-write-wins records (GroupStore.compacted).
 */
export interface PartitionSnapshot {
  readonly nextOffset: number;
  readonly producers: ProducerStateSnapshot;
  /** recordState: the BatchListener's state; absent for a partition without one. */
  readonly recordState?: Uint8Array;
}

/**
 * Layout, big-endian: version u8 (2 or 3), nextOffset u64, producers u32, then each producer: id i64,
 * epoch i16, batches u8, then each batch: baseSequence i32, lastSequence i32, baseOffset i64; version
 * 3 then has the record state: length u32 and its bytes. Version 1 was nextOffset alone.
 */
const partitionSnapshotVersion = 2;
const recordStateSnapshotVersion = 3;
const producerBytes = 8 + 2 + 1;
const rememberedBatchBytes = 4 + 4 + 8;

export function encodePartitionSnapshot(snapshot: PartitionSnapshot): Uint8Array {
  const { nextOffset, producers, recordState } = snapshot;
  assert(Number.isSafeInteger(nextOffset) && nextOffset >= 0, 'a snapshot offset is a safe non-negative integer', { nextOffset });
  const producersEnd = 1 + 8 + 4 + producers.producers.reduce((sum, producer) => sum + producerBytes + producer.batches.length * rememberedBatchBytes, 0);
  const size = producersEnd + (recordState === undefined ? 0 : 4 + recordState.length);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, recordState === undefined ? partitionSnapshotVersion : recordStateSnapshotVersion);
  view.setBigUint64(1, BigInt(nextOffset));
  view.setUint32(9, producers.producers.length);
  let at = 13;
  for (const producer of producers.producers) {
    view.setBigInt64(at, producer.producerId);
    view.setInt16(at + 8, producer.producerEpoch);
    view.setUint8(at + 10, producer.batches.length);
    at += producerBytes;
    for (const batch of producer.batches) {
      view.setInt32(at, batch.baseSequence);
      view.setInt32(at + 4, batch.lastSequence);
      view.setBigInt64(at + 8, batch.baseOffset);
      at += rememberedBatchBytes;
    }
  }
  assert(at === producersEnd, 'a partition snapshot wrote the producers size it computed', { at, producersEnd });
  if (recordState !== undefined) {
    view.setUint32(at, recordState.length);
    bytes.set(recordState, at + 4);
  }
  return bytes;
}

/** decodePartitionSnapshot reads a snapshot's data; empty data (the very first state) starts at 0 with no producers. */
export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.length === 0) return { nextOffset: 0, producers: { producers: [] } };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  assert(version >= 1 && version <= recordStateSnapshotVersion, 'a partition snapshot has a known layout', { version });
  const nextOffset = Number(view.getBigUint64(1));
  if (version === 1) return { nextOffset, producers: { producers: [] } };
  const producers: ProducerEntrySnapshot[] = [];
  let at = 13;
  for (let i = view.getUint32(9); i > 0; i--) {
    const producerId = view.getBigInt64(at);
    const producerEpoch = view.getInt16(at + 8);
    const count = view.getUint8(at + 10);
    at += producerBytes;
    const batches: RememberedBatch[] = [];
    for (let b = 0; b < count; b++, at += rememberedBatchBytes) batches.push({ baseSequence: view.getInt32(at), lastSequence: view.getInt32(at + 4), baseOffset: view.getBigInt64(at + 8) });
    producers.push({ producerId, producerEpoch, batches });
  }
  if (version === partitionSnapshotVersion) {
    assert(at === data.length, 'a partition snapshot holds nothing after its producers', { at, length: data.length });
    return { nextOffset, producers: { producers } };
  }
  const stateBytes = view.getUint32(at);
  assert(at + 4 + stateBytes === data.length, 'a partition snapshot holds its record state and nothing after it', { at, stateBytes, length: data.length });
  return { nextOffset, producers: { producers }, recordState: data.subarray(at + 4) };
}

/** isBatchEntry tells a record-batch entry from a leader's empty entry or a membership change. */
export function isBatchEntry(entry: Entry): boolean {
  return entry.type === 'normal' && entry.data.length >= batchHeaderBytes;
}

/** BatchLocation is where one committed batch lives. */
export interface BatchLocation {
  readonly baseOffset: number;
  /** nextOffset: the offset after the batch's last record. */
  readonly nextOffset: number;
  readonly raftIndex: number;
  readonly maxTimestamp: number;
  readonly bytes: number;
}

/** OffsetLookup is where a read from an offset starts. */
export type OffsetLookup =
  | { readonly kind: 'found'; readonly raftIndex: number }
  | { readonly kind: 'atEnd' }
  | { readonly kind: 'outOfRange'; readonly logStartOffset: number; readonly highWatermark: number };

/**
 * OffsetIndex maps offsets to Raft indexes for every committed batch still held, oldest first.
 * Invariant: batches are contiguous in offsets (batch i + 1 starts at batch i's nextOffset), so
 * only the last batch's nextOffset is kept apart. The batches live in typed arrays (28 bytes a
 * batch, outside the heap): an object a batch took 92 bytes of heap, 276 MiB for 3 million
 * single-record batches.
 */
class OffsetIndex {
  private readonly batches = new TypedColumns({ baseOffset: 'f64', raftIndex: 'f64', maxTimestamp: 'f64', bytes: 'u32' });
  private lastNextOffset = 0;

  get size(): number {
    return this.batches.length;
  }

  push(location: BatchLocation): void {
    const contiguous = this.size === 0 || (location.baseOffset === this.lastNextOffset && location.raftIndex > this.raftIndexAt(this.size - 1));
    if (!contiguous) assert(false, 'batches are contiguous in offsets and rise in index', { ...location });
    const at = this.batches.append();
    this.batches.set('baseOffset', at, location.baseOffset);
    this.batches.set('raftIndex', at, location.raftIndex);
    this.batches.set('maxTimestamp', at, location.maxTimestamp);
    this.batches.set('bytes', at, location.bytes);
    this.lastNextOffset = location.nextOffset;
  }

  /** at returns the batch at position (0 is the oldest held), as a new object. */
  at(position: number): BatchLocation {
    return {
      baseOffset: this.baseOffsetAt(position),
      nextOffset: this.nextOffsetAt(position),
      raftIndex: this.raftIndexAt(position),
      maxTimestamp: this.maxTimestampAt(position),
      bytes: this.bytesAt(position),
    };
  }

  baseOffsetAt(position: number): number {
    return this.batches.get('baseOffset', position);
  }

  nextOffsetAt(position: number): number {
    return position + 1 < this.size ? this.batches.get('baseOffset', position + 1) : this.lastNextOffset;
  }

  raftIndexAt(position: number): number {
    return this.batches.get('raftIndex', position);
  }

  bytesAt(position: number): number {
    return this.batches.get('bytes', position);
  }

  maxTimestampAt(position: number): number {
    return this.batches.get('maxTimestamp', position);
  }

  /** positionOf returns the position of the batch holding offset, or -1. */
  positionOf(offset: number): number {
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (offset < this.baseOffsetAt(mid)) hi = mid - 1;
      else if (offset >= this.nextOffsetAt(mid)) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** positionAtOrAfter returns the position of the first batch stored at or after raftIndex (size when none). */
  positionAtOrAfter(raftIndex: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.raftIndexAt(mid) < raftIndex) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** dropBelow forgets the batches stored below raftIndex. */
  dropBelow(raftIndex: number): void {
    this.batches.dropFirst(this.positionAtOrAfter(raftIndex));
  }

  clear(): void {
    this.batches.clear();
    this.lastNextOffset = 0;
  }
}

/**
 * BatchListener hears every committed batch of a partition in log order, and keeps a state built
 * from them (the offsets topic's GroupStore). That state goes into the partition's snapshots, so
 * that the batches it was built from may be dropped (compaction).
 */
export interface BatchListener {
  batch(bytes: Uint8Array): void;
  /** snapshot is the state now, after the last batch heard. */
  snapshot(): Uint8Array;
  /** restore replaces the state with a snapshot's (undefined: a snapshot without one, so empty). */
  restore(state: Uint8Array | undefined): void;
}

/** PartitionState: see the file comment. It is the StateMachine of a partition's Raft group. */
export class PartitionState {
  private readonly index = new OffsetIndex();
  private logStart = 0;
  private highWatermarkValue = 0;
  private bytesHeld = 0;
  private producersTable = new ProducerStateTable();
  private readonly listeners = new Set<() => void>();
  /** batchListener hears every committed batch in log order, and a restore (the internal offsets topic replays its records this way). */
  private batchListener: BatchListener | undefined;

  /** highWatermark: the offset after the last committed record; reads stop before it. */
  get highWatermark(): number {
    return this.highWatermarkValue;
  }

  /** logStartOffset: the first offset still held. */
  get logStartOffset(): number {
    return this.logStart;
  }

  /** bytes: the size of the committed batches held. */
  get bytes(): number {
    return this.bytesHeld;
  }

  get producers(): ProducerStateTable {
    return this.producersTable;
  }

  /** onBatches sets the one listener of committed batches (and of restores, which start the log over), before anything is applied. */
  onBatches(listener: BatchListener): void {
    this.batchListener = listener;
    listener.restore(undefined);
  }

  /** keepsRecordState says whether a listener builds a state from the batches, which snapshots carry. */
  get keepsRecordState(): boolean {
    return this.batchListener !== undefined;
  }

  /** onAdvance registers a listener called when the high watermark moves; returns its remover. */
  onAdvance(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(entries: readonly Entry[]): void {
    const before = this.highWatermarkValue;
    for (const entry of entries) if (isBatchEntry(entry)) this.applyBatch(entry);
    if (this.highWatermarkValue !== before) for (const listener of [...this.listeners]) listener();
  }

  private applyBatch(entry: Entry): void {
    const header = readBatchHeader(entry.data);
    const baseOffset = Number(header.baseOffset);
    assert(baseOffset === this.highWatermarkValue, 'a committed batch starts at the high watermark', { baseOffset, highWatermark: this.highWatermarkValue, index: entry.index });
    const nextOffset = baseOffset + header.lastOffsetDelta + 1;
    this.index.push({ baseOffset, nextOffset, raftIndex: entry.index, maxTimestamp: Number(header.maxTimestamp), bytes: entry.data.length });
    this.bytesHeld += entry.data.length;
    this.highWatermarkValue = nextOffset;
    this.producersTable.apply({ producerId: header.producerId, producerEpoch: header.producerEpoch, baseSequence: header.baseSequence, recordCount: header.lastOffsetDelta + 1, baseOffset: header.baseOffset });
    this.batchListener?.batch(entry.data);
  }

  /** snapshotData is the state after the last applied entry. */
  snapshotData(): Uint8Array {
    return encodePartitionSnapshot({ nextOffset: this.highWatermarkValue, producers: this.producersTable.snapshot(), ...this.recordState() });
  }

  /** snapshotDataBelow is the data of a snapshot standing for the batches stored below raftIndex (retention, compaction): their next offset, and the producer table and record state (newer: see PartitionSnapshot). */
  snapshotDataBelow(raftIndex: number): Uint8Array {
    return encodePartitionSnapshot({ nextOffset: this.nextOffsetBelow(raftIndex), producers: this.producersTable.snapshot(), ...this.recordState() });
  }

  private recordState(): { recordState?: Uint8Array } {
    return this.batchListener === undefined ? {} : { recordState: this.batchListener.snapshot() };
  }

  /** restore starts over from a snapshot: nothing held, the next batch at the snapshot's offset. */
  restore(snapshot: Snapshot): void {
    const { nextOffset, producers, recordState } = decodePartitionSnapshot(snapshot.data);
    this.index.clear();
    this.logStart = nextOffset;
    this.highWatermarkValue = nextOffset;
    this.bytesHeld = 0;
    this.producersTable = ProducerStateTable.restore(producers);
    this.batchListener?.restore(recordState);
    for (const listener of [...this.listeners]) listener();
  }

  /** lookup says where a read of offset starts in the Raft log. */
  lookup(offset: number): OffsetLookup {
    if (offset === this.highWatermarkValue) return { kind: 'atEnd' };
    if (offset < this.logStart || offset > this.highWatermarkValue) return { kind: 'outOfRange', logStartOffset: this.logStart, highWatermark: this.highWatermarkValue };
    const position = this.index.positionOf(offset);
    assert(position >= 0, 'every offset between log start and high watermark is in a held batch', { offset });
    return { kind: 'found', raftIndex: this.index.raftIndexAt(position) };
  }

  /** lastBatchIndex is the Raft index of the last committed batch (0 when none is held). */
  lastBatchIndex(): number {
    return this.index.size === 0 ? 0 : this.index.raftIndexAt(this.index.size - 1);
  }

  /** offsetForTimestamp returns the first offset of the first batch with a timestamp >= timestampMs, or the high watermark. */
  offsetForTimestamp(timestampMs: number): number {
    for (let position = 0; position < this.index.size; position++) {
      if (this.index.maxTimestampAt(position) >= timestampMs) return this.index.baseOffsetAt(position);
    }
    return this.highWatermarkValue;
  }

  /** batches lists the committed batches held, oldest first (a fresh array of fresh objects). */
  batches(): BatchLocation[] {
    const result: BatchLocation[] = [];
    for (let position = 0; position < this.index.size; position++) result.push(this.index.at(position));
    return result;
  }

  /**
   * batchesBetween sums the committed batches stored at Raft indexes [lo, hi): their bytes and
   * their newest timestamp (-Infinity when none), for retention to judge a segment. It visits only
   * those batches.
   */
  batchesBetween(lo: number, hi: number): { bytes: number; maxTimestamp: number } {
    let bytes = 0;
    let maxTimestamp = Number.NEGATIVE_INFINITY;
    for (let position = this.index.positionAtOrAfter(lo); position < this.index.size && this.index.raftIndexAt(position) < hi; position++) {
      bytes += this.index.bytesAt(position);
      maxTimestamp = Math.max(maxTimestamp, this.index.maxTimestampAt(position));
    }
    return { bytes, maxTimestamp };
  }

  /** nextOffsetBelow is the offset after the last batch stored below raftIndex (the log start once they are deleted). */
  nextOffsetBelow(raftIndex: number): number {
    const below = this.index.positionAtOrAfter(raftIndex);
    return below === 0 ? this.logStart : this.index.nextOffsetAt(below - 1);
  }

  /** dropBelow forgets the batches stored below raftIndex (deleted by retention); the log start moves up. */
  dropBelow(raftIndex: number): void {
    const nextOffset = this.nextOffsetBelow(raftIndex);
    const below = this.index.positionAtOrAfter(raftIndex);
    for (let position = 0; position < below; position++) this.bytesHeld -= this.index.bytesAt(position);
    this.index.dropBelow(raftIndex);
    this.logStart = Math.max(this.logStart, nextOffset);
  }
}

/** PrepareOutcome is what the leader does with a batch a producer sent. */
export type PrepareOutcome =
  | { readonly kind: 'append'; readonly bytes: Uint8Array; readonly baseOffset: number; readonly nextOffset: number }
  | { readonly kind: 'duplicate'; readonly baseOffset: number; readonly committed: boolean }
  | Exclude<ProducerCheck, { kind: 'append' } | { kind: 'duplicate' } | { kind: 'notIdempotent' }>;

/**
 * PartitionLeader is the leader's view of the log end of its own term: the offset the next
 * proposed batch starts at, and the producer table with every proposed batch applied, so that a
 * retry of a batch still in flight is recognised. It is started over at each term from the
 * entries after the applied index (those are proposed but not applied yet).
 */
export class PartitionLeader {
  private nextOffset = 0;
  private pendingProducers = new ProducerStateTable();
  term = -1;

  constructor(private readonly state: PartitionState) {}

  /** begin starts a term: pendingEntries are the log's entries after the applied index, in order. */
  begin(term: number, pendingEntries: readonly Entry[]): void {
    this.term = term;
    this.nextOffset = this.state.highWatermark;
    this.pendingProducers = ProducerStateTable.restore(this.state.producers.snapshot());
    for (const entry of pendingEntries) {
      if (!isBatchEntry(entry)) continue;
      const header = readBatchHeader(entry.data);
      assert(Number(header.baseOffset) === this.nextOffset, 'proposed batches follow each other in offsets', { index: entry.index });
      this.record(header);
    }
  }

  private record(header: BatchHeader): void {
    this.pendingProducers.apply({ producerId: header.producerId, producerEpoch: header.producerEpoch, baseSequence: header.baseSequence, recordCount: header.lastOffsetDelta + 1, baseOffset: header.baseOffset });
    this.nextOffset = Number(header.baseOffset) + header.lastOffsetDelta + 1;
  }

  /**
   * prepare decides what to do with a validated batch: give it the next offsets (the bytes with
   * baseOffset and partitionLeaderEpoch set; the CRC does not cover them), answer a duplicate
   * with the original's offset, or refuse. Changes nothing: call proposed() once Raft took it.
   */
  prepare(bytes: Uint8Array, header: BatchHeader): PrepareOutcome {
    const check = this.pendingProducers.check({ producerId: header.producerId, producerEpoch: header.producerEpoch, baseSequence: header.baseSequence, recordCount: header.lastOffsetDelta + 1 });
    if (check.kind === 'duplicate') {
      const baseOffset = Number(check.baseOffset);
      return { kind: 'duplicate', baseOffset, committed: baseOffset < this.state.highWatermark };
    }
    if (check.kind !== 'append' && check.kind !== 'notIdempotent') return check;
    const baseOffset = this.nextOffset;
    const patched = withBaseOffset(bytes, { baseOffset: BigInt(baseOffset), partitionLeaderEpoch: this.term });
    return { kind: 'append', bytes: patched, baseOffset, nextOffset: baseOffset + header.lastOffsetDelta + 1 };
  }

  /** proposed records that Raft accepted the prepared bytes. */
  proposed(bytes: Uint8Array): void {
    const header = readBatchHeader(bytes);
    assert(Number(header.baseOffset) === this.nextOffset, 'batches are proposed in the order they were prepared', { baseOffset: String(header.baseOffset), nextOffset: this.nextOffset });
    this.record(header);
  }
}
