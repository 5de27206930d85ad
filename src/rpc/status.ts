// Mapping of raftbus errors to gRPC status, and back. The only place that knows both.
import * as grpc from '@grpc/grpc-js';
import { InvalidRequestError, NotControllerError, NotLeaderError, RaftbusError, TopicExistsError, UnknownTopicError, StaleBrokerEpochError } from '../errors.js';

/** leaderTrailer names the trailer that carries a leader hint with FAILED_PRECONDITION. */
export const leaderTrailer = 'raftbus-leader';

/** InvalidArgumentError is bad input from a client: the message names the field and the limit. */
export class InvalidArgumentError extends RaftbusError {
  override readonly name = 'InvalidArgumentError';
  readonly retriable = false;
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** toStatus turns an error into the gRPC status a client sees. Unknown errors are INTERNAL. */
export function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (error instanceof NotLeaderError || error instanceof NotControllerError) {
    const hint = error instanceof NotLeaderError ? error.leaderHint : error.controllerHint;
    if (hint !== 0) metadata.set(leaderTrailer, String(hint));
    return { code: grpc.status.FAILED_PRECONDITION, details: error.message, metadata };
  }
  if (error instanceof InvalidArgumentError || error instanceof InvalidRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: error.message, metadata };
  if (error instanceof TopicExistsError) return { code: grpc.status.ALREADY_EXISTS, details: error.message, metadata };
  if (error instanceof UnknownTopicError) return { code: grpc.status.NOT_FOUND, details: error.message, metadata };
  if (error instanceof StaleBrokerEpochError) return { code: grpc.status.FAILED_PRECONDITION, details: error.message, metadata };
  if (error instanceof RaftbusError) {
    return { code: error.retriable ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION, details: error.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: `internal error: ${(error as Error)?.message ?? String(error)}`, metadata };
}

/** leaderHintOf reads the leader hint from a FAILED_PRECONDITION status, if there is one. */
export function leaderHintOf(error: grpc.ServiceError): number | undefined {
  const value = error.metadata?.get(leaderTrailer)[0];
  const hint = value === undefined ? NaN : Number(value);
  return Number.isSafeInteger(hint) && hint > 0 ? hint : undefined;
}
