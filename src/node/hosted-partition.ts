// HostedPartition is one partition replica on this node: its Raft group's storage and state
// machine, and what the Broker service asks of it: produce (on the leader), fetch (on any replica,
// never past the high watermark), list offsets (the end only from a leader that knows it), and
// retention and compaction.
import type { NodeId } from '../raft/types.js';
import type { TopicConfigs } from '../controller/topic-validation.js';
import {
  DuplicateInFlightError,
  InvalidRecordBatchError,
  NotLeaderError,
  OffsetNotAvailableError,
  OffsetOutOfRangeError,
  OutOfOrderSequenceError,
  ProduceTimeoutError,
  ProducerFencedError,
  UnknownProducerIdError,
} from '../errors.js';
import { PartitionLeader, PartitionState, isBatchEntry, type BatchListener, type PrepareOutcome } from '../partition/partition-state.js';
import { readBatchHeader, validateBatch, type BatchHeader } from '../partition/record-batch.js';
import { defaultRecordBatchLimits } from '../partition/limits.js';
import type { SnapshotStore } from '../storage/snapshot-store.js';
import type { DurableRaftStorage } from './durable-raft-storage.js';
import type { RaftHost } from './raft-host.js';
import type { Clock } from './runtime.js';
import type { Acks, BrokerPartition, FetchAnswer, OffsetSpec, ProduceAnswer } from '../rpc/broker-service.js';
import { partitionDefaults } from './limits.js';

export interface PartitionIdentity {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly groupId: number;
  readonly dir: string;
}

export class HostedPartition implements BrokerPartition {
  readonly state = new PartitionState();
  private readonly leader = new PartitionLeader(this.state);
  private waitingFetches = 0;
  private retention: Promise<unknown> = Promise.resolve();
  /** compactBytesMin: set for a partition whose batches build a state (see replayInto). */
  private compactBytesMin: number | undefined;

  constructor(
    readonly id: PartitionIdentity,
    readonly storage: DurableRaftStorage,
    readonly snapshots: SnapshotStore,
    private readonly host: RaftHost,
    private readonly configs: () => TopicConfigs,
    private readonly clock: Clock,
  ) {}

  get label(): string {
    return `${this.id.topic}-${this.id.partition}`;
  }

  /**
   * replayInto hands every committed batch to listener, which builds a state of them (the offsets
   * topic's groups), and compacts the partition: once the batches held reach compactBytesMin, and
   * twice the size of the latest snapshot (the state the last compaction wrote, or the one this
   * replica installed or restarted from), a snapshot carrying the state replaces
   * them, as Kafka compacts __consumer_offsets. So the log, and what a restart replays, stay
   * bounded. Call before the replica applies anything.
   */
  replayInto(listener: BatchListener, options: { compactBytesMin: number }): void {
    this.state.onBatches(listener);
    this.compactBytesMin = options.compactBytesMin;
  }

  /** produce appends a batch as the partition's leader; it answers once acks are met (acks=0: once proposed). */
  async produce(request: { acks: Acks; batch: Uint8Array; timeoutMs: number }): Promise<ProduceAnswer> {
    const { maxMessageBytes } = this.configs();
    if (request.batch.length > maxMessageBytes) {
      throw new InvalidRecordBatchError('batchLength', `is ${request.batch.length} bytes, above the topic's max.message.bytes of ${maxMessageBytes}`);
    }
    const validation = validateBatch(request.batch, { ...defaultRecordBatchLimits, batchBytesMax: maxMessageBytes });
    if (validation.kind === 'invalid') throw new InvalidRecordBatchError(validation.field, validation.reason);
    let outcome = this.prepare(request.batch, validation.header);
    if (outcome.kind === 'unknownProducer' || outcome.kind === 'outOfOrder') {
      // These refusals are final for the producer, so they must not come from a deposed leader that
      // has not noticed yet (its producer table misses what the new leader appended): confirm
      // leadership with a quorum and apply what it committed, then ask again.
      await this.host.confirmLeadership(this.id.groupId, Math.min(request.timeoutMs, partitionDefaults.leadershipCheckMsMax));
      outcome = this.prepare(request.batch, validation.header);
    }
    if (outcome.kind !== 'append') return this.answerWithoutAppend(outcome, request.acks, validation.header.producerId);
    const appendTimeMs = this.clock.now();
    const proposal = this.host.proposeDurable(this.id.groupId, outcome.bytes, request.acks === -1 ? 'quorum' : request.acks === 1 ? 'leader' : 'none');
    this.leader.proposed(outcome.bytes);
    await withTimeout(this.clock, proposal.done, request.timeoutMs);
    return { baseOffset: outcome.baseOffset, appendTimeMs, replicas: request.acks === -1 ? this.replicasHolding(proposal.index) : 1, duplicate: false, logStartOffset: this.state.logStartOffset };
  }

