// Consumer reads partitions it is assigned, as Kafka's consumer does with assign(): a position per
// partition, seek, start from the beginning or the end, and an async iterator over records. It
// long-polls each partition's leader (any replica would do: none serves past its high watermark)
// and follows leader changes. Consumer groups build on this (issue 6).
import { ClusterRouting } from './cluster-routing.js';
import { NotLeaderError, OffsetOutOfRangeError, RaftbusError, UnknownPartitionError, UnknownTopicError } from '../errors.js';
import { decodeRecords, logOverheadBytes } from '../partition/record-batch.js';
import { defaultRecordBatchLimits } from '../partition/limits.js';
import type { BrokerClient } from './broker-client.js';

export type OffsetReset = 'earliest' | 'latest' | 'none';

export interface ConsumerOptions {
  readonly bootstrap: readonly string[];
  /** autoOffsetReset: where to start when there is no position or it is out of range; default 'latest' (Kafka's). */
  readonly autoOffsetReset?: OffsetReset;
  /** maxBytesPerPartition bounds one fetch answer; default 1 MiB. */
  readonly maxBytesPerPartition?: number;
  /** maxWaitMs: how long one fetch waits for new records; default 500. */
  readonly maxWaitMs?: number;
  readonly requestTimeoutMs?: number;
  readonly retryBackoffMs?: number;
}

export interface ConsumerRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: Readonly<Record<string, Uint8Array | null>>;
}

export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  /** offset to start at; default per autoOffsetReset. */
  readonly offset?: number;
}

interface Assignment {
  readonly topic: string;
  readonly partition: number;
  /** position: the next offset to read; undefined until resolved by autoOffsetReset. */
  position: number | undefined;
  highWatermark: number;
}

/** consumerBatchLimits: a consumer accepts any batch a topic may hold. */
const consumerBatchLimits = { ...defaultRecordBatchLimits, batchBytesMax: 8 * 1024 * 1024 };
const backoffMaxMs = 1000;

export class Consumer {
  private readonly routing: ClusterRouting;
  private readonly assignments = new Map<string, Assignment>();
  private readonly reset: OffsetReset;
  private readonly maxBytes: number;
  private readonly maxWaitMs: number;
  private readonly retryBackoffMs: number;
  private closed = false;

  constructor(options: ConsumerOptions) {
    this.routing = new ClusterRouting(options.bootstrap, options.requestTimeoutMs ?? 10_000);
    this.reset = options.autoOffsetReset ?? 'latest';
    this.maxBytes = options.maxBytesPerPartition ?? 1024 * 1024;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.retryBackoffMs = options.retryBackoffMs ?? 100;
  }

  /** assign replaces the assigned partitions. Throws UnknownTopicError or UnknownPartitionError. */
  async assign(partitions: readonly TopicPartitionOffset[]): Promise<void> {
    for (const wanted of partitions) {
      const route = await this.routing.requireTopic(wanted.topic);
      if (wanted.partition < 0 || wanted.partition >= route.partitions.length) throw new UnknownPartitionError(wanted.topic, wanted.partition, route.partitions.length);
    }
    this.assignments.clear();
    for (const wanted of partitions) this.assignments.set(key(wanted.topic, wanted.partition), { topic: wanted.topic, partition: wanted.partition, position: wanted.offset, highWatermark: 0 });
  }

  /** assignment lists the assigned partitions with their positions. */
  assignment(): { topic: string; partition: number; position: number | undefined }[] {
    return [...this.assignments.values()].map(({ topic, partition, position }) => ({ topic, partition, position }));
  }

  /** partitionsFor returns how many partitions a topic has. */
  async partitionsFor(topic: string): Promise<number> {
    return (await this.routing.requireTopic(topic)).partitions.length;
  }

  seek(topic: string, partition: number, offset: number): void {
    const assignment = this.assignments.get(key(topic, partition));
    if (assignment === undefined) throw new RangeError(`seek: ${topic}-${partition} is not assigned`);
    assignment.position = offset;
  }

  async seekToBeginning(topic: string, partition: number): Promise<void> {
    this.seek(topic, partition, await this.listOffset(topic, partition, 'earliest'));
  }

  async seekToEnd(topic: string, partition: number): Promise<void> {
    this.seek(topic, partition, await this.listOffset(topic, partition, 'latest'));
  }

