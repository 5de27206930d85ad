// GroupCoordinators runs, on this broker, the group coordinator of every __consumer_offsets
// partition it leads, and answers FindCoordinator for any group. The records a coordinator writes
// go through the partition's own produce path (acks=all), so they are committed on a majority of
// its replicas before a client hears of them, and every replica replays them into its GroupStore.
import type { Logger } from 'pino';
import { CoordinatorLoadingError, NotCoordinatorError, NotLeaderError } from '../errors.js';
import { GroupCoordinator, checkGroupId } from '../groups/coordinator.js';
import { GroupStore, coordinatorPartition, type GroupRecord } from '../groups/records.js';
import type { MetadataImage } from '../metadata/image.js';
import type { BatchListener } from '../partition/partition-state.js';
import type { NodeId } from '../raft/types.js';
import { decodeGroupBatch, decodeGroupStoreSnapshot, encodeGroupBatch, encodeGroupStoreSnapshot } from '../rpc/group-codec.js';
import type { HostedPartition } from './hosted-partition.js';
import type { RaftHost } from './raft-host.js';
import { everyUnlessHeld } from './held-loop.js';
import type { Clock, Timer } from './runtime.js';

/** offsetsTopic is the internal topic of group metadata and committed offsets (Kafka's name). */
export const offsetsTopic = '__consumer_offsets';
/** offsetsTopicPartitions: coordinators spread over this many partitions (Kafka's default is 50; clusters here are small). */
export const offsetsTopicPartitions = 6;
/**
 * offsetsCompactBytes: an offsets partition is compacted once it holds this many bytes of batches
 * (and twice its groups' compacted size): what a restart replays per partition stays about this.
 */
export const offsetsCompactBytes = 4 * 1024 * 1024;
/**
 * offsetsSegmentBytes: the offsets topic's segment.bytes, about the size a partition log gives any
 * segment at least (room for its largest batch). Kafka's is 100 MiB, but a compaction frees only
 * whole segments, so smaller ones give the disk back sooner.
 */
const offsetsSegmentBytes = 4 * 1024 * 1024;
/** offsetsRetentionMs: a group without members is deleted, offsets and all, this long after it emptied or last committed (Kafka's offsets.retention.minutes: 7 days). */
export const offsetsRetentionMs = 7 * 24 * 3_600_000;
/** offsetsRetentionCheckMs: how often coordinators look for expired groups (Kafka's offsets.retention.check.interval.ms). */
const offsetsRetentionCheckMs = 600_000;
const coordinatorTickMs = 100;
const persistTimeoutMs = 30_000;
/** waitLogEveryMs: how often a broker says again that groups wait for brokers to create the offsets topic. */
const waitLogEveryMs = 30_000;

interface Attached {
  readonly partition: HostedPartition;
  readonly store: GroupStore;
  coordinator: GroupCoordinator | undefined;
  term: number;
}

export interface GroupCoordinatorsOptions {
  readonly self: NodeId;
  readonly host: RaftHost;
  readonly image: () => MetadataImage;
  readonly clock: Clock;
  readonly newId: () => string;
  /** offsetsPartitions: how many partitions the offsets topic is created with (Kafka's offsets.topic.num.partitions); default offsetsTopicPartitions. */
  readonly offsetsPartitions?: number;
  /** offsetsCompactBytes: when an offsets partition is compacted (see the constant); default offsetsCompactBytes. */
  readonly offsetsCompactBytes?: number;
  /** offsetsRetentionMs: see the constant; default offsetsRetentionMs. */
  readonly offsetsRetentionMs?: number;
  /** offsetsRetentionCheckMs: see the constant; default 10 minutes. */
  readonly offsetsRetentionCheckMs?: number;
  /** offsetsReplicationFactor: the offsets topic's replication factor; it is created only once this many brokers are unfenced. */
  readonly offsetsReplicationFactor: number;
  /** createTopic asks the active controller, wherever it is, to create a topic (the offsets topic); rejects with its error. */
  readonly createTopic: (request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string> }) => Promise<unknown>;
  readonly logger: Logger;
}

/** groupStoreListener replays an offsets partition's batches into store, and keeps it in the partition's snapshots. */
export function groupStoreListener(store: GroupStore): BatchListener {
  return {
    batch: (bytes) => {
      for (const record of decodeGroupBatch(bytes)) store.replay(record);
    },
    snapshot: () => encodeGroupStoreSnapshot(store.compacted()),
    restore: (state) => store.restore(state === undefined ? [] : decodeGroupStoreSnapshot(state)),
  };
}

