// The controller's operations, as in Kafka's KRaft: each turns a request and the current image
// into the records to append and the response to send once they commit. None changes anything;
// only replaying the records does (on every node alike). Time and ids are passed in.
import { InvalidRequestError, StaleBrokerEpochError, TopicExistsError, UnknownTopicError, type Problem } from '../errors.js';
import { describeTopic, type BrokerRegistration, type MetadataImage, type PartitionRegistration, type TopicDescription, type TopicImage } from '../metadata/image.js';

export type { TopicDescription } from '../metadata/image.js';
import { replayAll } from '../metadata/delta.js';
import type { BrokerEndpoint, MetadataRecord } from '../metadata/records.js';
import type { NodeId } from '../raft/types.js';
import { placeReplicas } from './placement.js';
import { addPartitionsProblems, alterConfigsProblems, configsToStrings, createTopicProblems, defaultTopicConfigs, parseTopicConfigs, topicConfigKeys } from './topic-validation.js';

/** Outcome of an operation: records to append (maybe none) and the response once they commit. */
export interface Outcome<Response> {
  readonly records: readonly MetadataRecord[];
  readonly response: Response;
}

// ---------------------------------------------------------------------------------------------
// Brokers.

export interface RegisterBrokerRequest {
  readonly brokerId: NodeId;
  readonly incarnationId: string;
  readonly endpoint: BrokerEndpoint;
  readonly rack: string | undefined;
}

/**
 * registerBroker registers a broker (fenced) with an epoch above any it had. A retry of the same
 * incarnation's registration is answered with the epoch it already got.
 */
export function registerBroker(image: MetadataImage, request: RegisterBrokerRequest): Outcome<{ brokerEpoch: number }> {
  const current = image.brokers.get(request.brokerId);
  if (current !== undefined && current.incarnationId === request.incarnationId) return { records: [], response: { brokerEpoch: current.epoch } };
  const brokerEpoch = Math.max(image.offset + 1, (current?.epoch ?? 0) + 1);
  const record: MetadataRecord = { type: 'registerBroker', brokerId: request.brokerId, incarnationId: request.incarnationId, endpoint: request.endpoint, rack: request.rack ?? '', brokerEpoch };
  return { records: [record, ...leadersAwayFrom(image, request.brokerId)], response: { brokerEpoch } };
}

export interface BrokerHeartbeatRequest {
  readonly brokerId: NodeId;
  readonly brokerEpoch: number;
  /** metadataOffset: the last metadata log index the broker has applied. */
  readonly metadataOffset: number;
  readonly wantShutdown: boolean;
}

export interface BrokerHeartbeatResponse {
  readonly fenced: boolean;
  readonly shouldShutdown: boolean;
}

/**
 * brokerHeartbeat answers a heartbeat. A fenced broker that has caught up with the metadata log
 * up to its own registration is unfenced; a broker that wants to stop is put in controlled
 * shutdown (fenced, its leaderships moved away) and then told it may stop.
 * Throws StaleBrokerEpochError when the broker's registration is not current.
 */
export function brokerHeartbeat(image: MetadataImage, request: BrokerHeartbeatRequest): Outcome<BrokerHeartbeatResponse> {
  const broker = image.brokers.get(request.brokerId);
  if (broker === undefined || broker.epoch !== request.brokerEpoch) throw new StaleBrokerEpochError(request.brokerId, request.brokerEpoch);
  if (request.wantShutdown) {
    if (broker.inControlledShutdown) return { records: [], response: { fenced: true, shouldShutdown: true } };
    const record: MetadataRecord = { type: 'brokerShutdown', brokerId: broker.id, brokerEpoch: broker.epoch };
    return { records: [record, ...leadersAwayFrom(image, broker.id)], response: { fenced: true, shouldShutdown: true } };
  }
  if (broker.fenced && request.metadataOffset >= broker.epoch) {
    const record: MetadataRecord = { type: 'unfenceBroker', brokerId: broker.id, brokerEpoch: broker.epoch };
    return { records: [record, ...leadersTo(image, broker)], response: { fenced: false, shouldShutdown: false } };
  }
  return { records: [], response: { fenced: broker.fenced, shouldShutdown: false } };
}

/**
 * fenceSilentBrokers fences every unfenced broker not heard from within sessionTimeoutMs, and
 * moves its leaderships to other replicas. lastHeardMs maps a broker to its last heartbeat time.
 */
export function fenceSilentBrokers(image: MetadataImage, options: { nowMs: number; sessionTimeoutMs: number; lastHeardMs: ReadonlyMap<NodeId, number> }): Outcome<{ fenced: NodeId[] }> {
  const records: MetadataRecord[] = [];
  const fenced: NodeId[] = [];
  // Each fence is planned on the image with the earlier ones (and their leader moves) applied, so
  // that no leadership moves to a broker fenced in the same batch.
  let working = image;
  for (const broker of [...image.brokers.values()].sort((a, b) => a.id - b.id)) {
    if (broker.fenced) continue;
    const heard = options.lastHeardMs.get(broker.id);
    if (heard !== undefined && options.nowMs - heard <= options.sessionTimeoutMs) continue;
    const fence: MetadataRecord = { type: 'fenceBroker', brokerId: broker.id, brokerEpoch: broker.epoch };
    const moved = leadersAwayFrom(replayAll(working, [fence], working.offset), broker.id);
    fenced.push(broker.id);
    records.push(fence, ...moved);
    working = replayAll(working, [fence, ...moved], working.offset);
  }
  return { records, response: { fenced } };
}

