// The Broker gRPC service (proto/broker.proto): requests are checked here, field by field against
// the limits, before they reach a partition.
import * as grpc from '@grpc/grpc-js';
import { InvalidRequestError } from '../errors.js';
import { partitionDefaults } from '../node/limits.js';
import { grpcServiceDefinition } from './proto.js';
import { toErrorInfo, toStatus } from './status.js';
import { answer, clientConversion } from './unary.js';

export const brokerServiceName = 'raftbus.broker.v1.Broker';

export type Acks = -1 | 0 | 1;

export interface ProduceAnswer {
  readonly baseOffset: number;
  readonly appendTimeMs: number;
  readonly replicas: number;
  readonly duplicate: boolean;
  readonly logStartOffset: number;
}

export interface FetchAnswer {
  readonly highWatermark: number;
  readonly logStartOffset: number;
  /** batches: whole batches back to back; the first may start before the offset asked. */
  readonly batches: Uint8Array;
  readonly nextOffset: number;
}

export type OffsetSpec = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'timestamp'; timestampMs: number };

/** BrokerPartition is what the service needs of one partition replica. */
export interface BrokerPartition {
  produce(request: { acks: Acks; batch: Uint8Array; timeoutMs: number }): Promise<ProduceAnswer>;
  /** fetch answers committed batches from offset, waiting up to maxWaitMs for minBytes; it stops waiting once signal aborts. */
  fetch(request: { offset: number; maxBytes: number; maxWaitMs: number; minBytes: number }, signal?: AbortSignal): Promise<FetchAnswer>;
  listOffset(spec: OffsetSpec): number;
  readonly state: { readonly highWatermark: number; readonly logStartOffset: number };
}

export interface BrokerMetadata {
  readonly brokers: { id: number; host: string; port: number; fenced: boolean }[];
  readonly topics: { name: string; topicId: string; partitions: { partition: number; leader: number; replicas: number[]; groupId: number; leaderEpoch: number }[]; configs: Record<string, string> }[];
  readonly unknownTopics: string[];
  readonly metadataOffset: number;
}

export interface BrokerBackend {
  brokerMetadata(topics: readonly string[]): BrokerMetadata;
  /** partition returns the local replica; throws UnknownTopicError, UnknownPartitionError or NotLeaderError. */
  partition(topic: string, partition: number): BrokerPartition;
}

/** topicNameBytesMax bounds a topic name in a request (Kafka's 249 characters, with room). */
const topicNameBytesMax = 255;
/** metadataTopicsMax bounds the topics one Metadata request may name. */
const metadataTopicsMax = 10_000;

interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  maxWaitMs: number;
  minBytes: number;
}

/** SubscribeRequest: a Fetch that never ends, so without its wait and minimum. */
type SubscribeRequest = Omit<FetchRequest, 'maxWaitMs' | 'minBytes'>;

interface ProduceRequest {
  correlationId: number;
  topic: string;
  partition: number;
  acks: number;
  batch: Uint8Array;
  timeoutMs: number;
}

function checkTopic(topic: string): void {
  if (topic.length === 0) throw InvalidRequestError.of('topic', 'is required');
  if (topic.length > topicNameBytesMax) throw InvalidRequestError.of('topic', `is ${topic.length} characters; at most ${topicNameBytesMax}`);
}

function parseAcks(acks: number): Acks {
  if (acks === -1 || acks === 0 || acks === 1) return acks;
  throw InvalidRequestError.of('acks', `must be -1 (all: a majority of replicas fsynced the batch), 1 (the leader fsynced it) or 0 (no answer), got ${acks}`);
}

function parseTimeout(timeoutMs: number): number {
  if (timeoutMs > partitionDefaults.produceTimeoutMsMax) throw InvalidRequestError.of('timeoutMs', `is ${timeoutMs}; at most ${partitionDefaults.produceTimeoutMsMax}`);
  return timeoutMs === 0 ? partitionDefaults.produceTimeoutMsDefault : timeoutMs;
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw InvalidRequestError.of('offset', `must be an offset from 0 to 2^53 - 1, got ${offset}`);
}

function fetchLimits(request: { maxBytes: number; maxWaitMs: number; minBytes: number }): { maxBytes: number; maxWaitMs: number; minBytes: number } {
  if (request.maxBytes > partitionDefaults.fetchBytesMax) throw InvalidRequestError.of('maxBytes', `is ${request.maxBytes}; at most ${partitionDefaults.fetchBytesMax}`);
  if (request.maxWaitMs > partitionDefaults.fetchWaitMsMax) throw InvalidRequestError.of('maxWaitMs', `is ${request.maxWaitMs}; at most ${partitionDefaults.fetchWaitMsMax}`);
  const maxBytes = request.maxBytes === 0 ? partitionDefaults.fetchBytesDefault : request.maxBytes;
  return { maxBytes, maxWaitMs: request.maxWaitMs, minBytes: Math.min(request.minBytes, maxBytes) };
}

/** produceOne checks a produce request and hands it to its partition. */
function produceOne(backend: BrokerBackend, request: ProduceRequest): Promise<ProduceAnswer> {
  checkTopic(request.topic);
  const acks = parseAcks(request.acks);
  const timeoutMs = parseTimeout(request.timeoutMs);
  if (request.batch.length === 0) throw InvalidRequestError.of('batch', 'is required: one RecordBatch v2');
  return backend.partition(request.topic, request.partition).produce({ acks, batch: request.batch, timeoutMs });
}

