// The Groups gRPC service (proto/groups.proto). Requests are checked here and by the coordinator;
// the node finds the coordinator of each group or answers NotCoordinatorError with a hint.
import type * as grpc from '@grpc/grpc-js';
import type { GroupCoordinator } from '../groups/coordinator.js';
import type { TopicPartition } from '../groups/records.js';
import { grpcServiceDefinition } from './proto.js';
import { answer, clientConversion } from './unary.js';

export const groupsServiceName = 'raftbus.groups.v1.Groups';

export interface GroupsBackend {
  findCoordinator(group: string): Promise<{ nodeId: number; host: string; port: number }>;
  coordinator(group: string): GroupCoordinator;
  listGroups(): { group: string; state: string; members: number }[];
  /** nowMs is the node's clock (session deadlines, commit timestamps). */
  nowMs(): number;
}

interface Member {
  group: string;
  memberId: string;
  generation: number;
}

type OffsetsRequest = { group: string; offsets: { topic: string; partition: number; offset: number; metadata: string }[] };

/**
 * groupsHandlers answers each method of the Groups service from the backend: what the gRPC service
 * serves, and what the whole-cluster simulation calls with the same requests.
 */
export function groupsHandlers(backend: GroupsBackend) {
  const coordinator = (group: string): GroupCoordinator => backend.coordinator(group);
  return {
    FindCoordinator: (request: { group: string }) => backend.findCoordinator(request.group),
    JoinGroup: (request: { group: string; memberId: string; instanceId: string; clientId: string; sessionTimeoutMs: number; rebalanceTimeoutMs: number; topics: string[]; assignors: string[]; owned: TopicPartition[] }) =>
      coordinator(request.group).join(request, backend.nowMs()),
    SyncGroup: (request: Member) => ({ assignment: coordinator(request.group).sync(request, backend.nowMs()) }),
    Heartbeat: (request: Member) => coordinator(request.group).heartbeat(request, backend.nowMs()),
    LeaveGroup: (request: { group: string; memberId: string }) => {
      coordinator(request.group).leave(request, backend.nowMs());
      return {};
    },
    OffsetCommit: async (request: Member & OffsetsRequest) => {
      await coordinator(request.group).commitOffsets(request, backend.nowMs());
      return {};
    },
    OffsetFetch: (request: { group: string; partitions: TopicPartition[] }) => ({ offsets: coordinator(request.group).fetchOffsets(request) }),
    ListGroups: () => ({ groups: backend.listGroups() }),
    DescribeGroup: (request: { group: string }) => ({ group: request.group, ...coordinator(request.group).describe(request.group, backend.nowMs()) }),
    DeleteGroup: async (request: { group: string }) => {
      await coordinator(request.group).deleteGroup(request.group, backend.nowMs());
      return {};
    },
    ResetOffsets: async (request: OffsetsRequest) => {
      await coordinator(request.group).resetOffsets(request, backend.nowMs());
      return {};
    },
  };
}

export function registerGroupsService(server: grpc.Server, backend: GroupsBackend): void {
  const handlers = groupsHandlers(backend);
  const served: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(handlers)) served[method] = answer(handler as (request: unknown) => unknown);
  server.addService(grpcServiceDefinition(groupsServiceName, { kind: 'protobuf', conversion: clientConversion }), served);
}
