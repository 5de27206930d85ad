import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  InvalidRecordBatchError,
  InvalidRequestError,
  NotControllerError,
  NotLeaderError,
  OffsetNotAvailableError,
  ProposalDroppedError,
  ProposalRejectedError,
  ShuttingDownError,
  StaleBrokerEpochError,
  TopicExistsError,
  UnknownTopicError,
} from '../errors.js';
import { RemoteError, fromStatus, toStatus } from './status.js';

/** travel sends an error through toStatus and back through fromStatus, as a client would see it. */
function travel(error: unknown): Error {
  const status = toStatus(error);
  const serviceError = Object.assign(new Error(status.details), { code: status.code!, details: status.details!, metadata: status.metadata! }) as grpc.ServiceError;
  return fromStatus(serviceError, '127.0.0.1:9091');
}

describe('errors over gRPC', () => {
  const typed = [
    new NotLeaderError(0, 2),
    new NotControllerError(3),
    InvalidRequestError.of('partitions', 'partitions must be an integer from 1 to 1000, got 0'),
    new InvalidRequestError([{ field: 'name', message: 'contains " " at index 3; use letters' }, { field: 'configs["foo"]', message: 'unknown: – not one of …' }]),
    new InvalidRecordBatchError('crc', 'does not match'),
    new TopicExistsError('orders'),
    new UnknownTopicError('orders'),
    new StaleBrokerEpochError(4, 17),
    new ProposalDroppedError(0, 12),
    new ProposalRejectedError(0, { kind: 'queueFull', uncommittedBytes: 10, limitBytes: 5 }),
    new ShuttingDownError(),
    new OffsetNotAvailableError('orders', 3),
  ];

  it.each(typed.map((error) => [error.name, error] as const))('%s arrives as the same typed error, fields and message', (_name, error) => {
    const received = travel(error);
    expect(received).toBeInstanceOf(error.constructor);
    expect(received.message).toBe(error.message);
    expect({ ...received }).toEqual({ ...error });
  });

  it('status codes stay meaningful for clients that do not read the trailer', () => {
    expect(toStatus(new NotControllerError(3)).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(toStatus(InvalidRequestError.of('x', 'y')).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(toStatus(new TopicExistsError('t')).code).toBe(grpc.status.ALREADY_EXISTS);
    expect(toStatus(new UnknownTopicError('t')).code).toBe(grpc.status.NOT_FOUND);
    expect(toStatus(new ProposalDroppedError(0, 1)).code).toBe(grpc.status.UNAVAILABLE);
    expect(toStatus(new OffsetNotAvailableError('t', 0)).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('an error that is not raftbus\'s is INTERNAL, and arrives as a RemoteError that is not retried', () => {
    const received = travel(new TypeError('boom'));
    expect(received).toBeInstanceOf(RemoteError);
    expect((received as RemoteError).code).toBe(grpc.status.INTERNAL);
    expect((received as RemoteError).retriable).toBe(false);
  });

  it('a status without the trailer (a failed connection) is a RemoteError, retriable when UNAVAILABLE', () => {
    const unavailable = Object.assign(new Error('x'), { code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED', metadata: new grpc.Metadata() }) as grpc.ServiceError;
    const received = fromStatus(unavailable, '127.0.0.1:9091');
    expect(received).toBeInstanceOf(RemoteError);
    expect((received as RemoteError).retriable).toBe(true);
  });
});
