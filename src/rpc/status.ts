// Mapping of raftbus errors to gRPC status, and back: the only place that knows both. A typed
// error travels as a status code (for any gRPC client) and, in the `raftbus-error-bin` trailer, as
// its name and fields, from which the SDK rebuilds the very same error.
import * as grpc from '@grpc/grpc-js';
import {
  InvalidRecordBatchError,
  InvalidRequestError,
  NotControllerError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
  RaftbusError,
  ShuttingDownError,
  StaleBrokerEpochError,
  TopicExistsError,
  UnknownTopicError,
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
} from '../errors.js';

const errorTrailer = 'raftbus-error-bin';

/** RemoteError is an error a server reported that raftbus does not type; retriable follows the code. */
export class RemoteError extends RaftbusError {
  override readonly name = 'RemoteError';
  readonly retriable: boolean;
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly address: string,
  ) {
    super(`${details} (${grpc.status[code]} from ${address})`);
    this.retriable = retriableCodes.has(code);
  }
}

const retriableCodes = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]);

type Fields = Record<string, unknown>;

/** Each typed error: its status code, the fields it travels with, and how it is rebuilt. */
const typedErrors: { [name: string]: { code: (error: RaftbusError) => grpc.status; fields: (error: never) => Fields; rebuild: (fields: never) => RaftbusError } } = {
  NotLeaderError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: NotLeaderError) => ({ group: e.group, leaderHint: e.leaderHint }), rebuild: (f: NotLeaderError) => new NotLeaderError(f.group, f.leaderHint) },
  NotControllerError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: NotControllerError) => ({ controllerHint: e.controllerHint }), rebuild: (f: NotControllerError) => new NotControllerError(f.controllerHint) },
  InvalidRequestError: { code: () => grpc.status.INVALID_ARGUMENT, fields: (e: InvalidRequestError) => ({ problems: e.problems }), rebuild: (f: InvalidRequestError) => new InvalidRequestError(f.problems) },
  InvalidRecordBatchError: { code: () => grpc.status.INVALID_ARGUMENT, fields: (e: InvalidRecordBatchError) => ({ field: e.field, reason: e.reason }), rebuild: (f: InvalidRecordBatchError) => new InvalidRecordBatchError(f.field, f.reason) },
  TopicExistsError: { code: () => grpc.status.ALREADY_EXISTS, fields: (e: TopicExistsError) => ({ topic: e.topic }), rebuild: (f: TopicExistsError) => new TopicExistsError(f.topic) },
  UnknownTopicError: { code: () => grpc.status.NOT_FOUND, fields: (e: UnknownTopicError) => ({ topic: e.topic }), rebuild: (f: UnknownTopicError) => new UnknownTopicError(f.topic) },
  StaleBrokerEpochError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: StaleBrokerEpochError) => ({ brokerId: e.brokerId, brokerEpoch: e.brokerEpoch }), rebuild: (f: StaleBrokerEpochError) => new StaleBrokerEpochError(f.brokerId, f.brokerEpoch) },
  ProposalDroppedError: { code: () => grpc.status.UNAVAILABLE, fields: (e: ProposalDroppedError) => ({ group: e.group, index: e.index }), rebuild: (f: ProposalDroppedError) => new ProposalDroppedError(f.group, f.index) },
  ProposalRejectedError: { code: (e) => (e.retriable ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION), fields: (e: ProposalRejectedError) => ({ group: e.group, result: e.result }), rebuild: (f: ProposalRejectedError) => new ProposalRejectedError(f.group, f.result) },
  ShuttingDownError: { code: () => grpc.status.UNAVAILABLE, fields: () => ({}), rebuild: () => new ShuttingDownError() },
  UnknownPartitionError: { code: () => grpc.status.NOT_FOUND, fields: (e: UnknownPartitionError) => ({ topic: e.topic, partition: e.partition, partitions: e.partitions }), rebuild: (f: UnknownPartitionError) => new UnknownPartitionError(f.topic, f.partition, f.partitions) },
  OffsetOutOfRangeError: {
    code: () => grpc.status.OUT_OF_RANGE,
    fields: (e: OffsetOutOfRangeError) => ({ topic: e.topic, partition: e.partition, offset: e.offset, logStartOffset: e.logStartOffset, highWatermark: e.highWatermark }),
    rebuild: (f: OffsetOutOfRangeError) => new OffsetOutOfRangeError(f.topic, f.partition, f.offset, f.logStartOffset, f.highWatermark),
  },
  OffsetNotAvailableError: { code: () => grpc.status.UNAVAILABLE, fields: (e: OffsetNotAvailableError) => ({ topic: e.topic, partition: e.partition }), rebuild: (f: OffsetNotAvailableError) => new OffsetNotAvailableError(f.topic, f.partition) },
  OutOfOrderSequenceError: {
    code: () => grpc.status.FAILED_PRECONDITION,
    fields: (e: OutOfOrderSequenceError) => ({ producerId: e.producerId, expectedSequence: e.expectedSequence, receivedSequence: e.receivedSequence }),
    rebuild: (f: OutOfOrderSequenceError) => new OutOfOrderSequenceError(f.producerId, f.expectedSequence, f.receivedSequence),
  },
  ProducerFencedError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: ProducerFencedError) => ({ producerId: e.producerId, currentEpoch: e.currentEpoch }), rebuild: (f: ProducerFencedError) => new ProducerFencedError(f.producerId, f.currentEpoch) },
  UnknownProducerIdError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: UnknownProducerIdError) => ({ producerId: e.producerId }), rebuild: (f: UnknownProducerIdError) => new UnknownProducerIdError(f.producerId) },
  DuplicateInFlightError: { code: () => grpc.status.UNAVAILABLE, fields: (e: DuplicateInFlightError) => ({ producerId: e.producerId, baseOffset: e.baseOffset }), rebuild: (f: DuplicateInFlightError) => new DuplicateInFlightError(f.producerId, f.baseOffset) },
  ProduceTimeoutError: { code: () => grpc.status.DEADLINE_EXCEEDED, fields: (e: ProduceTimeoutError) => ({ timeoutMs: e.timeoutMs }), rebuild: (f: ProduceTimeoutError) => new ProduceTimeoutError(f.timeoutMs) },
  NotCoordinatorError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: NotCoordinatorError) => ({ group: e.group, coordinatorHint: e.coordinatorHint }), rebuild: (f: NotCoordinatorError) => new NotCoordinatorError(f.group, f.coordinatorHint) },
  CoordinatorLoadingError: { code: () => grpc.status.UNAVAILABLE, fields: (e: CoordinatorLoadingError) => ({ group: e.group }), rebuild: (f: CoordinatorLoadingError) => new CoordinatorLoadingError(f.group) },
  UnknownMemberIdError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: UnknownMemberIdError) => ({ group: e.group, memberId: e.memberId }), rebuild: (f: UnknownMemberIdError) => new UnknownMemberIdError(f.group, f.memberId) },
  IllegalGenerationError: {
    code: () => grpc.status.FAILED_PRECONDITION,
    fields: (e: IllegalGenerationError) => ({ group: e.group, generation: e.generation, currentGeneration: e.currentGeneration }),
    rebuild: (f: IllegalGenerationError) => new IllegalGenerationError(f.group, f.generation, f.currentGeneration),
  },
  GroupNotEmptyError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: GroupNotEmptyError) => ({ group: e.group, members: e.members }), rebuild: (f: GroupNotEmptyError) => new GroupNotEmptyError(f.group, f.members) },
  UnknownGroupError: { code: () => grpc.status.NOT_FOUND, fields: (e: UnknownGroupError) => ({ group: e.group }), rebuild: (f: UnknownGroupError) => new UnknownGroupError(f.group) },
  InconsistentGroupProtocolError: { code: () => grpc.status.FAILED_PRECONDITION, fields: (e: InconsistentGroupProtocolError) => ({ group: e.group, assignors: e.assignors }), rebuild: (f: InconsistentGroupProtocolError) => new InconsistentGroupProtocolError(f.group, f.assignors) },
};

