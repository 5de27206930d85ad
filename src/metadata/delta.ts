// MetadataDelta replays records on top of an image and builds the next image. Only replay
// changes metadata: the active controller, the standbys and every broker all run this code.
import type { NodeId } from '../raft/types.js';
import type { BrokerRegistration, CompletedRequest, MetadataImage, PartitionRegistration, TopicImage } from './image.js';
import { MetadataImage as Image, firstPartitionGroupId } from './image.js';
import type { MetadataRecord } from './records.js';

/** requestsRetainedMax bounds the completed request ids an image remembers. */
export const requestsRetainedMax = 10_000;

/**
 * ImpossibleRecordError: a record that cannot follow the image (a partition of an unknown topic,
 * a fence of an unknown broker epoch). The controller never writes one, so it means a bug or a
 * corrupt log: the node stops rather than build metadata that differs from the others'.
 */
export class ImpossibleRecordError extends Error {
  override readonly name = 'ImpossibleRecordError';
  constructor(
    readonly record: MetadataRecord,
    readonly offset: number,
    reason: string,
  ) {
    super(`impossible ${record.type} record at offset ${offset}: ${reason}`);
  }
}

export class MetadataDelta {
  private base: MetadataImage;
  private brokers: Map<NodeId, BrokerRegistration> | undefined;
  private topics: Map<string, TopicImage> | undefined;
  private topicIds: Map<string, string> | undefined;
  private requests: Map<string, CompletedRequest> | undefined;
  private offset: number;
  private nextGroupId: number;
  private nextProducerId: number;

  constructor(base: MetadataImage) {
    this.base = base;
    this.offset = base.offset;
    this.nextGroupId = base.nextGroupId;
    this.nextProducerId = base.nextProducerId;
  }

  private writableBrokers(): Map<NodeId, BrokerRegistration> {
    return (this.brokers ??= new Map(this.base.brokers));
  }

  private writableTopics(): Map<string, TopicImage> {
    return (this.topics ??= new Map(this.base.topics));
  }

  private writableTopicIds(): Map<string, string> {
    return (this.topicIds ??= new Map(this.base.topicIds));
  }

  private writableRequests(): Map<string, CompletedRequest> {
    return (this.requests ??= new Map(this.base.requests));
  }

  private broker(id: NodeId): BrokerRegistration | undefined {
    return (this.brokers ?? this.base.brokers).get(id);
  }

  private topic(id: string): TopicImage | undefined {
    return (this.topics ?? this.base.topics).get(id);
  }

  private topicIdOf(name: string): string | undefined {
    return (this.topicIds ?? this.base.topicIds).get(name);
  }

  /** replay applies one record found at `offset` of the metadata log. Throws ImpossibleRecordError. */
  replay(record: MetadataRecord, offset: number): void {
    const fail = (reason: string): never => {
      throw new ImpossibleRecordError(record, offset, reason);
    };
    if (offset < this.offset) fail(`offset goes back from ${this.offset}`);
    this.offset = offset;
    switch (record.type) {
      case 'registerBroker':
        return this.replayRegister(record, fail);
      case 'fenceBroker':
      case 'unfenceBroker':
      case 'brokerShutdown':
        return this.replayBrokerState(record, fail);
      case 'topic':
        return this.replayTopic(record, fail);
      case 'partition':
        return this.replayPartition(record, fail);
      case 'partitionChange':
        return this.replayPartitionChange(record, fail);
      case 'removeTopic':
        return this.replayRemoveTopic(record, fail);
      case 'config':
        return this.replayConfig(record, fail);
      case 'completedRequest':
        return this.remember({ requestId: record.requestId, kind: record.kind as CompletedRequest['kind'], topic: record.topic, topicId: record.topicId });
      case 'groupIds':
        if (!Number.isSafeInteger(record.nextGroupId) || record.nextGroupId < this.nextGroupId) fail(`next group id ${record.nextGroupId} below ${this.nextGroupId}`);
        this.nextGroupId = record.nextGroupId;
        return;
      case 'producerIds':
        if (!Number.isSafeInteger(record.nextProducerId) || record.nextProducerId <= this.nextProducerId) fail(`next producer id ${record.nextProducerId} not above ${this.nextProducerId}`);
        this.nextProducerId = record.nextProducerId;
        return;
      case 'noOp':
        return;
    }
  }

  private replayRegister(record: Extract<MetadataRecord, { type: 'registerBroker' }>, fail: (reason: string) => never): void {
    if (!Number.isSafeInteger(record.brokerId) || record.brokerId <= 0) fail(`broker id ${record.brokerId}`);
    const previous = this.broker(record.brokerId);
    if (previous !== undefined && record.brokerEpoch <= previous.epoch) fail(`broker epoch ${record.brokerEpoch} not above ${previous.epoch}`);
    this.writableBrokers().set(record.brokerId, {
      id: record.brokerId,
      incarnationId: record.incarnationId,
      epoch: record.brokerEpoch,
      endpoint: { host: record.endpoint.host, port: record.endpoint.port },
      rack: record.rack === '' ? undefined : record.rack,
      fenced: true,
      inControlledShutdown: false,
    });
  }

  private replayBrokerState(record: Extract<MetadataRecord, { type: 'fenceBroker' | 'unfenceBroker' | 'brokerShutdown' }>, fail: (reason: string) => never): void {
    const broker = this.broker(record.brokerId) ?? fail(`unknown broker ${record.brokerId}`);
    if (broker.epoch !== record.brokerEpoch) fail(`broker ${record.brokerId} has epoch ${broker.epoch}, not ${record.brokerEpoch}`);
    const next =
      record.type === 'fenceBroker'
        ? { ...broker, fenced: true }
        : record.type === 'unfenceBroker'
          ? { ...broker, fenced: false, inControlledShutdown: false }
          : { ...broker, fenced: true, inControlledShutdown: true };
    this.writableBrokers().set(record.brokerId, next);
  }

