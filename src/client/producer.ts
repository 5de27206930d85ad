// Producer sends records to topics as Kafka's producer does: records gather into one batch per
// partition (sealed by size or after lingerMs), batches go to the partition's leader on one stream
// per broker with a bounded number in flight per partition, and retriable failures are retried
// with backoff after a metadata refresh. Idempotence (on by default) gives each batch a producer
// id, epoch and sequence, so a retry is recognised by the broker and never appended twice, and
// batches of one partition are appended in the order they were sent.
import { Admin } from './admin.js';
import { ClusterRouting } from './cluster-routing.js';
import { InvalidRequestError, NotLeaderError, OutOfOrderSequenceError, ProduceTimeoutError, RaftbusError, UnknownPartitionError, UnknownProducerIdError, UnknownTopicError } from '../errors.js';
import { encodeRecordBatch, type RecordHeader, type RecordInput } from '../partition/record-batch.js';
import type { SupportedCompression } from '../partition/compression.js';
import { StickyPartitioner, partitionForKey } from '../partition/partitioner.js';
import { lastSequenceOf, nextSequence } from '../partition/producer-state.js';
import type { ProduceAnswer } from '../rpc/broker-service.js';

export type Acks = 'all' | -1 | 0 | 1;

export interface ProducerOptions {
  /** bootstrap: host:port client addresses of some nodes. */
  readonly bootstrap: readonly string[];
  /** acks: 'all' (default: a majority of replicas fsynced), 1 (the leader fsynced) or 0 (no answer). */
  readonly acks?: Acks;
  /** idempotent: default true; needs acks 'all'. */
  readonly idempotent?: boolean;
  readonly compression?: SupportedCompression;
  /** lingerMs: how long a batch waits for more records before it is sent; default 5. */
  readonly lingerMs?: number;
  /** batchBytes: a batch is sent once it holds this many bytes of records; default 16 KiB. */
  readonly batchBytes?: number;
  /** maxInFlightPerPartition: unanswered batches per partition; default and most with idempotence 5. */
  readonly maxInFlightPerPartition?: number;
  /** bufferBytes bounds the records waiting to be sent; send() waits for room. Default 32 MiB. */
  readonly bufferBytes?: number;
  /** maxRecordBytes: a larger record is refused at once (Kafka's max.request.size); default 1 MiB. */
  readonly maxRecordBytes?: number;
  /** requestTimeoutMs: how long the broker may take to meet acks; default 30 s. */
  readonly requestTimeoutMs?: number;
  /** deliveryTimeoutMs: how long send() may take in all, retries included; default 120 s. */
  readonly deliveryTimeoutMs?: number;
  readonly retryBackoffMs?: number;
}

export interface ProducerRecord {
  readonly topic: string;
  readonly value: Uint8Array | string | null;
  readonly key?: Uint8Array | string | null;
  readonly headers?: Readonly<Record<string, Uint8Array | string>>;
  /** partition: explicit; else the key's hash (Kafka's murmur2), else sticky. */
  readonly partition?: number;
  /** timestamp in ms since the epoch; default now. */
  readonly timestamp?: number;
}

export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  /** offset: -1 with acks 0. */
  readonly offset: number;
  readonly timestamp: number;
  /** duplicate: the broker had this record already (a retry); offset is the original's. */
  readonly duplicate: boolean;
}

/** The producer's fixed bounds. */
const idempotenceInFlightMax = 5; // the broker remembers the last 5 batches per producer
const recordsPerBatchMax = 10_000;
/** batchBytesMax: how large a batch may grow while it waits for a free in-flight slot (the broker's default max.message.bytes is 1 MiB). */
const batchBytesMax = 1024 * 1024 - 1024;
/** batchOverheadBytes: room kept under a topic's max.message.bytes for the batch header and varints beyond the estimate. */
const batchOverheadBytes = 1024;
const backoffMaxMs = 1000;
const encoder = new TextEncoder();

interface PendingRecord {
  readonly input: RecordInput;
  readonly bytes: number;
  readonly resolve: (metadata: RecordMetadata) => void;
  readonly reject: (error: Error) => void;
}

interface SealedBatch {
  readonly records: PendingRecord[];
  readonly bytes: Uint8Array;
  readonly baseSequence: number;
  readonly createdAtMs: number;
  readonly bufferedBytes: number;
}

