// PeerTransport carries Raft messages of every group between this node and its peers: a gRPC
// server for the streams peers dial in, and one PeerSender (one outbound stream) per peer.

import * as grpc from '@grpc/grpc-js';
import { assert } from '../raft/assert.js';
import type { Message, NodeId } from '../raft/types.js';
import type { RandomSource } from './backoff.js';
import { resolvePeerLimits, type PeerLimits } from './limits.js';
import type { RpcLogger } from './logger.js';
import { encodeMessage } from './peer-codec.js';
import { InboundPeerStream, PeerRejection, type InboundContext } from './peer-receiver.js';
import { channelOptions, grpcTarget, PeerSender, type PeerAddress, type PeerRefusal, type PeerSenderStats, type SnapshotStatus } from './peer-sender.js';
import { grpcServiceDefinition } from './proto.js';
import { stopServer } from './server-stop.js';

export type { PeerAddress, PeerRefusal, PeerSenderStats, SnapshotStatus } from './peer-sender.js';

/** PeerTransportOptions configures the transport of one node. */
export interface PeerTransportOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** peers maps every node that may send to or receive from this one to its peer address. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly logger: RpcLogger;
  /**
   * onMessages receives each inbound batch (or reassembled snapshot) from a peer, in the order the
   * peer sent them, synchronously from the network callback. It must not throw: an exception is a
   * bug of the caller and is not caught.
   */
  readonly onMessages: (from: NodeId, messages: readonly Message[]) => void;
  /** onUnreachable is told each time the stream to a peer fails or cannot be opened. */
  readonly onUnreachable?: (nodeId: NodeId) => void;
  /** onSnapshotStatus is told whether each installSnapshot sent was delivered or failed. */
  readonly onSnapshotStatus?: (status: SnapshotStatus) => void;
  /** listen is where the peer server binds; by default this node's entry in peers, else 127.0.0.1:0. */
  readonly listen?: PeerAddress;
  readonly limits?: Partial<PeerLimits>;
  /** random drives reconnect jitter; Math.random by default. */
  readonly random?: RandomSource;
  /** directoryId is this node's data directory id (data-dir.ts), shown to every peer. */
  readonly directoryId: string;
  /**
   * peerDirectories is where the first data directory id of each peer is kept: what was recorded
   * before, and how to record a new one durably. Without it they are kept in memory only.
   */
  readonly peerDirectories?: PeerDirectoryStore;
  /** onRefused is told when a peer refuses this node's data directory: this node must stop. */
  readonly onRefused?: (refusal: PeerRefusal) => void;
}

/** PeerDirectoryStore keeps the data directory id each peer showed first. */
export interface PeerDirectoryStore {
  readonly recorded: ReadonlyMap<NodeId, string>;
  /** save records a peer's directory id; resolves once it is durable. */
  save(nodeId: NodeId, directoryId: string): Promise<void>;
}

/** PeerTransportStats counts drops that happen before a peer's queue, and every peer's counters. */
export interface PeerTransportStats {
  readonly droppedUnknownPeer: number;
  readonly inboundStreams: number;
  readonly peers: ReadonlyMap<NodeId, PeerSenderStats>;
}

type TransportState = 'new' | 'starting' | 'running' | 'closed';

