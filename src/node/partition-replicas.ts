// PartitionReplicas hosts, on this broker, a Raft group for every partition the metadata image
// places a replica of here: it opens (or bootstraps) the group's storage when a partition appears,
// removes it when its topic is deleted, moves leadership to the controller's chosen leader once
// that replica has caught up, and runs retention. The Broker service reaches partitions through it.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseTopicConfigs, defaultTopicConfigs, type TopicConfigs } from '../controller/topic-validation.js';
import { NotLeaderError, UnknownPartitionError, UnknownTopicError } from '../errors.js';
import type { MetadataImage, PartitionRef } from '../metadata/image.js';
import { encodePartitionSnapshot } from '../partition/partition-state.js';
import { topicConfigLimits } from '../controller/topic-validation.js';
import type { NodeId, Snapshot } from '../raft/types.js';
import { CorruptLogError } from '../storage/errors.js';
import type { NodeStateStore } from '../storage/state-store.js';
import { segmentHeaderBytes } from '../storage/limits.js';
import { frameBytes } from '../storage/frame.js';
import { openGroupStorage } from './group-storage.js';
import { HostedPartition } from './hosted-partition.js';
import { dataSubdirectories } from './data-dir.js';
import { partitionDefaults } from './limits.js';
import type { RaftHost } from './raft-host.js';
import type { NodeRuntime, Timer } from './runtime.js';

/** partitionEntryBytesMax: the largest batch a topic may allow (max.message.bytes), as one Raft entry. */
const partitionEntryBytesMax = topicConfigLimits.maxMessageBytesMax;
/** partitionSegmentBytesMin: a segment holds at least one entry of the largest size. */
const partitionSegmentBytesMin = frameBytes(partitionEntryBytesMax) + segmentHeaderBytes;

export interface PartitionReplicasOptions {
  readonly self: NodeId;
  readonly dataDir: string;
  readonly host: RaftHost;
  readonly stateStore: NodeStateStore;
  readonly runtime: NodeRuntime;
  readonly image: () => MetadataImage;
  readonly logger: Logger;
  /** attach hears of each replica before it applies anything; detach when it is removed. */
  readonly attach?: (partition: HostedPartition) => void;
  readonly detach?: (partition: HostedPartition) => void;
}

export class PartitionReplicas {
  private readonly hosted = new Map<number, HostedPartition>();
  private readonly opening = new Set<number>();
  private reconciling: Promise<void> = Promise.resolve();
  private reconciledTopics: MetadataImage['topics'] | undefined;
  private readonly timers: Timer[] = [];
  private closed = false;

  constructor(private readonly options: PartitionReplicasOptions) {}

  start(): void {
    const { clock } = this.options.runtime;
    this.timers.push(clock.every(partitionDefaults.balanceEveryMs, () => this.balanceLeaders()));
    this.timers.push(clock.every(partitionDefaults.retentionCheckMs, () => void this.enforceRetention()));
  }

  /**
   * onImage brings the hosted groups in line with image; changes run one after another. An image
   * whose topics map is the one already reconciled is skipped: a delta copies the map when a record
   * changes a topic, so most records (no-ops, broker changes) leave it as it was, and a scan of
   * every partition per metadata record would cost a busy controller's quorum for nothing.
   */
  onImage(image: MetadataImage): void {
    if (image.topics === this.reconciledTopics) return;
    this.reconciledTopics = image.topics;
    this.reconciling = this.reconciling
      .then(() => this.reconcile(image))
      .catch((error: unknown) => {
        this.reconciledTopics = undefined; // the next image tries again
        this.options.logger.error({ err: error }, 'could not open or remove a partition replica');
        // A damaged frame read while opening (a membership change): stop, as any read that meets
        // damage does; the log has removed the segment's index file, and the next start repairs it.
        if (error instanceof CorruptLogError) this.options.host.storageFailed(error);
      });
  }

  private async reconcile(image: MetadataImage): Promise<void> {
    if (this.closed) return;
    const wanted = new Map(image.replicaPartitions(this.options.self).map((ref) => [ref.registration.groupId, ref]));
    for (const [groupId, ref] of wanted) {
      if (this.hosted.has(groupId) || this.opening.has(groupId)) continue;
      this.opening.add(groupId);
      try {
        await this.open(ref);
      } finally {
        this.opening.delete(groupId);
      }
    }
    for (const [groupId, partition] of this.hosted) {
      if (!wanted.has(groupId)) await this.remove(partition);
    }
  }

