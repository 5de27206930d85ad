// Bad input to the Broker service on an in-process cluster: each malformed request gets its typed
// error (over a raw gRPC call, with its status code, and on a ProduceStream, which stays up),
// nothing is stored (the high watermark does not move, the next batch takes the very next offset),
// and the broker still takes a valid produce right after.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { BrokerClient } from '../../src/client/broker-client.js';
import { decodeBatches } from '../../src/client/consumer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { InvalidRecordBatchError, InvalidRequestError, OffsetOutOfRangeError, UnknownPartitionError, UnknownTopicError } from '../../src/errors.js';
import { encodeRecordBatch, plainBatch } from '../../src/partition/record-batch.js';
import { brokerServiceName } from '../../src/rpc/broker-service.js';
import { grpcServiceDefinition } from '../../src/rpc/proto.js';
import { fromStatus } from '../../src/rpc/status.js';
import { clientConversion } from '../../src/rpc/unary.js';

const topic = 'strict';
const partitionCount = 3;
/** maxMessageBytes: the topic's max.message.bytes, small so a batch above it is cheap to build. */
const maxMessageBytes = 10_000;
const deadlineMs = 5000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let cluster: RunningCluster;
let admin: Admin;
const clients = new Map<string, BrokerClient>();
const rawStubs = new Map<string, RawStub>();
/** stored: per partition, the values the valid produces of this file appended, in order. */
const stored = new Map<number, string[]>();

type RawCallback = (error: grpc.ServiceError | null, response: unknown) => void;
type RawStub = grpc.Client & Record<string, (request: unknown, options: grpc.CallOptions, callback: RawCallback) => void>;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
  await admin.createTopic({ name: topic, partitions: partitionCount, replicationFactor: 3, configs: { 'max.message.bytes': String(maxMessageBytes) } });
  for (let partition = 0; partition < partitionCount; partition++) await leaderAddress(partition);
}, 60_000);

afterAll(async () => {
  for (const client of clients.values()) client.close();
  for (const stub of rawStubs.values()) stub.close();
  admin?.close();
  await cluster?.close();
});

function client(address: string): BrokerClient {
  let found = clients.get(address);
  if (found === undefined) {
    found = new BrokerClient(address, deadlineMs);
    clients.set(address, found);
  }
  return found;
}

/** rawCall sends one unary Broker request as any gRPC client would, and returns the answer or the status error. */
function rawCall(address: string, method: string, request: object): Promise<{ response?: unknown; error?: grpc.ServiceError }> {
  let stub = rawStubs.get(address);
  if (stub === undefined) {
    const Constructor = grpc.makeGenericClientConstructor(grpcServiceDefinition(brokerServiceName, { kind: 'protobuf', conversion: clientConversion }), brokerServiceName);
    stub = new Constructor(address, grpc.credentials.createInsecure(), { 'grpc.enable_channelz': 0 }) as RawStub;
    rawStubs.set(address, stub);
  }
  return new Promise((resolve) => stub[method]!(request, { deadline: Date.now() + deadlineMs }, (error, response) => resolve(error === null ? { response } : { error })));
}

/** rawError sends a request that must fail and returns its status code and the typed error the trailer rebuilds. */
async function rawError(address: string, method: string, request: object): Promise<{ code: grpc.status; error: Error }> {
  const outcome = await rawCall(address, method, request);
  expect(outcome.error, `${method} ${JSON.stringify(request, (_, value: unknown) => (value instanceof Uint8Array ? `<${value.length} bytes>` : value))} must fail`).toBeDefined();
  return { code: outcome.error!.code, error: fromStatus(outcome.error!, address) };
}

function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error as Error,
  );
}

/** batchOf encodes a plain (not idempotent) batch of values. */
function batchOf(values: readonly string[]): Uint8Array {
  return encodeRecordBatch({
    ...plainBatch,
    records: values.map((value) => ({ timestamp: Date.now(), key: null, value: encoder.encode(value), headers: [] })),
  });
}

/**
 * leaderAddress polls until every replica knows the broker the controller chose as the partition's
 * Raft leader (once there, leadership stays: a leader hands over only to the controller's choice);
 * returns its client address. It reads each replica's Raft status in process, so no answer of a
 * replica that lags behind can mislead it.
 */
