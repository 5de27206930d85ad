// Consumer reads partitions as Kafka's consumer does: either assigned by hand (assign) or shared
// with the other members of a consumer group (groupId + subscribe), with a position per
// partition, seek, start from the committed offset, the beginning or the end, auto-commit or
// manual commit, rebalance listeners and an async iterator over records. It long-polls each
// partition's leader (any replica would do: none serves past its high watermark) and follows
// leader changes.
import { ClusterRouting } from './cluster-routing.js';
import { NotLeaderError, OffsetOutOfRangeError, RaftbusError, UnknownPartitionError, UnknownTopicError } from '../errors.js';
import { decodeRecords, logOverheadBytes } from '../partition/record-batch.js';
import { defaultRecordBatchLimits } from '../partition/limits.js';
import type { BrokerClient } from './broker-client.js';
import { GroupMembership, type AssignorName, type Generation } from './group-membership.js';

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
  /** groupId: share the subscribed topics' partitions with the group's other members. */
  readonly groupId?: string;
  /** groupInstanceId: static membership: a restarted consumer gets its partitions back without a rebalance. */
  readonly groupInstanceId?: string;
  readonly clientId?: string;
  /** sessionTimeoutMs: the group drops a member silent this long; default 10 s. */
  readonly sessionTimeoutMs?: number;
  /** heartbeatIntervalMs: default a third of the session timeout. */
  readonly heartbeatIntervalMs?: number;
  /** rebalanceTimeoutMs: how long a rebalance waits for members to rejoin; default 10 s. */
  readonly rebalanceTimeoutMs?: number;
  /** assignors, in order of preference; default ['cooperative-sticky', 'range']. */
  readonly assignors?: readonly AssignorName[];
  /** autoCommit: commit the positions of returned records every autoCommitIntervalMs (at least once); default true. */
  readonly autoCommit?: boolean;
  readonly autoCommitIntervalMs?: number;
  /** rebalanceListener hears of partitions taken away (after their offsets were committed) and given. */
  readonly rebalanceListener?: RebalanceListener;
}

export interface RebalanceListener {
  /** onPartitionsRevoked: partitions given up in a rebalance, after their positions were committed (with auto-commit). */
  onPartitionsRevoked?(partitions: readonly TopicPartition[]): void | Promise<void>;
  onPartitionsAssigned?(partitions: readonly TopicPartition[]): void | Promise<void>;
  /** onPartitionsLost: partitions this member was fenced from (another member may own them now); nothing was committed. Default: onPartitionsRevoked. */
  onPartitionsLost?(partitions: readonly TopicPartition[]): void | Promise<void>;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
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
  private readonly group: GroupMembership | undefined;
  private subscription: readonly string[] | RegExp | undefined;
  private subscribedTopics: string[] = [];
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private lastCommitMs = Date.now();
  private cooperative = false;
  /** rejoining: a join in flight and the topics it subscribes; poll waits for it no longer than maxWaitMs. */
  private rejoining: { readonly topics: string[]; readonly generation: Promise<Generation> } | undefined;
  private readonly listener: RebalanceListener | undefined;

  constructor(options: ConsumerOptions) {
    this.routing = new ClusterRouting(options.bootstrap, options.requestTimeoutMs ?? 10_000);
    this.reset = options.autoOffsetReset ?? 'latest';
    this.maxBytes = options.maxBytesPerPartition ?? 1024 * 1024;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.retryBackoffMs = options.retryBackoffMs ?? 100;
    this.listener = options.rebalanceListener;
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = options.autoCommitIntervalMs ?? 5000;
    if (options.groupId !== undefined) {
      const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
      this.group = new GroupMembership({
        bootstrap: options.bootstrap,
        groupId: options.groupId,
        groupInstanceId: options.groupInstanceId,
        clientId: options.clientId,
        sessionTimeoutMs,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? Math.floor(sessionTimeoutMs / 3),
        rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 10_000,
        assignors: options.assignors ?? ['cooperative-sticky', 'range'],
        requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      });
    }
  }

  /** subscribe sets the topics (names, or a pattern matched against every topic) this group member reads. */
  subscribe(topics: readonly string[] | RegExp): void {
    if (this.group === undefined) throw new RangeError('subscribe: needs a groupId; use assign() without one');
    this.subscription = topics instanceof RegExp ? topics : [...topics];
    this.group.rejoinNeeded = true;
  }

  /** commit stores the positions of the assigned partitions (or the given offsets) for the group. */
  async commit(offsets?: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
    if (this.group === undefined) throw new RangeError('commit: needs a groupId');
    const positions = offsets ?? [...this.assignments.values()].filter((a) => a.position !== undefined).map((a) => ({ topic: a.topic, partition: a.partition, offset: a.position! }));
    await this.group.commit(positions);
    this.lastCommitMs = Date.now();
  }