function usable(image: MetadataImage, id: NodeId): boolean {
  const broker = image.brokers.get(id);
  return broker !== undefined && !broker.fenced && !broker.inControlledShutdown;
}

/** leadersAwayFrom moves every leadership of brokerId to the first other usable replica (or none). */
function leadersAwayFrom(image: MetadataImage, brokerId: NodeId): MetadataRecord[] {
  const records: MetadataRecord[] = [];
  for (const topic of image.topics.values()) {
    topic.partitions.forEach((partition, index) => {
      if (partition.leader !== brokerId) return;
      const leader = partition.replicas.find((id) => id !== brokerId && usable(image, id)) ?? 0;
      records.push(leaderChange(topic, index, leader));
    });
  }
  return records;
}

/** leadersTo gives a newly usable broker the partitions that have no leader, and those it prefers to lead. */
function leadersTo(image: MetadataImage, broker: BrokerRegistration): MetadataRecord[] {
  const records: MetadataRecord[] = [];
  for (const topic of image.topics.values()) {
    topic.partitions.forEach((partition, index) => {
      if (!partition.replicas.includes(broker.id) || partition.leader === broker.id) return;
      const preferred = partition.replicas[0] === broker.id;
      if (partition.leader === 0 || preferred) records.push(leaderChange(topic, index, broker.id));
    });
  }
  return records;
}

function leaderChange(topic: TopicImage, partition: number, leader: NodeId): MetadataRecord {
  return { type: 'partitionChange', topicId: topic.id, partition, leaderChanged: true, leader, replicasChanged: false, replicas: [] };
}

// ---------------------------------------------------------------------------------------------
// Topics.

export interface CreateTopicOperation {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
  /** requestId: the client's id for this request; a retry with the same id is answered, not redone. */
  readonly requestId: string;
}


/**
 * createTopic places the topic's partitions on the unfenced brokers and returns its records.
 * Throws InvalidRequestError (every problem at once) or TopicExistsError. newTopicId supplies ids.
 */
export function createTopic(image: MetadataImage, request: CreateTopicOperation, newTopicId: () => string): Outcome<TopicDescription> {
  const retried = image.requests.get(request.requestId);
  if (request.requestId !== '' && retried?.kind === 'createTopic' && retried.topic === request.name) {
    const topic = image.topics.get(retried.topicId);
    if (topic !== undefined) return { records: [], response: describeTopic(topic) };
    // A retry must not bring back a topic someone deleted since this request created it.
    throw new InvalidRequestError([
      { field: 'requestId', message: `request ${request.requestId} created topic ${request.name} (${retried.topicId}), which has since been deleted; send a new request to create it again` },
    ]);
  }
  if (image.topicIds.has(request.name)) throw new TopicExistsError(request.name);
  const brokers = image.unfencedBrokers();
  const problems = createTopicProblems(request, { unfencedBrokers: brokers.length, existingTopicNames: [...image.topicIds.keys()], totalPartitions: image.totalPartitions() });
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const placement = placeReplicas({ topic: request.name, brokers: brokers.map((broker) => ({ id: broker.id, rack: broker.rack })), partitionCount: request.partitions, replicationFactor: request.replicationFactor });
  if (placement.kind !== 'placed') throw new InvalidRequestError([{ field: 'replicationFactor', message: `replication factor ${request.replicationFactor} is larger than the ${brokers.length} unfenced brokers` }]);
  const topicId = newTopicId();
  const records: MetadataRecord[] = [{ type: 'topic', name: request.name, topicId, requestId: request.requestId }];
  for (const [key, value] of Object.entries(request.configs).sort(([a], [b]) => a.localeCompare(b))) {
    records.push({ type: 'config', topic: request.name, key, hasValue: true, value });
  }
  const partitions = newPartitions(image, placement.assignments);
  partitions.forEach((registration, partition) => records.push({ type: 'partition', topicId, partition, ...registration }));
  return { records, response: describeTopic({ id: topicId, name: request.name, partitions, configs: new Map(Object.entries(request.configs)) }) };
}

/** deleteTopic removes a topic. A retry of a delete already done is answered as done. */
export function deleteTopic(image: MetadataImage, request: { name: string; requestId: string }): Outcome<{ topicId: string }> {
  const retried = image.requests.get(request.requestId);
  if (request.requestId !== '' && retried?.kind === 'deleteTopic' && retried.topic === request.name) return { records: [], response: { topicId: retried.topicId } };
  const topic = image.topicByName(request.name);
  if (topic === undefined) throw new UnknownTopicError(request.name);
  return { records: [{ type: 'removeTopic', topicId: topic.id, requestId: request.requestId }], response: { topicId: topic.id } };
}

