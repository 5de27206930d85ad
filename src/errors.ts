// The typed errors of raftbus, in one place. Each names what failed and carries the fields a
// caller needs to act (a leader hint, a limit). src/rpc maps them to gRPC status codes; the SDK
// maps status codes back and retries only what is retriable.
import type { GroupId, NodeId, ProposeResult } from './raft/types.js';

/** RaftbusError is the base of every error raftbus reports on purpose. */
export abstract class RaftbusError extends Error {
  /** retriable says whether the same request may succeed if sent again (perhaps elsewhere). */
  abstract readonly retriable: boolean;
}

/** NotLeaderError: this node does not lead the group; leaderHint is the leader it knows (0: none). */
export class NotLeaderError extends RaftbusError {
  override readonly name = 'NotLeaderError';
  readonly retriable = true;
  constructor(
    readonly group: GroupId,
    readonly leaderHint: NodeId,
  ) {
    super(leaderHint === 0 ? `not the leader of group ${group}; no leader is known yet` : `not the leader of group ${group}; node ${leaderHint} leads it`);
  }
}

/** ProposalDroppedError: the proposal's slot went to another entry, or was skipped; it did not commit here. */
export class ProposalDroppedError extends RaftbusError {
  override readonly name = 'ProposalDroppedError';
  readonly retriable = true;
  constructor(
    readonly group: GroupId,
    readonly index: number,
  ) {
    super(`proposal at index ${index} of group ${group} was not committed (leadership changed); its outcome is unknown, retry`);
  }
}

/** ProposalRejectedError: the leader refused a proposal (too large, queue full, a change pending). */
export class ProposalRejectedError extends RaftbusError {
  override readonly name = 'ProposalRejectedError';
  readonly retriable: boolean;
  constructor(
    readonly group: GroupId,
    readonly result: Exclude<ProposeResult, { kind: 'accepted' } | { kind: 'notLeader' }>,
  ) {
    super(describeRejection(group, result));
    this.retriable = result.kind === 'queueFull' || result.kind === 'transferring' || result.kind === 'confChangePending';
  }
}

function describeRejection(group: GroupId, result: ProposalRejectedError['result']): string {
  switch (result.kind) {
    case 'tooLarge':
      return `proposal of ${result.bytes} bytes to group ${group} exceeds the limit of ${result.limitBytes} bytes`;
    case 'queueFull':
      return `group ${group} has ${result.uncommittedBytes} uncommitted bytes, at its limit of ${result.limitBytes}; retry later`;
    case 'transferring':
      return `group ${group} is handing leadership to node ${result.target}; retry`;
    case 'confChangePending':
      return `group ${group} has a membership change pending at index ${result.pendingIndex}; retry when it commits`;
    case 'invalidConfChange':
      return `invalid membership change for group ${group}: ${result.reason}`;
  }
}

/** ShuttingDownError: the node is stopping and takes no new work. */
export class ShuttingDownError extends RaftbusError {
  override readonly name = 'ShuttingDownError';
  readonly retriable = true;
  constructor() {
    super('the node is shutting down');
  }
}

/** NotControllerError: this node is not the active controller; controllerHint is the one it knows (0: none). */
export class NotControllerError extends RaftbusError {
  override readonly name = 'NotControllerError';
  readonly retriable = true;
  constructor(readonly controllerHint: NodeId) {
    super(controllerHint === 0 ? 'not the active controller; no controller is known yet, retry' : `not the active controller; node ${controllerHint} is`);
  }
}

/**
 * StaleMetadataError (client side): every node answered a read from metadata older than what this
 * client has already read, so the answer could undo what it saw (a deleted topic back). Retriable:
 * a node that has caught up answers.
 */
export class StaleMetadataError extends RaftbusError {
  override readonly name = 'StaleMetadataError';
  readonly retriable = true;
  constructor(
    readonly metadataOffset: number,
    readonly seenOffset: number,
  ) {
    super(`the nodes answered from metadata up to offset ${metadataOffset}, older than offset ${seenOffset} this client has read already; retry once they catch up`);
  }
}

