// AdminClient speaks the Admin service of one node over gRPC.
import * as grpc from '@grpc/grpc-js';
import { adminServiceName, clientConversion, type MetadataLogPage, type QuorumDescription } from '../rpc/admin-service.js';
import { grpcServiceDefinition } from '../rpc/proto.js';
import { leaderHintOf } from '../rpc/status.js';
import { NotLeaderError } from '../errors.js';
import { metadataGroup } from '../node/limits.js';

const AdminStub = grpc.makeGenericClientConstructor(grpcServiceDefinition(adminServiceName, { kind: 'protobuf', conversion: clientConversion }), 'Admin');

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;

export interface AdminClientOptions {
  /** deadlineMs bounds every call; default 5 s. */
  readonly deadlineMs?: number;
}

export class AdminClient {
  private readonly stub: grpc.Client & Record<string, (request: unknown, options: grpc.CallOptions, callback: Callback<unknown>) => void>;
  private readonly deadlineMs: number;

  constructor(
    readonly address: string,
    options: AdminClientOptions = {},
  ) {
    this.stub = new AdminStub(address, grpc.credentials.createInsecure()) as typeof this.stub;
    this.deadlineMs = options.deadlineMs ?? 5000;
  }

  private call<T>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.stub[method]!(request, { deadline: Date.now() + this.deadlineMs }, (error, response) => {
        if (error === null) resolve(response as T);
        else if (error.code === grpc.status.FAILED_PRECONDITION && leaderHintOf(error) !== undefined) reject(new NotLeaderError(metadataGroup, leaderHintOf(error)!));
        else reject(error);
      });
    });
  }

  describeQuorum(): Promise<QuorumDescription> {
    return this.call('DescribeQuorum', {});
  }

  appendNoOp(payload: Uint8Array): Promise<{ index: number; term: number }> {
    return this.call('AppendNoOp', { payload });
  }

  readMetadataLog(options: { fromIndex: number; maxEntries: number }): Promise<MetadataLogPage> {
    return this.call('ReadMetadataLog', options);
  }

  close(): void {
    this.stub.close();
  }
}