/** createPartitions grows a topic to `partitions` in all, placing the new ones evenly. */
export function createPartitions(image: MetadataImage, request: { name: string; partitions: number }): Outcome<TopicDescription> {
  const topic = image.topicByName(request.name);
  if (topic === undefined) throw new UnknownTopicError(request.name);
  const brokers = image.unfencedBrokers();
  const replicationFactor = topic.partitions[0]?.replicas.length ?? 1;
  if (request.partitions === topic.partitions.length) return { records: [], response: describeTopic(topic) };
  const problems = addPartitionsProblems({ partitions: request.partitions }, { partitions: topic.partitions.length, replicationFactor }, { unfencedBrokers: brokers.length, totalPartitions: image.totalPartitions() });
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const placement = placeReplicas({
    topic: topic.name,
    brokers: brokers.map((broker) => ({ id: broker.id, rack: broker.rack })),
    partitionCount: request.partitions - topic.partitions.length,
    replicationFactor,
    existing: topic.partitions.map((partition) => partition.replicas),
  });
  if (placement.kind !== 'placed') throw new InvalidRequestError([{ field: 'replicationFactor', message: `replication factor ${replicationFactor} is larger than the ${brokers.length} unfenced brokers` }]);
  const added = newPartitions(image, placement.assignments);
  const records: MetadataRecord[] = added.map((registration, i) => ({ type: 'partition', topicId: topic.id, partition: topic.partitions.length + i, ...registration }));
  return { records, response: describeTopic({ ...topic, partitions: [...topic.partitions, ...added] }) };
}

/** newPartitions registers placed partitions, led by their first replica, on fresh Raft group ids. */
function newPartitions(image: MetadataImage, assignments: readonly (readonly NodeId[])[]): PartitionRegistration[] {
  return assignments.map((replicas, i) => ({ replicas: [...replicas], leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0, groupId: image.nextGroupId + i }));
}

/** producerIdsPerRequestMax bounds the producer ids one request may take. */
export const producerIdsPerRequestMax = 1000;

/** allocateProducerIds hands out `count` producer ids that no one was given before. */
export function allocateProducerIds(image: MetadataImage, request: { count: number }): Outcome<{ firstProducerId: number; count: number }> {
  if (!Number.isInteger(request.count) || request.count < 1 || request.count > producerIdsPerRequestMax) {
    throw InvalidRequestError.of('count', `must be 1..${producerIdsPerRequestMax}, got ${request.count}`);
  }
  const first = image.nextProducerId;
  return { records: [{ type: 'producerIds', nextProducerId: first + request.count }], response: { firstProducerId: first, count: request.count } };
}

/** alterConfigs sets (and, for keys in `remove`, resets to default) topic configs. */
export function alterConfigs(image: MetadataImage, request: { name: string; set: Readonly<Record<string, string>>; remove: readonly string[] }): Outcome<TopicDescription> {
  const topic = image.topicByName(request.name);
  if (topic === undefined) throw new UnknownTopicError(request.name);
  const current = parseTopicConfigs(Object.fromEntries(topic.configs));
  if (current.kind !== 'ok') throw new InvalidRequestError(current.problems);
  const problems: Problem[] = [];
  for (const key of request.remove) {
    if (key in request.set) problems.push({ field: `remove["${key}"]`, message: `${key} is also set in this request; set a config or reset it, not both` });
  }
  const defaults: Record<string, string> = configsToStrings(defaultTopicConfigs);
  for (const key of request.remove) {
    if (!(topicConfigKeys as readonly string[]).includes(key)) problems.push({ field: `remove["${key}"]`, message: `unknown config; known configs are ${topicConfigKeys.join(', ')}` });
  }
  // A removed key returns to its default: check the result as if the default were set.
  const resulting = { ...Object.fromEntries(request.remove.filter((key) => key in defaults).map((key) => [key, defaults[key]!])), ...request.set };
  problems.push(...alterConfigsProblems({ configs: resulting }, { configs: current.configs }));
  if (problems.length > 0) throw new InvalidRequestError(problems);
  const records: MetadataRecord[] = [
    ...Object.entries(request.set).map(([key, value]): MetadataRecord => ({ type: 'config', topic: topic.name, key, hasValue: true, value })),
    ...request.remove.filter((key) => topic.configs.has(key)).map((key): MetadataRecord => ({ type: 'config', topic: topic.name, key, hasValue: false, value: '' })),
  ];
  const configs = Object.fromEntries(topic.configs);
  for (const [key, value] of Object.entries(request.set)) configs[key] = value;
  for (const key of request.remove) delete configs[key];
  return { records, response: describeTopic({ ...topic, configs: new Map(Object.entries(configs)) }) };
}
