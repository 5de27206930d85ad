// The outbound half of the peer transport: one PeerSender per peer, owning one long-lived
// Peer.Stream call to it, a bounded queue of encoded messages and a bounded queue of snapshots.
//
// States (the only transitions):
//   idle       --enqueue-->           connecting
//   connecting --HelloAck-->          connected     (backoff attempt reset)
//   connecting --failure/timeout-->   backoff
//   connected  --failure/end-->       backoff
//   backoff    --timer, work queued-> connecting
//   backoff    --timer, nothing-->    idle
//   any        --close-->             closed        (final)

import * as grpc from '@grpc/grpc-js';
import { assert } from '../raft/assert.js';
import type { GroupId, InstallSnapshotMessage, NodeId } from '../raft/types.js';
import { reconnectDelayMs, type RandomSource } from './backoff.js';
import type { PeerLimits } from './limits.js';
import type { RpcLogger } from './logger.js';
import {
  batchEntryBytes,
  batchFrameBytes,
  decodeFrame,
  encodeBatchFrame,
  encodeFrame,
  PeerProtocolError,
  peerProtocolVersion,
} from './peer-codec.js';
import { directoryRefusal, refusalTrailer } from './peer-receiver.js';
import { snapshotChunkAt } from './peer-snapshot.js';
import { rawDeserializer, rawSerializer } from './proto.js';

/** peerStreamPath is the gRPC method path of Peer.Stream. */
export const peerStreamPath = '/raftbus.peer.v1.Peer/Stream';

export const peerSenderStates = ['idle', 'connecting', 'connected', 'backoff', 'closed'] as const;
export type PeerSenderState = (typeof peerSenderStates)[number];

/** PeerAddress is where a node's peer server listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** SnapshotStatus says what became of an installSnapshot message handed to send. */
export interface SnapshotStatus {
  readonly to: NodeId;
  readonly group: GroupId;
  readonly outcome: 'delivered' | 'failed';
}

/** PeerSenderStats counts what a PeerSender holds and did. Every drop is counted here. */
export interface PeerSenderStats {
  state: PeerSenderState;
  queuedMessages: number;
  queuedBytes: number;
  queuedSnapshots: number;
  droppedQueueFull: number;
  droppedTooLarge: number;
  droppedSnapshots: number;
  sentFrames: number;
  sentMessages: number;
  sentSnapshots: number;
  backpressureWaits: number;
  connects: number;
  failures: number;
}

/** PeerSenderOptions is what a PeerSender needs from its transport. */
export interface PeerSenderOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly peerId: NodeId;
  readonly address: PeerAddress;
  readonly limits: PeerLimits;
  readonly logger: RpcLogger;
  readonly random: RandomSource;
  readonly onUnreachable: (nodeId: NodeId) => void;
  readonly onSnapshotStatus: (status: SnapshotStatus) => void;
  /** directoryId is this node's data directory id, shown in every Hello. */
  readonly directoryId: string;
  /** onRefused is told when the peer refuses this node's data directory (see peer.proto's Hello). */
  readonly onRefused: (refusal: PeerRefusal) => void;
}

/** PeerRefusal is a peer's refusal of this node's data directory: the peer and its explanation. */
export interface PeerRefusal {
  readonly peer: NodeId;
  readonly details: string;
}

interface OutboundStream {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Uint8Array, Buffer>;
  helloTimer: NodeJS.Timeout | undefined;
  waitingDrain: boolean;
}

interface SnapshotInFlight {
  readonly snapshotId: number;
  readonly message: InstallSnapshotMessage;
  offset: number;
}

