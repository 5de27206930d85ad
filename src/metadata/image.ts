// MetadataImage is the cluster metadata at one offset of the metadata log: brokers, topics,
// partitions, configs. Immutable; a MetadataDelta replays records into the next image.
import type { NodeId } from '../raft/types.js';
import type { BrokerEndpoint, MetadataRecord } from './records.js';

export interface BrokerRegistration {
  readonly id: NodeId;
  readonly incarnationId: string;
  readonly epoch: number;
  readonly endpoint: BrokerEndpoint;
  readonly rack: string | undefined;
  readonly fenced: boolean;
  readonly inControlledShutdown: boolean;
}

export interface PartitionRegistration {
  /** replicas: the first is the preferred leader. */
  readonly replicas: readonly NodeId[];
  /** leader: 0 when none. */
  readonly leader: NodeId;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  /** groupId: the Raft group that replicates the partition. */
  readonly groupId: number;
}

export interface TopicImage {
  readonly id: string;
  readonly name: string;
  /** partitions[i] is partition i. */
  readonly partitions: readonly PartitionRegistration[];
  /** configs: the overrides set on the topic (defaults apply to the rest). */
  readonly configs: ReadonlyMap<string, string>;
}

/** PartitionDescription is a partition as clients see it. */
export interface PartitionDescription {
  readonly partition: number;
  readonly replicas: readonly NodeId[];
  readonly leader: NodeId;
  readonly leaderEpoch: number;
  readonly groupId: number;
}

/** TopicDescription is a topic as clients see it: configs are the overrides only. */
export interface TopicDescription {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: readonly PartitionDescription[];
  readonly configs: Readonly<Record<string, string>>;
}

/** describeTopic is what clients are told of a topic. */
export function describeTopic(topic: TopicImage): TopicDescription {
  return {
    name: topic.name,
    topicId: topic.id,
    partitions: topic.partitions.map((partition, index) => ({ partition: index, replicas: partition.replicas, leader: partition.leader, leaderEpoch: partition.leaderEpoch, groupId: partition.groupId })),
    configs: Object.fromEntries(topic.configs),
  };
}

/** firstPartitionGroupId: group 0 is the metadata quorum; partitions get 1, 2, ... */
export const firstPartitionGroupId = 1;

/** PartitionRef names one partition and the Raft group replicating it. */
export interface PartitionRef {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly registration: PartitionRegistration;
}

export const requestKinds = ['createTopic', 'deleteTopic'] as const;
export type RequestKind = (typeof requestKinds)[number];

/** CompletedRequest remembers a request id the controller answered, so a retry is harmless. */
export interface CompletedRequest {
  readonly requestId: string;
  readonly kind: RequestKind;
  readonly topic: string;
  readonly topicId: string;
}

export class MetadataImage {
  static readonly empty = new MetadataImage({ offset: 0, brokers: new Map(), topics: new Map(), topicIds: new Map(), requests: new Map(), nextGroupId: firstPartitionGroupId, nextProducerId: 0 });

  /** offset is the index of the last metadata log entry replayed into this image. */
  readonly offset: number;
  readonly brokers: ReadonlyMap<NodeId, BrokerRegistration>;
  /** topics by topic id. */
  readonly topics: ReadonlyMap<string, TopicImage>;
  /** topicIds by topic name. */
  readonly topicIds: ReadonlyMap<string, string>;
  /** requests: recently completed request ids, oldest first, bounded. */
  readonly requests: ReadonlyMap<string, CompletedRequest>;
  /** nextGroupId is the Raft group id the next partition gets; ids are never reused. */
  readonly nextGroupId: number;
  /** nextProducerId is the first producer id not handed out yet. */
  readonly nextProducerId: number;