/** Problem names the field of a request that is wrong and says what is allowed. */
export interface Problem {
  readonly field: string;
  readonly message: string;
}

/** InvalidRequestError: a request that can never succeed as sent; problems say what to fix. */
export class InvalidRequestError extends RaftbusError {
  override readonly name = 'InvalidRequestError';
  readonly retriable = false;
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map((problem) => `${problem.field}: ${problem.message}`).join('\n'));
  }

  /** of is the refusal of one field: the message names the field and says what is allowed. */
  static of(field: string, message: string): InvalidRequestError {
    return new InvalidRequestError([{ field, message }]);
  }
}

export class TopicExistsError extends RaftbusError {
  override readonly name = 'TopicExistsError';
  readonly retriable = false;
  constructor(readonly topic: string) {
    super(`topic ${topic} already exists`);
  }
}

export class UnknownTopicError extends RaftbusError {
  override readonly name = 'UnknownTopicError';
  readonly retriable = false;
  constructor(readonly topic: string) {
    super(`topic ${topic} does not exist`);
  }
}

/** StaleBrokerEpochError: a broker speaks with a registration the controller no longer has; it must register again. */
export class StaleBrokerEpochError extends RaftbusError {
  override readonly name = 'StaleBrokerEpochError';
  readonly retriable = false;
  constructor(
    readonly brokerId: NodeId,
    readonly brokerEpoch: number,
  ) {
    super(`broker ${brokerId} with epoch ${brokerEpoch} is not registered with that epoch; register again`);
  }
}

