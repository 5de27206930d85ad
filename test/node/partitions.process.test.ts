// Partitions on real processes: an idempotent acks=all producer keeps sending keyed records while
// the node leading one partition's Raft group is killed with kill -9; the node is restarted and
// every partition is read back from the beginning. Every acknowledged record is there exactly
// once, at the offset it was acknowledged with; offsets run 0..n-1; each key's records are in send
// order; nothing is there that was never sent, and nothing twice. Every replica, the restarted one
// included, holds the same records.
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/client/broker-client.js';
import { Consumer, decodeBatches, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { RaftbusError } from '../../src/errors.js';
import { partitionForKey } from '../../src/partition/partitioner.js';
import { ProcessCluster } from './process-cluster.js';

const topic = 'keyed';
const partitionCount = 3;
const messageCount = 10_000;
/** keyCount: ten keys hash to 3, 3 and 4 of the three partitions. */
const keyCount = 10;
/** sendsPerTick every sendTickMs: about 5 000 sends a second, so the kill lands mid-stream. */
const sendsPerTick = 50;
const sendTickMs = 10;
/** ackedBeforeKill: the kill comes once this many sends are acknowledged (of the first half, which goes out before it). */
const ackedBeforeKill = 2500;
/** A short session so that the controller fences the killed broker within the test. */
const sessionTimeoutMs = 2000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Outcome = { kind: 'pending' } | { kind: 'acked'; partition: number; offset: number; afterKill: boolean; duplicate: boolean } | { kind: 'rejected'; error: Error };

interface Read {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: string;
}

let cluster: ProcessCluster | undefined;
const brokerClients: BrokerClient[] = [];

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    for (const id of cluster.nodes.keys()) console.log(`--- node ${id} output (tail)\n${cluster.output(id).split('\n').slice(-40).join('\n')}`);
  }
  for (const client of brokerClients.splice(0)) client.close();
  await cluster?.close();
  cluster = undefined;
});

function brokerClient(address: string): BrokerClient {
  const client = new BrokerClient(address, 2000);
  brokerClients.push(client);
  return client;
}

function keyOf(i: number): string {
  return `key-${i % keyCount}`;
}

function valueOf(i: number): string {
  return `value-${i}`;
}

function indexOf(value: string): number {
  const match = /^value-(\d+)$/.exec(value);
  return match === null ? -1 : Number(match[1]);
}

/**
 * leaderToKill asks every node's Broker Metadata for the partitions that have acknowledged sends
 * (so a Raft leader exists) until the nodes agree on their leaders; it picks one led by a node
 * other than the active controller when there is one, so the kill tests a partition failover.
 */
async function leaderToKill(c: ProcessCluster, ackedPartitions: () => Set<number>): Promise<{ partition: number; leader: number }> {
  return c.waitFor(
    async () => {
      const controller = (await c.waitForLeader()).nodeId;
      const views = await Promise.all(c.liveIds().map((id) => brokerClient(c.nodes.get(id)!.clientAddress).metadata([topic]).catch(() => undefined)));
      const candidates: { partition: number; leader: number }[] = [];
      for (const partition of ackedPartitions()) {
        const leaders = views.map((view) => view?.topics[0]?.partitions[partition]?.leader ?? 0);
        if (leaders[0] !== 0 && leaders.every((leader) => leader === leaders[0])) candidates.push({ partition, leader: leaders[0]! });
      }
      return candidates.find((candidate) => candidate.leader !== controller) ?? candidates[0];
    },
    10_000,
    'the nodes to agree on the leader of a partition with acknowledged records',
  );
}

/** highWatermarksAgreed polls every node until all report the same high watermark for every partition. */
async function highWatermarksAgreed(c: ProcessCluster): Promise<number[]> {
  const clients = c.clientAddresses().map((address) => brokerClient(address));
  return c.waitFor(
    async () => {
      const perNode = await Promise.all(
        clients.map((client) =>
          // 'earliest': every replica answers it, with its own high watermark ('latest' only the leader).
          Promise.all(Array.from({ length: partitionCount }, (_, partition) => client.listOffsets({ topic, partition, spec: 'earliest' }).then((answer) => answer.highWatermark))).catch(() => undefined),
        ),
      );
      const first = perNode[0];
      if (first === undefined || !perNode.every((marks) => marks !== undefined && marks.join() === first.join())) return undefined;
      return first;
    },
    20_000,
    'every replica, the restarted one included, to reach the same high watermarks',
  );
}

