// The inbound half of the peer transport: one InboundPeerStream per Peer.Stream call accepted by
// the server. It checks the Hello, then hands every message to Raft; anything wrong from the
// peer ends this call alone with a gRPC status and a warning, and the server serves on.
//
// States: awaitingHello --good Hello--> admitting --directory id accepted--> open;
//         any --bad frame/timeout/close/refused directory--> closed (final).

import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import type { PeerLimits } from './limits.js';
import type { RpcLogger } from './logger.js';
import { decodeFrame, directoryIdPattern, encodeFrame, PeerProtocolError, peerProtocolVersion, type PeerFrame } from './peer-codec.js';
import { SnapshotReassembler } from './peer-snapshot.js';

/** InboundContext is what an inbound stream needs from its transport. */
export interface InboundContext {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly limits: PeerLimits;
  readonly logger: RpcLogger;
  isKnownPeer(nodeId: NodeId): boolean;
  /**
   * admitDirectory resolves whether a peer may speak from this data directory: undefined when it
   * may (its first directory id, made durable before this resolves, or the one recorded), else
   * the directory id recorded for that node.
   */
  admitDirectory(nodeId: NodeId, directoryId: string): Promise<string | undefined>;
  /** accepted is told of a stream whose Hello was good, so that an older one can be superseded. */
  accepted(stream: InboundPeerStream): void;
  closed(stream: InboundPeerStream): void;
  deliver(from: NodeId, messages: readonly Message[]): void;
}

/** refusalTrailer is the trailing metadata key that marks a rejection no retry can mend. */
export const refusalTrailer = 'raftbus-refusal';
/** directoryRefusal is refusalTrailer's value for a node whose data directory is not the one its peers know. */
export const directoryRefusal = 'directory';

/** PeerRejection is why an inbound stream was closed: a gRPC status code and its details. */
export class PeerRejection extends Error {
  override readonly name = 'PeerRejection';
  /** refusal, when set, goes to the dialer as the refusalTrailer trailer: it must stop, not retry. */
  readonly refusal: typeof directoryRefusal | undefined;

  constructor(
    readonly code: grpc.status,
    readonly details: string,
    options?: { cause?: unknown; refusal?: typeof directoryRefusal },
  ) {
    super(details, options);
    this.refusal = options?.refusal;
  }
}

/** InboundPeerStream serves one Peer.Stream call from a dialing peer. */
export class InboundPeerStream {
  readonly #call: grpc.ServerDuplexStream<Buffer, Uint8Array>;
  readonly #context: InboundContext;
  readonly #reassembler: SnapshotReassembler;
  #state: 'awaitingHello' | 'admitting' | 'open' | 'closed' = 'awaitingHello';
  #peerId: NodeId | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #log: RpcLogger;