/** InvalidRecordBatchError: a record batch that is not Kafka RecordBatch v2 as sent, or breaks a limit. */
export class InvalidRecordBatchError extends RaftbusError {
  override readonly name = 'InvalidRecordBatchError';
  readonly retriable = false;
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid record batch: ${field} ${reason}`);
  }
}

/** UnknownPartitionError: the topic exists but has no such partition. */
export class UnknownPartitionError extends RaftbusError {
  override readonly name = 'UnknownPartitionError';
  readonly retriable = false;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly partitions: number,
  ) {
    super(`topic ${topic} has no partition ${partition}; its partitions are 0..${partitions - 1}`);
  }
}

/** OffsetOutOfRangeError: a read below the log start or past the high watermark; the valid range is given. */
export class OffsetOutOfRangeError extends RaftbusError {
  override readonly name = 'OffsetOutOfRangeError';
  readonly retriable = false;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly logStartOffset: number,
    readonly highWatermark: number,
  ) {
    super(`offset ${offset} of ${topic}-${partition} is out of range: the partition holds offsets ${logStartOffset} to ${highWatermark} (its high watermark)`);
  }
}

/**
 * OffsetNotAvailableError: the partition's leader cannot tell its end yet (a new leader that has not
 * learned every commit of its predecessor): ask again (Kafka's OFFSET_NOT_AVAILABLE, KIP-207).
 */
export class OffsetNotAvailableError extends RaftbusError {
  override readonly name = 'OffsetNotAvailableError';
  readonly retriable = true;
  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {
    super(`the leader of ${topic}-${partition} has not learned its high watermark yet (it has just been elected); retry`);
  }
}

/** OutOfOrderSequenceError: an idempotent producer skipped or repeated sequence numbers: a batch before this one was lost. */
export class OutOfOrderSequenceError extends RaftbusError {
  override readonly name = 'OutOfOrderSequenceError';
  readonly retriable = false;
  constructor(
    readonly producerId: number,
    readonly expectedSequence: number,
    readonly receivedSequence: number,
  ) {
    super(`producer ${producerId} sent sequence ${receivedSequence}, but ${expectedSequence} comes next: a batch in between never arrived`);
  }
}

/** ProducerFencedError: a producer of an older epoch; a newer instance with the same id took over. */
export class ProducerFencedError extends RaftbusError {
  override readonly name = 'ProducerFencedError';
  readonly retriable = false;
  constructor(
    readonly producerId: number,
    readonly currentEpoch: number,
  ) {
    super(`producer ${producerId} is fenced: epoch ${currentEpoch} has taken over`);
  }
}

/** UnknownProducerIdError: the partition holds no state for the producer and the batch does not start at sequence 0. */
export class UnknownProducerIdError extends RaftbusError {
  override readonly name = 'UnknownProducerIdError';
  readonly retriable = false;
  constructor(readonly producerId: number) {
    super(`the partition holds no state for producer ${producerId} (evicted or deleted by retention); start again with a new producer id`);
  }
}

/** DuplicateInFlightError: a retry of a batch still being replicated; retry to learn its offset. */
export class DuplicateInFlightError extends RaftbusError {
  override readonly name = 'DuplicateInFlightError';
  readonly retriable = true;
  constructor(
    readonly producerId: number,
    readonly baseOffset: number,
  ) {
    super(`a batch of producer ${producerId} with these sequences is still being replicated at offset ${baseOffset}; retry to learn whether it committed`);
  }
}

/** ProduceTimeoutError: the batch was appended but not acknowledged in time; its outcome is unknown (an idempotent retry is safe). */
export class ProduceTimeoutError extends RaftbusError {
  override readonly name = 'ProduceTimeoutError';
  readonly retriable = true;
  constructor(readonly timeoutMs: number) {
    super(`the batch was not acknowledged within ${timeoutMs} ms; its outcome is unknown, retry (idempotence makes a retry safe)`);
  }
}

/** NotCoordinatorError: this node does not coordinate the group; coordinatorHint is the node that does, as far as known (0: none). */
export class NotCoordinatorError extends RaftbusError {
  override readonly name = 'NotCoordinatorError';
  readonly retriable = true;
  constructor(
    readonly group: string,
    readonly coordinatorHint: NodeId,
  ) {
    super(coordinatorHint === 0 ? `not the coordinator of group ${group}; none is known yet, retry` : `not the coordinator of group ${group}; node ${coordinatorHint} is`);
  }
}

/** CoordinatorLoadingError: the coordinator is still replaying its partition after taking over; retry shortly. */
export class CoordinatorLoadingError extends RaftbusError {
  override readonly name = 'CoordinatorLoadingError';
  readonly retriable = true;
  constructor(readonly group: string) {
    super(`the coordinator of group ${group} is still loading its state; retry`);
  }
}

/** UnknownMemberIdError: the group has no member of that id (it left, timed out or was replaced); join again. */
export class UnknownMemberIdError extends RaftbusError {
  override readonly name = 'UnknownMemberIdError';
  readonly retriable = false;
  constructor(
    readonly group: string,
    readonly memberId: string,
  ) {
    super(`group ${group} has no member ${memberId}: it left, timed out or was replaced; join again`);
  }
}

/** IllegalGenerationError: a member speaks for a generation the group has left behind (a zombie); join again. */
export class IllegalGenerationError extends RaftbusError {
  override readonly name = 'IllegalGenerationError';
  readonly retriable = false;
  constructor(
    readonly group: string,
    readonly generation: number,
    readonly currentGeneration: number,
  ) {
    super(`group ${group} is at generation ${currentGeneration}, not ${generation}: the member was fenced by a rebalance; join again`);
  }
}

/** GroupNotEmptyError: the operation needs a group without members (delete, reset offsets). */
export class GroupNotEmptyError extends RaftbusError {
  override readonly name = 'GroupNotEmptyError';
  readonly retriable = false;
  constructor(
    readonly group: string,
    readonly members: number,
  ) {
    super(`group ${group} has ${members} active member(s); stop its consumers first`);
  }
}

/** UnknownGroupError: no such group (no members and no committed offsets). */
export class UnknownGroupError extends RaftbusError {
  override readonly name = 'UnknownGroupError';
  readonly retriable = false;
  constructor(readonly group: string) {
    super(`group ${group} does not exist`);
  }
}

/** InconsistentGroupProtocolError: the member supports none of the assignors the group's members share. */
export class InconsistentGroupProtocolError extends RaftbusError {
  override readonly name = 'InconsistentGroupProtocolError';
  readonly retriable = false;
  constructor(
    readonly group: string,
    readonly assignors: readonly string[],
  ) {
    super(`group ${group} uses assignor(s) ${assignors.join(', ')}; the member supports none of them`);
  }
}
