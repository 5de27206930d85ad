// PartitionChecker judges a partition simulation from the outside, as RaftChecker judges Raft: it
// hears every batch a replica applies, every snapshot a replica restores, every acknowledgement a
// producer receives and every replica's final state, and throws InvariantViolation the moment one
// of these properties fails:
//   - agreement: every replica holds the same bytes at every offset (checked against the one
//     committed partition log the checker builds from what replicas apply; a replica restored from
//     a snapshot joins it at the snapshot's offset);
//   - no loss: an acknowledged batch is in that log at its acknowledged offset, readable there on
//     every replica that holds the offset, and still there at the end;
//   - no duplicates and per-producer order: each producer's batches appear in the log once each,
//     in the order the producer made them, without gaps;
//   - a leader knows every producer whose batches it applied (fewer producers than the table's
//     bound here): it never answers UnknownProducerId to one;
//   - the high watermark never goes back on a replica, except across a restart from its snapshot,
//     and then it is back to at least what it was once the replica re-applied as far as before;
//     at one Raft index every replica has the same high watermark.
import { readBatchHeader } from '../../src/partition/record-batch.js';
import type { PartitionState } from '../../src/partition/partition-state.js';
import { isBatchEntry } from '../../src/partition/partition-state.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import { InvariantViolation } from './raft-checker.js';

function violation(property: string, detail: string): never {
  throw new InvariantViolation(property, detail);
}

/** crcCoveredStart: a batch's bytes from here on are the producer's own (the leader patches only what lies before). */
const crcCoveredStart = 21;

/** producerBatchKey identifies a batch as its producer encoded it, whatever offset and epoch a leader gave it. */
export function producerBatchKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(crcCoveredStart)).toString('hex');
}

/** ProducedBatch names a batch as the simulated producer made it: its producer and its position in that producer's stream. */
export interface ProducedBatch {
  readonly producerId: bigint;
  /** number counts the producer's batches from 0; it survives an epoch bump (sequences do not). */
  readonly number: number;
}

/** CommittedBatch is one batch of the committed partition log, as the first replica to apply it had it. */
interface CommittedBatch {
  readonly baseOffset: number;
  readonly nextOffset: number;
  readonly bytesHex: string;
  readonly batch: ProducedBatch;
  readonly node: NodeId;
  readonly raftIndex: number;
}

/** ReplicaView is how the checker reads a replica: its state and the batch bytes at a Raft index of its log. */
export interface ReplicaView {
  readonly node: NodeId;
  readonly state: PartitionState;
  /** read returns the bytes of the committed batch starting at offset, through state.lookup and the Raft log, or why not. */
  read(offset: number): { kind: 'batch'; bytes: Uint8Array } | { kind: 'outOfRange' } | { kind: 'atEnd' };
}

/** HighWatermarkMemory is what the checker remembers of one replica's high watermark. */
interface HighWatermarkMemory {
  incarnation: number;
  highWatermark: number;
  appliedIndex: number;
  /** owed: after a restart, the high watermark the replica had at appliedIndex before it, until it gets back there. */
  owed: { highWatermark: number; appliedIndex: number } | undefined;
}

export class PartitionChecker {
  /** log[offset]: the committed batch starting at offset. */
  private readonly log = new Map<number, CommittedBatch>();
  private logEnd = 0;
  /** highWatermarkAt[raftIndex]: the high watermark of the first replica to apply (or restore) up to raftIndex. */
  private readonly highWatermarkAt = new Map<number, { node: NodeId; highWatermark: number }>();
  private readonly replicas = new Map<NodeId, HighWatermarkMemory>();
  /** produced[key]: the batch a producer's bytes stand for, whatever offset a leader gave them. */
  private readonly produced = new Map<string, ProducedBatch>();
  /** lastNumber[producerId]: the number of the producer's latest batch in the log. */
  private readonly lastNumber = new Map<bigint, number>();
  /** firstBatch[producerId]: the producer's first batch in the log. */
  private readonly firstBatch = new Map<bigint, CommittedBatch>();
  /** acknowledged[`producer/number`]: the offset the producer was told. */
  private readonly acknowledgedAt = new Map<string, number>();
  /** batches counts the batches in the committed log; acknowledgements the acks heard (repeats included). */
  batches = 0;
  acknowledgements = 0;
  restores = 0;
  reads = 0;