/** PeerSender sends one peer everything queued for it, over one stream, reconnecting as needed. */
export class PeerSender {
  readonly #options: PeerSenderOptions;
  readonly #log: RpcLogger;
  #address: PeerAddress;
  #stream: OutboundStream | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #messages: Uint8Array[] = [];
  #messagesHead = 0;
  #snapshots: InstallSnapshotMessage[] = [];
  #snapshotInFlight: SnapshotInFlight | undefined;
  #snapshotsUnacked = new Map<number, InstallSnapshotMessage>();
  #snapshotIdNext = 1;
  #preferSnapshot = false;
  #kickScheduled = false;
  readonly #stats: PeerSenderStats = {
    state: 'idle',
    queuedMessages: 0,
    queuedBytes: 0,
    queuedSnapshots: 0,
    droppedQueueFull: 0,
    droppedTooLarge: 0,
    droppedSnapshots: 0,
    sentFrames: 0,
    sentMessages: 0,
    sentSnapshots: 0,
    backpressureWaits: 0,
    connects: 0,
    failures: 0,
  };

  constructor(options: PeerSenderOptions) {
    this.#options = options;
    this.#address = options.address;
    this.#log = options.logger.child({ peer: options.peerId });
  }

  /** stats returns a copy of the counters. */
  stats(): PeerSenderStats {
    return { ...this.#stats, queuedSnapshots: this.#snapshotsHeld() };
  }

  /**
   * enqueueMessage queues one message encoded with encodeMessage. Returns false, and counts the
   * drop, when the message alone exceeds a frame or the queue is at its message or byte bound.
   */
  enqueueMessage(encoded: Uint8Array): boolean {
    if (this.#stats.state === 'closed') return false;
    const { peerFrameBytesMax, peerSendQueueMessagesMax, peerSendQueueBytesMax } = this.#options.limits;
    if (batchFrameBytes(batchEntryBytes(encoded.byteLength)) > peerFrameBytesMax) {
      this.#stats.droppedTooLarge++;
      this.#log.warn({ bytes: encoded.byteLength, peerFrameBytesMax }, 'peer message larger than a frame dropped');
      return false;
    }
    const full =
      this.#stats.queuedMessages + 1 > peerSendQueueMessagesMax || this.#stats.queuedBytes + encoded.byteLength > peerSendQueueBytesMax;
    if (full) {
      this.#stats.droppedQueueFull++;
      return false;
    }
    this.#messages.push(encoded);
    this.#stats.queuedMessages++;
    this.#stats.queuedBytes += encoded.byteLength;
    this.#kick();
    return true;
  }

  /** enqueueSnapshot queues an installSnapshot message; false (failed, counted) when at the bound. */
  enqueueSnapshot(message: InstallSnapshotMessage): boolean {
    if (this.#stats.state === 'closed') return false;
    if (this.#snapshotsHeld() >= this.#options.limits.peerSendQueueSnapshotsMax) {
      this.#stats.droppedSnapshots++;
      this.#reportSnapshot(message, 'failed');
      return false;
    }
    this.#snapshots.push(message);
    this.#kick();
    return true;
  }

  /** setAddress points the sender at a new address; a live stream to the old one is dropped. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.#address.host && address.port === this.#address.port) return;
    this.#address = address;
    if (this.#stream !== undefined) this.#fail(this.#stream, 'peer address changed');
  }

  /** close ends the stream, stops reconnecting and drops everything queued. Idempotent. */
  close(): void {
    if (this.#stats.state === 'closed') return;
    this.#stats.state = 'closed';
    clearTimeout(this.#backoffTimer);
    if (this.#stream !== undefined) this.#teardown(this.#stream);
    this.#stream = undefined;
    this.#failSnapshots(true);
    this.#messages = [];
    this.#messagesHead = 0;
    this.#stats.queuedMessages = 0;
    this.#stats.queuedBytes = 0;
  }

  #snapshotsHeld(): number {
    return this.#snapshots.length + (this.#snapshotInFlight === undefined ? 0 : 1) + this.#snapshotsUnacked.size;
  }

  #hasWork(): boolean {
    return this.#stats.queuedMessages > 0 || this.#snapshots.length > 0 || this.#snapshotInFlight !== undefined;
  }

  /**
   * #kick moves the sender towards sending what is queued (connect if idle, write if connected)
   * once the current task is done, so that everything sent in one task shares a frame.
   */
  #kick(): void {
    if (this.#kickScheduled) return;
    this.#kickScheduled = true;
    queueMicrotask(() => {
      this.#kickScheduled = false;
      if (this.#stats.state === 'idle' && this.#hasWork()) this.#connect();
      else if (this.#stats.state === 'connected') this.#pump();
    });
  }

  #connect(): void {
    assert(this.#stream === undefined, 'peer sender: connect with a stream open');
    this.#stats.state = 'connecting';
    const { clusterId, nodeId, peerId, limits } = this.#options;
    const client = new grpc.Client(grpcTarget(this.#address), grpc.credentials.createInsecure(), channelOptions(limits));
    const call = client.makeBidiStreamRequest(peerStreamPath, rawSerializer, rawDeserializer, new grpc.Metadata(), {});
    const stream: OutboundStream = { client, call, helloTimer: undefined, waitingDrain: false };
    this.#stream = stream;
    call.on('data', (bytes: Buffer) => this.#onFrame(stream, bytes));
    call.on('error', (error: grpc.ServiceError) => {
      if (stream === this.#stream && error.metadata?.get(refusalTrailer)[0] === directoryRefusal) {
        this.#log.error({ details: error.details }, 'peer refuses this node\'s data directory');
        this.#options.onRefused({ peer: peerId, details: error.details });
      }
      this.#fail(stream, `${grpc.status[error.code] ?? error.code}: ${error.details}`);
    });
    call.on('end', () => this.#fail(stream, 'stream ended by peer'));
    stream.helloTimer = setTimeout(() => this.#fail(stream, 'no HelloAck in time'), limits.peerHelloTimeoutMs);
    call.write(encodeFrame({ kind: 'hello', clusterId, from: nodeId, to: peerId, protocolVersion: peerProtocolVersion, directoryId: this.#options.directoryId }));
  }

  #onFrame(stream: OutboundStream, bytes: Buffer): void {
    if (stream !== this.#stream) return;
    let frame;
    try {
      frame = decodeFrame(bytes);
    } catch (error) {
      if (!(error instanceof PeerProtocolError)) throw error;
      this.#fail(stream, `undecodable frame from peer: ${error.message}`);
      return;
    }
    if (frame.kind === 'helloAck' && this.#stats.state === 'connecting' && frame.nodeId === this.#options.peerId) {
      this.#onConnected(stream);
    } else if (frame.kind === 'snapshotAck' && this.#stats.state === 'connected') {
      this.#onSnapshotAck(frame.snapshotId);
    } else {
      this.#fail(stream, `unexpected ${frame.kind} frame from peer in state ${this.#stats.state}`);
    }
  }

  #onConnected(stream: OutboundStream): void {
    clearTimeout(stream.helloTimer);
    stream.helloTimer = undefined;
    this.#stats.state = 'connected';
    this.#stats.connects++;
    if (this.#attempt > 0) this.#log.info({ attempts: this.#attempt }, 'peer stream reconnected');
    this.#attempt = 0;
    this.#pump();
  }

  #onSnapshotAck(snapshotId: number): void {
    const message = this.#snapshotsUnacked.get(snapshotId);
    if (message === undefined) return;
    this.#snapshotsUnacked.delete(snapshotId);
    this.#reportSnapshot(message, 'delivered');
    this.#kick();
  }

  /** #fail ends a broken stream, tells Raft the peer is unreachable and schedules a retry. */
  #fail(stream: OutboundStream, reason: string): void {
    if (stream !== this.#stream || this.#stats.state === 'closed') return;
    const wasConnected = this.#stats.state === 'connected';
    this.#teardown(stream);
    this.#stream = undefined;
    this.#stats.failures++;
    this.#failSnapshots(false);
    const details = { reason, attempt: this.#attempt, address: grpcTarget(this.#address) };
    if (wasConnected || this.#attempt === 0) this.#log.warn(details, 'peer stream failed');
    else this.#log.debug(details, 'peer stream failed again');
    this.#scheduleReconnect();
    this.#options.onUnreachable(this.#options.peerId);
  }

  #scheduleReconnect(): void {
    const { peerReconnectBackoffMsMin, peerReconnectBackoffMsMax } = this.#options.limits;
    const delayMs = reconnectDelayMs({
      attempt: this.#attempt,
      minMs: peerReconnectBackoffMsMin,
      maxMs: peerReconnectBackoffMsMax,
      random: this.#options.random,
    });
    this.#attempt++;
    this.#stats.state = 'backoff';
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      if (this.#stats.state !== 'backoff') return;
      this.#stats.state = 'idle';
      if (this.#hasWork()) this.#connect();
    }, delayMs);
  }

  #teardown(stream: OutboundStream): void {
    clearTimeout(stream.helloTimer);
    stream.call.removeAllListeners('data');
    stream.call.removeAllListeners('end');
    stream.call.on('error', () => {}); // a cancelled call still reports CANCELLED; nobody listens now.
    stream.call.cancel();
    stream.client.close();
  }

  /** #failSnapshots reports the snapshot being sent and those sent but unacknowledged as failed. */
  #failSnapshots(includeQueued: boolean): void {
    const failed = [...this.#snapshotsUnacked.values()];
    if (this.#snapshotInFlight !== undefined) failed.push(this.#snapshotInFlight.message);
    if (includeQueued) failed.push(...this.#snapshots);
    this.#snapshotsUnacked.clear();
    this.#snapshotInFlight = undefined;
    if (includeQueued) this.#snapshots = [];
    for (const message of failed) this.#reportSnapshot(message, 'failed');
  }

  #reportSnapshot(message: InstallSnapshotMessage, outcome: SnapshotStatus['outcome']): void {
    this.#options.onSnapshotStatus({ to: message.to, group: message.group, outcome });
  }

  /** #pump writes frames until the queues are empty or the stream pushes back. */
  #pump(): void {
    const stream = this.#stream;
    if (stream === undefined || this.#stats.state !== 'connected' || stream.waitingDrain) return;
    for (let frame = this.#nextFrame(); frame !== undefined; frame = this.#nextFrame()) {
      this.#stats.sentFrames++;
      if (!stream.call.write(frame)) {
        stream.waitingDrain = true;
        this.#stats.backpressureWaits++;
        stream.call.once('drain', () => {
          stream.waitingDrain = false;
          if (stream === this.#stream) this.#pump();
        });
        return;
      }
    }
  }

  /** #nextFrame returns the next frame to write, alternating batches and snapshot chunks. */
  #nextFrame(): Uint8Array | undefined {
    const snapshotReady = this.#snapshotInFlight !== undefined || this.#snapshots.length > 0;
    const messagesReady = this.#stats.queuedMessages > 0;
    if (!snapshotReady && !messagesReady) return undefined;
    this.#preferSnapshot = !this.#preferSnapshot;
    return snapshotReady && (this.#preferSnapshot || !messagesReady) ? this.#nextChunkFrame() : this.#nextBatchFrame();
  }

  /** #nextBatchFrame takes as many queued messages as fit in one frame, oldest first. */
  #nextBatchFrame(): Uint8Array {
    const frameBytesMax = this.#options.limits.peerFrameBytesMax;
    const picked: Uint8Array[] = [];
    let entriesBytes = 0;
    while (this.#messagesHead < this.#messages.length) {
      const message = this.#messages[this.#messagesHead]!;
      const entryBytes = batchEntryBytes(message.byteLength);
      if (picked.length > 0 && batchFrameBytes(entriesBytes + entryBytes) > frameBytesMax) break;
      picked.push(message);
      entriesBytes += entryBytes;
      this.#messagesHead++;
      this.#stats.queuedMessages--;
      this.#stats.queuedBytes -= message.byteLength;
    }
    this.#compactQueue();
    this.#stats.sentMessages += picked.length;
    return encodeBatchFrame(picked);
  }

  #compactQueue(): void {
    if (this.#messagesHead === this.#messages.length) {
      this.#messages = [];
      this.#messagesHead = 0;
    } else if (this.#messagesHead > 1024 && this.#messagesHead * 2 > this.#messages.length) {
      this.#messages = this.#messages.slice(this.#messagesHead);
      this.#messagesHead = 0;
    }
  }

  /** #nextChunkFrame returns the next chunk of the snapshot being sent, starting one if none is. */
  #nextChunkFrame(): Uint8Array {
    if (this.#snapshotInFlight === undefined) {
      const message = this.#snapshots.shift();
      assert(message !== undefined, 'peer sender: no snapshot to chunk');
      this.#snapshotInFlight = { snapshotId: this.#snapshotIdNext++, message, offset: 0 };
    }
    const inFlight = this.#snapshotInFlight;
    const chunk = snapshotChunkAt({ ...inFlight, chunkBytesMax: this.#options.limits.snapshotChunkBytesMax });
    inFlight.offset += chunk.data.byteLength;
    if (inFlight.offset === inFlight.message.snapshot.data.byteLength) {
      this.#snapshotInFlight = undefined;
      this.#snapshotsUnacked.set(inFlight.snapshotId, inFlight.message);
      this.#stats.sentSnapshots++;
    }
    const frame = encodeFrame(chunk);
    assert(frame.byteLength <= this.#options.limits.peerFrameBytesMax, 'peer sender: chunk frame over the bound', {
      bytes: frame.byteLength,
    });
    return frame;
  }
}

/** grpcTarget returns the gRPC target of an address, bracketing IPv6 hosts. */
export function grpcTarget(address: PeerAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/**
 * channelOptions are the gRPC options of both ends of a peer stream: the frame bound as message
 * limit, keepalive to find dead connections, and a private subchannel so that a fresh client
 * really dials again instead of sharing grpc-js's own backoff.
 */
export function channelOptions(limits: PeerLimits): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': limits.peerFrameBytesMax,
    'grpc.max_send_message_length': limits.peerFrameBytesMax,
    'grpc.keepalive_time_ms': limits.peerKeepaliveMs,
    'grpc.keepalive_timeout_ms': limits.peerKeepaliveTimeoutMs,
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': limits.peerReconnectBackoffMsMin,
    'grpc.max_reconnect_backoff_ms': limits.peerReconnectBackoffMsMax,
    // channelz is grpc-js's live introspection; we do not serve it and it costs CPU per message.
    'grpc.enable_channelz': 0,
  };
}