  private async open(ref: PartitionRef): Promise<void> {
    if (this.closed) return;
    const { host, stateStore, dataDir, logger, runtime } = this.options;
    const groupId = ref.registration.groupId;
    const dir = join(dataDir, dataSubdirectories.partitions, `${ref.topic}-${ref.partition}-g${groupId}`);
    const groupLogger = logger.child({ group: groupId, partition: `${ref.topic}-${ref.partition}` });
    const configs = this.configsOf(ref.topicId);
    const { storage, snapshots, fresh } = await openGroupStorage({
      group: groupId,
      dir,
      disk: runtime.disk,
      stateStore,
      logger: groupLogger,
      // Every replica starts the group from the same state, derived from the metadata alone.
      bootstrap: () => bootstrapPartitionSnapshot(ref.registration.replicas),
      logLimits: { entryBytesMax: partitionEntryBytesMax, segmentBytesMax: Math.max(configs().segmentBytes, partitionSegmentBytesMin) },
    });
    const partition = new HostedPartition({ topic: ref.topic, topicId: ref.topicId, partition: ref.partition, groupId, dir }, storage, snapshots, host, configs, runtime.clock);
    this.options.attach?.(partition);
    try {
      host.addGroup({ group: groupId, storage, snapshots, machine: partition.state, snapshotEveryEntries: Number.MAX_SAFE_INTEGER, logger: groupLogger });
    } catch (error) {
      // Not hosted after all: let go of it, so that a retry opens the replica afresh.
      this.options.detach?.(partition);
      storage.log.close();
      throw error;
    }
    this.hosted.set(groupId, partition);
    if (fresh && ref.registration.leader === this.options.self) this.campaignUntilLed(groupId);
    groupLogger.info({ fresh, replicas: ref.registration.replicas }, 'hosting partition replica');
  }

  /**
   * campaignUntilLed: the controller's chosen leader of a new partition campaigns at once, and
   * again while no leader is known: the other replicas may not host the group yet when the first
   * votes arrive (messages for a group a node does not host are dropped). Without this, the group
   * waits out an election timeout and a random replica leads first.
   */
  private campaignUntilLed(groupId: number, attempt = 0): void {
    if (this.closed || !this.options.host.hosts(groupId)) return;
    const status = this.options.host.status(groupId);
    if (status === undefined || status.leader !== 0 || attempt >= partitionDefaults.newLeaderCampaignsMax) return;
    if (status.role !== 'candidate' && status.role !== 'preCandidate') this.options.host.campaign(groupId);
    this.options.runtime.clock.after(partitionDefaults.newLeaderCampaignEveryMs, () => this.campaignUntilLed(groupId, attempt + 1));
  }

  private async remove(partition: HostedPartition): Promise<void> {
    const groupId = partition.id.groupId;
    this.hosted.delete(groupId);
    this.options.detach?.(partition);
    await this.options.host.removeGroup(groupId);
    partition.storage.log.close();
    await this.options.runtime.disk.removeTree(partition.id.dir);
    await this.options.stateStore.deleteGroup(groupId);
    this.options.logger.info({ group: groupId, partition: partition.label }, 'removed the replica of a deleted partition');
  }

  /** configsOf returns a reader of a topic's live configs (defaults once the topic is gone). */
  private configsOf(topicId: string): () => TopicConfigs {
    let cachedFor: MetadataImage | undefined;
    let cached: TopicConfigs = defaultTopicConfigs;
    return () => {
      const image = this.options.image();
      if (image !== cachedFor) {
        cachedFor = image;
        const topic = image.topics.get(topicId);
        const parsed = topic === undefined ? undefined : parseTopicConfigs(Object.fromEntries(topic.configs));
        cached = parsed?.kind === 'ok' ? parsed.configs : defaultTopicConfigs;
      }
      return cached;
    };
  }

  /**
   * partition returns the replica of topic-partition on this node. Throws UnknownTopicError,
   * UnknownPartitionError, or NotLeaderError (with the leader as the metadata knows it) when this
   * node holds no replica.
   */
  partition(topic: string, partition: number): HostedPartition {
    const image = this.options.image();
    const topicImage = image.topicByName(topic);
    if (topicImage === undefined) throw new UnknownTopicError(topic);
    const registration = topicImage.partitions[partition];
    if (registration === undefined) throw new UnknownPartitionError(topic, partition, topicImage.partitions.length);
    const hosted = this.hosted.get(registration.groupId);
    if (hosted === undefined) throw new NotLeaderError(registration.groupId, registration.leader === this.options.self ? 0 : registration.leader);
    return hosted;
  }