  /** prepare checks a batch against the producer table as the current leader; throws NotLeaderError elsewhere. */
  private prepare(batch: Uint8Array, header: BatchHeader): PrepareOutcome {
    const status = this.host.status(this.id.groupId);
    if (status === undefined || status.role !== 'leader') throw new NotLeaderError(this.id.groupId, status?.leader ?? 0);
    if (this.leader.term !== status.term) this.leader.begin(status.term, this.host.pendingEntries(this.id.groupId));
    return this.leader.prepare(batch, header);
  }

  private answerWithoutAppend(outcome: Exclude<PrepareOutcome, { kind: 'append' }>, acks: Acks, producerId: bigint): ProduceAnswer {
    const id = Number(producerId);
    switch (outcome.kind) {
      case 'duplicate':
        if (!outcome.committed && acks === -1) throw new DuplicateInFlightError(id, outcome.baseOffset);
        return { baseOffset: outcome.baseOffset, appendTimeMs: -1, replicas: 0, duplicate: true, logStartOffset: this.state.logStartOffset };
      case 'outOfOrder':
        throw new OutOfOrderSequenceError(id, outcome.expectedSequence, outcome.receivedSequence);
      case 'fenced':
        throw new ProducerFencedError(id, outcome.currentEpoch);
      case 'unknownProducer':
        throw new UnknownProducerIdError(id);
      case 'invalid':
        throw new InvalidRecordBatchError(outcome.field, outcome.reason);
    }
  }

  /** replicasHolding counts the voters whose log holds index, this leader included. */
  private replicasHolding(index: number): number {
    const status = this.host.status(this.id.groupId);
    return status?.progress.filter((progress) => !progress.isLearner && progress.match >= index).length ?? 0;
  }

  /** leaderHint is the Raft leader this replica knows (0: none). */
  leaderHint(): NodeId {
    return this.host.status(this.id.groupId)?.leader ?? 0;
  }

  /**
   * fetch reads committed batches from offset, up to maxBytes (at least one batch). When fewer
   * than minBytes are there it waits up to maxWaitMs for more. Throws OffsetOutOfRangeError below
   * the log start, and past the high watermark where that is known to be the end (see
   * knowsTheEnd); past it elsewhere, a follower throws NotLeaderError and a leader waits.
   * Once signal aborts (the caller went away) it stops waiting and answers what is there.
   */
  async fetch(request: { offset: number; maxBytes: number; maxWaitMs: number; minBytes: number }, signal?: AbortSignal): Promise<FetchAnswer> {
    const deadline = this.clock.now() + request.maxWaitMs;
    for (;;) {
      const answer = this.read(request.offset, request.maxBytes);
      const remainingMs = deadline - this.clock.now();
      if (answer.batches.length >= Math.max(1, request.minBytes) || remainingMs <= 0 || signal?.aborted === true) return answer;
      await this.waitForAdvance(remainingMs, signal);
    }
  }

  private read(offset: number, maxBytes: number): FetchAnswer {
    const lookup = this.state.lookup(offset);
    const empty = { highWatermark: this.state.highWatermark, logStartOffset: this.state.logStartOffset, batches: new Uint8Array(0), nextOffset: offset };
    if (lookup.kind === 'outOfRange') {
      if (offset > lookup.highWatermark) {
        // The offset may have been read on a replica that had learned of more commits than this
        // one: then it is not out of range, only not here yet. A consumer told otherwise would
        // reset its position and read the partition again from its start (or from this stale end).
        if (!this.knowsTheEnd()) return empty; // fetch() waits for the high watermark to move
      }
      throw new OffsetOutOfRangeError(this.id.topic, this.id.partition, offset, lookup.logStartOffset, lookup.highWatermark);
    }
    if (lookup.kind === 'atEnd') return empty;
    // A damaged frame stops the node (RaftHost.readingLog) and fails the read.
    const entries = this.host.readingLog(() => this.storage.entries(lookup.raftIndex, this.state.lastBatchIndex() + 1, maxBytes));
    const batches = entries.filter(isBatchEntry).map((entry) => entry.data);
    const last = batches[batches.length - 1];
    if (last === undefined) return empty;
    const header = readBatchHeader(last);
    const nextOffset = Number(header.baseOffset) + header.lastOffsetDelta + 1;
    return { ...empty, batches: Buffer.concat(batches), nextOffset };
  }

  /**
   * knowsTheEnd says whether this replica's high watermark is at least every offset any replica has
   * served, which only a leader can tell: once it has applied an entry of its own term (which
   * follows every entry committed before it) and everything it knows to be committed. A new leader
   * may not have learned its predecessor's last commits yet (false). A follower may lag its leader:
   * it throws NotLeaderError naming the leader, so that the caller asks there.
   */
  private knowsTheEnd(): boolean {
    const status = this.host.status(this.id.groupId);
    if (status?.role !== 'leader') throw new NotLeaderError(this.id.groupId, status?.leader ?? 0);
    return this.leadsCaughtUp();
  }

