// Tests of the controller operations on hand-built images: the records each returns, its response,
// the image once those records are replayed, and the typed errors of bad or stale requests.
// Every operation runs through Cluster.run, which also checks that the operation changed nothing.
import { describe, expect, it } from 'vitest';
import { InvalidRequestError, StaleBrokerEpochError, TopicExistsError, UnknownTopicError } from '../errors.js';
import { replayAll } from '../metadata/delta.js';
import { MetadataImage } from '../metadata/image.js';
import { describeTopic } from '../metadata/image.js';
import type { MetadataRecord } from '../metadata/records.js';
import {
  allocateProducerIds,
  alterConfigs,
  brokerHeartbeat,
  createPartitions,
  createTopic,
  deleteTopic,
  fenceSilentBrokers,
  registerBroker,
  type CreateTopicOperation,
  type Outcome,
  type TopicDescription,
} from './operations.js';

/** rendering is the image as comparable text: its offset and snapshot records. */
function rendering(image: MetadataImage): string {
  return JSON.stringify({ offset: image.offset, records: image.toRecords() });
}

/**
 * Cluster holds an image and commits operations on it: each operation's records become the next
 * metadata log entry, replayed into the next image, as the controller runtime does.
 */
class Cluster {
  image = MetadataImage.empty;
  /** last holds the records of the last operation run. */
  last: readonly MetadataRecord[] = [];
  private topicIds = 0;

  /** run runs an operation on the image, checks it changed nothing, and commits its records. */
  run<Response>(operation: (image: MetadataImage) => Outcome<Response>): Response {
    const before = this.image;
    const rendered = rendering(before);
    const outcome = operation(before);
    expect(rendering(before)).toBe(rendered);
    this.last = outcome.records;
    if (outcome.records.length > 0) this.image = replayAll(this.image, outcome.records, this.image.offset + 1);
    return outcome.response;
  }

  register(brokerId: number, options: { rack?: string; incarnation?: string } = {}): number {
    const request = { brokerId, incarnationId: options.incarnation ?? `incarnation-${brokerId}`, endpoint: { host: `broker-${brokerId}.local`, port: 9092 }, rack: options.rack };
    return this.run((image) => registerBroker(image, request)).brokerEpoch;
  }

  /** unfence sends a caught-up heartbeat for the broker's current registration. */
  unfence(brokerId: number): void {
    const epoch = this.epoch(brokerId);
    this.run((image) => brokerHeartbeat(image, { brokerId, brokerEpoch: epoch, metadataOffset: image.offset, wantShutdown: false }));
  }

  /** start registers and unfences brokers 1..count (rackOf gives each one's rack). */
  start(count: number, rackOf: (id: number) => string | undefined = () => undefined): this {
    for (let id = 1; id <= count; id++) {
      const rack = rackOf(id);
      this.register(id, rack === undefined ? {} : { rack });
      this.unfence(id);
    }
    return this;
  }

  epoch(brokerId: number): number {
    return this.image.brokers.get(brokerId)!.epoch;
  }

  newTopicId = (): string => `topic-id-${++this.topicIds}`;

  createTopic(request: Partial<CreateTopicOperation> & { name: string }): TopicDescription {
    const full: CreateTopicOperation = { partitions: 1, replicationFactor: 1, configs: {}, requestId: `create-${request.name}`, ...request };
    return this.run((image) => createTopic(image, full, this.newTopicId));
  }

  /** fenceSilent fences every broker but those heard at nowMs. */
  fenceSilent(heard: readonly number[]): number[] {
    const nowMs = 100_000;
    return this.run((image) => fenceSilentBrokers(image, { nowMs, sessionTimeoutMs: 1_000, lastHeardMs: new Map(heard.map((id) => [id, nowMs])) })).fenced;
  }

  partition(topic: string, partition: number) {
    return this.image.topicByName(topic)!.partitions[partition]!;
  }

  /** leaders returns the leader of each partition of topic. */
  leaders(topic: string): number[] {
    return this.image.topicByName(topic)!.partitions.map((partition) => partition.leader);
  }
}

