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
  type Problem,
} from './errors.js';
export { RemoteError } from './rpc/unary.js';