  constructor(parts: {
    offset: number;
    brokers: ReadonlyMap<NodeId, BrokerRegistration>;
    topics: ReadonlyMap<string, TopicImage>;
    topicIds: ReadonlyMap<string, string>;
    requests: ReadonlyMap<string, CompletedRequest>;
    nextGroupId: number;
    nextProducerId: number;
  }) {
    this.offset = parts.offset;
    this.nextGroupId = parts.nextGroupId;
    this.nextProducerId = parts.nextProducerId;
    this.brokers = parts.brokers;
    this.topics = parts.topics;
    this.topicIds = parts.topicIds;
    this.requests = parts.requests;
  }

  topicByName(name: string): TopicImage | undefined {
    const id = this.topicIds.get(name);
    return id === undefined ? undefined : this.topics.get(id);
  }

  /** unfencedBrokers returns the brokers that may host and lead partitions, by id. */
  unfencedBrokers(): BrokerRegistration[] {
    return [...this.brokers.values()].filter((broker) => !broker.fenced && !broker.inControlledShutdown).sort((a, b) => a.id - b.id);
  }

  totalPartitions(): number {
    let total = 0;
    for (const topic of this.topics.values()) total += topic.partitions.length;
    return total;
  }

  /** replicaPartitions lists every partition with a replica on broker. */
  replicaPartitions(broker: NodeId): PartitionRef[] {
    const refs: PartitionRef[] = [];
    for (const topic of this.topics.values()) {
      topic.partitions.forEach((registration, partition) => {
        if (registration.replicas.includes(broker)) refs.push({ topic: topic.name, topicId: topic.id, partition, registration });
      });
    }
    return refs;
  }

  /** partitionsHostedBy lists the partitions with a replica on broker, as topic name and partition. */
  partitionsHostedBy(broker: NodeId): { topic: string; topicId: string; partition: number; leader: boolean }[] {
    const hosted: { topic: string; topicId: string; partition: number; leader: boolean }[] = [];
    for (const topic of this.topics.values()) {
      topic.partitions.forEach((partition, index) => {
        if (partition.replicas.includes(broker)) hosted.push({ topic: topic.name, topicId: topic.id, partition: index, leader: partition.leader === broker });
      });
    }
    return hosted;
  }

  /**
   * toRecords writes the image out as records (a snapshot): replaying them into an empty image
   * gives this image back (at the snapshot's offset).
   */
  toRecords(): MetadataRecord[] {
    const records: MetadataRecord[] = [];
    for (const broker of [...this.brokers.values()].sort((a, b) => a.id - b.id)) {
      records.push({ type: 'registerBroker', brokerId: broker.id, incarnationId: broker.incarnationId, endpoint: broker.endpoint, rack: broker.rack ?? '', brokerEpoch: broker.epoch });
      if (!broker.fenced && !broker.inControlledShutdown) records.push({ type: 'unfenceBroker', brokerId: broker.id, brokerEpoch: broker.epoch });
      if (broker.inControlledShutdown) records.push({ type: 'brokerShutdown', brokerId: broker.id, brokerEpoch: broker.epoch });
    }
    for (const topic of [...this.topics.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      records.push({ type: 'topic', name: topic.name, topicId: topic.id, requestId: '' });
      for (const [key, value] of [...topic.configs].sort(([a], [b]) => a.localeCompare(b))) {
        records.push({ type: 'config', topic: topic.name, key, hasValue: true, value });
      }
      topic.partitions.forEach((partition, index) => {
        const { replicas, leader, leaderEpoch, partitionEpoch, groupId } = partition;
        records.push({ type: 'partition', topicId: topic.id, partition: index, replicas, leader, leaderEpoch, partitionEpoch, groupId });
      });
    }
    for (const request of this.requests.values()) records.push({ type: 'completedRequest', ...request });
    if (this.nextGroupId > firstPartitionGroupId) records.push({ type: 'groupIds', nextGroupId: this.nextGroupId });
    if (this.nextProducerId > 0) records.push({ type: 'producerIds', nextProducerId: this.nextProducerId });
    return records;
  }
}