async function leaderAddress(partition: number): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const chosen = (await admin.describeTopics([topic])).topics[0]?.partitions[partition]?.leader ?? 0;
    const known = cluster.nodes.map((node) => raftLeaderOn(node, partition));
    const leader = cluster.config.nodes.find((node) => node.id === chosen);
    if (leader !== undefined && known.every((id) => id === chosen)) return `${leader.host}:${leader.clientPort}`;
    if (Date.now() > deadline) throw new Error(`${topic}-${partition} not led by the controller's choice ${chosen} within 20 s (leaders known: ${known.join(', ')})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** raftLeaderOn is the Raft leader a node's replica knows (0: none, or no replica yet). */
function raftLeaderOn(node: RunningCluster['nodes'][number], partition: number): number {
  try {
    return node.partitions?.partition(topic, partition).leaderHint() ?? 0;
  } catch {
    return 0; // the node has not applied the topic or opened its replica yet
  }
}

/** highWatermark is the replica's own: 'earliest' is answered by every replica ('latest' only by the leader). */
async function highWatermark(address: string, partition: number): Promise<number> {
  return (await client(address).listOffsets({ topic, partition, spec: 'earliest' })).highWatermark;
}

/**
 * expectNothingStoredThenServes: the leader's high watermark is still `before`, and a valid batch
 * (on the same ProduceStream the bad requests used) lands at exactly `before`.
 */
async function expectNothingStoredThenServes(options: { address: string; partition: number; before: number }): Promise<void> {
  const { address, partition, before } = options;
  expect(await highWatermark(address, partition), 'high watermark after the refused request').toBe(before);
  const value = `valid-${partition}-${before}`;
  const answer = await client(address).produce({ topic, partition, acks: -1, batch: batchOf([value]), timeoutMs: 10_000 });
  expect(answer).toMatchObject({ baseOffset: before, duplicate: false });
  expect(await highWatermark(address, partition)).toBe(before + 1);
  stored.set(partition, [...(stored.get(partition) ?? []), value]);
}

/** prepare finds the partition's leader and its high watermark before a bad request. */
async function prepare(partition: number): Promise<{ address: string; partition: number; before: number }> {
  const address = await leaderAddress(partition);
  return { address, partition, before: await highWatermark(address, partition) };
}

describe('bad input to the Broker service', () => {
  it('an unknown topic: UnknownTopicError naming it (NOT_FOUND) for produce, fetch and list offsets', async () => {
    const target = await prepare(0);
    const produce = { correlationId: 1, topic: 'no-such-topic', partition: 0, acks: -1, batch: batchOf(['lost']), timeoutMs: 0 };
    for (const [method, request] of [
      ['Produce', produce],
      ['Fetch', { topic: 'no-such-topic', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 }],
      ['ListOffsets', { topic: 'no-such-topic', partition: 0, spec: 'earliest', timestampMs: 0 }],
    ] as const) {
      const { code, error } = await rawError(target.address, method, request);
      expect(code, method).toBe(grpc.status.NOT_FOUND);
      expect(error, method).toBeInstanceOf(UnknownTopicError);
      expect((error as UnknownTopicError).topic).toBe('no-such-topic');
    }
    const streamed = await rejection(client(target.address).produce({ topic: 'no-such-topic', partition: 0, acks: -1, batch: batchOf(['lost']), timeoutMs: 0 }));
    expect(streamed).toBeInstanceOf(UnknownTopicError);
    expect(streamed.message).toContain('no-such-topic');
    await expectNothingStoredThenServes(target);
  });

  it('an unknown partition: UnknownPartitionError naming the partitions there are', async () => {
    const target = await prepare(1);
    for (const partition of [partitionCount, 4_294_967_295]) {
      const { code, error } = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition, acks: -1, batch: batchOf(['lost']), timeoutMs: 0 });
      expect(code).toBe(grpc.status.NOT_FOUND);
      expect(error).toBeInstanceOf(UnknownPartitionError);
      expect(error).toMatchObject({ topic, partition, partitions: partitionCount });
      expect(error.message).toContain(`0..${partitionCount - 1}`);
      const fetched = await rawError(target.address, 'Fetch', { topic, partition, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
      expect(fetched.error).toBeInstanceOf(UnknownPartitionError);
    }
    const streamed = await rejection(client(target.address).produce({ topic, partition: partitionCount, acks: -1, batch: batchOf(['lost']), timeoutMs: 0 }));
    expect(streamed).toMatchObject({ name: 'UnknownPartitionError', partitions: partitionCount });
    await expectNothingStoredThenServes(target);
  });

  it("a batch above the topic's max.message.bytes: InvalidRecordBatchError naming the limit", async () => {
    const target = await prepare(2);
    const large = batchOf(['x'.repeat(maxMessageBytes)]);
    expect(large.length).toBeGreaterThan(maxMessageBytes);
    const { code, error } = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks: -1, batch: large, timeoutMs: 0 });
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error).toBeInstanceOf(InvalidRecordBatchError);
    expect((error as InvalidRecordBatchError).field).toBe('batchLength');
    expect((error as InvalidRecordBatchError).reason).toContain(String(maxMessageBytes));
    expect(error.message).toContain('max.message.bytes');
    const streamed = await rejection(client(target.address).produce({ topic, partition: target.partition, acks: -1, batch: large, timeoutMs: 0 }));
    expect(streamed).toMatchObject({ name: 'InvalidRecordBatchError', field: 'batchLength' });
    await expectNothingStoredThenServes(target);
  });

  it('a batch whose CRC does not match its bytes: InvalidRecordBatchError on field crc', async () => {
    const target = await prepare(0);
    const corrupt = batchOf(['one', 'two', 'three']);
    corrupt[corrupt.length - 2]! ^= 0x01; // a byte of the last record's value, covered by the CRC
    const { code, error } = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks: -1, batch: corrupt, timeoutMs: 0 });
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error).toBeInstanceOf(InvalidRecordBatchError);
    expect((error as InvalidRecordBatchError).field).toBe('crc');
    const streamed = await rejection(client(target.address).produce({ topic, partition: target.partition, acks: 1, batch: corrupt, timeoutMs: 0 }));
    expect(streamed).toMatchObject({ name: 'InvalidRecordBatchError', field: 'crc' });
    await expectNothingStoredThenServes(target);
  });

  it('a batch that is not a batch (empty, cut short, shorter than its header): refused by field', async () => {
    const target = await prepare(1);
    const empty = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks: -1, batch: new Uint8Array(0), timeoutMs: 0 });
    expect(empty.error).toBeInstanceOf(InvalidRequestError);
    expect((empty.error as InvalidRequestError).problems.map((problem) => problem.field)).toEqual(['batch']);
    const whole = batchOf(['complete']);
    const cut = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks: -1, batch: whole.subarray(0, whole.length - 3), timeoutMs: 0 });
    expect(cut.error).toMatchObject({ name: 'InvalidRecordBatchError', field: 'batchLength' });
    const stub = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks: -1, batch: whole.subarray(0, 20), timeoutMs: 0 });
    expect(stub.error).toMatchObject({ name: 'InvalidRecordBatchError', field: 'batchLength' });
    await expectNothingStoredThenServes(target);
  });

  it('an invalid acks value: InvalidRequestError naming acks and the values allowed', async () => {
    const target = await prepare(2);
    for (const acks of [2, -2, 100]) {
      const { code, error } = await rawError(target.address, 'Produce', { correlationId: 1, topic, partition: target.partition, acks, batch: batchOf(['lost']), timeoutMs: 0 });
      expect(code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).problems).toHaveLength(1);
      expect((error as InvalidRequestError).problems[0]!.field).toBe('acks');
      expect(error.message).toContain(`got ${acks}`);
    }
    const streamed = await rejection(client(target.address).produce({ topic, partition: target.partition, acks: 2 as -1, batch: batchOf(['lost']), timeoutMs: 0 }));
    expect(streamed).toBeInstanceOf(InvalidRequestError);
    expect((streamed as InvalidRequestError).problems[0]!.field).toBe('acks');
    await expectNothingStoredThenServes(target);
  });

  it('a fetch past the high watermark: OffsetOutOfRangeError with the valid range; at the high watermark: nothing, no error', async () => {
    const target = await prepare(0);
    await expectNothingStoredThenServes(target); // so the range is not empty
    const highWatermarkNow = target.before + 1;
    for (const offset of [highWatermarkNow + 1, highWatermarkNow + 1_000_000]) {
      const { code, error } = await rawError(target.address, 'Fetch', { topic, partition: target.partition, offset, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
      expect(code).toBe(grpc.status.OUT_OF_RANGE);
      expect(error).toBeInstanceOf(OffsetOutOfRangeError);
      expect(error).toMatchObject({ topic, partition: target.partition, offset, logStartOffset: 0, highWatermark: highWatermarkNow });
      expect(error.message).toContain(`0 to ${highWatermarkNow}`);
    }
    const negative = await rawError(target.address, 'Fetch', { topic, partition: target.partition, offset: -1, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    expect(negative.error).toBeInstanceOf(InvalidRequestError);
    expect((negative.error as InvalidRequestError).problems[0]!.field).toBe('offset');
    const atEnd = await client(target.address).fetch({ topic, partition: target.partition, offset: highWatermarkNow, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    expect(atEnd).toMatchObject({ highWatermark: highWatermarkNow, nextOffset: highWatermarkNow });
    expect(atEnd.batches.length).toBe(0);
    await expectNothingStoredThenServes({ ...target, before: highWatermarkNow });
  });

  it('a bad ListOffsets spec: InvalidRequestError naming spec and the specs there are', async () => {
    const target = await prepare(1);
    for (const spec of ['newest', '', 'EARLIEST']) {
      const { code, error } = await rawError(target.address, 'ListOffsets', { topic, partition: target.partition, spec, timestampMs: 0 });
      expect(code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).problems[0]!.field).toBe('spec');
      expect(error.message).toContain('"earliest", "latest" or "timestamp"');
    }
    await expectNothingStoredThenServes(target);
  });

  it('afterwards every replica holds exactly the valid batches, in the order they were produced', async () => {
    for (let partition = 0; partition < partitionCount; partition++) {
      const expected = stored.get(partition) ?? [];
      for (const address of cluster.bootstrap) {
        // A follower learns the last commit with the next heartbeat: wait for it to catch up.
        const deadline = Date.now() + 10_000;
        while ((await highWatermark(address, partition)) < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        const fetched = await client(address).fetch({ topic, partition, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
        expect(fetched.highWatermark, `${topic}-${partition} on ${address}`).toBe(expected.length);
        const records = decodeBatches(topic, partition, fetched.batches, 0);
        expect(records.map((record) => record.offset)).toEqual(expected.map((_, offset) => offset));
        expect(records.map((record) => decoder.decode(record.value!))).toEqual(expected);
      }
    }
  });
});
