// Helpers shared by every unary gRPC service and client of raftbus.
import * as grpc from '@grpc/grpc-js';
import { grpcServiceDefinition } from './proto.js';
import { fromStatus, toStatus } from './status.js';

export { RemoteError } from './status.js';

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
