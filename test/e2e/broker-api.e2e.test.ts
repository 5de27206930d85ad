// The Broker service's other paths on an in-process cluster: acks=1 and acks=0, idempotent retries
// answered with the original offset, Subscribe pushing batches as they commit, ListOffsets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { BrokerClient, type ProduceRequest } from '../../src/client/broker-client.js';
import { decodeBatches } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { encodeRecordBatch } from '../../src/partition/record-batch.js';
import type { FetchAnswer, ProduceAnswer } from '../../src/rpc/broker-service.js';

let cluster: RunningCluster;
let admin: Admin;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
  await admin.createTopic({ name: 'api', partitions: 1, replicationFactor: 3 });
}, 60_000);

afterAll(async () => {
  admin?.close();
  await cluster?.close();
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function batch(options: { values: string[]; producerId?: bigint; baseSequence?: number; timestamp?: number }): Uint8Array {
  return encodeRecordBatch({
    baseOffset: 0n,
    partitionLeaderEpoch: -1,
    producerId: options.producerId ?? -1n,
    producerEpoch: options.producerId === undefined ? -1 : 0,
    baseSequence: options.baseSequence ?? -1,
    compression: 'none',
    timestampType: 'create',
    records: options.values.map((value) => ({ timestamp: options.timestamp ?? Date.now(), key: null, value: encoder.encode(value), headers: [] })),
  });
}

/** leaderClient returns a client of the partition's leader, waiting for one to be known. */
async function leaderClient(topic: string, partition: number): Promise<BrokerClient> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const probe = new BrokerClient(cluster.bootstrap[0]!, 5000);
    const metadata = await probe.metadata([topic]);
    probe.close();
    const leader = metadata.topics[0]?.partitions[partition]?.leader ?? 0;
    const broker = metadata.brokers.find((candidate) => candidate.id === leader);
    if (broker !== undefined) {
      const client = new BrokerClient(`${broker.host}:${broker.port}`, 5000);
      // The leader may not have applied the topic yet: it answers once it hosts the partition.
      if (await client.listOffsets({ topic, partition, spec: 'latest' }).then(() => true, () => false)) return client;
      client.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no leader for ${topic}-${partition}`);
}

/**
 * produceOnLeader produces through the partition's leader, finding it again when a retriable error
 * says it moved: right after a topic is created the controller may hand a partition's leadership
 * to the replica it chose, and a leader handing over refuses proposals (retriable, not appended).
 */
async function produceOnLeader(request: ProduceRequest): Promise<ProduceAnswer> {
  for (let attempt = 1; ; attempt++) {
    const client = await leaderClient(request.topic, request.partition);
    try {
      return await client.produce(request);
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true || attempt === 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      client.close();
    }
  }
}

describe('the Broker service', () => {
  it('acks=1 and acks=0 append too; a retried idempotent batch is answered with its first offset', async () => {
    // The first produce waits out a hand-over of the new partition's leadership; the rest go in
    // order on one stream to the leader it found.
    const one = await produceOnLeader({ topic: 'api', partition: 0, acks: 1, batch: batch({ values: ['a', 'b'] }), timeoutMs: 5000 });
    expect(one).toMatchObject({ baseOffset: 0, replicas: 1, duplicate: false });
    const client = await leaderClient('api', 0);
    await client.produce({ topic: 'api', partition: 0, acks: 0, batch: batch({ values: ['c'] }), timeoutMs: 5000 });
    const { producerId } = { producerId: BigInt((await admin.allocateProducerIds(1)).firstProducerId) };
    const first = await client.produce({ topic: 'api', partition: 0, acks: -1, batch: batch({ values: ['d', 'e'], producerId, baseSequence: 0 }), timeoutMs: 5000 });
    expect(first.baseOffset).toBe(3);
    expect(first.replicas).toBeGreaterThanOrEqual(2);
    const retry = await client.produce({ topic: 'api', partition: 0, acks: -1, batch: batch({ values: ['d', 'e'], producerId, baseSequence: 0 }), timeoutMs: 5000 });
    expect(retry).toMatchObject({ baseOffset: 3, duplicate: true });
    const fetched = await client.fetch({ topic: 'api', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    expect(decodeBatches('api', 0, fetched.batches, 0).map((record) => decoder.decode(record.value!))).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(fetched.highWatermark).toBe(5);
    client.close();
  }, 30_000);

  it('Subscribe pushes batches from an offset as they commit; a long-polled Fetch wakes on new data', async () => {
    await admin.createTopic({ name: 'live', partitions: 1, replicationFactor: 3 });
    const client = await leaderClient('live', 0);
    const stream = client.subscribe({ topic: 'live', partition: 0, offset: 0, maxBytes: 0 });
    const seen: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (answer: FetchAnswer) => {
        seen.push(...decodeBatches('live', 0, answer.batches, 0).map((record) => decoder.decode(record.value!)));
        if (seen.length >= 3) resolve();
      });
      stream.on('error', (error: Error & { code?: number }) => (error.code === 1 ? undefined : reject(error)));
    });
    const waiting = client.fetch({ topic: 'live', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 10_000, minBytes: 1 });
    for (const value of ['x', 'y', 'z']) await produceOnLeader({ topic: 'live', partition: 0, acks: -1, batch: batch({ values: [value] }), timeoutMs: 5000 });
    await done;
    stream.cancel();
    expect(seen).toEqual(['x', 'y', 'z']);
    const woken = await waiting;
    expect(decodeBatches('live', 0, woken.batches, 0).map((record) => decoder.decode(record.value!))[0]).toBe('x');
    client.close();
  }, 30_000);

  it('ListOffsets answers earliest, latest and the first offset at or after a timestamp', async () => {
    await admin.createTopic({ name: 'times', partitions: 1, replicationFactor: 3 });
    for (const [i, timestamp] of [1_000, 2_000, 3_000].entries()) {
      await produceOnLeader({ topic: 'times', partition: 0, acks: -1, batch: batch({ values: [`t${i}`], timestamp }), timeoutMs: 5000 });
    }
    const client = await leaderClient('times', 0);
    expect((await client.listOffsets({ topic: 'times', partition: 0, spec: 'earliest' })).offset).toBe(0);
    expect((await client.listOffsets({ topic: 'times', partition: 0, spec: 'latest' })).offset).toBe(3);
    expect((await client.listOffsets({ topic: 'times', partition: 0, spec: 'timestamp', timestampMs: 1_500 })).offset).toBe(1);
    expect((await client.listOffsets({ topic: 'times', partition: 0, spec: 'timestamp', timestampMs: 9_000 })).offset).toBe(3);
    client.close();
  }, 30_000);

  it('the SDK producer with acks 1 and with compression sends records a consumer reads back', async () => {
    await admin.createTopic({ name: 'mixed', partitions: 2, replicationFactor: 3 });
    for (const options of [{ acks: 1 as const, compression: 'gzip' as const }, { acks: 'all' as const, compression: 'lz4' as const }]) {
      const producer = new Producer({ bootstrap: cluster.bootstrap, ...options });
      const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => producer.send({ topic: 'mixed', partition: i % 2, value: `${options.compression}-${i}` })));
      await producer.close();
      expect(sent.every((metadata) => metadata.offset >= 0)).toBe(true);
    }
    const client = await leaderClient('mixed', 0);
    const fetched = await client.fetch({ topic: 'mixed', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    client.close();
    const values = decodeBatches('mixed', 0, fetched.batches, 0).map((record) => decoder.decode(record.value!));
    expect(values).toEqual([...Array.from({ length: 25 }, (_, i) => `gzip-${2 * i}`), ...Array.from({ length: 25 }, (_, i) => `lz4-${2 * i}`)]);
  }, 30_000);
});
