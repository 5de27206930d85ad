// The public API of raftbus: what `import { ... } from 'raftbus'` gives.
export { Admin, type AdminOptions, type NewTopic, type TopicDescription, type PartitionDescription, type BrokerDescription, type ClusterDescription } from './client/admin.js';
export {
  RaftbusError,
  NotLeaderError,
  NotControllerError,
  StaleMetadataError,
  InvalidRequestError,
  TopicExistsError,
  UnknownTopicError,
  ProposalDroppedError,
  ProposalRejectedError,
  ShuttingDownError,
  StaleBrokerEpochError,
  InvalidRecordBatchError,
  UnknownPartitionError,
  OffsetNotAvailableError,
  OffsetOutOfRangeError,
  OutOfOrderSequenceError,
  ProducerFencedError,
  UnknownProducerIdError,
  DuplicateInFlightError,
  ProduceTimeoutError,
  NotCoordinatorError,
  CoordinatorLoadingError,
  UnknownMemberIdError,
  IllegalGenerationError,
  GroupNotEmptyError,
  UnknownGroupError,
  InconsistentGroupProtocolError,
  type Problem,
} from './errors.js';
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata, type Acks } from './client/producer.js';
export { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartitionOffset, type OffsetReset, type RebalanceListener, type TopicPartition } from './client/consumer.js';
export { GroupsAdmin, type GroupsAdminOptions, type GroupListing, type GroupDescription, type OffsetTarget, type ResetOffsetsRequest, type PlannedOffset } from './client/groups-admin.js';
export type { AssignorName } from './client/group-membership.js';
export { startCluster, type StartClusterOptions, type RunningCluster } from './cluster/start-cluster.js';
export { RemoteError } from './rpc/unary.js';