  /** raftLeader is the Raft leader of a group as this node knows it, when it hosts the group. */
  raftLeader(groupId: number): NodeId | undefined {
    return this.hosted.get(groupId)?.leaderHint();
  }

  /** all lists the hosted replicas. */
  all(): HostedPartition[] {
    return [...this.hosted.values()];
  }

  /**
   * balanceLeaders hands leadership of each group this node leads to the controller's chosen
   * leader, once that broker is unfenced and has every entry: so leaderships spread as the
   * controller placed them, move back to a broker that returns, and never wait on a slow one.
   */
  private balanceLeaders(): void {
    const image = this.options.image();
    for (const partition of this.hosted.values()) {
      const status = this.options.host.status(partition.id.groupId);
      if (status?.role !== 'leader') continue;
      const registration = image.topics.get(partition.id.topicId)?.partitions[partition.id.partition];
      const target = registration?.leader ?? 0;
      if (target === 0 || target === this.options.self) continue;
      const broker = image.brokers.get(target);
      if (broker === undefined || broker.fenced || broker.inControlledShutdown) continue;
      const progress = status.progress.find((candidate) => candidate.id === target);
      if (progress === undefined || progress.isLearner || progress.match < status.lastIndex) continue;
      this.options.logger.info({ group: partition.id.groupId, partition: partition.label, target }, 'handing partition leadership to the controller\'s chosen leader');
      this.options.host.transferLeadership(partition.id.groupId, target);
    }
  }

  /**
   * handOffLeaderships moves every leadership this node holds to the most caught-up other voter
   * before the node stops, so producers wait for a transfer, not an election timeout.
   */
  async handOffLeaderships(timeoutMs: number): Promise<void> {
    const image = this.options.image();
    const usable = (id: NodeId): boolean => {
      const broker = image.brokers.get(id);
      return broker !== undefined && !broker.fenced && !broker.inControlledShutdown;
    };
    const led: HostedPartition[] = [];
    for (const partition of this.all()) {
      const status = this.options.host.status(partition.id.groupId);
      if (status?.role !== 'leader') continue;
      const target = status.progress.filter((progress) => progress.id !== this.options.self && !progress.isLearner && usable(progress.id)).sort((a, b) => b.match - a.match)[0];
      if (target === undefined) continue;
      this.options.host.transferLeadership(partition.id.groupId, target.id);
      led.push(partition);
    }
    const { clock } = this.options.runtime;
    const deadline = clock.now() + timeoutMs;
    while (clock.now() < deadline && led.some((partition) => this.options.host.status(partition.id.groupId)?.role === 'leader')) {
      await clock.sleep(20);
    }
  }

  private async enforceRetention(): Promise<void> {
    for (const partition of this.hosted.values()) {
      if (this.closed) return;
      try {
        const before = partition.state.logStartOffset;
        const after = await partition.enforceRetention(this.options.runtime.clock.now());
        if (after === before) continue;
        const what = partition.state.keepsRecordState ? 'compacted: the batches applied went into a snapshot of their state' : 'retention deleted old segments';
        this.options.logger.info({ group: partition.id.groupId, partition: partition.label, logStartOffset: after }, what);
      } catch (error) {
        this.options.logger.error({ err: error, partition: partition.label }, 'retention failed');
      }
    }
  }

  /** enforceRetentionNow runs retention on every replica now (tests, tools). */
  enforceRetentionNow(): Promise<void> {
    return this.enforceRetention();
  }

  /** close stops the timers and waits for a reconcile in progress; the logs close with the node. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) timer.cancel();
    await this.reconciling;
  }

  /** closeLogs closes every hosted log (after the Raft host stopped). */
  closeLogs(): void {
    for (const partition of this.hosted.values()) partition.storage.log.close();
  }
}

/** bootstrapPartitionSnapshot is where every replica of a new partition starts: index 1, term 1, the replicas as voters, offset 0. */
export function bootstrapPartitionSnapshot(replicas: readonly NodeId[]): Snapshot {
  return { metadata: { index: 1, term: 1, confState: { voters: [...replicas].sort((a, b) => a - b), learners: [] } }, data: encodePartitionSnapshot({ nextOffset: 0, producers: { producers: [] } }) };
}