/**
 * PeerTransport is the network of one node for Raft: send() queues messages to peers and returns
 * at once; inbound messages arrive through onMessages. Messages that cannot be queued are dropped
 * and counted (Raft retries); nothing it receives from a peer can throw out of it.
 */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #limits: PeerLimits;
  readonly #log: RpcLogger;
  readonly #peers: Map<NodeId, PeerAddress>;
  readonly #senders = new Map<NodeId, PeerSender>();
  readonly #inbound = new Set<InboundPeerStream>();
  #server: grpc.Server | undefined;
  #state: TransportState = 'new';
  #droppedUnknownPeer = 0;
  readonly #inboundContext: InboundContext;
  /** #listening is the address the server was bound to, with its real port. */
  #listening: string | undefined;
  readonly #peerDirectories: Map<NodeId, string>;
  /** #directorySaves: the first directory id of a node being recorded, so that one is recorded per node. */
  readonly #directorySaves = new Map<NodeId, Promise<void>>();

  /** constructor checks the options; throws RangeError on a bad node id, cluster id or limit. */
  constructor(options: PeerTransportOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) throw new RangeError(`nodeId must be a positive integer, got ${options.nodeId}`);
    if (options.clusterId.length === 0) throw new RangeError('clusterId must not be empty');
    this.#options = options;
    this.#limits = resolvePeerLimits(options.limits);
    this.#log = options.logger.child({ nodeId: options.nodeId, component: 'peerTransport' });
    this.#peers = new Map(options.peers);
    this.#peerDirectories = new Map(options.peerDirectories?.recorded);
    this.#inboundContext = this.#makeInboundContext();
  }

  /** start binds the peer server and returns its port (the chosen one when asked for port 0). */
  async start(): Promise<{ port: number }> {
    assert(this.#state === 'new', 'peer transport: start called twice', { state: this.#state });
    this.#state = 'starting';
    const server = new grpc.Server(channelOptions(this.#limits));
    server.addService(grpcServiceDefinition('raftbus.peer.v1.Peer', { kind: 'raw' }), {
      Stream: (call: grpc.ServerDuplexStream<Buffer, Uint8Array>) => this.#accept(call),
    });
    this.#server = server;
    const listen = this.#options.listen ?? this.#peers.get(this.#options.nodeId) ?? { host: '127.0.0.1', port: 0 };
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(grpcTarget(listen), grpc.ServerCredentials.createInsecure(), (error, boundPort) => {
        if (error === null) resolve(boundPort);
        else reject(error);
      });
    });
    if (this.#state !== 'starting') {
      await stopServer(server, grpcTarget({ host: listen.host, port }), 0);
      throw new Error('peer transport closed while starting');
    }
    this.#state = 'running';
    this.#listening = grpcTarget({ host: listen.host, port });
    this.#log.info({ address: this.#listening }, 'peer transport listening');
    return { port };
  }

  /**
   * send queues each message for its `to` node and returns at once. installSnapshot messages go
   * in chunks. A message for an unknown node, or one its peer's queue has no room for, is
   * dropped and counted. Asserts each message is from this node and not to it.
   */
  send(messages: readonly Message[]): void {
    if (this.#state === 'closed') return;
    for (const message of messages) {
      assert(message.from === this.#options.nodeId, 'peer transport: message not from this node', { from: message.from });
      assert(message.to !== this.#options.nodeId, 'peer transport: message to this node itself', { to: message.to });
      const sender = this.#senderFor(message.to);
      if (sender === undefined) {
        this.#droppedUnknownPeer++;
        this.#log.debug({ to: message.to, group: message.group }, 'message to an unknown peer dropped');
      } else if (message.type === 'installSnapshot') {
        sender.enqueueSnapshot(message);
      } else {
        sender.enqueueMessage(encodeMessage(message));
      }
    }
  }

  /** setPeer adds a peer or moves it to a new address (its outbound stream then reconnects). */
  setPeer(nodeId: NodeId, address: PeerAddress): void {
    this.#peers.set(nodeId, address);
    this.#senders.get(nodeId)?.setAddress(address);
  }

  /** removePeer forgets a peer: its queue is dropped and its inbound stream closed. */
  removePeer(nodeId: NodeId): void {
    this.#peers.delete(nodeId);
    this.#senders.get(nodeId)?.close();
    this.#senders.delete(nodeId);
    for (const stream of this.#inbound) {
      if (stream.peerId === nodeId) stream.reject(new PeerRejection(grpc.status.PERMISSION_DENIED, `node ${nodeId} was removed`));
    }
  }

  /** stats returns the drop counters and a copy of every peer's counters. */
  stats(): PeerTransportStats {
    const peers = new Map<NodeId, PeerSenderStats>();
    for (const [nodeId, sender] of this.#senders) peers.set(nodeId, sender.stats());
    return { droppedUnknownPeer: this.#droppedUnknownPeer, inboundStreams: this.#inbound.size, peers };
  }

  /** close stops every stream, outbound and inbound, and the server. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const sender of this.#senders.values()) sender.close();
    this.#senders.clear();
    for (const stream of [...this.#inbound]) stream.reject(new PeerRejection(grpc.status.UNAVAILABLE, 'node is shutting down'));
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    if (this.#listening === undefined) server.forceShutdown(); // closed while starting: nothing bound yet
    else await stopServer(server, this.#listening, 0);
    this.#log.info({}, 'peer transport closed');
  }

  #senderFor(nodeId: NodeId): PeerSender | undefined {
    const existing = this.#senders.get(nodeId);
    if (existing !== undefined) return existing;
    const address = this.#peers.get(nodeId);
    if (address === undefined) return undefined;
    const sender = new PeerSender({
      clusterId: this.#options.clusterId,
      nodeId: this.#options.nodeId,
      peerId: nodeId,
      address,
      limits: this.#limits,
      logger: this.#log,
      random: this.#options.random ?? Math.random,
      onUnreachable: (peerId) => this.#options.onUnreachable?.(peerId),
      onSnapshotStatus: (status) => this.#options.onSnapshotStatus?.(status),
      directoryId: this.#options.directoryId,
      onRefused: (refusal) => this.#options.onRefused?.(refusal),
    });
    this.#senders.set(nodeId, sender);
    return sender;
  }

  #accept(call: grpc.ServerDuplexStream<Buffer, Uint8Array>): void {
    const stream = new InboundPeerStream(call, this.#inboundContext);
    if (this.#state !== 'running') {
      stream.reject(new PeerRejection(grpc.status.UNAVAILABLE, 'node is shutting down'));
    } else if (this.#inbound.size >= this.#limits.peerInboundStreamsMax) {
      stream.reject(new PeerRejection(grpc.status.RESOURCE_EXHAUSTED, 'too many inbound peer streams'));
    } else {
      this.#inbound.add(stream);
    }
  }

  #makeInboundContext(): InboundContext {
    return {
      clusterId: this.#options.clusterId,
      nodeId: this.#options.nodeId,
      limits: this.#limits,
      logger: this.#log,
      isKnownPeer: (nodeId) => this.#peers.has(nodeId),
      admitDirectory: (nodeId, directoryId) => this.#admitDirectory(nodeId, directoryId),
      accepted: (stream) => this.#supersede(stream),
      closed: (stream) => this.#inbound.delete(stream),
      deliver: (from, messages) => this.#options.onMessages(from, messages),
    };
  }

  /**
   * #admitDirectory resolves undefined when nodeId may speak from directoryId: the one recorded
   * for it, or its first, recorded durably before this resolves. Else it resolves the recorded id.
   */
  async #admitDirectory(nodeId: NodeId, directoryId: string): Promise<string | undefined> {
    for (;;) {
      const recorded = this.#peerDirectories.get(nodeId);
      if (recorded !== undefined) return recorded === directoryId ? undefined : recorded;
      const saving = this.#directorySaves.get(nodeId);
      if (saving !== undefined) {
        await saving.catch(() => undefined);
        continue;
      }
      const save = (this.#options.peerDirectories?.save(nodeId, directoryId) ?? Promise.resolve())
        .then(() => {
          this.#peerDirectories.set(nodeId, directoryId);
          this.#log.info({ peer: nodeId, directoryId }, 'recorded the data directory of a peer');
        })
        .finally(() => this.#directorySaves.delete(nodeId));
      this.#directorySaves.set(nodeId, save);
      await save;
      return undefined;
    }
  }

  /** #supersede closes older streams from the same peer: a peer keeps one stream to this node. */
  #supersede(stream: InboundPeerStream): void {
    for (const other of this.#inbound) {
      if (other !== stream && other.peerId === stream.peerId) {
        other.reject(new PeerRejection(grpc.status.ABORTED, 'superseded by a newer stream from the same peer'));
      }
    }
  }
}