  constructor(call: grpc.ServerDuplexStream<Buffer, Uint8Array>, context: InboundContext) {
    this.#call = call;
    this.#context = context;
    this.#reassembler = new SnapshotReassembler(context.limits);
    this.#log = context.logger.child({ remote: call.getPeer() });
    this.#helloTimer = setTimeout(
      () => this.reject(new PeerRejection(grpc.status.DEADLINE_EXCEEDED, 'no Hello in time')),
      context.limits.peerHelloTimeoutMs,
    );
    call.on('data', (bytes: Buffer) => this.#onData(bytes));
    call.on('end', () => this.#finish());
    call.on('cancelled', () => this.#finish());
    call.on('error', () => this.#finish());
  }

  /** peerId is the id the dialer said in its Hello, once it was accepted. */
  get peerId(): NodeId | undefined {
    return this.#peerId;
  }

  /** reject logs why and ends the call with the rejection's status. Idempotent. */
  reject(rejection: PeerRejection): void {
    if (this.#state === 'closed') return;
    this.#log.warn({ code: grpc.status[rejection.code], details: rejection.details, peer: this.#peerId }, 'peer stream rejected');
    this.#cleanUp();
    let metadata: grpc.Metadata | undefined;
    if (rejection.refusal !== undefined) {
      metadata = new grpc.Metadata();
      metadata.set(refusalTrailer, rejection.refusal);
    }
    // grpc-js ends a server stream on 'error' with the status (and the trailers) it carries.
    this.#call.emit('error', { code: rejection.code, details: rejection.details, metadata });
  }

  /** #finish ends the call with an OK status: the dialer hung up, or the call is gone. */
  #finish(): void {
    if (this.#state === 'closed') return;
    this.#cleanUp();
    if (!this.#call.writableEnded) this.#call.end();
  }

  #cleanUp(): void {
    this.#state = 'closed';
    clearTimeout(this.#helloTimer);
    this.#context.closed(this);
  }

  #onData(bytes: Buffer): void {
    if (this.#state === 'closed') return;
    try {
      const frame = decodeFrame(bytes);
      if (this.#state === 'awaitingHello') this.#onHello(frame);
      else if (this.#state === 'admitting') throw new PeerRejection(grpc.status.INVALID_ARGUMENT, `${frame.kind} frame before the HelloAck`);
      else this.#onFrame(frame, this.#peerId!);
    } catch (error) {
      if (error instanceof PeerRejection) this.reject(error);
      else if (error instanceof PeerProtocolError) this.reject(new PeerRejection(grpc.status.INVALID_ARGUMENT, error.message, { cause: error }));
      else throw error;
    }
  }

  /**
   * #onHello accepts a Hello of this cluster, from a known node, meant for this node, and then
   * asks whether its data directory is the one that node had (#admit).
   */
  #onHello(frame: PeerFrame): void {
    const { clusterId, nodeId } = this.#context;
    if (frame.kind !== 'hello') throw new PeerRejection(grpc.status.INVALID_ARGUMENT, `first frame is ${frame.kind}, not hello`);
    if (frame.protocolVersion !== peerProtocolVersion) {
      throw new PeerRejection(grpc.status.FAILED_PRECONDITION, `protocol version ${frame.protocolVersion} is not ${peerProtocolVersion}`);
    }
    if (frame.clusterId !== clusterId) {
      throw new PeerRejection(grpc.status.FAILED_PRECONDITION, `cluster id '${frame.clusterId}' is not this cluster's '${clusterId}'`);
    }
    if (frame.to !== nodeId) throw new PeerRejection(grpc.status.FAILED_PRECONDITION, `hello for node ${frame.to} reached node ${nodeId}`);
    if (frame.from === nodeId || !this.#context.isKnownPeer(frame.from)) {
      throw new PeerRejection(grpc.status.PERMISSION_DENIED, `node ${frame.from} is not a peer of node ${nodeId}`);
    }
    if (!directoryIdPattern.test(frame.directoryId)) {
      throw new PeerRejection(grpc.status.INVALID_ARGUMENT, `hello directory_id '${frame.directoryId.slice(0, 40)}' is not 32 lowercase hex digits`);
    }
    this.#state = 'admitting';
    this.#peerId = frame.from;
    this.#log = this.#log.child({ peer: frame.from });
    void this.#admit(frame.from, frame.directoryId);
  }

  /**
   * #admit opens the stream once the peer's data directory is admitted. A node that shows another
   * directory than the one it showed first lost its data (or was pointed at another directory):
   * it may have voted in terms it no longer remembers, and acknowledged entries it no longer has,
   * so nothing it sends is taken.
   */
  async #admit(from: NodeId, directoryId: string): Promise<void> {
    let recorded: string | undefined;
    try {
      recorded = await this.#context.admitDirectory(from, directoryId);
    } catch (error) {
      this.reject(new PeerRejection(grpc.status.UNAVAILABLE, `cannot record the data directory of node ${from}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    if (this.#state !== 'admitting') return;
    if (recorded !== undefined) {
      const details =
        `node ${from} runs on data directory ${directoryId}, but node ${this.#context.nodeId} knows it on directory ${recorded}: ` +
        `node ${from} lost its data directory or was given another one. Taken in, it could vote again in terms it voted in ` +
        `before and count toward commits with entries it no longer has. Put its directory back (see "A node that lost its data" in the README)`;
      this.reject(new PeerRejection(grpc.status.FAILED_PRECONDITION, details, { refusal: directoryRefusal }));
      return;
    }
    clearTimeout(this.#helloTimer);
    this.#state = 'open';
    this.#context.accepted(this);
    this.#call.write(encodeFrame({ kind: 'helloAck', nodeId: this.#context.nodeId }));
  }

  #onFrame(frame: PeerFrame, peerId: NodeId): void {
    if (frame.kind === 'batch') {
      for (const message of frame.messages) this.#checkAddressed(message, peerId);
      if (frame.messages.length > 0) this.#context.deliver(peerId, frame.messages);
    } else if (frame.kind === 'snapshotChunk') {
      if (frame.header !== undefined) this.#checkAddressed(frame.header, peerId);
      const message = this.#reassembler.accept(frame);
      if (message === undefined) return;
      this.#call.write(encodeFrame({ kind: 'snapshotAck', snapshotId: frame.snapshotId }));
      this.#context.deliver(peerId, [message]);
    } else {
      throw new PeerRejection(grpc.status.INVALID_ARGUMENT, `unexpected ${frame.kind} frame on an open stream`);
    }
  }

  #checkAddressed(message: Message, peerId: NodeId): void {
    if (message.from !== peerId || message.to !== this.#context.nodeId) {
      throw new PeerRejection(
        grpc.status.INVALID_ARGUMENT,
        `message from ${message.from} to ${message.to} on the stream from ${peerId} to ${this.#context.nodeId}`,
      );
    }
  }
}