  /** produce registers the bytes of a batch a producer is about to send. */
  produce(bytes: Uint8Array, batch: ProducedBatch): void {
    this.produced.set(producerBatchKey(bytes), batch);
  }

  /** restored: a replica restored its state from a snapshot, at a start (a new incarnation) or by installing one. */
  restored(options: { node: NodeId; incarnation: number; snapshotIndex: number; state: PartitionState }): void {
    const { node, incarnation, snapshotIndex, state } = options;
    this.restores++;
    const memory = this.replicas.get(node);
    const highWatermark = state.highWatermark;
    if (state.logStartOffset !== highWatermark) violation('a restored replica holds nothing below its snapshot', `node ${node} restored at ${snapshotIndex} with log start ${state.logStartOffset}, high watermark ${highWatermark}`);
    if (highWatermark > this.logEnd) violation('a snapshot stands for committed batches only', `node ${node} restored high watermark ${highWatermark} beyond the committed log's end ${this.logEnd}`);
    if (highWatermark < this.logEnd && !this.log.has(highWatermark)) violation('a snapshot ends at a batch boundary', `node ${node} restored high watermark ${highWatermark}, no committed batch starts there`);
    this.agreeAtIndex(node, snapshotIndex, highWatermark);
    if (memory === undefined || memory.incarnation !== incarnation) {
      // A start: the replica may come back lower than it was, and owes what it had.
      const owed = memory === undefined ? undefined : (memory.owed ?? { highWatermark: memory.highWatermark, appliedIndex: memory.appliedIndex });
      this.replicas.set(node, { incarnation, highWatermark, appliedIndex: snapshotIndex, owed });
      this.settleOwed(node);
      return;
    }
    if (highWatermark < memory.highWatermark) violation('the high watermark never goes back', `node ${node} installed a snapshot at ${snapshotIndex} with high watermark ${highWatermark}, had ${memory.highWatermark}`);
    memory.highWatermark = highWatermark;
    memory.appliedIndex = snapshotIndex;
    this.settleOwed(node);
  }

  /** applied: a replica applied entry; state is its state after it. */
  applied(options: { node: NodeId; incarnation: number; entry: Entry; state: PartitionState }): void {
    const { node, incarnation, entry, state } = options;
    const memory = this.replicas.get(node);
    if (memory === undefined || memory.incarnation !== incarnation) violation('a replica starts from a snapshot', `node ${node} applied ${entry.index} before restoring one`);
    if (isBatchEntry(entry)) this.appliedBatch(node, entry, state);
    const highWatermark = state.highWatermark;
    if (highWatermark < memory.highWatermark) violation('the high watermark never goes back', `node ${node} went from ${memory.highWatermark} to ${highWatermark} applying ${entry.index}`);
    memory.highWatermark = highWatermark;
    memory.appliedIndex = entry.index;
    this.agreeAtIndex(node, entry.index, highWatermark);
    this.settleOwed(node);
  }

