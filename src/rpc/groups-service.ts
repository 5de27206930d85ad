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
}

interface Member {
  group: string;
  memberId: string;
  generation: number;
}

export function registerGroupsService(server: grpc.Server, backend: GroupsBackend): void {
  server.addService(grpcServiceDefinition(groupsServiceName, { kind: 'protobuf', conversion: clientConversion }), {
    FindCoordinator: answer((request: { group: string }) => backend.findCoordinator(request.group)),
    JoinGroup: answer(
      (request: { group: string; memberId: string; instanceId: string; clientId: string; sessionTimeoutMs: number; rebalanceTimeoutMs: number; topics: string[]; assignors: string[]; owned: TopicPartition[] }) =>
        backend.coordinator(request.group).join(request, Date.now()),
    ),
    SyncGroup: answer((request: Member) => ({ assignment: backend.coordinator(request.group).sync(request, Date.now()) })),
    Heartbeat: answer((request: Member) => backend.coordinator(request.group).heartbeat(request, Date.now())),
    LeaveGroup: answer((request: { group: string; memberId: string }) => {
      backend.coordinator(request.group).leave(request, Date.now());
      return {};
    }),
    OffsetCommit: answer(async (request: Member & { offsets: { topic: string; partition: number; offset: number; metadata: string }[] }) => {
      await backend.coordinator(request.group).commitOffsets(request, Date.now());
      return {};
    }),
    OffsetFetch: answer((request: { group: string; partitions: TopicPartition[] }) => ({ offsets: backend.coordinator(request.group).fetchOffsets(request) })),
    ListGroups: answer(() => ({ groups: backend.listGroups() })),
    DescribeGroup: answer((request: { group: string }) => {
      const described = backend.coordinator(request.group).describe(request.group, Date.now());
      return { group: request.group, ...described };
    }),
    DeleteGroup: answer(async (request: { group: string }) => {
      await backend.coordinator(request.group).deleteGroup(request.group, Date.now());
      return {};
    }),
    ResetOffsets: answer(async (request: { group: string; offsets: { topic: string; partition: number; offset: number; metadata: string }[] }) => {
      await backend.coordinator(request.group).resetOffsets(request, Date.now());
      return {};
    }),
  });
}
