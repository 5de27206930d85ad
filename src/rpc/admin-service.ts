// The Admin gRPC service (proto/admin.proto) over whatever implements AdminBackend (a node).
import type * as grpc from '@grpc/grpc-js';
import type { Entry, NodeId, Role } from '../raft/types.js';
import { metadataLogEntriesMax, noOpPayloadBytesMax } from '../node/limits.js';
import { grpcServiceDefinition } from './proto.js';
import { InvalidArgumentError, toStatus } from './status.js';

export const adminServiceName = 'raftbus.admin.v1.Admin';

/** clientConversion decodes 64-bit integers as numbers: indexes and terms stay far below 2^53. */
export const clientConversion = Object.freeze({ longs: Number, enums: String, defaults: true, arrays: true });

export interface QuorumDescription {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: NodeId;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly stateDigest: number;
  readonly snapshotIndex: number;
  readonly replicas: readonly { nodeId: NodeId; voter: boolean; matchIndex: number; state: string; lastHeardMsAgo: number }[];
  readonly uptimeMs: number;
  readonly rounds: number;
  readonly syncs: number;
}

export interface MetadataLogPage {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entries: readonly Entry[];
}

/** AdminBackend is what the Admin service needs from a node. */
export interface AdminBackend {
  describeQuorum(): QuorumDescription;
  appendNoOp(payload: Uint8Array): Promise<{ index: number; term: number }>;
  readMetadataLog(options: { fromIndex: number; maxEntries: number }): MetadataLogPage;
}

type Unary<Request, Response> = (call: grpc.ServerUnaryCall<Request, Response>, callback: grpc.sendUnaryData<Response>) => void;

/** answer runs a handler and turns its result or error into the gRPC answer. */
function answer<Request, Response>(handle: (request: Request) => Response | Promise<Response>): Unary<Request, Response> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toStatus(error) as grpc.ServiceError),
      );
  };
}

/** registerAdminService adds the Admin service to a server. */
export function registerAdminService(server: grpc.Server, backend: AdminBackend): void {
  server.addService(grpcServiceDefinition(adminServiceName, { kind: 'protobuf', conversion: clientConversion }), {
    DescribeQuorum: answer(() => backend.describeQuorum()),
    AppendNoOp: answer(async (request: { payload: Uint8Array }) => {
      if (request.payload.length > noOpPayloadBytesMax) {
        throw new InvalidArgumentError('payload', `${request.payload.length} bytes exceeds the limit of ${noOpPayloadBytesMax} bytes`);
      }
      return backend.appendNoOp(request.payload);
    }),
    ReadMetadataLog: answer((request: { fromIndex: number; maxEntries: number }) => {
      if (request.maxEntries > metadataLogEntriesMax) {
        throw new InvalidArgumentError('maxEntries', `${request.maxEntries} exceeds the limit of ${metadataLogEntriesMax}`);
      }
      const page = backend.readMetadataLog({ fromIndex: request.fromIndex, maxEntries: request.maxEntries === 0 ? 1000 : request.maxEntries });
      return { firstIndex: page.firstIndex, lastIndex: page.lastIndex, entries: page.entries.map((entry) => ({ ...entry, data: entry.data })) };
    }),
  });
}