function parseSpec(request: { spec: string; timestampMs: number }): OffsetSpec {
  if (request.spec === 'earliest' || request.spec === 'latest') return { kind: request.spec };
  if (request.spec === 'timestamp') return { kind: 'timestamp', timestampMs: request.timestampMs };
  throw InvalidRequestError.of('spec', `must be "earliest", "latest" or "timestamp", got "${request.spec}"`);
}

/** brokerServerOptions: produce requests carry batches of up to max.message.bytes. */
export const brokerServerOptions: grpc.ServerOptions = Object.freeze({ 'grpc.max_receive_message_length': partitionDefaults.grpcMessageBytesMax, 'grpc.enable_channelz': 0 });

/** registerBrokerService adds the Broker service to a server. */
export function registerBrokerService(server: grpc.Server, backend: BrokerBackend): void {
  server.addService(grpcServiceDefinition(brokerServiceName, { kind: 'protobuf', conversion: clientConversion }), {
    Metadata: answer((request: { topics: string[] }) => {
      if (request.topics.length > metadataTopicsMax) throw InvalidRequestError.of('topics', `names ${request.topics.length} topics; at most ${metadataTopicsMax}`);
      return backend.brokerMetadata(request.topics);
    }),
    Produce: answer(async (request: ProduceRequest) => ({ correlationId: request.correlationId, ...(await produceOne(backend, request)) })),
    ProduceStream: (call: grpc.ServerDuplexStream<ProduceRequest, object>) => serveProduceStream(backend, call),
    Fetch: (call: grpc.ServerUnaryCall<FetchRequest, object>, callback: grpc.sendUnaryData<object>) => {
      // A long poll whose client gave up (deadline, cancel, gone) stops parking at once.
      const gone = abortWhenGone(call);
      answer(async (request: FetchRequest) => {
        checkTopic(request.topic);
        checkOffset(request.offset);
        const limits = fetchLimits(request);
        const fetched = await backend.partition(request.topic, request.partition).fetch({ offset: request.offset, ...limits }, gone);
        return { topic: request.topic, partition: request.partition, ...fetched };
      })(call, callback);
    },
    Subscribe: (call: grpc.ServerWritableStream<SubscribeRequest, object>) => void serveSubscribe(backend, call),
    ListOffsets: answer((request: { topic: string; partition: number; spec: string; timestampMs: number }) => {
      checkTopic(request.topic);
      const spec = parseSpec(request);
      const partition = backend.partition(request.topic, request.partition);
      return { offset: partition.listOffset(spec), logStartOffset: partition.state.logStartOffset, highWatermark: partition.state.highWatermark };
    }),
  });
}

/**
 * serveProduceStream answers each request of the stream by correlation id. Reading pauses while
 * produceStreamInFlightMax requests are unanswered, so a fast client cannot queue without bound.
 */
function serveProduceStream(backend: BrokerBackend, call: grpc.ServerDuplexStream<ProduceRequest, object>): void {
  let inFlight = 0;
  let ended = false;
  const finishIfDone = (): void => {
    if (ended && inFlight === 0) call.end();
  };
  call.on('data', (request: ProduceRequest) => {
    inFlight++;
    if (inFlight >= partitionDefaults.produceStreamInFlightMax) call.pause();
    let outcome: Promise<ProduceAnswer>;
    try {
      outcome = produceOne(backend, request);
    } catch (error) {
      outcome = Promise.reject(error as Error);
    }
    outcome
      .then(
        (produced) => (request.acks === 0 ? undefined : { correlationId: request.correlationId, ...produced }),
        (error: unknown) => ({ correlationId: request.correlationId, error: toErrorInfo(error) }),
      )
      .then((response) => {
        inFlight--;
        if (response !== undefined && !call.cancelled && !call.writableEnded) call.write(response);
        if (call.isPaused() && inFlight < partitionDefaults.produceStreamInFlightMax / 2) call.resume();
        finishIfDone();
      });
  });
  call.on('end', () => {
    ended = true;
    finishIfDone();
  });
  call.on('error', () => undefined);
}

/** serveSubscribe pushes committed batches from an offset until the client goes away, waiting for the stream to drain. */
async function serveSubscribe(backend: BrokerBackend, call: grpc.ServerWritableStream<SubscribeRequest, object>): Promise<void> {
  const request = call.request;
  const gone = abortWhenGone(call);
  try {
    checkTopic(request.topic);
    checkOffset(request.offset);
    const { maxBytes } = fetchLimits({ maxBytes: request.maxBytes, maxWaitMs: 0, minBytes: 0 });
    let offset = request.offset;
    while (!gone.aborted) {
      const partition = backend.partition(request.topic, request.partition);
      const fetched = await partition.fetch({ offset, maxBytes, maxWaitMs: partitionDefaults.subscribeWaitMs, minBytes: 1 }, gone);
      if (gone.aborted || fetched.batches.length === 0) continue;
      offset = fetched.nextOffset;
      const flowing = call.write({ topic: request.topic, partition: request.partition, ...fetched });
      if (!flowing) await drainedOrGone(call, gone);
    }
    call.end();
  } catch (error) {
    if (!gone.aborted) call.emit('error', toStatus(error));
  }
}

/** abortWhenGone returns a signal that aborts when the call is cancelled (client cancel, deadline, connection lost) or fails. */
function abortWhenGone(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  call.on('error', () => controller.abort());
  return controller.signal;
}

/** drainedOrGone resolves when the stream can take more, or its client is gone; it leaves no listener behind. */
function drainedOrGone(call: grpc.ServerWritableStream<unknown, unknown>, gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      gone.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    gone.addEventListener('abort', done, { once: true });
  });
}