  private replayTopic(record: Extract<MetadataRecord, { type: 'topic' }>, fail: (reason: string) => never): void {
    if (this.topicIdOf(record.name) !== undefined) fail(`topic ${record.name} exists`);
    if (this.topic(record.topicId) !== undefined) fail(`topic id ${record.topicId} exists`);
    this.writableTopics().set(record.topicId, { id: record.topicId, name: record.name, partitions: [], configs: new Map() });
    this.writableTopicIds().set(record.name, record.topicId);
    if (record.requestId !== '') this.remember({ requestId: record.requestId, kind: 'createTopic', topic: record.name, topicId: record.topicId });
  }

  private replayPartition(record: Extract<MetadataRecord, { type: 'partition' }>, fail: (reason: string) => never): void {
    const topic = this.topic(record.topicId) ?? fail(`unknown topic id ${record.topicId}`);
    if (record.partition !== topic.partitions.length) fail(`partition ${record.partition} of ${topic.name}, which has ${topic.partitions.length}`);
    const problem = replicasProblem(record.replicas, record.leader);
    if (problem !== undefined) fail(problem);
    // A snapshot lists partitions by topic name, not by group id: ids need not rise record by record.
    if (!Number.isSafeInteger(record.groupId) || record.groupId < firstPartitionGroupId) fail(`group id ${record.groupId}`);
    this.nextGroupId = Math.max(this.nextGroupId, record.groupId + 1);
    const partition: PartitionRegistration = { replicas: [...record.replicas], leader: record.leader, leaderEpoch: record.leaderEpoch, partitionEpoch: record.partitionEpoch, groupId: record.groupId };
    this.writableTopics().set(topic.id, { ...topic, partitions: [...topic.partitions, partition] });
  }

  private replayPartitionChange(record: Extract<MetadataRecord, { type: 'partitionChange' }>, fail: (reason: string) => never): void {
    const topic = this.topic(record.topicId) ?? fail(`unknown topic id ${record.topicId}`);
    const current = topic.partitions[record.partition] ?? fail(`unknown partition ${record.partition} of ${topic.name}`);
    const replicas = record.replicasChanged ? [...record.replicas] : current.replicas;
    const leader = record.leaderChanged ? record.leader : current.leader;
    const problem = replicasProblem(replicas, leader);
    if (problem !== undefined) fail(problem);
    const next: PartitionRegistration = {
      groupId: current.groupId,
      replicas,
      leader,
      leaderEpoch: current.leaderEpoch + (record.leaderChanged ? 1 : 0),
      partitionEpoch: current.partitionEpoch + 1,
    };
    const partitions = [...topic.partitions];
    partitions[record.partition] = next;
    this.writableTopics().set(topic.id, { ...topic, partitions });
  }

  private replayRemoveTopic(record: Extract<MetadataRecord, { type: 'removeTopic' }>, fail: (reason: string) => never): void {
    const topic = this.topic(record.topicId) ?? fail(`unknown topic id ${record.topicId}`);
    this.writableTopics().delete(topic.id);
    this.writableTopicIds().delete(topic.name);
    if (record.requestId !== '') this.remember({ requestId: record.requestId, kind: 'deleteTopic', topic: topic.name, topicId: topic.id });
  }

  private replayConfig(record: Extract<MetadataRecord, { type: 'config' }>, fail: (reason: string) => never): void {
    const id = this.topicIdOf(record.topic) ?? fail(`config for unknown topic ${record.topic}`);
    const topic = this.topic(id)!;
    const configs = new Map(topic.configs);
    if (record.hasValue) configs.set(record.key, record.value);
    else configs.delete(record.key);
    this.writableTopics().set(id, { ...topic, configs });
  }

  private remember(request: CompletedRequest): void {
    const requests = this.writableRequests();
    requests.delete(request.requestId);
    requests.set(request.requestId, request);
    while (requests.size > requestsRetainedMax) requests.delete(requests.keys().next().value!);
  }

  /** advanceTo moves the offset over a log entry that holds no record (an empty or membership entry). */
  advanceTo(offset: number): void {
    if (offset > this.offset) this.offset = offset;
  }

  /** apply returns the image with every replayed record applied, at the last replayed offset. */
  apply(): MetadataImage {
    const image = new Image({
      offset: this.offset,
      brokers: this.brokers ?? this.base.brokers,
      topics: this.topics ?? this.base.topics,
      topicIds: this.topicIds ?? this.base.topicIds,
      requests: this.requests ?? this.base.requests,
      nextGroupId: this.nextGroupId,
      nextProducerId: this.nextProducerId,
    });
    // The image now owns those maps: further replays copy them afresh, so it never changes.
    this.base = image;
    this.brokers = undefined;
    this.topics = undefined;
    this.topicIds = undefined;
    this.requests = undefined;
    return image;
  }
}

function replicasProblem(replicas: readonly NodeId[], leader: NodeId): string | undefined {
  if (replicas.length === 0) return 'no replicas';
  if (new Set(replicas).size !== replicas.length) return `replicas [${replicas.join(',')}] repeat a broker`;
  if (leader !== 0 && !replicas.includes(leader)) return `leader ${leader} is not a replica of [${replicas.join(',')}]`;
  return undefined;
}

/** replayAll is a convenience: base + records (all at one offset) -> next image. */
export function replayAll(base: MetadataImage, records: readonly MetadataRecord[], offset: number): MetadataImage {
  const delta = new MetadataDelta(base);
  for (const record of records) delta.replay(record, offset);
  return delta.apply();
}