/** thrown runs f and returns what it throws (failing when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

function problemFields(f: () => unknown): string[] {
  const error = thrown(f);
  expect(error).toBeInstanceOf(InvalidRequestError);
  return (error as InvalidRequestError).problems.map((problem) => problem.field);
}

const moveLeader = (topicId: string, partition: number, leader: number): MetadataRecord => ({
  type: 'partitionChange',
  topicId,
  partition,
  leaderChanged: true,
  leader,
  replicasChanged: false,
  replicas: [],
});

// ---------------------------------------------------------------------------------------------

describe('registerBroker', () => {
  it('registers a new broker fenced, with an epoch above the metadata offset', () => {
    const cluster = new Cluster();
    cluster.run(() => ({ records: [{ type: 'noOp', payload: new Uint8Array() }], response: undefined })); // offset 1
    const epoch = cluster.register(7, { rack: 'eu-1a' });
    expect(epoch).toBe(2);
    expect(cluster.last).toEqual([{ type: 'registerBroker', brokerId: 7, incarnationId: 'incarnation-7', endpoint: { host: 'broker-7.local', port: 9092 }, rack: 'eu-1a', brokerEpoch: 2 }]);
    expect(cluster.image.brokers.get(7)).toEqual({ id: 7, incarnationId: 'incarnation-7', epoch: 2, endpoint: { host: 'broker-7.local', port: 9092 }, rack: 'eu-1a', fenced: true, inControlledShutdown: false });
    expect(cluster.image.unfencedBrokers()).toEqual([]);
  });

  it('writes no rack as the empty string, and reads it back as no rack', () => {
    const cluster = new Cluster();
    cluster.register(1);
    expect(cluster.last[0]).toMatchObject({ type: 'registerBroker', rack: '' });
    expect(cluster.image.brokers.get(1)?.rack).toBeUndefined();
  });

  it('answers a retry of the same incarnation with the epoch it got, and no records', () => {
    const cluster = new Cluster().start(2);
    const epoch = cluster.epoch(1);
    cluster.createTopic({ name: 'orders' }); // the log moves on meanwhile
    expect(cluster.register(1)).toBe(epoch);
    expect(cluster.last).toEqual([]);
    expect(cluster.image.brokers.get(1)?.fenced).toBe(false); // the retry does not fence it again
  });

  it('gives a new incarnation a higher epoch, fences it and moves its leaderships away', () => {
    const cluster = new Cluster().start(3);
    cluster.createTopic({ name: 'orders', partitions: 3, replicationFactor: 2 });
    const topic = cluster.image.topicByName('orders')!;
    const before = topic.partitions;
    const led = before.flatMap((partition, index) => (partition.leader === 2 ? [index] : []));
    expect(led.length).toBeGreaterThan(0);
    const oldEpoch = cluster.epoch(2);

    const epoch = cluster.register(2, { incarnation: 'incarnation-2-restarted' });

    expect(epoch).toBeGreaterThan(oldEpoch);
    expect(epoch).toBe(cluster.image.offset);
    const expectedMoves = led.map((index) => moveLeader(topic.id, index, before[index]!.replicas.find((id) => id !== 2)!));
    expect(cluster.last).toEqual([{ type: 'registerBroker', brokerId: 2, incarnationId: 'incarnation-2-restarted', endpoint: { host: 'broker-2.local', port: 9092 }, rack: '', brokerEpoch: epoch }, ...expectedMoves]);
    expect(cluster.image.brokers.get(2)).toMatchObject({ epoch, incarnationId: 'incarnation-2-restarted', fenced: true });
    expect(cluster.leaders('orders')).not.toContain(2);
    for (const index of led) expect(cluster.partition('orders', index).leaderEpoch).toBe(before[index]!.leaderEpoch + 1);
  });

  it('leaves a partition leaderless when the restarted broker was its only usable replica', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'solo', partitions: 2 });
    cluster.register(1, { incarnation: 'again' });
    expect(cluster.leaders('solo')).toEqual([0, 0]);
    // Unfenced again, it leads them again.
    cluster.unfence(1);
    expect(cluster.leaders('solo')).toEqual([1, 1]);
    expect(cluster.partition('solo', 0).leaderEpoch).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('brokerHeartbeat', () => {
  it('keeps a broker fenced until its metadata offset reaches its epoch, then unfences it', () => {
    const cluster = new Cluster();
    cluster.run(() => ({ records: [{ type: 'noOp', payload: new Uint8Array() }], response: undefined }));
    const epoch = cluster.register(1);
    expect(epoch).toBe(2);
    const behind = cluster.run((image) => brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epoch, metadataOffset: epoch - 1, wantShutdown: false }));
    expect(behind).toEqual({ fenced: true, shouldShutdown: false });
    expect(cluster.last).toEqual([]);

    const caughtUp = cluster.run((image) => brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epoch, metadataOffset: epoch, wantShutdown: false }));
    expect(caughtUp).toEqual({ fenced: false, shouldShutdown: false });
    expect(cluster.last).toEqual([{ type: 'unfenceBroker', brokerId: 1, brokerEpoch: epoch }]);
    expect(cluster.image.brokers.get(1)?.fenced).toBe(false);

    const again = cluster.run((image) => brokerHeartbeat(image, { brokerId: 1, brokerEpoch: epoch, metadataOffset: image.offset, wantShutdown: false }));
    expect(again).toEqual({ fenced: false, shouldShutdown: false });
    expect(cluster.last).toEqual([]);
  });

  it('refuses a stale or unknown epoch with StaleBrokerEpochError', () => {
    const cluster = new Cluster().start(1);
    const oldEpoch = cluster.epoch(1);
    cluster.register(1, { incarnation: 'second' });
    for (const [brokerId, brokerEpoch] of [
      [1, oldEpoch],
      [1, cluster.epoch(1) + 1],
      [9, 1],
    ] as const) {
      const error = thrown(() => brokerHeartbeat(cluster.image, { brokerId, brokerEpoch, metadataOffset: cluster.image.offset, wantShutdown: false }));
      expect(error).toBeInstanceOf(StaleBrokerEpochError);
      expect(error).toMatchObject({ name: 'StaleBrokerEpochError', brokerId, brokerEpoch, retriable: false });
    }
  });

  it('on wantShutdown puts the broker in controlled shutdown, moves its leaderships and lets it stop', () => {
    const cluster = new Cluster().start(3);
    cluster.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3 });
    const topic = cluster.image.topicByName('orders')!;
    const led = topic.partitions.flatMap((partition, index) => (partition.leader === 3 ? [index] : []));
    expect(led).toHaveLength(2);
    const epoch = cluster.epoch(3);

    const response = cluster.run((image) => brokerHeartbeat(image, { brokerId: 3, brokerEpoch: epoch, metadataOffset: image.offset, wantShutdown: true }));

    expect(response).toEqual({ fenced: true, shouldShutdown: true });
    const moves = led.map((index) => moveLeader(topic.id, index, topic.partitions[index]!.replicas.find((id) => id !== 3)!));
    expect(cluster.last).toEqual([{ type: 'brokerShutdown', brokerId: 3, brokerEpoch: epoch }, ...moves]);
    expect(cluster.image.brokers.get(3)).toMatchObject({ fenced: true, inControlledShutdown: true });
    expect(cluster.leaders('orders')).not.toContain(3);
    expect(cluster.image.unfencedBrokers().map((broker) => broker.id)).toEqual([1, 2]);

    // Asked again: nothing more to do, it may stop.
    const again = cluster.run((image) => brokerHeartbeat(image, { brokerId: 3, brokerEpoch: epoch, metadataOffset: image.offset, wantShutdown: true }));
    expect(again).toEqual({ fenced: true, shouldShutdown: true });
    expect(cluster.last).toEqual([]);
  });

  it('on unfence gives the broker the partitions without a leader and those it prefers to lead', () => {
    const cluster = new Cluster().start(2);
    cluster.createTopic({ name: 'orders', partitions: 4, replicationFactor: 2 });
    cluster.createTopic({ name: 'solo', partitions: 2, replicationFactor: 1 });
    const preferredBy1 = cluster.image.topicByName('orders')!.partitions.flatMap((partition, index) => (partition.replicas[0] === 1 ? [index] : []));
    const soloOn1 = cluster.image.topicByName('solo')!.partitions.flatMap((partition, index) => (partition.replicas[0] === 1 ? [index] : []));
    expect(preferredBy1).toHaveLength(2);
    expect(soloOn1).toHaveLength(1);

    expect(cluster.fenceSilent([2])).toEqual([1]);
    expect(cluster.leaders('orders')).toEqual([2, 2, 2, 2]);
    expect(cluster.partition('solo', soloOn1[0]!).leader).toBe(0);

    cluster.unfence(1);
    const orders = cluster.image.topicByName('orders')!;
    const solo = cluster.image.topicByName('solo')!;
    expect(cluster.last).toEqual([
      { type: 'unfenceBroker', brokerId: 1, brokerEpoch: cluster.epoch(1) },
      ...preferredBy1.map((index) => moveLeader(orders.id, index, 1)),
      ...soloOn1.map((index) => moveLeader(solo.id, index, 1)),
    ]);
    expect(orders.partitions.map((partition) => partition.leader)).toEqual(orders.partitions.map((partition) => partition.replicas[0]));
  });
});

// ---------------------------------------------------------------------------------------------

describe('fenceSilentBrokers', () => {
  it('fences only the unfenced brokers not heard within the session timeout', () => {
    const cluster = new Cluster().start(3);
    cluster.register(4); // registered, never unfenced
    const nowMs = 50_000;
    const lastHeardMs = new Map([
      [1, nowMs - 1_000], // exactly the session timeout ago: not silent yet
      [2, nowMs - 1_001], // silent
      // 3: never heard by this controller: silent
    ]);
    const response = cluster.run((image) => fenceSilentBrokers(image, { nowMs, sessionTimeoutMs: 1_000, lastHeardMs }));
    expect(response.fenced.sort()).toEqual([2, 3]);
    expect(cluster.last.filter((record) => record.type === 'fenceBroker')).toEqual([
      { type: 'fenceBroker', brokerId: 2, brokerEpoch: cluster.epoch(2) },
      { type: 'fenceBroker', brokerId: 3, brokerEpoch: cluster.epoch(3) },
    ]);
    expect(cluster.image.unfencedBrokers().map((broker) => broker.id)).toEqual([1]);
    expect(cluster.image.brokers.get(4)?.fenced).toBe(true);
  });

  it('returns no records when every unfenced broker was heard', () => {
    const cluster = new Cluster().start(3);
    cluster.register(4);
    expect(cluster.fenceSilent([1, 2, 3])).toEqual([]);
    expect(cluster.last).toEqual([]);
  });

  it('moves each leadership of a fenced broker to its first other usable replica, or to none', () => {
    const cluster = new Cluster().start(3);
    cluster.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3 });
    cluster.createTopic({ name: 'solo', partitions: 3, replicationFactor: 1 });
    const orders = cluster.image.topicByName('orders')!;
    const solo = cluster.image.topicByName('solo')!;
    const soloOn2 = solo.partitions.findIndex((partition) => partition.leader === 2);
    const ordersOn2 = orders.partitions.flatMap((partition, index) => (partition.leader === 2 ? [index] : []));
    // Broker 3 stopped earlier: it is no usable replica.
    cluster.run((image) => brokerHeartbeat(image, { brokerId: 3, brokerEpoch: cluster.epoch(3), metadataOffset: image.offset, wantShutdown: true }));
    const before = cluster.image.topicByName('orders')!.partitions;

    expect(cluster.fenceSilent([1, 3])).toEqual([2]);

    expect(cluster.last).toEqual([
      { type: 'fenceBroker', brokerId: 2, brokerEpoch: cluster.epoch(2) },
      ...ordersOn2.map((index) => moveLeader(orders.id, index, 1)),
      moveLeader(solo.id, soloOn2, 0),
    ]);
    const after = cluster.image.topicByName('orders')!.partitions;
    after.forEach((partition, index) => {
      expect(partition.leader).toBe(1);
      expect(partition.leaderEpoch).toBe(before[index]!.leaderEpoch + (before[index]!.leader === 2 ? 1 : 0));
      expect(partition.replicas).toEqual(before[index]!.replicas);
    });
    expect(cluster.partition('solo', soloOn2).leader).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('createTopic', () => {
  it('writes the topic, its configs in key order, then its partitions led by their first replica', () => {
    const cluster = new Cluster().start(3);
    const configs = { 'retention.ms': '60000', 'compression.type': 'zstd' };
    const response = cluster.createTopic({ name: 'orders', partitions: 3, replicationFactor: 2, configs, requestId: 'req-1' });

    expect(response.topicId).toBe('topic-id-1');
    const records = cluster.last;
    expect(records.slice(0, 3)).toEqual([
      { type: 'topic', name: 'orders', topicId: 'topic-id-1', requestId: 'req-1' },
      { type: 'config', topic: 'orders', key: 'compression.type', hasValue: true, value: 'zstd' },
      { type: 'config', topic: 'orders', key: 'retention.ms', hasValue: true, value: '60000' },
    ]);
    const partitions = records.slice(3);
    expect(partitions).toHaveLength(3);
    partitions.forEach((record, index) => {
      if (record.type !== 'partition') throw new Error(`expected a partition record, got ${record.type}`);
      expect(record).toMatchObject({ topicId: 'topic-id-1', partition: index, leaderEpoch: 0, partitionEpoch: 0 });
      expect(record.replicas).toHaveLength(2);
      expect(new Set(record.replicas).size).toBe(2);
      expect(record.leader).toBe(record.replicas[0]);
    });
    // Leaders spread over the brokers.
    expect(new Set(response.partitions.map((partition) => partition.leader)).size).toBe(3);

    // The response describes the topic the records make.
    const topic = cluster.image.topicByName('orders')!;
    expect(response).toEqual(describeTopic(topic));
    expect(response.configs).toEqual(configs);
    expect(Object.fromEntries(topic.configs)).toEqual(configs);
    expect(cluster.image.requests.get('req-1')).toEqual({ requestId: 'req-1', kind: 'createTopic', topic: 'orders', topicId: 'topic-id-1' });
  });

  it('places replicas only on unfenced brokers that are not shutting down', () => {
    const cluster = new Cluster().start(4);
    cluster.register(5); // fenced
    cluster.run((image) => brokerHeartbeat(image, { brokerId: 4, brokerEpoch: cluster.epoch(4), metadataOffset: image.offset, wantShutdown: true }));
    cluster.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3 });
    const hosts = new Set(cluster.image.topicByName('orders')!.partitions.flatMap((partition) => partition.replicas));
    expect([...hosts].sort()).toEqual([1, 2, 3]);
  });

  it('answers a retried request id with the same topic and no records', () => {
    const cluster = new Cluster().start(2);
    const first = cluster.createTopic({ name: 'orders', partitions: 2, replicationFactor: 2, requestId: 'req-1' });
    cluster.createTopic({ name: 'payments', requestId: 'req-2' });
    const retried = cluster.createTopic({ name: 'orders', partitions: 2, replicationFactor: 2, requestId: 'req-1' });
    expect(cluster.last).toEqual([]);
    expect(retried).toEqual(first);
  });

  it('refuses the name of an existing topic asked with another request id: TopicExistsError', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'orders', requestId: 'req-1' });
    for (const requestId of ['req-2', '']) {
      const error = thrown(() => createTopic(cluster.image, { name: 'orders', partitions: 1, replicationFactor: 1, configs: {}, requestId }, cluster.newTopicId));
      expect(error).toBeInstanceOf(TopicExistsError);
      expect(error).toMatchObject({ topic: 'orders', retriable: false });
    }
    // Nor is a request id of another topic a retry of this one.
    expect(() => createTopic(cluster.image, { name: 'payments', partitions: 1, replicationFactor: 1, configs: {}, requestId: 'req-1' }, cluster.newTopicId)).not.toThrow();
  });

  it('refuses bad input with InvalidRequestError naming every problem', () => {
    const cluster = new Cluster().start(2);
    cluster.createTopic({ name: 'audit.log' });
    const fields = problemFields(() =>
      createTopic(cluster.image, { name: 'bad name', partitions: 0, replicationFactor: 3, configs: { 'retention.ms': 'forever', 'min.insync.replicas': '2', colour: 'blue' }, requestId: 'r' }, cluster.newTopicId),
    );
    expect(fields).toEqual(['name', 'partitions', 'replicationFactor', 'configs["retention.ms"]', 'configs["min.insync.replicas"]', 'configs["colour"]']);
    expect(problemFields(() => createTopic(cluster.image, { name: 'audit_log', partitions: 1, replicationFactor: 1, configs: {}, requestId: 'r' }, cluster.newTopicId))).toEqual(['name']);
    expect(problemFields(() => createTopic(cluster.image, { name: 'x', partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '1048576', 'max.message.bytes': '2000000' }, requestId: 'r' }, cluster.newTopicId))).toEqual(['configs["max.message.bytes"]']);
  });

  it('refuses a replication factor above the unfenced brokers, and any topic when none is unfenced', () => {
    const cluster = new Cluster().start(2);
    cluster.register(3);
    expect(problemFields(() => createTopic(cluster.image, { name: 'x', partitions: 1, replicationFactor: 3, configs: {}, requestId: 'r' }, cluster.newTopicId))).toEqual(['replicationFactor']);
    const empty = new Cluster();
    empty.register(1);
    expect(problemFields(() => createTopic(empty.image, { name: 'x', partitions: 1, replicationFactor: 1, configs: {}, requestId: 'r' }, empty.newTopicId))).toEqual(['replicationFactor']);
  });

  it('does not call newTopicId for a refused request', () => {
    const cluster = new Cluster().start(1);
    let calls = 0;
    thrown(() => createTopic(cluster.image, { name: '', partitions: 1, replicationFactor: 1, configs: {}, requestId: 'r' }, () => `id-${++calls}`));
    expect(calls).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('deleteTopic', () => {
  it('removes the topic with its request id; a retry is answered as done', () => {
    const cluster = new Cluster().start(1);
    const { topicId } = cluster.createTopic({ name: 'orders', configs: { 'retention.ms': '1' } });
    const response = cluster.run((image) => deleteTopic(image, { name: 'orders', requestId: 'del-1' }));
    expect(response).toEqual({ topicId });
    expect(cluster.last).toEqual([{ type: 'removeTopic', topicId, requestId: 'del-1' }]);
    expect(cluster.image.topicByName('orders')).toBeUndefined();
    expect(cluster.image.topics.has(topicId)).toBe(false);
    expect(cluster.image.totalPartitions()).toBe(0);

    const retried = cluster.run((image) => deleteTopic(image, { name: 'orders', requestId: 'del-1' }));
    expect(retried).toEqual({ topicId });
    expect(cluster.last).toEqual([]);

    // Even once a new topic of that name exists, the retry deletes nothing.
    cluster.createTopic({ name: 'orders', requestId: 'create-again' });
    const newId = cluster.image.topicByName('orders')!.id;
    expect(cluster.run((image) => deleteTopic(image, { name: 'orders', requestId: 'del-1' }))).toEqual({ topicId });
    expect(cluster.last).toEqual([]);
    expect(cluster.image.topicByName('orders')?.id).toBe(newId);
  });

  it('refuses an unknown topic with UnknownTopicError', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'orders' });
    cluster.run((image) => deleteTopic(image, { name: 'orders', requestId: 'del-1' }));
    for (const request of [
      { name: 'payments', requestId: 'del-2' },
      { name: 'payments', requestId: 'del-1' }, // another topic's request id is no retry
      { name: 'orders', requestId: 'del-3' }, // gone, and this is no retry
    ]) {
      const error = thrown(() => deleteTopic(cluster.image, request));
      expect(error).toBeInstanceOf(UnknownTopicError);
      expect(error).toMatchObject({ topic: request.name, retriable: false });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('Raft group ids and producer ids', () => {
  it('every partition gets a group id no partition had before, across deletes and snapshots', () => {
    const cluster = new Cluster().start(3);
    cluster.createTopic({ name: 'orders', partitions: 3, replicationFactor: 2 });
    cluster.run((image) => createPartitions(image, { name: 'orders', partitions: 5 }));
    const first = cluster.image.topicByName('orders')!.partitions.map((partition) => partition.groupId);
    expect(first).toEqual([1, 2, 3, 4, 5]);
    cluster.run((image) => deleteTopic(image, { name: 'orders', requestId: 'del-1' }));
    // A snapshot holds no partition of the deleted topic, yet the ids stay spent.
    cluster.image = replayAll(MetadataImage.empty, cluster.image.toRecords(), cluster.image.offset);
    cluster.createTopic({ name: 'payments', partitions: 2 });
    expect(cluster.image.topicByName('payments')!.partitions.map((partition) => partition.groupId)).toEqual([6, 7]);
  });

  it('hands out producer ids once each, and refuses a count out of range naming the limit', () => {
    const cluster = new Cluster().start(1);
    expect(cluster.run((image) => allocateProducerIds(image, { count: 1 }))).toEqual({ firstProducerId: 0, count: 1 });
    expect(cluster.run((image) => allocateProducerIds(image, { count: 10 }))).toEqual({ firstProducerId: 1, count: 10 });
    cluster.image = replayAll(MetadataImage.empty, cluster.image.toRecords(), cluster.image.offset);
    expect(cluster.run((image) => allocateProducerIds(image, { count: 1 }))).toEqual({ firstProducerId: 11, count: 1 });
    for (const count of [0, 1001, 1.5]) expect(problemFields(() => allocateProducerIds(cluster.image, { count }))).toEqual(['count']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('createPartitions', () => {
  it('adds partitions numbered on, with the topic replication factor, spread evenly', () => {
    const cluster = new Cluster().start(3);
    const created = cluster.createTopic({ name: 'orders', partitions: 3, replicationFactor: 2 });
    const response = cluster.run((image) => createPartitions(image, { name: 'orders', partitions: 9 }));

    const records = cluster.last;
    expect(records.map((record) => (record.type === 'partition' ? record.partition : -1))).toEqual([3, 4, 5, 6, 7, 8]);
    for (const record of records) {
      if (record.type !== 'partition') throw new Error(`expected a partition record, got ${record.type}`);
      expect(record).toMatchObject({ topicId: created.topicId, leaderEpoch: 0, partitionEpoch: 0 });
      expect(record.replicas).toHaveLength(2);
      expect(record.leader).toBe(record.replicas[0]);
    }
    const topic = cluster.image.topicByName('orders')!;
    expect(describeTopic(topic).partitions.slice(0, 3)).toEqual(created.partitions);
    expect(response.partitions).toEqual(describeTopic(topic).partitions);
    // Evenly: 9 partitions x 2 replicas on 3 brokers: each leads 3 and holds 6.
    for (const id of [1, 2, 3]) {
      expect(topic.partitions.filter((partition) => partition.leader === id)).toHaveLength(3);
      expect(topic.partitions.filter((partition) => partition.replicas.includes(id))).toHaveLength(6);
    }
  });

  it('answers the current count with the topic and no records', () => {
    const cluster = new Cluster().start(2);
    cluster.createTopic({ name: 'orders', partitions: 2 });
    const topic = cluster.image.topicByName('orders')!;
    const response = cluster.run((image) => createPartitions(image, { name: 'orders', partitions: 2 }));
    expect(cluster.last).toEqual([]);
    expect(response).toEqual(describeTopic(topic));
    expect(response.configs).toEqual({});
  });

  it('refuses fewer partitions, too many, an unknown topic, or too few unfenced brokers', () => {
    const cluster = new Cluster().start(3);
    cluster.createTopic({ name: 'orders', partitions: 4, replicationFactor: 3 });
    expect(problemFields(() => createPartitions(cluster.image, { name: 'orders', partitions: 3 }))).toEqual(['partitions']);
    expect(problemFields(() => createPartitions(cluster.image, { name: 'orders', partitions: 1_001 }))).toEqual(['partitions']);
    expect(thrown(() => createPartitions(cluster.image, { name: 'nope', partitions: 5 }))).toBeInstanceOf(UnknownTopicError);
    cluster.fenceSilent([1, 2]);
    expect(problemFields(() => createPartitions(cluster.image, { name: 'orders', partitions: 5 }))).toEqual(['replicationFactor']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('alterConfigs', () => {
  it('sets configs and removes overrides, writing a record per change', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'orders', configs: { 'retention.ms': '1000', 'compression.type': 'gzip' } });
    const response = cluster.run((image) => alterConfigs(image, { name: 'orders', set: { 'retention.bytes': '4096', 'compression.type': 'lz4' }, remove: ['retention.ms', 'segment.bytes'] }));
    expect(cluster.last).toEqual([
      { type: 'config', topic: 'orders', key: 'retention.bytes', hasValue: true, value: '4096' },
      { type: 'config', topic: 'orders', key: 'compression.type', hasValue: true, value: 'lz4' },
      // segment.bytes had no override: nothing to remove.
      { type: 'config', topic: 'orders', key: 'retention.ms', hasValue: false, value: '' },
    ]);
    const expected = { 'compression.type': 'lz4', 'retention.bytes': '4096' };
    expect(response.configs).toEqual(expected);
    expect(Object.fromEntries(cluster.image.topicByName('orders')!.configs)).toEqual(expected);
  });

  it('writes nothing for an empty change', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'orders' });
    cluster.run((image) => alterConfigs(image, { name: 'orders', set: {}, remove: ['retention.ms'] }));
    expect(cluster.last).toEqual([]);
  });

  it('refuses removing a key whose default would break another config, but not removing both', () => {
    const cluster = new Cluster().start(1);
    // A 1 MiB segment with 500 000-byte batches: the default max.message.bytes (1 048 588) would not fit.
    cluster.createTopic({ name: 'small', configs: { 'segment.bytes': '1048576', 'max.message.bytes': '500000' } });
    const fields = problemFields(() => alterConfigs(cluster.image, { name: 'small', set: {}, remove: ['max.message.bytes'] }));
    expect(fields).toEqual(['configs["max.message.bytes"]']);
    cluster.run((image) => alterConfigs(image, { name: 'small', set: {}, remove: ['max.message.bytes', 'segment.bytes'] }));
    expect(cluster.image.topicByName('small')!.configs.size).toBe(0);
  });

  it('checks a change against the configs the topic keeps', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'small', configs: { 'segment.bytes': '2097152' } });
    expect(problemFields(() => alterConfigs(cluster.image, { name: 'small', set: { 'max.message.bytes': '3000000' }, remove: [] }))).toEqual(['configs["max.message.bytes"]']);
    expect(problemFields(() => alterConfigs(cluster.image, { name: 'small', set: { 'segment.bytes': '1048576' }, remove: [] }))).toEqual(['configs["segment.bytes"]']);
    // Removing segment.bytes brings back the 1 GiB default, which fits.
    cluster.run((image) => alterConfigs(image, { name: 'small', set: { 'max.message.bytes': '3000000' }, remove: ['segment.bytes'] }));
    expect(Object.fromEntries(cluster.image.topicByName('small')!.configs)).toEqual({ 'max.message.bytes': '3000000' });
  });

  it('refuses unknown keys and bad values with every problem, and an unknown topic', () => {
    const cluster = new Cluster().start(1);
    cluster.createTopic({ name: 'orders' });
    const fields = problemFields(() => alterConfigs(cluster.image, { name: 'orders', set: { 'retention.ms': '-2', 'cleanup.policy': 'compact' }, remove: ['bogus'] }));
    expect(fields).toEqual(['remove["bogus"]', 'configs["retention.ms"]', 'configs["cleanup.policy"]']);
    const error = thrown(() => alterConfigs(cluster.image, { name: 'nope', set: {}, remove: [] }));
    expect(error).toBeInstanceOf(UnknownTopicError);
    expect(error).toMatchObject({ topic: 'nope' });
  });
});