/** PartitionQueue: the open batch, the sealed ones waiting, those in flight, of one partition. */
interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  open: PendingRecord[];
  openBytes: number;
  /** cancelLinger stops the open batch's linger timer; undefined when none runs. */
  cancelLinger: (() => void) | undefined;
  /** lingerDone: the open batch's linger ran out while every in-flight slot was taken: send it when one frees. */
  lingerDone: boolean;
  readonly waiting: SealedBatch[];
  readonly inFlight: Set<SealedBatch>;
  recovering: boolean;
  backoffMs: number;
  epoch: number;
  nextSequence: number;
}

function toBytes(value: Uint8Array | string | null | undefined): Uint8Array | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? encoder.encode(value) : value;
}

export class Producer {
  private readonly routing: ClusterRouting;
  private readonly admin: Admin;
  private readonly acks: -1 | 0 | 1;
  private readonly idempotent: boolean;
  private readonly settings: Required<Omit<ProducerOptions, 'bootstrap' | 'acks' | 'idempotent'>>;
  private readonly queues = new Map<string, PartitionQueue>();
  private readonly partitioner = new StickyPartitioner(Math.random);
  private producerId: Promise<number> | undefined;
  private bufferedBytes = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private unsettled = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(options: ProducerOptions) {
    this.routing = new ClusterRouting(options.bootstrap, 10_000);
    this.admin = new Admin({ bootstrap: options.bootstrap });
    this.acks = options.acks === undefined || options.acks === 'all' ? -1 : options.acks;
    this.idempotent = (options.idempotent ?? true) && this.acks === -1;
    if (options.idempotent === true && this.acks !== -1) throw new RangeError('idempotent: needs acks "all" (as in Kafka)');
    this.settings = {
      compression: options.compression ?? 'none',
      lingerMs: options.lingerMs ?? 5,
      batchBytes: options.batchBytes ?? 16 * 1024,
      maxInFlightPerPartition: Math.min(options.maxInFlightPerPartition ?? idempotenceInFlightMax, this.idempotent ? idempotenceInFlightMax : Number.MAX_SAFE_INTEGER),
      bufferBytes: options.bufferBytes ?? 32 * 1024 * 1024,
      maxRecordBytes: Math.min(options.maxRecordBytes ?? 1024 * 1024, options.bufferBytes ?? 32 * 1024 * 1024),
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      deliveryTimeoutMs: options.deliveryTimeoutMs ?? 120_000,
      retryBackoffMs: options.retryBackoffMs ?? 100,
    };
  }

