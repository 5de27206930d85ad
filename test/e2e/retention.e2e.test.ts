// Retention on an in-process cluster: whole old segments go once a partition holds more than
// retention.bytes, or once every record in them is older than retention.ms (changed live with
// alterConfigs). Afterwards the log start offset has moved on every replica, reads below it get
// OffsetOutOfRangeError with the range that is left, reads from it work, and a consumer that
// starts (or is left) below it continues from the new start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { BrokerClient } from '../../src/client/broker-client.js';
import { Consumer, decodeBatches, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { OffsetOutOfRangeError } from '../../src/errors.js';

/** recordValueBytes: each record's value; 16 of them fill a producer batch. */
const recordValueBytes = 32 * 1024;
/** producerBatchBytes: half of the topics' max.message.bytes, so batches are large but always fit. */
const producerBatchBytes = 512 * 1024;
/** segmentBytes: the smallest segment.bytes a topic may have. */
const segmentBytes = 1024 * 1024;
/** smallSegments: segment.bytes at its minimum, and max.message.bytes lowered to fit in it. */
const smallSegments = { 'segment.bytes': String(segmentBytes), 'max.message.bytes': String(segmentBytes) };
/**
 * partitionSegmentBytesMax: a partition log rounds its segments up to hold the largest batch a
 * topic may allow (max.message.bytes up to 4 MiB - 64 KiB, plus framing), so whatever segment.bytes
 * says, a segment holds a little under 4 MiB.
 */
const partitionSegmentBytesMax = 4 * 1024 * 1024;
const hourMs = 3_600_000;

const decoder = new TextDecoder();

let cluster: RunningCluster;
let admin: Admin;
const clients = new Map<string, BrokerClient>();

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
}, 60_000);

afterAll(async () => {
  for (const client of clients.values()) client.close();
  admin?.close();
  await cluster?.close();
});

function client(address: string): BrokerClient {
  let found = clients.get(address);
  if (found === undefined) {
    found = new BrokerClient(address, 10_000);
    clients.set(address, found);
  }
  return found;
}

/** valueOf is record i's value: its number, padded to recordValueBytes. */
function valueOf(i: number): string {
  return `${i}:`.padEnd(recordValueBytes, '.');
}

function numberOf(record: ConsumerRecord): number {
  return Number(decoder.decode(record.value!.subarray(0, 16)).split(':')[0]);
}

/** produce sends records first..first+count-1 to partition 0 with timestamp, and waits for every ack. */
async function produce(topic: string, options: { first: number; count: number; timestampMs: number }): Promise<void> {
  const producer = new Producer({ bootstrap: cluster.bootstrap, batchBytes: producerBatchBytes, lingerMs: 5 });
  try {
    const sent = await Promise.all(
      Array.from({ length: options.count }, (_, i) => producer.send({ topic, partition: 0, value: valueOf(options.first + i), timestamp: options.timestampMs })),
    );
    expect(sent.map((metadata) => metadata.offset)).toEqual(sent.map((_, i) => options.first + i));
  } finally {
    await producer.close();
  }
}

async function listOffsets(address: string, topic: string): Promise<{ logStartOffset: number; highWatermark: number }> {
  const answer = await client(address).listOffsets({ topic, partition: 0, spec: 'earliest' });
  expect(answer.offset).toBe(answer.logStartOffset);
  return answer;
}

