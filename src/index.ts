// The public API of raftbus: what `import { ... } from 'raftbus'` gives.
export { Admin, type AdminOptions, type NewTopic, type TopicDescription, type PartitionDescription, type BrokerDescription, type ClusterDescription } from './client/admin.js';
export {
  RaftbusError,
  NotLeaderError,
  NotControllerError,
  InvalidRequestError,
  TopicExistsError,
  UnknownTopicError,
  ProposalDroppedError,
  ProposalRejectedError,
  ShuttingDownError,
  StaleBrokerEpochError,
  InvalidRecordBatchError,
  UnknownPartitionError,
  OffsetOutOfRangeError,
  OutOfOrderSequenceError,
  ProducerFencedError,
  UnknownProducerIdError,
  DuplicateInFlightError,
  ProduceTimeoutError,
  type Problem,
} from './errors.js';
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata, type Acks } from './client/producer.js';
export { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartitionOffset, type OffsetReset } from './client/consumer.js';
export { startCluster, type StartClusterOptions, type RunningCluster } from './cluster/start-cluster.js';
export { RemoteError } from './rpc/unary.js';