  /**
   * send queues one record and resolves with where it was stored once acks are met. Rejects with
   * a typed error: UnknownTopicError, UnknownPartitionError, InvalidRecordBatchError (too large),
   * ProduceTimeoutError after deliveryTimeoutMs, or the broker's non-retriable refusal.
   */
  async send(record: ProducerRecord): Promise<RecordMetadata> {
    if (this.closed) throw new RangeError('send: the producer is closed');
    const route = await this.routing.requireTopic(record.topic);
    const count = route.partitions.length;
    const key = toBytes(record.key);
    let partition: number;
    if (record.partition !== undefined) {
      if (!Number.isInteger(record.partition) || record.partition < 0 || record.partition >= count) throw new UnknownPartitionError(record.topic, record.partition, count);
      partition = record.partition;
    } else {
      partition = key === null ? this.partitioner.partition(record.topic, count) : partitionForKey(key, count);
    }
    const headers: RecordHeader[] = Object.entries(record.headers ?? {}).map(([headerKey, value]) => ({ key: headerKey, value: toBytes(value) }));
    const input: RecordInput = { timestamp: record.timestamp ?? Date.now(), key, value: toBytes(record.value), headers };
    const bytes = (key?.length ?? 0) + (input.value?.length ?? 0) + headers.reduce((sum, header) => sum + header.key.length + (header.value?.length ?? 0), 0) + 24;
    if (bytes > this.settings.maxRecordBytes) throw InvalidRequestError.of('value', `the record is about ${bytes} bytes, above the producer's maxRecordBytes of ${this.settings.maxRecordBytes} (Kafka's max.request.size)`);
    while (this.bufferedBytes + bytes > this.settings.bufferBytes) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    if (this.idempotent) await this.ensureProducerId();
    this.bufferedBytes += bytes;
    this.unsettled++;
    return new Promise<RecordMetadata>((resolve, reject) => {
      const queue = this.queue(record.topic, partition);
      // While every in-flight slot of the partition is taken, the open batch may grow to
      // batchBytesMax: it could not leave earlier anyway, and fewer, larger requests cost less.
      const grown = Math.min(batchBytesMax, route.maxMessageBytes - batchOverheadBytes);
      const limit = this.slotsBusy(queue) ? Math.max(grown, this.settings.batchBytes) : this.settings.batchBytes;
      // A record that would overflow the open batch starts a new one: a large record never takes smaller ones down with it.
      if (queue.open.length > 0 && queue.openBytes + bytes > limit) this.seal(queue);
      queue.open.push({ input, bytes, resolve, reject });
      queue.openBytes += bytes;
      if (queue.openBytes >= limit || queue.open.length >= recordsPerBatchMax) this.seal(queue);
      else if (queue.cancelLinger === undefined) queue.cancelLinger = this.startLinger(queue);
    }).finally(() => {
      this.bufferedBytes -= bytes;
      this.roomWaiters.shift()?.();
      if (--this.unsettled === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
    });
  }

  private ensureProducerId(): Promise<number> {
    this.producerId ??= this.admin.allocateProducerIds(1).then((ids) => ids.firstProducerId);
    this.producerId.catch(() => (this.producerId = undefined));
    return this.producerId;
  }

  private queue(topic: string, partition: number): PartitionQueue {
    const id = `${topic}\u0000${partition}`;
    let queue = this.queues.get(id);
    if (queue === undefined) {
      queue = { topic, partition, open: [], openBytes: 0, cancelLinger: undefined, lingerDone: false, waiting: [], inFlight: new Set(), recovering: false, backoffMs: this.settings.retryBackoffMs, epoch: 0, nextSequence: 0 };
      this.queues.set(id, queue);
    }
    return queue;
  }

  private slotsBusy(queue: PartitionQueue): boolean {
    return queue.inFlight.size + queue.waiting.length >= this.settings.maxInFlightPerPartition;
  }

  /**
   * startLinger seals the open batch after lingerMs, or, with lingerMs 0, once the sends of this
   * tick are in (setImmediate: a 0 ms timer would wait a whole millisecond). A batch whose linger
   * ran out while every slot is taken waits for a free slot, and keeps growing meanwhile.
   */
  private startLinger(queue: PartitionQueue): () => void {
    const expire = (): void => {
      queue.cancelLinger = undefined;
      if (this.slotsBusy(queue)) queue.lingerDone = true;
      else this.seal(queue);
    };
    if (this.settings.lingerMs === 0) {
      const immediate = setImmediate(expire);
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(expire, this.settings.lingerMs);
    return () => clearTimeout(timer);
  }

  /** seal closes the open batch of a partition into encoded bytes with the next sequence. */
  private seal(queue: PartitionQueue): void {
    queue.cancelLinger?.();
    queue.cancelLinger = undefined;
    queue.lingerDone = false;
    if (queue.open.length === 0) return;
    const records = queue.open;
    queue.open = [];
    queue.openBytes = 0;
    this.partitioner.onNewBatch(queue.topic, queue.partition);
    void this.encode(queue, records);
  }

  private async encode(queue: PartitionQueue, records: PendingRecord[]): Promise<void> {
    const producerId = this.idempotent ? BigInt(await this.ensureProducerId()) : -1n;
    const baseSequence = this.idempotent ? queue.nextSequence : -1;
    if (this.idempotent) queue.nextSequence = nextSequence(lastSequenceOf(baseSequence, records.length));
    let bytes: Uint8Array;
    try {
      bytes = encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, producerId, producerEpoch: this.idempotent ? queue.epoch : -1, baseSequence, compression: this.settings.compression, timestampType: 'create', records: records.map((record) => record.input) });
    } catch (error) {
      for (const record of records) record.reject(error as Error);
      return;
    }
    queue.waiting.push({ records, bytes, baseSequence, createdAtMs: Date.now(), bufferedBytes: records.reduce((sum, record) => sum + record.bytes, 0) });
    this.drain(queue);
  }

  /** drain sends waiting batches of a partition, oldest first, while the in-flight bound allows. */
  private drain(queue: PartitionQueue): void {
    while (!queue.recovering && queue.inFlight.size < this.settings.maxInFlightPerPartition && queue.waiting.length > 0) {
      const batch = queue.waiting.shift()!;
      queue.inFlight.add(batch);
      void this.sendBatch(queue, batch);
    }
    // A slot is free and nothing waits: an open batch that is full or has lingered enough goes now.
    if (!queue.recovering && !this.slotsBusy(queue) && queue.open.length > 0 && (queue.lingerDone || queue.openBytes >= this.settings.batchBytes)) this.seal(queue);
  }