/** ErrorInfo is a typed error inside a stream's message (proto raftbus.broker.v1.ErrorInfo). */
export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly retriable: boolean;
  readonly fieldsJson: string;
}

/** toErrorInfo describes an error for an answer inside a stream; unknown errors become internal ones. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (!(error instanceof RaftbusError)) return { name: 'InternalError', message: `internal error: ${(error as Error)?.message ?? String(error)}`, retriable: false, fieldsJson: '{}' };
  const typed = typedErrors[error.name];
  return { name: error.name, message: error.message, retriable: error.retriable, fieldsJson: JSON.stringify(typed === undefined ? {} : typed.fields(error as never)) };
}

/** fromErrorInfo rebuilds the typed error of an ErrorInfo, or a RemoteError when it is not one raftbus types. */
export function fromErrorInfo(info: ErrorInfo, address: string): Error {
  const typed = typedErrors[info.name];
  if (typed !== undefined) {
    try {
      return typed.rebuild(JSON.parse(info.fieldsJson) as never);
    } catch {
      // Fields that do not parse: fall through to an untyped error.
    }
  }
  return new RemoteError(info.retriable ? grpc.status.UNAVAILABLE : grpc.status.INTERNAL, info.message, address);
}

/** toStatus turns an error into the gRPC status a client sees. Unknown errors are INTERNAL. */
export function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (!(error instanceof RaftbusError)) {
    return { code: grpc.status.INTERNAL, details: `internal error: ${(error as Error)?.message ?? String(error)}`, metadata };
  }
  const typed = typedErrors[error.name];
  if (typed === undefined) {
    return { code: error.retriable ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION, details: error.message, metadata };
  }
  metadata.set(errorTrailer, Buffer.from(JSON.stringify({ name: error.name, fields: typed.fields(error as never) })));
  return { code: typed.code(error), details: error.message, metadata };
}

/**
 * fromStatus rebuilds the typed error a raftbus server sent, or a RemoteError (retriable when the
 * code says so) for anything else, such as a connection that failed.
 */
export function fromStatus(error: grpc.ServiceError, address: string): Error {
  const trailer = error.metadata?.get(errorTrailer)[0];
  if (trailer instanceof Buffer) {
    try {
      const { name, fields } = JSON.parse(trailer.toString()) as { name: string; fields: Fields };
      const typed = typedErrors[name];
      if (typed !== undefined) return typed.rebuild(fields as never);
    } catch {
      // A trailer that does not parse is treated as absent.
    }
  }
  return new RemoteError(error.code, error.details ?? error.message, address);
}