  /** listOffset asks the partition for its earliest or latest offset, or the first at or after timestampMs. */
  listOffset(topic: string, partition: number, spec: 'earliest' | 'latest' | { timestampMs: number }): Promise<number> {
    return this.withLeader(topic, partition, async (client) => {
      const answer = await client.listOffsets(typeof spec === 'string' ? { topic, partition, spec } : { topic, partition, spec: 'timestamp', timestampMs: spec.timestampMs });
      return answer.offset;
    });
  }

  /** lag returns, per assigned partition, the high watermark last seen minus the position. */
  lag(): { topic: string; partition: number; lag: number }[] {
    return [...this.assignments.values()].map((a) => ({ topic: a.topic, partition: a.partition, lag: Math.max(0, a.highWatermark - (a.position ?? a.highWatermark)) }));
  }

  /**
   * poll fetches once from every assigned partition (in parallel, each waiting up to maxWaitMs)
   * and returns the records past each position, in offset order per partition.
   */
  async poll(): Promise<ConsumerRecord[]> {
    const fetched = await Promise.all([...this.assignments.values()].map((assignment) => this.fetchOne(assignment)));
    return fetched.flat();
  }

  /** records iterates over records as they arrive, until close(). */
  async *records(): AsyncGenerator<ConsumerRecord> {
    while (!this.closed) {
      for (const record of await this.poll()) {
        if (this.closed) return;
        yield record;
      }
    }
  }

  private async fetchOne(assignment: Assignment): Promise<ConsumerRecord[]> {
    const { topic, partition } = assignment;
    if (assignment.position === undefined) {
      if (this.reset === 'none') throw new RangeError(`${topic}-${partition} has no position and autoOffsetReset is 'none'; seek first`);
      assignment.position = await this.listOffset(topic, partition, this.reset);
    }
    const offset = assignment.position;
    try {
      const answer = await this.withLeader(topic, partition, (client) => client.fetch({ topic, partition, offset, maxBytes: this.maxBytes, maxWaitMs: this.maxWaitMs, minBytes: 1 }));
      assignment.highWatermark = answer.highWatermark;
      const records = decodeBatches(topic, partition, answer.batches, offset);
      if (assignment.position === offset && answer.nextOffset > offset) assignment.position = answer.nextOffset;
      return records;
    } catch (error) {
      if (!(error instanceof OffsetOutOfRangeError) || this.reset === 'none') throw error;
      assignment.position = this.reset === 'earliest' ? error.logStartOffset : error.highWatermark;
      return [];
    }
  }

  /** withLeader calls the partition's leader, following hints and retrying retriable failures with backoff. */
  private async withLeader<T>(topic: string, partition: number, call: (client: BrokerClient) => Promise<T>): Promise<T> {
    let backoffMs = this.retryBackoffMs;
    for (;;) {
      try {
        const route = (await this.routing.requireTopic(topic)).partitions[partition];
        const client = route === undefined || route.leader === 0 ? undefined : this.routing.client(route.leader);
        if (client === undefined) throw new NotLeaderError(0, 0);
        return await call(client);
      } catch (error) {
        // A broker that has not applied a new topic yet answers unknown: retry while the metadata knows it.
        const notThereYet = (error instanceof UnknownTopicError || error instanceof UnknownPartitionError) && this.routing.topic(topic) !== undefined;
        if (this.closed || !((error instanceof RaftbusError && error.retriable) || notThereYet)) throw error;
        if (error instanceof NotLeaderError && error.leaderHint !== 0) this.routing.noteLeader(topic, partition, error.leaderHint);
        else await this.routing.refresh([topic]).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.routing.close();
  }
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** decodeBatches splits batches laid back to back and returns their records from offset on. */
export function decodeBatches(topic: string, partition: number, bytes: Uint8Array, fromOffset: number): ConsumerRecord[] {
  const records: ConsumerRecord[] = [];
  let at = 0;
  while (at + logOverheadBytes <= bytes.length) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, bytes.byteLength - at);
    const size = view.getInt32(8) + logOverheadBytes;
    const batch = bytes.subarray(at, at + size);
    at += size;
    for (const record of decodeRecords(batch, consumerBatchLimits)) {
      const offset = Number(record.offset);
      if (offset < fromOffset) continue;
      const headers: Record<string, Uint8Array | null> = {};
      for (const header of record.headers) headers[header.key] = header.value;
      records.push({ topic, partition, offset, timestamp: Number(record.timestamp), key: record.key, value: record.value, headers });
    }
  }
  return records;
}