  private async sendBatch(queue: PartitionQueue, batch: SealedBatch): Promise<void> {
    let answer: ProduceAnswer;
    try {
      const route = this.routing.topic(queue.topic);
      if (route === undefined) throw new UnknownTopicError(queue.topic);
      const leader = route.partitions[queue.partition]?.leader ?? 0;
      const client = leader === 0 ? undefined : this.routing.client(leader);
      if (client === undefined) throw new NotLeaderError(0, 0);
      answer = await client.produce({ topic: queue.topic, partition: queue.partition, acks: this.acks, batch: batch.bytes, timeoutMs: this.settings.requestTimeoutMs });
    } catch (error) {
      this.failed(queue, batch, error as Error);
      return;
    }
    queue.inFlight.delete(batch);
    queue.backoffMs = this.settings.retryBackoffMs;
    batch.records.forEach((record, i) =>
      record.resolve({ topic: queue.topic, partition: queue.partition, offset: answer.baseOffset < 0 ? -1 : answer.baseOffset + i, timestamp: Number(record.input.timestamp), duplicate: answer.duplicate }),
    );
    this.resumeIfSettled(queue);
    this.drain(queue);
  }

  /**
   * failed handles a batch the broker did not take. A retriable error (or an out-of-order or
   * unknown-producer answer while an earlier batch of the partition is being retried: the broker
   * has not seen that batch yet) sends the partition into recovery:
   * once nothing is in flight, every unanswered batch goes again, in sequence order, after a
   * backoff and a metadata refresh. Anything else, or the delivery timeout, fails the batch.
   */
  private failed(queue: PartitionQueue, batch: SealedBatch, error: Error): void {
    queue.inFlight.delete(batch);
    if (error instanceof NotLeaderError) this.routing.noteLeader(queue.topic, queue.partition, error.leaderHint);
    const earlierPending = [...queue.inFlight, ...queue.waiting].some((other) => other.baseSequence < batch.baseSequence);
    // A broker that has not applied a new topic yet answers unknown: retry while the metadata knows it.
    const notThereYet = (error instanceof UnknownTopicError || error instanceof UnknownPartitionError) && this.routing.topic(queue.topic) !== undefined;
    const sequenceGap = error instanceof OutOfOrderSequenceError || error instanceof UnknownProducerIdError;
    const retriable = (error instanceof RaftbusError && error.retriable) || notThereYet || (sequenceGap && (earlierPending || queue.recovering));
    const expired = Date.now() - batch.createdAtMs > this.settings.deliveryTimeoutMs;
    if (retriable && !expired && !this.closed) {
      queue.waiting.push(batch);
      queue.waiting.sort((a, b) => a.baseSequence - b.baseSequence);
      queue.recovering = true;
      this.resumeIfSettled(queue);
      return;
    }
    const cause = expired ? new ProduceTimeoutError(this.settings.deliveryTimeoutMs) : error;
    for (const record of batch.records) record.reject(cause);
    this.abandonSequence(queue, cause);
    this.resumeIfSettled(queue);
  }

  /**
   * abandonSequence: batches after one that failed for good can never be appended in sequence, so
   * they fail too, and the partition starts a new epoch at sequence 0 for what comes next.
   */
  private abandonSequence(queue: PartitionQueue, cause: Error): void {
    if (!this.idempotent) return;
    for (const later of queue.waiting.splice(0)) for (const record of later.records) record.reject(cause);
    queue.epoch++;
    queue.nextSequence = 0;
  }

  private resumeIfSettled(queue: PartitionQueue): void {
    if (!queue.recovering || queue.inFlight.size > 0) return;
    const backoffMs = queue.backoffMs;
    queue.backoffMs = Math.min(queue.backoffMs * 2, backoffMaxMs);
    setTimeout(() => {
      this.routing
        .refresh([queue.topic])
        .catch(() => undefined)
        .finally(() => {
          queue.recovering = false;
          this.drain(queue);
        });
    }, backoffMs);
  }

  /** flush sends every open batch now and resolves once every record sent so far is answered. */
  async flush(): Promise<void> {
    for (const queue of this.queues.values()) this.seal(queue);
    if (this.unsettled === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** close flushes, then releases the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.routing.close();
    this.admin.close();
  }
}
