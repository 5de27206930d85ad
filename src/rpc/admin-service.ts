// The Admin gRPC service (proto/admin.proto) over whatever implements AdminBackend (a node).
import type * as grpc from '@grpc/grpc-js';
import type { Entry, NodeId, Role } from '../raft/types.js';
import { metadataLogEntriesMax, noOpPayloadBytesMax } from '../node/limits.js';
import { grpcServiceDefinition } from './proto.js';
import { InvalidRequestError } from '../errors.js';
import { answer, clientConversion } from './unary.js';

export { clientConversion } from './unary.js';

export const adminServiceName = 'raftbus.admin.v1.Admin';


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
  /** syncWaitMicros is the time rounds spent waiting for their durability barriers, in total. */
  readonly syncWaitMicros: number;
  /** syncWaitBuckets counts those waits by duration: bucket i below syncWaitBucketBoundsMicros[i], the last one the rest. */
  readonly syncWaitBuckets: readonly number[];
  readonly syncWaitBucketBoundsMicros: readonly number[];
}

export interface MetadataLogPage {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entries: readonly Entry[];
}

export type { PartitionDescription, TopicDescription } from '../metadata/image.js';
import type { TopicDescription } from '../metadata/image.js';

export interface BrokerDescription {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
  readonly rack: string;
  readonly fenced: boolean;
  readonly inControlledShutdown: boolean;
  readonly epoch: number;
  readonly partitions: number;
  readonly leaders: number;
}

export interface NodeAddress {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
  readonly roles: readonly string[];
}

export interface ClusterDescription {
  readonly clusterId: string;
  readonly controllerId: NodeId;
  readonly brokers: readonly BrokerDescription[];
  readonly metadataOffset: number;
  readonly nodes: readonly NodeAddress[];
}

/** AdminBackend is what the Admin service needs from a node. */
export interface AdminBackend {
  describeQuorum(): QuorumDescription;
  appendNoOp(payload: Uint8Array): Promise<{ index: number; term: number }>;
  readMetadataLog(options: { fromIndex: number; maxEntries: number }): MetadataLogPage;
  createTopic(request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string>; requestId: string }): Promise<TopicDescription>;
  deleteTopic(request: { name: string; requestId: string }): Promise<{ topicId: string }>;
  createPartitions(request: { name: string; partitions: number }): Promise<TopicDescription>;
  alterConfigs(request: { name: string; set: Record<string, string>; remove: string[] }): Promise<TopicDescription>;
  allocateProducerIds(request: { count: number }): Promise<{ firstProducerId: number; count: number }>;
  listTopics(): { names: string[]; metadataOffset: number };
  describeTopics(names: readonly string[]): { topics: TopicDescription[]; unknown: string[]; metadataOffset: number };
  describeCluster(): ClusterDescription;
}

const requestIdCharsMax = 64;

function checkRequestId(requestId: string): void {
  if (requestId.length > requestIdCharsMax) throw InvalidRequestError.of('requestId', `${requestId.length} characters exceeds the limit of ${requestIdCharsMax}`);
}

/** registerAdminService adds the Admin service to a server. */
export function registerAdminService(server: grpc.Server, backend: AdminBackend): void {
  server.addService(grpcServiceDefinition(adminServiceName, { kind: 'protobuf', conversion: clientConversion }), {
    DescribeQuorum: answer(() => backend.describeQuorum()),
    AppendNoOp: answer(async (request: { payload: Uint8Array }) => {
      if (request.payload.length > noOpPayloadBytesMax) {
        throw InvalidRequestError.of('payload', `${request.payload.length} bytes exceeds the limit of ${noOpPayloadBytesMax} bytes`);
      }
      return backend.appendNoOp(request.payload);
    }),
    ReadMetadataLog: answer((request: { fromIndex: number; maxEntries: number }) => {
      if (request.maxEntries > metadataLogEntriesMax) {
        throw InvalidRequestError.of('maxEntries', `${request.maxEntries} exceeds the limit of ${metadataLogEntriesMax}`);
      }
      const page = backend.readMetadataLog({ fromIndex: request.fromIndex, maxEntries: request.maxEntries === 0 ? 1000 : request.maxEntries });
      return { firstIndex: page.firstIndex, lastIndex: page.lastIndex, entries: page.entries.map((entry) => ({ ...entry, data: entry.data })) };
    }),
    CreateTopic: answer((request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string>; requestId: string }) => {
      checkRequestId(request.requestId);
      return backend.createTopic(request);
    }),
    DeleteTopic: answer((request: { name: string; requestId: string }) => {
      checkRequestId(request.requestId);
      return backend.deleteTopic(request);
    }),
    CreatePartitions: answer((request: { name: string; partitions: number }) => backend.createPartitions(request)),
    AlterConfigs: answer((request: { name: string; set: Record<string, string>; remove: string[] }) => backend.alterConfigs(request)),
    AllocateProducerIds: answer((request: { count: number }) => backend.allocateProducerIds(request)),
    ListTopics: answer(() => backend.listTopics()),
    DescribeTopics: answer((request: { names: string[] }) => backend.describeTopics(request.names)),
    DescribeCluster: answer(() => backend.describeCluster()),
  });
}
