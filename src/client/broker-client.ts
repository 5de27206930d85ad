// BrokerClient speaks the Broker service (proto/broker.proto) of one node: unary calls, one
// long-lived ProduceStream shared by every producer request to that node, and Subscribe streams.
import * as grpc from '@grpc/grpc-js';
import { RemoteError } from '../rpc/status.js';
import { partitionDefaults } from '../node/limits.js';
import { brokerServiceName, type BrokerMetadata, type FetchAnswer, type ProduceAnswer } from '../rpc/broker-service.js';
import { grpcServiceDefinition } from '../rpc/proto.js';
import { fromErrorInfo, fromStatus, type ErrorInfo } from '../rpc/status.js';
import { clientConversion } from '../rpc/unary.js';

/** brokerChannelOptions: fetch answers may be as large as the broker's fetch limit. */
const brokerChannelOptions: grpc.ChannelOptions = Object.freeze({
  'grpc.enable_channelz': 0,
  'grpc.max_receive_message_length': partitionDefaults.grpcMessageBytesMax,
  'grpc.max_send_message_length': partitionDefaults.grpcMessageBytesMax,
});

/** produceAnswerSlackMs: how long past its timeout a produce may go unanswered before the client gives up on the link. */
const produceAnswerSlackMs = 2000;

type Callback = (error: grpc.ServiceError | null, response: unknown) => void;
type Stub = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export interface ProduceRequest {
  readonly topic: string;
  readonly partition: number;
  readonly acks: -1 | 0 | 1;
  readonly batch: Uint8Array;
  readonly timeoutMs: number;
}

interface ProduceStreamResponse extends Partial<ProduceAnswer> {
  correlationId: number;
  error?: ErrorInfo | null;
}

interface PendingProduce {
  readonly resolve: (answer: ProduceAnswer) => void;
  readonly reject: (error: Error) => void;
}

export class BrokerClient {
  private readonly stub: Stub;
  private stream: grpc.ClientDuplexStream<object, ProduceStreamResponse> | undefined;
  private readonly pending = new Map<number, PendingProduce>();
  private correlationId = 0;
  private closed = false;

  constructor(
    readonly address: string,
    private readonly deadlineMs: number,
  ) {
    const Constructor = grpc.makeGenericClientConstructor(grpcServiceDefinition(brokerServiceName, { kind: 'protobuf', conversion: clientConversion }), brokerServiceName);
    this.stub = new Constructor(address, grpc.credentials.createInsecure(), brokerChannelOptions) as Stub;
  }

  private unary<T>(method: string, request: object, deadlineMs = this.deadlineMs): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.stub[method] as (request: unknown, options: grpc.CallOptions, callback: Callback) => void)(request, { deadline: Date.now() + deadlineMs }, (error, response) => {
        if (error === null) resolve(response as T);
        else reject(fromStatus(error, this.address));
      });
    });
  }

  metadata(topics: readonly string[]): Promise<BrokerMetadata> {
    return this.unary('Metadata', { topics });
  }

  fetch(request: { topic: string; partition: number; offset: number; maxBytes: number; maxWaitMs: number; minBytes: number }): Promise<FetchAnswer & { topic: string; partition: number }> {
    return this.unary('Fetch', request, this.deadlineMs + request.maxWaitMs);
  }

  listOffsets(request: { topic: string; partition: number; spec: 'earliest' | 'latest' | 'timestamp'; timestampMs?: number }): Promise<{ offset: number; logStartOffset: number; highWatermark: number }> {
    return this.unary('ListOffsets', { timestampMs: 0, ...request });
  }

  /**
   * produce sends one batch on the shared ProduceStream and resolves with the broker's answer
   * (acks=0: as soon as it is written). A broken stream rejects every request on it with a
   * retriable RemoteError; the next produce opens a new stream.
   */
  produce(request: ProduceRequest): Promise<ProduceAnswer> {
    if (this.closed) return Promise.reject(new RemoteError(grpc.status.CANCELLED, 'the client is closed', this.address));
    const stream = this.produceStream();
    const correlationId = ++this.correlationId;
    if (request.acks === 0) {
      stream.write({ correlationId, ...request });
      return Promise.resolve({ baseOffset: -1, appendTimeMs: -1, replicas: 0, duplicate: false, logStartOffset: -1 });
    }
    return new Promise((resolve, reject) => {
      // The broker answers within timeoutMs; if nothing comes back well after that, the link is cut or the broker hangs.
      const waitMs = request.timeoutMs + Math.min(this.deadlineMs, produceAnswerSlackMs);
      const timer = setTimeout(() => {
        if (!this.pending.delete(correlationId)) return;
        reject(new RemoteError(grpc.status.DEADLINE_EXCEEDED, `no answer to a produce within ${waitMs} ms`, this.address));
      }, waitMs);
      this.pending.set(correlationId, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      stream.write({ correlationId, ...request });
    });
  }

  private produceStream(): grpc.ClientDuplexStream<object, ProduceStreamResponse> {
    if (this.stream !== undefined) return this.stream;
    const stream = (this.stub['produceStream'] as (options: grpc.CallOptions) => grpc.ClientDuplexStream<object, ProduceStreamResponse>)({});
    this.stream = stream;
    stream.on('data', (response: ProduceStreamResponse) => {
      const waiter = this.pending.get(response.correlationId);
      if (waiter === undefined) return;
      this.pending.delete(response.correlationId);
      if (response.error) waiter.reject(fromErrorInfo(response.error, this.address));
      else waiter.resolve({ baseOffset: response.baseOffset!, appendTimeMs: response.appendTimeMs!, replicas: response.replicas!, duplicate: response.duplicate!, logStartOffset: response.logStartOffset! });
    });
    const broken = (error: Error): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    stream.on('error', (error: grpc.ServiceError) => broken(fromStatus(error, this.address)));
    stream.on('end', () => broken(new RemoteError(grpc.status.UNAVAILABLE, 'the produce stream ended', this.address)));
    return stream;
  }

  /** subscribe opens a Subscribe stream; the caller reads it and cancels it. */
  subscribe(request: { topic: string; partition: number; offset: number; maxBytes: number }): grpc.ClientReadableStream<FetchAnswer> {
    return (this.stub['subscribe'] as (request: unknown, options: grpc.CallOptions) => grpc.ClientReadableStream<FetchAnswer>)(request, {});
  }

  close(): void {
    this.closed = true;
    this.stream?.cancel();
    this.stream = undefined;
    for (const waiter of this.pending.values()) waiter.reject(new RemoteError(grpc.status.CANCELLED, 'the client is closed', this.address));
    this.pending.clear();
    this.stub.close();
  }
}