/** consumeAll reads every partition from the beginning up to its high watermark with the SDK Consumer. */
async function consumeAll(c: ProcessCluster, highWatermarks: readonly number[]): Promise<Read[]> {
  const consumer = new Consumer({ bootstrap: c.clientAddresses(), autoOffsetReset: 'earliest', maxWaitMs: 100, requestTimeoutMs: 2000 });
  try {
    await consumer.assign(highWatermarks.map((_, partition) => ({ topic, partition })));
    const read: Read[] = [];
    const done = (): boolean => consumer.assignment().every((assignment) => (assignment.position ?? -1) >= highWatermarks[assignment.partition]!);
    const deadline = Date.now() + 20_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`consumer stuck at ${JSON.stringify(consumer.assignment())}, high watermarks ${highWatermarks.join(', ')}`);
      read.push(...(await consumer.poll()).map(toRead));
    }
    return read;
  } finally {
    consumer.close();
  }
}

function toRead(record: ConsumerRecord): Read {
  return { partition: record.partition, offset: record.offset, key: decoder.decode(record.key!), value: decoder.decode(record.value!) };
}

/** readReplica fetches one partition from one node, from offset 0 to highWatermark. */
async function readReplica(address: string, partition: number, highWatermark: number): Promise<Read[]> {
  const client = brokerClient(address);
  const read: Read[] = [];
  for (let offset = 0; offset < highWatermark; ) {
    const answer = await client.fetch({ topic, partition, offset, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    read.push(...decodeBatches(topic, partition, answer.batches, offset).map(toRead));
    offset = answer.nextOffset;
  }
  return read;
}

describe('partitions on real processes', () => {
  it('kill -9 of a partition leader mid-stream: every acknowledged record read back exactly once, in order, on every replica', async () => {
    const c = await ProcessCluster.create({ nodes: 3, extraArgs: ['--session-timeout-ms', String(sessionTimeoutMs)] });
    cluster = c;
    c.startAll();
    await c.waitForLeader();
    const admin = c.admin({ retryForMs: 20_000 });
    await c.waitFor(async () => ((await admin.describeCluster().catch(() => undefined))?.brokers.filter((broker) => !broker.fenced).length === 3 ? true : undefined), 20_000, 'three unfenced brokers');
    await admin.createTopic({ name: topic, partitions: partitionCount, replicationFactor: 3 });

    const partitionOfKey = new Map(Array.from({ length: keyCount }, (_, k) => [keyOf(k), partitionForKey(encoder.encode(keyOf(k)), partitionCount)]));
    expect(new Set(partitionOfKey.values()).size, 'the keys cover every partition').toBe(partitionCount);

    // Send on a steady beat; record each send's outcome; kill the leader of a partition partway.
    const producer = new Producer({ bootstrap: c.clientAddresses(), acks: 'all', idempotent: true, lingerMs: 5, requestTimeoutMs: 10_000, deliveryTimeoutMs: 40_000 });
    const outcomes: Outcome[] = Array.from({ length: messageCount }, () => ({ kind: 'pending' }));
    const ackedPartitions = new Set<number>();
    let acked = 0;
    let killed = false;
    const settled: Promise<void>[] = [];
    let sentBeforeKill = -1;
    let killDone: () => void = () => undefined;
    const killPassed = new Promise<void>((resolve) => (killDone = resolve));
    const sending = (async () => {
      for (let i = 0; i < messageCount; i++) {
        // However slow the machine, the second half goes out after the kill.
        if (i === messageCount / 2) await killPassed;
        settled.push(
          producer.send({ topic, key: keyOf(i), value: valueOf(i) }).then(
            (metadata) => {
              outcomes[i] = { kind: 'acked', partition: metadata.partition, offset: metadata.offset, afterKill: killed, duplicate: metadata.duplicate };
              ackedPartitions.add(metadata.partition);
              acked++;
            },
            (error: unknown) => {
              outcomes[i] = { kind: 'rejected', error: error as Error };
            },
          ),
        );
        if (i % sendsPerTick === sendsPerTick - 1) await new Promise((resolve) => setTimeout(resolve, sendTickMs));
      }
    })();
    let victim: { partition: number; leader: number };
    try {
      await c.waitFor(async () => (acked >= ackedBeforeKill ? true : undefined), 30_000, `${ackedBeforeKill} acknowledged sends`);
      victim = await leaderToKill(c, () => ackedPartitions);
      sentBeforeKill = settled.length;
      await c.kill(victim.leader);
      killed = true;
    } finally {
      killDone();
    }
    await sending;
    await Promise.all(settled);
    await producer.close();

    // The kill came partway: sends were still to come, and the partition took some of them after it.
    expect(sentBeforeKill, 'sends issued before the kill').toBeLessThan(messageCount);
    const ackedAfterKill = outcomes.filter((outcome) => outcome.kind === 'acked' && outcome.afterKill && outcome.partition === victim.partition).length;
    expect(ackedAfterKill, `sends to partition ${victim.partition} acknowledged after its leader ${victim.leader} was killed`).toBeGreaterThan(0);
    const rejected = outcomes.flatMap((outcome, i) => (outcome.kind === 'rejected' ? [{ i, error: outcome.error }] : []));
    for (const { error } of rejected) expect(error, `a rejected send fails with a typed error: ${error.message}`).toBeInstanceOf(RaftbusError);

    c.start(victim.leader);
    const highWatermarks = await highWatermarksAgreed(c);
    const read = await consumeAll(c, highWatermarks);

    // Per partition, the offsets 0..n-1 in order, up to the high watermark.
    for (let partition = 0; partition < partitionCount; partition++) {
      const offsets = read.filter((record) => record.partition === partition).map((record) => record.offset);
      expect(offsets, `offsets of ${topic}-${partition}`).toEqual(Array.from({ length: highWatermarks[partition]! }, (_, offset) => offset));
    }
    // Nothing that was never sent, each on its key's partition, and nothing twice.
    const readAt = new Map<number, Read>();
    for (const record of read) {
      const i = indexOf(record.value);
      expect(i >= 0 && i < messageCount, `a value that was sent: ${record.value}`).toBe(true);
      expect(record.key, `the key ${record.value} was sent with`).toBe(keyOf(i));
      expect(record.partition, `the partition of ${record.key}`).toBe(partitionOfKey.get(record.key));
      expect(readAt.has(i), `${record.value} read twice`).toBe(false);
      readAt.set(i, record);
    }
    // Every acknowledged send exactly once, where its acknowledgement said.
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.kind !== 'acked') continue;
      expect(readAt.get(i), `acknowledged ${valueOf(i)}`).toMatchObject({ partition: outcome.partition, offset: outcome.offset });
    }
    // Per key, in send order.
    for (let k = 0; k < keyCount; k++) {
      const sequence = read.filter((record) => record.key === keyOf(k)).map((record) => indexOf(record.value));
      expect(sequence, `values of ${keyOf(k)} in send order`).toEqual([...sequence].sort((a, b) => a - b));
    }
    // Every replica, the restarted one included, holds exactly what the consumer read.
    for (const address of c.clientAddresses()) {
      for (let partition = 0; partition < partitionCount; partition++) {
        const replica = await readReplica(address, partition, highWatermarks[partition]!);
        expect(replica, `${topic}-${partition} on ${address}`).toEqual(read.filter((record) => record.partition === partition));
      }
    }
    const duplicates = outcomes.filter((outcome) => outcome.kind === 'acked' && outcome.duplicate).length;
    console.log(`sent ${messageCount}: ${acked} acknowledged (${duplicates} as retries the broker had already appended), ${rejected.length} rejected (${[...new Set(rejected.map(({ error }) => error.name))].join(', ') || 'none'}); ` +
      `read ${read.length}; killed node ${victim.leader}, leader of ${topic}-${victim.partition}, after ${sentBeforeKill} sends; ${ackedAfterKill} acknowledged there after the kill`);
  }, 90_000);
});
