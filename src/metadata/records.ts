// Metadata records, as Kafka's KRaft has them: the only way metadata changes. Their wire format is
// proto/metadata.proto (see src/rpc/metadata-codec.ts).
import type { NodeId } from '../raft/types.js';

export interface BrokerEndpoint {
  readonly host: string;
  readonly port: number;
}

export type MetadataRecord =
  | { readonly type: 'registerBroker'; readonly brokerId: NodeId; readonly incarnationId: string; readonly endpoint: BrokerEndpoint; readonly rack: string; readonly brokerEpoch: number }
  | { readonly type: 'fenceBroker'; readonly brokerId: NodeId; readonly brokerEpoch: number }
  | { readonly type: 'unfenceBroker'; readonly brokerId: NodeId; readonly brokerEpoch: number }
  | { readonly type: 'brokerShutdown'; readonly brokerId: NodeId; readonly brokerEpoch: number }
  | { readonly type: 'topic'; readonly name: string; readonly topicId: string; readonly requestId: string }
  | {
      readonly type: 'partition';
      readonly topicId: string;
      readonly partition: number;
      readonly replicas: readonly NodeId[];
      readonly leader: NodeId;
      readonly leaderEpoch: number;
      readonly partitionEpoch: number;
      /** groupId: the partition's Raft group; unique across the cluster's life. */
      readonly groupId: number;
    }
  | {
      readonly type: 'partitionChange';
      readonly topicId: string;
      readonly partition: number;
      readonly leaderChanged: boolean;
      readonly leader: NodeId;
      readonly replicasChanged: boolean;
      readonly replicas: readonly NodeId[];
    }
  | { readonly type: 'removeTopic'; readonly topicId: string; readonly requestId: string }
  | { readonly type: 'config'; readonly topic: string; readonly key: string; readonly hasValue: boolean; readonly value: string }
  | { readonly type: 'completedRequest'; readonly requestId: string; readonly kind: string; readonly topic: string; readonly topicId: string }
  | { readonly type: 'noOp'; readonly payload: Uint8Array }
  /** groupIds: the next unused Raft group id (written in snapshots). */
  | { readonly type: 'groupIds'; readonly nextGroupId: number }
  /** producerIds: ids below nextProducerId are handed out. */
  | { readonly type: 'producerIds'; readonly nextProducerId: number };

export type MetadataRecordType = MetadataRecord['type'];