  /** committed returns the group's committed offset of each given partition (absent: none). */
  async committed(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    if (this.group === undefined) throw new RangeError('committed: needs a groupId');
    return this.group.committed(partitions);
  }

  /** syncGroup keeps this member's assignment current: (re)joins when the subscription changed or the group rebalances. */
  private async syncGroup(): Promise<void> {
    const group = this.group;
    if (group === undefined || this.subscription === undefined) return;
    if (this.rejoining === undefined) {
      const topics = await this.resolveSubscription();
      if (!sameList(topics, this.subscribedTopics)) group.rejoinNeeded = true;
      if (!group.rejoinNeeded) {
        if (this.autoCommit && Date.now() - this.lastCommitMs >= this.autoCommitIntervalMs) await this.commit().catch(() => undefined);
        return;
      }
      if (group.fenced) await this.lose();
      const owned = [...this.assignments.values()].map(({ topic, partition }) => ({ topic, partition }));
      if (!this.cooperative) await this.revoke(owned);
      const generation = group.join(topics, this.cooperative ? owned : []);
      generation.catch(() => undefined); // its error is thrown by the poll that takes its outcome
      this.rejoining = { topics, generation };
    }
    // A rebalance waits for every member to rejoin, and the others' rejoins may wait for this poll to
    // return (one loop polling several members, say): as Kafka's poll(timeout), do not wait for it
    // longer than a fetch would. Meanwhile the member reads the partitions it still owns (cooperative).
    const rejoining = this.rejoining;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.maxWaitMs)));
    let generation: Generation | undefined;
    try {
      generation = await Promise.race([rejoining.generation, waited]);
    } catch (error) {
      if (this.rejoining === rejoining) this.rejoining = undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // Still rebalancing, or a concurrent poll took this outcome.
    if (generation === undefined || this.rejoining !== rejoining) return;
    this.rejoining = undefined;
    const topics = rejoining.topics;
    if (generation.lost) await this.lose();
    this.subscribedTopics = topics;
    this.cooperative = generation.assignor === 'cooperative-sticky';
    const next = new Set(generation.assignment.map((tp) => key(tp.topic, tp.partition)));
    await this.revoke([...this.assignments.values()].filter((a) => !next.has(key(a.topic, a.partition))));
    const added = generation.assignment.filter((tp) => !this.assignments.has(key(tp.topic, tp.partition)));
    const committed = added.length === 0 ? new Map<string, number>() : await group.committed(added);
    for (const tp of added) this.assignments.set(key(tp.topic, tp.partition), { topic: tp.topic, partition: tp.partition, position: committed.get(key(tp.topic, tp.partition)), highWatermark: 0 });
    if (added.length > 0) await this.listener?.onPartitionsAssigned?.(added);
  }

  /** lose drops every partition at once, without committing: the member was fenced and another may own them. */
  private async lose(): Promise<void> {
    const lost = [...this.assignments.values()].map(({ topic, partition }) => ({ topic, partition }));
    this.assignments.clear();
    if (lost.length === 0) return;
    const listener = this.listener;
    if (listener?.onPartitionsLost !== undefined) await listener.onPartitionsLost(lost);
    else await listener?.onPartitionsRevoked?.(lost);
  }

  /** revoke stops reading partitions: their positions are committed first (auto-commit), then the listener hears of them. */
  private async revoke(partitions: readonly TopicPartition[]): Promise<void> {
    if (partitions.length === 0) return;
    if (this.autoCommit) {
      const positions = partitions.map((tp) => this.assignments.get(key(tp.topic, tp.partition))).filter((a) => a?.position !== undefined).map((a) => ({ topic: a!.topic, partition: a!.partition, offset: a!.position! }));
      await this.group?.commit(positions).catch(() => undefined);
    }
    await this.listener?.onPartitionsRevoked?.(partitions);
    for (const tp of partitions) this.assignments.delete(key(tp.topic, tp.partition));
  }

  private async resolveSubscription(): Promise<string[]> {
    const subscription = this.subscription!;
    if (!(subscription instanceof RegExp)) return [...subscription].sort();
    return (await this.routing.allTopics()).filter((name) => !name.startsWith('__') && subscription.test(name)).sort();
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
    await this.syncGroup();
    if (this.assignments.size === 0) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.maxWaitMs, 100)));
      return [];
    }
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

  /** close commits (with auto-commit) and leaves the group, then releases the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.group !== undefined) {
      if (this.autoCommit && this.subscription !== undefined) await this.commit().catch(() => undefined);
      await this.group.leave();
      this.group.close();
    }
    this.routing.close();
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
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
