// Helpers shared by every unary gRPC service and client of raftbus.
import * as grpc from '@grpc/grpc-js';
import { InvalidRequestError, NotControllerError, NotLeaderError, RaftbusError, TopicExistsError, UnknownTopicError, type Problem } from '../errors.js';
import { metadataGroup } from '../node/limits.js';
import { grpcServiceDefinition } from './proto.js';
import { leaderHintOf, toStatus } from './status.js';

/** unaryChannelOptions: grpc-js's channelz introspection is not served and costs CPU per call. */
export const unaryChannelOptions: grpc.ChannelOptions = Object.freeze({ 'grpc.enable_channelz': 0 });

/** clientConversion decodes 64-bit integers as numbers: indexes and terms stay far below 2^53. */
export const clientConversion = Object.freeze({ longs: Number, enums: String, defaults: true, arrays: true });

export type UnaryHandler<Request, Response> = (call: grpc.ServerUnaryCall<Request, Response>, callback: grpc.sendUnaryData<Response>) => void;

/** answer runs a handler and turns its result or its error into the gRPC answer. */
export function answer<Request, Response>(handle: (request: Request) => Response | Promise<Response>): UnaryHandler<Request, Response> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toStatus(error) as grpc.ServiceError),
      );
  };
}

type Callback = (error: grpc.ServiceError | null, response: unknown) => void;
type Stub = grpc.Client & Record<string, (request: unknown, options: grpc.CallOptions, callback: Callback) => void>;

/**
 * UnaryClient calls the unary methods of one service on one node. A FAILED_PRECONDITION with a
 * leader hint becomes NotLeaderError (group 0) so callers can follow the hint.
 */
export class UnaryClient {
  private readonly stub: Stub;

  constructor(
    readonly address: string,
    serviceName: string,
    private readonly deadlineMs: number,
  ) {
    const Constructor = grpc.makeGenericClientConstructor(grpcServiceDefinition(serviceName, { kind: 'protobuf', conversion: clientConversion }), serviceName);
    this.stub = new Constructor(address, grpc.credentials.createInsecure(), unaryChannelOptions) as Stub;
  }

  call<T>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.stub[method]!(request, { deadline: Date.now() + this.deadlineMs }, (error, response) => {
        if (error === null) resolve(response as T);
        else reject(fromStatus(error, this.address));
      });
    });
  }

  close(): void {
    this.stub.close();
  }
}

/** RemoteError is an error a server reported; code is the gRPC status, retriable says whether to try again. */
export class RemoteError extends RaftbusError {
  override readonly name = 'RemoteError';
  readonly retriable: boolean;
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly address: string,
  ) {
    super(`${details} (${grpc.status[code]} from ${address})`);
    this.retriable = retriableCodes.has(code);
  }
}

const retriableCodes = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]);

/** fromStatus maps a gRPC error back to a typed error where raftbus defines one. */
export function fromStatus(error: grpc.ServiceError, address: string): Error {
  const details = error.details ?? error.message;
  if (error.code === grpc.status.FAILED_PRECONDITION) {
    const hint = leaderHintOf(error);
    if (hint !== undefined || details.startsWith('not the active controller')) return new NotControllerError(hint ?? 0);
    if (details.startsWith('not the leader')) return new NotLeaderError(metadataGroup, 0);
  }
  if (error.code === grpc.status.INVALID_ARGUMENT) return new InvalidRequestError(problemsOf(details));
  if (error.code === grpc.status.ALREADY_EXISTS) return Object.assign(new TopicExistsError(''), { message: details });
  if (error.code === grpc.status.NOT_FOUND) return Object.assign(new UnknownTopicError(''), { message: details });
  return new RemoteError(error.code, details, address);
}

/** problemsOf reads back the "field: message", one per line, form InvalidRequestError is sent in. */
function problemsOf(details: string): Problem[] {
  return details.split('\n').map((part) => {
    const colon = part.indexOf(': ');
    return colon < 0 ? { field: 'request', message: part } : { field: part.slice(0, colon), message: part.slice(colon + 2) };
  });
}
