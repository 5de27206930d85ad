// The bounds of the peer transport, in one place. Every queue, frame, buffer and wait of
// src/rpc/peer-*.ts is limited by one of these; units are last in every name.

const kibibyte = 1024;
const mebibyte = 1024 * kibibyte;

/** PeerLimits is the set of bounds one PeerTransport works within. */
export interface PeerLimits {
  /** peerSendQueueMessagesMax bounds the Raft messages queued for one peer; more are dropped. */
  readonly peerSendQueueMessagesMax: number;
  /** peerSendQueueBytesMax bounds the encoded bytes queued for one peer; more are dropped. */
  readonly peerSendQueueBytesMax: number;
  /** peerSendQueueSnapshotsMax bounds the installSnapshot messages waiting for one peer. */
  readonly peerSendQueueSnapshotsMax: number;
  /** peerFrameBytesMax bounds one encoded PeerFrame, sent or received (the gRPC message limit). */
  readonly peerFrameBytesMax: number;
  /** snapshotChunkBytesMax bounds the snapshot data carried by one SnapshotChunk frame. */
  readonly snapshotChunkBytesMax: number;
  /** snapshotBytesMax bounds the data of one snapshot, and so the receiver's reassembly buffer. */
  readonly snapshotBytesMax: number;
  /** peerReconnectBackoffMsMin is the first reconnect delay after a failure, before jitter. */
  readonly peerReconnectBackoffMsMin: number;
  /** peerReconnectBackoffMsMax caps the reconnect delay, before jitter. */
  readonly peerReconnectBackoffMsMax: number;
  /** peerHelloTimeoutMs bounds the wait for a Hello (receiver) or a HelloAck (dialer). */
  readonly peerHelloTimeoutMs: number;
  /** peerInboundStreamsMax bounds the inbound Peer.Stream calls served at once, Hello or not. */
  readonly peerInboundStreamsMax: number;
  /** peerKeepaliveMs is the gRPC keepalive ping interval that detects a dead connection. */
  readonly peerKeepaliveMs: number;
  /** peerKeepaliveTimeoutMs is how long a keepalive ping may go unanswered. */
  readonly peerKeepaliveTimeoutMs: number;
}

/** peerLimitsDefault are the bounds used when a PeerTransport is given none. */
export const peerLimitsDefault: PeerLimits = Object.freeze({
  peerSendQueueMessagesMax: 10_000,
  peerSendQueueBytesMax: 64 * mebibyte,
  peerSendQueueSnapshotsMax: 4,
  peerFrameBytesMax: 4 * mebibyte,
  snapshotChunkBytesMax: 1 * mebibyte,
  snapshotBytesMax: 1024 * mebibyte,
  peerReconnectBackoffMsMin: 50,
  peerReconnectBackoffMsMax: 5_000,
  peerHelloTimeoutMs: 5_000,
  peerInboundStreamsMax: 256,
  peerKeepaliveMs: 10_000,
  peerKeepaliveTimeoutMs: 5_000,
});

/** snapshotChunkFrameOverheadBytesMax is the room a SnapshotChunk frame needs besides its data. */
export const snapshotChunkFrameOverheadBytesMax = 64 * kibibyte;

/**
 * resolvePeerLimits fills the given overrides with the defaults and checks the result.
 * Throws RangeError when a bound is not a positive safe integer or the bounds contradict
 * each other (a chunk must fit in a frame; the minimum backoff must not exceed the maximum).
 */
export function resolvePeerLimits(overrides: Partial<PeerLimits> | undefined): PeerLimits {
  const limits: PeerLimits = { ...peerLimitsDefault, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  if (limits.snapshotChunkBytesMax + snapshotChunkFrameOverheadBytesMax > limits.peerFrameBytesMax) {
    throw new RangeError('snapshotChunkBytesMax plus the chunk overhead must fit in peerFrameBytesMax');
  }
  if (limits.peerReconnectBackoffMsMin > limits.peerReconnectBackoffMsMax) {
    throw new RangeError('peerReconnectBackoffMsMin must not exceed peerReconnectBackoffMsMax');
  }
  return Object.freeze(limits);
}