  /**
   * leadsCaughtUp says whether this replica leads its partition and knows every commit (see
   * knowsTheEnd): what it holds is then at least what any replica was ever answered from, the
   * offsets topic's groups included. (A group coordinator asks less, an applied entry of its
   * term: within its term it acknowledges a commit only once applied, and commit may run ahead
   * of apply for a moment on every write.)
   */
  leadsCaughtUp(): boolean {
    const status = this.host.status(this.id.groupId);
    return status?.role === 'leader' && this.host.appliedTerm(this.id.groupId) === status.term && status.applied >= status.commit;
  }

  /** waitForAdvance resolves when the high watermark moves, timeoutMs pass or signal aborts. */
  private waitForAdvance(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.waitingFetches >= partitionDefaults.waitingFetchesMax) return this.clock.sleep(Math.min(timeoutMs, 100));
    this.waitingFetches++;
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        remove();
        signal?.removeEventListener('abort', done);
        this.waitingFetches--;
        resolve();
      };
      const timer = this.clock.after(timeoutMs, done);
      const remove = this.state.onAdvance(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** waitingFetchCount: the long polls parked on this replica now (at most partitionDefaults.waitingFetchesMax). */
  get waitingFetchCount(): number {
    return this.waitingFetches;
  }

  /**
   * listOffsets answers the earliest, the latest or the first offset at or after a timestamp. Any
   * replica answers the earliest it holds. The others can be the end (the high watermark), which only
   * a leader that knows every commit can tell: a follower throws NotLeaderError, a new leader
   * OffsetNotAvailableError (retriable), as Kafka does (KIP-207). Otherwise a consumer starting at
   * "latest" could be sent back before records another replica has already served.
   */
  listOffset(spec: OffsetSpec): number {
    if (spec.kind === 'earliest') return this.state.logStartOffset;
    if (!this.knowsTheEnd()) throw new OffsetNotAvailableError(this.id.topic, this.id.partition);
    if (spec.kind === 'latest') return this.state.highWatermark;
    return this.state.offsetForTimestamp(spec.timestampMs);
  }

  /**
   * enforceRetention deletes whole segments older than retention.ms, or beyond retention.bytes,
   * never the last segment and never past what is applied; a partition that replays into a state
   * is compacted as replayInto says. Returns the new log start offset.
   */
  enforceRetention(nowMs: number): Promise<number> {
    // One run at a time: two overlapping runs could compact to points out of order.
    const run = this.retention.then(() => this.enforceRetentionOnce(nowMs));
    this.retention = run.catch(() => undefined);
    return run;
  }

  private async enforceRetentionOnce(nowMs: number): Promise<number> {
    const { retentionMs, retentionBytes } = this.configs();
    const segmentStarts = this.storage.log.segmentBaseIndexes();
    let deleteBelow = 0;
    let bytes = this.state.bytes;
    // Segment i holds [segmentStarts[i], segmentStarts[i+1]); the last one is never deleted.
    const latest = this.storage.snapshot();
    const snapshotIndex = latest.metadata.index;
    for (let i = 0; i + 1 < segmentStarts.length; i++) {
      const end = segmentStarts[i + 1]!;
      if (end - 1 <= snapshotIndex) continue;
      if (end - 1 > this.state.lastBatchIndex()) break;
      const { bytes: segmentBytes, maxTimestamp } = this.state.batchesBetween(segmentStarts[i]!, end);
      const expired = retentionMs >= 0 && maxTimestamp < nowMs - retentionMs;
      const oversized = retentionBytes >= 0 && bytes - segmentBytes >= retentionBytes;
      if (!expired && !oversized) break;
      bytes -= segmentBytes;
      deleteBelow = end;
    }
    if (this.compactBytesMin !== undefined && bytes >= Math.max(this.compactBytesMin, 2 * latest.data.length)) deleteBelow = this.state.lastBatchIndex() + 1;
    if (deleteBelow === 0 || deleteBelow - 1 <= snapshotIndex) return this.state.logStartOffset;
    const through = deleteBelow - 1;
    const term = this.storage.term(through);
    const status = this.host.status(this.id.groupId);
    if (term === undefined || status === undefined) return this.state.logStartOffset;
    const data = this.state.snapshotDataBelow(deleteBelow);
    // Reads stop finding the batches first, then the log drops them: a fetch never reaches for a deleted entry.
    this.state.dropBelow(deleteBelow);
    await this.host.compact(this.id.groupId, { metadata: { index: through, term, confState: status.confState }, data });
    return this.state.logStartOffset;
  }
}

function withTimeout<T>(clock: Clock, promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = clock.after(timeoutMs, () => reject(new ProduceTimeoutError(timeoutMs)));
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        reject(error as Error);
      },
    );
  });
}