/** waitForReplicas polls until every replica's high watermark is highWatermark (followers learn commits a heartbeat later). */
async function waitForReplicas(topic: string, highWatermark: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = await Promise.all(cluster.bootstrap.map((address) => listOffsets(address, topic).then((answer) => answer.highWatermark, () => -1)));
    if (seen.every((offset) => offset === highWatermark)) return;
    if (Date.now() > deadline) throw new Error(`replicas of ${topic}-0 at high watermarks ${seen.join(', ')}, not all ${highWatermark}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function enforceRetentionEverywhere(): Promise<void> {
  await Promise.all(cluster.nodes.map((node) => node.partitions!.enforceRetentionNow()));
}

/** readFrom fetches from offset to the high watermark on one replica: the records, and the bytes of the batches that hold them. */
async function readFrom(address: string, topic: string, offset: number): Promise<{ records: ConsumerRecord[]; batchBytes: number }> {
  const records: ConsumerRecord[] = [];
  let batchBytes = 0;
  for (let next = offset; ; ) {
    const answer = await client(address).fetch({ topic, partition: 0, offset: next, maxBytes: 8 * 1024 * 1024, maxWaitMs: 0, minBytes: 0 });
    if (answer.batches.length === 0) return { records, batchBytes };
    batchBytes += answer.batches.length;
    records.push(...decodeBatches(topic, 0, answer.batches, next));
    next = answer.nextOffset;
  }
}

async function fetchError(address: string, topic: string, offset: number): Promise<unknown> {
  return client(address)
    .fetch({ topic, partition: 0, offset, maxBytes: 0, maxWaitMs: 0, minBytes: 0 })
    .then(() => undefined, (error: unknown) => error);
}

/** consumeAll reads with a fresh consumer (autoOffsetReset earliest) from `from` until the high watermark. */
async function consumeAll(topic: string, options: { from: number | undefined; highWatermark: number }): Promise<ConsumerRecord[]> {
  const consumer = new Consumer({ bootstrap: cluster.bootstrap, autoOffsetReset: 'earliest', maxWaitMs: 100, maxBytesPerPartition: 8 * 1024 * 1024 });
  try {
    await consumer.assign([options.from === undefined ? { topic, partition: 0 } : { topic, partition: 0, offset: options.from }]);
    const records: ConsumerRecord[] = [];
    const deadline = Date.now() + 20_000;
    while ((consumer.assignment()[0]?.position ?? -1) < options.highWatermark) {
      if (Date.now() > deadline) throw new Error(`consumer of ${topic}-0 stuck at ${consumer.assignment()[0]?.position}`);
      records.push(...(await consumer.poll()));
    }
    return records;
  } finally {
    consumer.close();
  }
}

describe('retention', () => {
  it('retention.bytes: the oldest whole segments go; below the new log start is out of range, from it everything reads', async () => {
    const topic = 'sized';
    const retentionBytes = 6 * 1024 * 1024;
    const count = 768; // 24 MiB: six segments or so
    await admin.createTopic({ name: topic, partitions: 1, replicationFactor: 3, configs: { ...smallSegments, 'retention.bytes': String(retentionBytes) } });
    await produce(topic, { first: 0, count, timestampMs: Date.now() });
    await waitForReplicas(topic, count);
    await enforceRetentionEverywhere();

    for (const address of cluster.bootstrap) {
      const where = `replica on ${address}`;
      const { logStartOffset, highWatermark } = await listOffsets(address, topic);
      expect(highWatermark, where).toBe(count);
      expect(logStartOffset, where).toBeGreaterThan(0);
      // A read below the log start names the range that is left.
      for (const offset of [0, logStartOffset - 1]) {
        const error = await fetchError(address, topic, offset);
        expect(error, `${where}: fetch at ${offset}`).toBeInstanceOf(OffsetOutOfRangeError);
        expect(error).toMatchObject({ topic, partition: 0, offset, logStartOffset, highWatermark: count });
      }
      // From the log start on every record is there, in order; what is held is at least
      // retention.bytes and less than one more segment (else that segment would have gone too).
      const { records, batchBytes } = await readFrom(address, topic, logStartOffset);
      expect(records.map((record) => record.offset), where).toEqual(Array.from({ length: count - logStartOffset }, (_, i) => logStartOffset + i));
      expect(records.map(numberOf), where).toEqual(records.map((record) => record.offset));
      expect(batchBytes, where).toBeGreaterThanOrEqual(retentionBytes);
      expect(batchBytes, where).toBeLessThan(retentionBytes + partitionSegmentBytesMax);
    }

    // A consumer left below the log start resets to it; one without a position starts there.
    // (Each replica deletes on its own; the consumer reads the leader's log start.)
    const logStarts = await Promise.all(cluster.bootstrap.map(async (address) => (await listOffsets(address, topic)).logStartOffset));
    for (const from of [0, undefined]) {
      const records = await consumeAll(topic, { from, highWatermark: count });
      const start = records[0]?.offset ?? -1;
      expect(logStarts, `consumer from ${from ?? 'no position'} starts at a log start`).toContain(start);
      expect(records.map((record) => record.offset)).toEqual(Array.from({ length: count - start }, (_, i) => start + i));
      expect(records.map(numberOf)).toEqual(records.map((record) => record.offset));
    }
  });

  it('retention.ms set live with alterConfigs: segments whose records are all older go, newer records stay', async () => {
    const topic = 'aging';
    const oldCount = 320; // 10 MiB, two hours old
    const newCount = 192; // 6 MiB, now
    await admin.createTopic({ name: topic, partitions: 1, replicationFactor: 3, configs: smallSegments });
    await produce(topic, { first: 0, count: oldCount, timestampMs: Date.now() - 2 * hourMs });
    await produce(topic, { first: oldCount, count: newCount, timestampMs: Date.now() });
    const count = oldCount + newCount;
    await waitForReplicas(topic, count);

    // Kafka's default retention.ms (7 days) keeps two-hour-old records.
    await enforceRetentionEverywhere();
    for (const address of cluster.bootstrap) expect(await listOffsets(address, topic)).toMatchObject({ logStartOffset: 0, highWatermark: count });
    // Only the leader answers by timestamp: the first answer is its.
    const boundary = await Promise.any(cluster.bootstrap.map((address) => client(address).listOffsets({ topic, partition: 0, spec: 'timestamp', timestampMs: Date.now() - hourMs })));
    expect(boundary.offset, 'first offset younger than an hour').toBe(oldCount);

    await admin.alterConfigs(topic, { set: { 'retention.ms': String(hourMs) } });
    // The new config reaches each broker with its metadata; retention then deletes on every replica.
    const deadline = Date.now() + 10_000;
    for (;;) {
      await enforceRetentionEverywhere();
      const starts = await Promise.all(cluster.bootstrap.map((address) => listOffsets(address, topic).then((answer) => answer.logStartOffset)));
      if (starts.every((start) => start > 0)) break;
      if (Date.now() > deadline) throw new Error(`retention.ms did not move the log start on every replica: ${starts.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    for (const address of cluster.bootstrap) {
      const where = `replica on ${address}`;
      const { logStartOffset, highWatermark } = await listOffsets(address, topic);
      expect(highWatermark, where).toBe(count);
      // Nothing younger than retention.ms went; of the old records, less than a segment is left
      // (the one they share with new records).
      expect(logStartOffset, where).toBeLessThanOrEqual(oldCount);
      expect((oldCount - logStartOffset) * recordValueBytes, where).toBeLessThan(partitionSegmentBytesMax);
      expect(await fetchError(address, topic, logStartOffset - 1)).toMatchObject({ name: 'OffsetOutOfRangeError', logStartOffset, highWatermark: count });
      const { records } = await readFrom(address, topic, logStartOffset);
      expect(records.map(numberOf), where).toEqual(Array.from({ length: count - logStartOffset }, (_, i) => logStartOffset + i));
    }
    const records = await consumeAll(topic, { from: 0, highWatermark: count });
    expect(records[0]!.offset).toBeGreaterThan(0);
    expect(records.filter((record) => record.offset >= oldCount).map(numberOf)).toEqual(Array.from({ length: newCount }, (_, i) => oldCount + i));
  });
});