export class GroupCoordinators {
  private readonly attached = new Map<number, Attached>();
  private ticker: Timer | undefined;
  private expiryTimer: Timer | undefined;
  private expiring = false;
  private creating: Promise<unknown> | undefined;
  private waitLoggedAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: GroupCoordinatorsOptions) {}

  start(): void {
    this.ticker = everyUnlessHeld(this.options.clock, coordinatorTickMs, () => this.tick());
    this.expiryTimer = this.options.clock.every(this.options.offsetsRetentionCheckMs ?? offsetsRetentionCheckMs, () => void this.expireGroups());
  }

  /** expireGroups deletes, on every coordinator this node runs, the groups past the offsets retention (GroupCoordinator.expire). */
  async expireGroups(): Promise<void> {
    if (this.expiring) return;
    this.expiring = true;
    try {
      for (const attached of this.attached.values()) {
        let coordinator: GroupCoordinator;
        try {
          // Also where no client came since this node took over: groups no one uses are the ones to expire.
          coordinator = this.coordinatorOf(attached, '');
        } catch {
          continue; // not the leader here, or still loading
        }
        try {
          const expired = await coordinator.expire(this.options.clock.now(), this.options.offsetsRetentionMs ?? offsetsRetentionMs);
          if (expired.length > 0) this.options.logger.info({ partition: attached.partition.label, groups: expired }, 'deleted groups past the offsets retention');
        } catch (error) {
          this.options.logger.warn({ err: error, partition: attached.partition.label }, 'could not delete expired groups yet');
        }
      }
    } finally {
      this.expiring = false;
    }
  }

  /**
   * attach wires a replica of an offsets partition: its committed batches feed a GroupStore, which
   * its snapshots carry, so that it is compacted. Call before the replica applies anything.
   */
  attach(partition: HostedPartition): void {
    const store = new GroupStore();
    partition.replayInto(groupStoreListener(store), { compactBytesMin: this.options.offsetsCompactBytes ?? offsetsCompactBytes });
    this.attached.set(partition.id.partition, { partition, store, coordinator: undefined, term: 0 });
  }

  detach(partition: HostedPartition): void {
    const attached = this.attached.get(partition.id.partition);
    if (attached?.partition !== partition) return;
    attached.coordinator?.close(new NotCoordinatorError('', 0));
    this.attached.delete(partition.id.partition);
  }

  /**
   * findCoordinator returns the node that coordinates group: the leader of its offsets partition.
   * Creates the offsets topic on first use; throws CoordinatorLoadingError (retriable) meanwhile.
   */
  async findCoordinator(group: string): Promise<NodeId> {
    checkGroupId(group);
    const image = this.options.image();
    const topic = image.topicByName(offsetsTopic);
    if (topic === undefined) {
      await this.createOffsetsTopic();
      throw new CoordinatorLoadingError(group);
    }
    const index = coordinatorPartition(group, topic.partitions.length);
    const attached = this.attached.get(index);
    const leader = attached === undefined ? topic.partitions[index]!.leader : (this.options.host.status(attached.partition.id.groupId)?.leader ?? 0);
    if (leader === 0) throw new CoordinatorLoadingError(group);
    return leader;
  }

  private createOffsetsTopic(): Promise<unknown> {
    // As Kafka's offsets.topic.replication.factor: the full factor or nothing. A topic created with
    // the brokers that happened to be up would stay under-replicated for good.
    const replicationFactor = this.options.offsetsReplicationFactor;
    const unfenced = this.options.image().unfencedBrokers();
    if (unfenced.length < replicationFactor) {
      const nowMs = this.options.clock.now();
      if (nowMs - this.waitLoggedAtMs >= waitLogEveryMs) {
        this.waitLoggedAtMs = nowMs;
        this.options.logger.warn({ topic: offsetsTopic, unfenced: unfenced.map((broker) => broker.id), replicationFactor }, 'consumer groups wait for enough brokers to create the offsets topic; start the missing brokers');
      }
      return Promise.resolve();
    }
    this.creating ??= (async () => {
      try {
        await this.options.createTopic({ name: offsetsTopic, partitions: this.options.offsetsPartitions ?? offsetsTopicPartitions, replicationFactor, configs: { 'retention.ms': '-1', 'retention.bytes': '-1', 'segment.bytes': String(offsetsSegmentBytes) } });
        this.options.logger.info({ topic: offsetsTopic }, 'created the internal offsets topic');
      } catch (error) {
        if ((error as Error).name !== 'TopicExistsError') this.options.logger.warn({ err: error }, 'could not create the offsets topic yet');
      } finally {
        this.creating = undefined;
      }
    })();
    return this.creating;
  }

  /**
   * coordinator returns the coordinator of group on this node. Throws NotCoordinatorError (with the
   * leader it knows) when another node leads the group's partition, CoordinatorLoadingError while
   * this node, a new leader, has not applied its predecessor's records yet.
   */
  coordinator(group: string): GroupCoordinator {
    checkGroupId(group);
    const topic = this.options.image().topicByName(offsetsTopic);
    if (topic === undefined) throw new NotCoordinatorError(group, 0);
    const index = coordinatorPartition(group, topic.partitions.length);
    const attached = this.attached.get(index);
    if (attached === undefined) throw new NotCoordinatorError(group, topic.partitions[index]!.leader);
    return this.coordinatorOf(attached, group);
  }

  private coordinatorOf(attached: Attached, group: string): GroupCoordinator {
    const groupId = attached.partition.id.groupId;
    const status = this.options.host.status(groupId);
    if (status?.role !== 'leader') throw new NotCoordinatorError(group, status?.leader ?? 0);
    if (this.options.host.appliedTerm(groupId) !== status.term) throw new CoordinatorLoadingError(group);
    if (attached.coordinator === undefined || attached.term !== status.term) {
      attached.coordinator?.close(new NotCoordinatorError(group, 0));
      attached.coordinator = new GroupCoordinator({
        store: attached.store,
        persist: (records) => this.persist(attached, records),
        partitionCounts: (topics) => this.partitionCounts(topics),
        newMemberId: (clientId) => `${clientId || 'consumer'}-${this.options.newId()}`,
        nowMs: () => this.options.clock.now(),
      });
      attached.term = status.term;
      this.options.logger.info({ partition: attached.partition.label, term: status.term }, 'coordinating the groups of an offsets partition');
    }
    return attached.coordinator;
  }

  /** listGroups lists the groups of every offsets partition this node leads (a cluster-wide list asks every broker). */
  listGroups(): { group: string; state: string; members: number }[] {
    const nowMs = this.options.clock.now();
    const listed: { group: string; state: string; members: number }[] = [];
    for (const attached of this.attached.values()) {
      let coordinator: GroupCoordinator;
      try {
        coordinator = this.coordinatorOf(attached, '');
      } catch {
        continue; // not the leader here, or still loading: another broker lists these groups
      }
      listed.push(...coordinator.list(nowMs));
    }
    return listed.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  private async persist(attached: Attached, records: GroupRecord[]): Promise<void> {
    try {
      await attached.partition.produce({ acks: -1, batch: encodeGroupBatch(records, this.options.clock.now()), timeoutMs: persistTimeoutMs });
    } catch (error) {
      if (error instanceof NotLeaderError) throw new NotCoordinatorError(records[0]?.group ?? '', error.leaderHint);
      throw error;
    }
  }

  private partitionCounts(topics: readonly string[]): Map<string, number> {
    const image = this.options.image();
    const counts = new Map<string, number>();
    for (const name of topics) {
      const topic = image.topicByName(name);
      if (topic !== undefined) counts.set(name, topic.partitions.length);
    }
    return counts;
  }

  /** tick drives every coordinator this node runs, and drops those whose partition it no longer leads. */
  private tick(): void {
    const nowMs = this.options.clock.now();
    for (const attached of this.attached.values()) {
      if (attached.coordinator === undefined) continue;
      const status = this.options.host.status(attached.partition.id.groupId);
      if (status?.role !== 'leader' || status.term !== attached.term) {
        attached.coordinator.close(new NotCoordinatorError('', status?.leader ?? 0));
        attached.coordinator = undefined;
        continue;
      }
      attached.coordinator.tick(nowMs);
    }
  }

  close(): void {
    this.ticker?.cancel();
    this.expiryTimer?.cancel();
    for (const attached of this.attached.values()) attached.coordinator?.close(new NotCoordinatorError('', 0));
  }
}