  private appliedBatch(node: NodeId, entry: Entry, state: PartitionState): void {
    const header = readBatchHeader(entry.data);
    const baseOffset = Number(header.baseOffset);
    const nextOffset = baseOffset + header.lastOffsetDelta + 1;
    const bytesHex = Buffer.from(entry.data).toString('hex');
    if (state.highWatermark !== nextOffset) violation('applying a batch moves the high watermark to its end', `node ${node} applied [${baseOffset}, ${nextOffset}) at ${entry.index}, high watermark ${state.highWatermark}`);
    if (baseOffset < this.logEnd) {
      const known = this.log.get(baseOffset);
      if (known === undefined || known.bytesHex !== bytesHex) {
        violation('every replica holds the same bytes at every offset', `node ${node} applied a batch at ${baseOffset} (index ${entry.index}): ${this.describe(entry.data)}; node ${known?.node ?? '?'} has ${known === undefined ? 'no batch starting there' : `${this.describeKnown(known)} (index ${known.raftIndex})`}`);
      }
      return;
    }
    if (baseOffset !== this.logEnd) violation('the committed log has no gaps', `node ${node} applied a batch at ${baseOffset}, the log ends at ${this.logEnd}`);
    const batch = this.produced.get(producerBatchKey(entry.data));
    if (batch === undefined) violation('the log holds only what producers sent', `node ${node} applied an unknown batch at ${baseOffset}`);
    this.appendToLog({ baseOffset, nextOffset, bytesHex, batch, node, raftIndex: entry.index });
  }

  private appendToLog(committed: CommittedBatch): void {
    const { batch } = committed;
    const last = this.lastNumber.get(batch.producerId) ?? -1;
    if (batch.number <= last) violation('no duplicates, in order', `producer ${batch.producerId} batch ${batch.number} committed at ${committed.baseOffset}, after its batch ${last}: ${this.describePrefix(batch.producerId)}`);
    if (batch.number !== last + 1) violation('a producer\'s batches have no gaps', `producer ${batch.producerId} batch ${batch.number} committed at ${committed.baseOffset}, right after its batch ${last}`);
    this.lastNumber.set(batch.producerId, batch.number);
    if (!this.firstBatch.has(batch.producerId)) this.firstBatch.set(batch.producerId, committed);
    this.log.set(committed.baseOffset, committed);
    this.logEnd = committed.nextOffset;
    this.batches++;
  }

  /**
   * unknownProducer: node, leading, answered UnknownProducerId to producerId. Its state is that of
   * its log up to its high watermark, so that log must hold no batch of the producer.
   */
  unknownProducer(options: { node: NodeId; producerId: bigint; state: PartitionState }): void {
    const { node, producerId, state } = options;
    const first = this.firstBatch.get(producerId);
    if (first === undefined || first.nextOffset > state.highWatermark) return;
    violation(
      'a leader knows every producer whose batches it applied',
      `node ${node} (log start ${state.logStartOffset}, high watermark ${state.highWatermark}, ${state.producers.size} producers known) answered UnknownProducerId to producer ${producerId}, whose ${this.describeKnown(first)} is below its high watermark`,
    );
  }

  /**
   * acknowledged: a producer was told that batch is at baseOffset (acks=all). The batch must be in
   * the committed log there (the leader applied it before answering), readable there on every
   * replica holding the offset, and told the same offset every time.
   */
  acknowledged(options: { batch: ProducedBatch; baseOffset: number; replicas: readonly ReplicaView[] }): void {
    const { batch, baseOffset } = options;
    this.acknowledgements++;
    const key = `${batch.producerId}/${batch.number}`;
    const earlier = this.acknowledgedAt.get(key);
    if (earlier !== undefined && earlier !== baseOffset) violation('a batch is acknowledged at one offset', `producer ${batch.producerId} batch ${batch.number} acknowledged at ${baseOffset}, earlier at ${earlier}`);
    this.acknowledgedAt.set(key, baseOffset);
    const known = this.log.get(baseOffset);
    if (known === undefined || known.batch.producerId !== batch.producerId || known.batch.number !== batch.number) {
      violation('nothing acknowledged is lost', `producer ${batch.producerId} batch ${batch.number} acknowledged at ${baseOffset}, the committed log has ${known === undefined ? 'no batch starting there' : this.describeKnown(known)}`);
    }
    for (const replica of options.replicas) this.readable(replica, known);
  }

