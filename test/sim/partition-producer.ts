// SimProducer is an idempotent producer of the partition simulation, as a Kafka client with
// enable.idempotence behaves: it numbers its batches with consecutive sequences, keeps its first
// inFlightMax unacknowledged batches in flight to the node it believes leads, and on any failure
// (an error, a timeout) starts over from its oldest unacknowledged batch, resending every batch
// with the SAME epoch, sequence and bytes, to the leader it was told about or to another node.
// It never bumps its epoch: a KIP-360 bump on UnknownProducerId renumbers batches that may be
// committed already, so it would duplicate them whenever a stale leader answers; a producer that
// keeps its sequences makes every duplicate the broker's fault.
import { encodeRecordBatch } from '../../src/partition/record-batch.js';
import { randomInt, type Random } from '../../src/raft/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import type { ProduceAnswer, PartitionSimulation } from './partition-simulation.js';

/** ProducerTiming bounds a producer: in virtual ms, and in batches. */
export interface ProducerTiming {
  readonly requestTimeoutMs: number;
  readonly retryBackoffMsMax: number;
  /** queuedBatchesMax bounds the batches made but not acknowledged; beyond it the producer makes none. */
  readonly queuedBatchesMax: number;
  readonly recordsPerBatchMax: number;
}

/** QueuedBatch is a batch made and not yet acknowledged (or acknowledged after an older one that is not). */
interface QueuedBatch {
  readonly number: number;
  /** bytes: the batch as encoded once, with its sequence; every retry sends these. */
  readonly bytes: Uint8Array;
  acknowledged: boolean;
}

const utf8 = new TextEncoder();

export class SimProducer {
  private readonly epoch = 0;
  private nextSequence = 0;
  private nextNumber = 0;
  /** queue: the batches not yet acknowledged in order (acknowledged ones leave once all before them did). */
  private readonly queue: QueuedBatch[] = [];
  /** attempt changes at every restart from the oldest batch: answers to an older attempt only count if they acknowledge. */
  private attempt = 0;
  /** sent: how many batches of the queue this attempt has sent (the queue's first `sent`). */
  private sent = 0;
  private waitingToRetry = false;
  private target: NodeId;
  acknowledged = 0;

  constructor(
    readonly producerId: bigint,
    private readonly sim: PartitionSimulation,
    private readonly random: Random,
    private readonly options: ProducerTiming & { readonly inFlightMax: number },
  ) {
    this.target = this.randomNode();
  }

  /** idle: nothing made is unacknowledged. */
  get idle(): boolean {
    return this.queue.length === 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** make creates the next batch (1..recordsPerBatchMax records) unless the queue is full, and sends what it may. */
  make(): void {
    if (this.queue.length >= this.options.queuedBatchesMax) return;
    const number = this.nextNumber++;
    const recordCount = randomInt(this.random, 1, this.options.recordsPerBatchMax);
    const bytes = this.encode({ number, recordCount, baseSequence: this.nextSequence });
    this.nextSequence += recordCount;
    this.queue.push({ number, bytes, acknowledged: false });
    this.pump();
  }

  /** encode returns the batch's bytes (the same at every retry) and registers them with the checker. */
  private encode(batch: { number: number; recordCount: number; baseSequence: number }): Uint8Array {
    const records = Array.from({ length: batch.recordCount }, (_, i) => ({
      timestamp: this.sim.now,
      key: null,
      value: utf8.encode(`p${this.producerId}-b${batch.number}-r${i}`),
      headers: [],
    }));
    const bytes = encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, producerId: this.producerId, producerEpoch: this.epoch, baseSequence: batch.baseSequence, compression: 'none', timestampType: 'create', records });
    this.sim.checker.produce(bytes, { producerId: this.producerId, number: batch.number });
    return bytes;
  }

  /**
   * pump sends the next batches of this attempt, in order, among the first inFlightMax of the
   * queue: a batch goes out only while fewer than inFlightMax batches before it are unacknowledged,
   * so every retry stays within the broker's window of recent batches (as answers in order on one
   * connection keep a Kafka client's max.in.flight).
   */
  private pump(): void {
    if (this.waitingToRetry) return;
    const end = Math.min(this.queue.length, this.options.inFlightMax);
    while (this.sent < end) {
      const batch = this.queue[this.sent++]!;
      if (!batch.acknowledged) this.request(batch);
    }
  }

  private request(batch: QueuedBatch): void {
    const attempt = this.attempt;
    let answered = false;
    this.sim.send({
      producer: this.producerId,
      node: this.target,
      bytes: batch.bytes,
      reply: (answer) => {
        if (answered) return;
        answered = true;
        this.answer(batch, attempt, answer);
      },
    });
    this.sim.simulation.at(this.sim.now + this.options.requestTimeoutMs, () => {
      if (answered) return;
      answered = true;
      if (attempt === this.attempt) this.retry({ kind: 'timeout' });
    });
  }

  private answer(batch: QueuedBatch, attempt: number, answer: ProduceAnswer): void {
    if (answer.kind === 'appended' || answer.kind === 'duplicate') {
      this.acknowledge(batch, answer.baseOffset);
      this.pump();
      return;
    }
    if (attempt !== this.attempt) return; // an earlier attempt's failure: that attempt was already given up
    // A refused oldest batch means this node's view of the producer is stale: ask another.
    const oldest = this.queue[0] === batch;
    this.retry(answer, { elsewhere: oldest && (answer.kind === 'unknownProducer' || answer.kind === 'outOfOrder') });
  }

  /** acknowledge records that batch is at baseOffset (also when it is a late answer of an earlier attempt). */
  private acknowledge(batch: QueuedBatch, baseOffset: number): void {
    this.sim.acknowledged({ producerId: this.producerId, number: batch.number }, baseOffset);
    if (batch.acknowledged) return;
    batch.acknowledged = true;
    this.acknowledged++;
    while (this.queue[0]?.acknowledged === true) {
      this.queue.shift();
      if (this.sent > 0) this.sent--;
    }
  }

  /** retry gives the attempt up: after a backoff, send again from the oldest unacknowledged batch. */
  private retry(failure: ProduceAnswer | { kind: 'timeout' }, options: { elsewhere: boolean } = { elsewhere: false }): void {
    this.attempt++;
    this.sent = 0;
    if (failure.kind === 'notLeader' && failure.leaderHint !== 0) this.target = failure.leaderHint;
    else if (options.elsewhere || failure.kind === 'notLeader' || failure.kind === 'timeout' || failure.kind === 'proposalRejected') this.target = this.randomNode();
    this.waitingToRetry = true;
    this.sim.simulation.at(this.sim.now + randomInt(this.random, 1, this.options.retryBackoffMsMax), () => {
      this.waitingToRetry = false;
      this.pump();
    });
  }

  private randomNode(): NodeId {
    const ids = this.sim.ids;
    return ids[Math.floor(this.random() * ids.length)]!;
  }
}
