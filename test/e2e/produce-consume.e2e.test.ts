// End to end on an in-process cluster (startCluster): produce with the SDK, consume it back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { partitionForKey } from '../../src/partition/partitioner.js';

let cluster: RunningCluster;
let admin: Admin;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
}, 60_000);

afterAll(async () => {
  admin?.close();
  await cluster?.close();
});

const decoder = new TextDecoder();

describe('produce and consume on a 3-node cluster', () => {
  it('every acknowledged record is read back once, per partition in offset order and per key in send order', async () => {
    await admin.createTopic({ name: 'orders', partitions: 3, replicationFactor: 3 });
    const producer = new Producer({ bootstrap: cluster.bootstrap, lingerMs: 2 });
    const sent = await Promise.all(
      Array.from({ length: 300 }, (_, i) => producer.send({ topic: 'orders', key: `customer-${i % 7}`, value: `order-${i}` })),
    );
    await producer.close();
    for (const [i, metadata] of sent.entries()) {
      expect(metadata.partition).toBe(partitionForKey(new TextEncoder().encode(`customer-${i % 7}`), 3));
      expect(metadata.duplicate).toBe(false);
    }
    const consumer = new Consumer({ bootstrap: cluster.bootstrap, autoOffsetReset: 'earliest', maxWaitMs: 100 });
    await consumer.assign([0, 1, 2].map((partition) => ({ topic: 'orders', partition })));
    const read: { partition: number; offset: number; key: string; value: string }[] = [];
    while (read.length < 300) {
      for (const record of await consumer.poll()) read.push({ partition: record.partition, offset: record.offset, key: decoder.decode(record.key!), value: decoder.decode(record.value!) });
    }
    consumer.close();
    expect(read).toHaveLength(300);
    expect(new Set(read.map((record) => record.value)).size).toBe(300);
    for (const partition of [0, 1, 2]) {
      const offsets = read.filter((record) => record.partition === partition).map((record) => record.offset);
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    for (let k = 0; k < 7; k++) {
      const values = read.filter((record) => record.key === `customer-${k}`).map((record) => Number(record.value.slice(6)));
      expect(values).toEqual([...values].sort((a, b) => a - b));
    }
    // The acknowledged offsets are where the records are.
    for (const [i, metadata] of sent.entries()) {
      expect(read.find((record) => record.partition === metadata.partition && record.offset === metadata.offset)?.value).toBe(`order-${i}`);
    }
  }, 60_000);
});