  /** readable: a replica whose log holds offset returns the committed bytes there. */
  private readable(replica: ReplicaView, known: CommittedBatch): void {
    const { state } = replica;
    if (known.baseOffset < state.logStartOffset || known.baseOffset >= state.highWatermark) return;
    this.reads++;
    const read = replica.read(known.baseOffset);
    if (read.kind !== 'batch' || Buffer.from(read.bytes).toString('hex') !== known.bytesHex) {
      violation('an acknowledged batch is readable at its offset', `node ${replica.node} (log start ${state.logStartOffset}, high watermark ${state.highWatermark}) read ${read.kind === 'batch' ? this.describe(read.bytes) : read.kind} at ${known.baseOffset}, committed ${this.describeKnown(known)}`);
    }
  }

  /**
   * converged: after the liveness phase every replica applied everything: each has the committed
   * log's end as high watermark, every offset it holds reads back the committed batch, and every
   * acknowledged batch is still in the log.
   */
  converged(replicas: readonly ReplicaView[]): void {
    for (const replica of replicas) {
      const { state } = replica;
      if (state.highWatermark !== this.logEnd) violation('replicas converge', `node ${replica.node} has high watermark ${state.highWatermark}, the committed log ends at ${this.logEnd}`);
      for (let offset = state.logStartOffset; offset < state.highWatermark; ) {
        const known = this.log.get(offset);
        if (known === undefined) violation('a replica\'s log starts at a batch boundary', `node ${replica.node} holds offset ${offset}, no committed batch starts there`);
        this.readable(replica, known);
        offset = known.nextOffset;
      }
      const atEnd = replica.read(state.highWatermark).kind;
      const beyond = replica.read(state.highWatermark + 1).kind;
      if (atEnd !== 'atEnd' || beyond !== 'outOfRange') violation('reads stop at the high watermark', `node ${replica.node} read ${atEnd} at its high watermark ${state.highWatermark} and ${beyond} past it`);
    }
    for (const [key, offset] of this.acknowledgedAt) {
      const known = this.log.get(offset);
      if (known === undefined || `${known.batch.producerId}/${known.batch.number}` !== key) violation('nothing acknowledged is lost', `batch ${key} acknowledged at ${offset} is not there at the end`);
    }
  }

  private agreeAtIndex(node: NodeId, raftIndex: number, highWatermark: number): void {
    const known = this.highWatermarkAt.get(raftIndex);
    if (known === undefined) this.highWatermarkAt.set(raftIndex, { node, highWatermark });
    else if (known.highWatermark !== highWatermark) violation('replicas at one index have one high watermark', `node ${node} has ${highWatermark} at index ${raftIndex}, node ${known.node} had ${known.highWatermark}`);
  }

  private settleOwed(node: NodeId): void {
    const memory = this.replicas.get(node)!;
    const owed = memory.owed;
    if (owed === undefined || memory.appliedIndex < owed.appliedIndex) return;
    if (memory.highWatermark < owed.highWatermark) violation('a restarted replica gets its high watermark back', `node ${node} re-applied to ${memory.appliedIndex} with high watermark ${memory.highWatermark}, had ${owed.highWatermark} at ${owed.appliedIndex} before its restart`);
    memory.owed = undefined;
  }

  private describe(bytes: Uint8Array): string {
    const header = readBatchHeader(bytes);
    const batch = this.produced.get(producerBatchKey(bytes));
    return `[${header.baseOffset}+${header.lastOffsetDelta + 1}] producer ${header.producerId} epoch ${header.producerEpoch} seq ${header.baseSequence} leaderEpoch ${header.partitionLeaderEpoch}${batch === undefined ? '' : ` (batch ${batch.number})`}`;
  }

  private describeKnown(known: CommittedBatch): string {
    return `producer ${known.batch.producerId} batch ${known.batch.number} [${known.baseOffset}, ${known.nextOffset})`;
  }

  private describePrefix(producerId: bigint): string {
    const entries = [...this.log.values()].filter((known) => known.batch.producerId === producerId).slice(-6);
    return entries.map((known) => `${known.batch.number}@${known.baseOffset}`).join(' ');
  }
}
