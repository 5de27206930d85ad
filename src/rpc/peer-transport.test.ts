import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { HeartbeatMessage, InstallSnapshotMessage, Message, NodeId } from '../raft/types.js';
import type { PeerLimits } from './limits.js';
import type { RpcLogger } from './logger.js';
import { encodeFrame, peerProtocolVersion, type PeerFrame } from './peer-codec.js';
import { peerStreamPath } from './peer-sender.js';
import { PeerTransport, type PeerDirectoryStore, type PeerRefusal, type SnapshotStatus } from './peer-transport.js';
import { rawDeserializer, rawSerializer } from './proto.js';
import { pollUntil } from '../cluster/poll.js';

const clusterId = 'test-cluster';
const waitMsMax = 5_000;
const fastLimits: Partial<PeerLimits> = { peerReconnectBackoffMsMin: 10, peerReconnectBackoffMsMax: 100, peerHelloTimeoutMs: 1_000 };

/** directoryOf is the data directory id a test node shows unless told otherwise. */
const directoryOf = (nodeId: NodeId): string => nodeId.toString(16).padStart(32, 'd');

interface LogLine {
  readonly level: string;
  readonly object: Record<string, unknown>;
  readonly message: string | undefined;
}

/** recordingLogger keeps every line, so tests can check that a rejection was logged. */
function recordingLogger(lines: LogLine[] = []): RpcLogger & { lines: LogLine[] } {
  const at = (level: string) => (object: Record<string, unknown>, message?: string) => lines.push({ level, object, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => recordingLogger(lines) };
}

interface TestNode {
  readonly nodeId: NodeId;
  readonly transport: PeerTransport;
  readonly port: number;
  readonly received: { from: NodeId; message: Message }[];
  readonly unreachable: NodeId[];
  readonly snapshotStatuses: SnapshotStatus[];
  readonly refusals: PeerRefusal[];
  readonly logger: ReturnType<typeof recordingLogger>;
}

const openTransports: PeerTransport[] = [];
const openClients: grpc.Client[] = [];

afterEach(async () => {
  for (const client of openClients.splice(0)) client.close();
  await Promise.all(openTransports.splice(0).map((transport) => transport.close()));
});

async function startNode(options: {
  nodeId: NodeId;
  peers?: Map<NodeId, { host: string; port: number }>;
  port?: number;
  limits?: Partial<PeerLimits>;
  directoryId?: string;
  peerDirectories?: PeerDirectoryStore;
}): Promise<TestNode> {
  const received: TestNode['received'] = [];
  const unreachable: NodeId[] = [];
  const snapshotStatuses: SnapshotStatus[] = [];
  const refusals: PeerRefusal[] = [];
  const logger = recordingLogger();
  const transport = new PeerTransport({
    clusterId,
    nodeId: options.nodeId,
    peers: options.peers ?? new Map(),
    listen: { host: '127.0.0.1', port: options.port ?? 0 },
    logger,
    limits: { ...fastLimits, ...options.limits },
    random: () => 0.5,
    onMessages: (from, messages) => received.push(...messages.map((message) => ({ from, message }))),
    onUnreachable: (nodeId) => unreachable.push(nodeId),
    onSnapshotStatus: (status) => snapshotStatuses.push(status),
    directoryId: options.directoryId ?? directoryOf(options.nodeId),
    ...(options.peerDirectories === undefined ? {} : { peerDirectories: options.peerDirectories }),
    onRefused: (refusal) => refusals.push(refusal),
  });
  openTransports.push(transport);
  const { port } = await transport.start();
  return { nodeId: options.nodeId, transport, port, received, unreachable, snapshotStatuses, refusals, logger };
}

/** startCluster starts n nodes with ids 1..n on ephemeral ports and tells each about the others. */
async function startCluster(n: number, limits?: Partial<PeerLimits>): Promise<TestNode[]> {
  const nodes = await Promise.all(Array.from({ length: n }, (_, i) => startNode({ nodeId: i + 1, limits })));
  for (const node of nodes) {
    for (const other of nodes) if (other !== node) node.transport.setPeer(other.nodeId, { host: '127.0.0.1', port: other.port });
  }
  return nodes;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  await pollUntil(condition, { what, timeoutMs: waitMsMax, everyMs: 5 });
}

function heartbeats(options: { from: NodeId; to: NodeId; groups: number; perGroup: number; term?: number }): HeartbeatMessage[] {
  const messages: HeartbeatMessage[] = [];
  for (let round = 0; round < options.perGroup; round++) {
    for (let group = 0; group < options.groups; group++) {
      messages.push({ type: 'heartbeat', group, from: options.from, to: options.to, term: options.term ?? 1, commit: round, context: 0 });
    }
  }
  return messages;
}

function messagesFrom(node: TestNode, from: NodeId): Message[] {
  return node.received.filter((entry) => entry.from === from).map((entry) => entry.message);
}

function assertInstallSnapshot(message: Message | undefined): asserts message is InstallSnapshotMessage {
  expect(message?.type).toBe('installSnapshot');
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('PeerTransport', () => {
  it('exchanges batches of many groups between two nodes, in order', async () => {
    const [a, b] = (await startCluster(2)) as [TestNode, TestNode];
    const toB = heartbeats({ from: 1, to: 2, groups: 50, perGroup: 20 });
    const toA = heartbeats({ from: 2, to: 1, groups: 30, perGroup: 10 });
    a.transport.send(toB);
    b.transport.send(toA);
    await waitFor(() => b.received.length === toB.length && a.received.length === toA.length, 'both batches');
    expect(messagesFrom(b, 1)).toEqual(toB);
    expect(messagesFrom(a, 2)).toEqual(toA);
    const stats = a.transport.stats().peers.get(2)!;
    expect(stats.sentFrames).toBeLessThan(toB.length / 10); // batched, not one frame per message
    expect(stats.droppedQueueFull).toBe(0);
  });

  it('works with a pino logger', async () => {
    const logger = pino({ level: 'silent' });
    const transport = new PeerTransport({ clusterId, nodeId: 1, peers: new Map(), logger, onMessages: () => {}, directoryId: directoryOf(1) });
    openTransports.push(transport);
    expect((await transport.start()).port).toBeGreaterThan(0);
  });

  it('connects three nodes all to all', async () => {
    const nodes = await startCluster(3);
    for (const node of nodes) {
      for (const other of nodes) {
        if (other !== node) node.transport.send(heartbeats({ from: node.nodeId, to: other.nodeId, groups: 20, perGroup: 5 }));
      }
    }
    await waitFor(() => nodes.every((node) => node.received.length === 200), 'all to all');
    for (const node of nodes) {
      for (const other of nodes) {
        if (other !== node) expect(messagesFrom(node, other.nodeId)).toEqual(heartbeats({ from: other.nodeId, to: node.nodeId, groups: 20, perGroup: 5 }));
      }
    }
  });

  it('reconnects to a peer that restarts on the same port, delivering what was queued meanwhile', async () => {
    const [a, b] = (await startCluster(2)) as [TestNode, TestNode];
    a.transport.send(heartbeats({ from: 1, to: 2, groups: 3, perGroup: 1 }));
    await waitFor(() => b.received.length === 3, 'first delivery');
    await b.transport.close();
    await waitFor(() => a.unreachable.includes(2), 'peer reported unreachable');
    const whileDown = heartbeats({ from: 1, to: 2, groups: 5, perGroup: 2, term: 2 });
    a.transport.send(whileDown);
    const restarted = await startNode({ nodeId: 2, port: b.port, peers: new Map([[1, { host: '127.0.0.1', port: a.port }]]) });
    await waitFor(() => restarted.received.length === whileDown.length, 'delivery after restart');
    expect(messagesFrom(restarted, 1)).toEqual(whileDown);
    expect(a.transport.stats().peers.get(2)!.connects).toBe(2);
  });

  it('bounds the queue to an unreachable peer, dropping and counting the excess', async () => {
    const port = await closedPort();
    const limits = { peerSendQueueMessagesMax: 1_000, peerSendQueueBytesMax: 256 * 1024 };
    const a = await startNode({ nodeId: 1, peers: new Map([[2, { host: '127.0.0.1', port }]]), limits });
    const sent = 100_000;
    for (let i = 0; i < sent / 1000; i++) a.transport.send(heartbeats({ from: 1, to: 2, groups: 1000, perGroup: 1 }));
    let stats = a.transport.stats().peers.get(2)!;
    expect(stats.queuedMessages).toBe(1_000);
    expect(stats.droppedQueueFull).toBe(sent - 1_000);
    const data = new Uint8Array(1024);
    const big: Message[] = Array.from({ length: 1000 }, (_, i) => ({
      type: 'appendEntries',
      group: i,
      from: 1,
      to: 2,
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [{ index: 1, term: 1, type: 'normal', data }],
    }));
    await a.transport.close();
    const b = await startNode({ nodeId: 1, peers: new Map([[2, { host: '127.0.0.1', port }]]), limits });
    b.transport.send(big);
    stats = b.transport.stats().peers.get(2)!;
    expect(stats.queuedBytes).toBeLessThanOrEqual(limits.peerSendQueueBytesMax);
    expect(stats.queuedMessages + stats.droppedQueueFull).toBe(1000);
    expect(stats.droppedQueueFull).toBeGreaterThan(700);
    await waitFor(() => b.unreachable.length > 0, 'unreachable reported');
  });

  it('waits for the stream to drain when it pushes back, losing nothing', async () => {
    const limits = { peerFrameBytesMax: 96 * 1024, snapshotChunkBytesMax: 16 * 1024, peerSendQueueBytesMax: 64 * 1024 * 1024 };
    const [a, b] = (await startCluster(2, limits)) as [TestNode, TestNode];
    const data = new Uint8Array(4096);
    const messages: Message[] = Array.from({ length: 3000 }, (_, i) => ({
      type: 'appendEntries',
      group: i % 7,
      from: 1,
      to: 2,
      term: 1,
      prevIndex: i,
      prevTerm: 1,
      commit: 0,
      entries: [{ index: i + 1, term: 1, type: 'normal', data }],
    }));
    a.transport.send(messages);
    await waitFor(() => b.received.length === messages.length, 'every message');
    expect(messagesFrom(b, 1).map((message) => (message.type === 'appendEntries' ? message.prevIndex : -1))).toEqual(messages.map((_, i) => i));
    const stats = a.transport.stats().peers.get(2)!;
    expect(stats.backpressureWaits).toBeGreaterThan(0);
    expect(stats.sentFrames).toBeGreaterThan(100);
  });

  it('drops and counts a message larger than a frame, and one for an unknown peer', async () => {
    const [a] = (await startCluster(2, { peerFrameBytesMax: 2 * 1024 * 1024 })) as [TestNode, TestNode];
    const data = new Uint8Array(3 * 1024 * 1024);
    a.transport.send([
      { type: 'appendEntries', group: 1, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ index: 1, term: 1, type: 'normal', data }] },
      { type: 'timeoutNow', group: 1, from: 1, to: 9, term: 1 },
    ]);
    expect(a.transport.stats().peers.get(2)!.droppedTooLarge).toBe(1);
    expect(a.transport.stats().droppedUnknownPeer).toBe(1);
  });

  it('sends a 5 MiB snapshot in chunks, interleaved with heartbeats, and it arrives intact', async () => {
    const [a, b] = (await startCluster(2)) as [TestNode, TestNode];
    const data = new Uint8Array(5 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2_654_435_761) >>> 24;
    const snapshot: InstallSnapshotMessage = {
      type: 'installSnapshot',
      group: 4,
      from: 1,
      to: 2,
      term: 3,
      snapshot: { metadata: { index: 1000, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data },
    };
    const beats = heartbeats({ from: 1, to: 2, groups: 10, perGroup: 1 });
    a.transport.send([snapshot, ...beats]);
    await waitFor(() => b.received.length === 11 && a.snapshotStatuses.length === 1, 'snapshot delivered');
    const arrived = messagesFrom(b, 1).find((message) => message.type === 'installSnapshot');
    assertInstallSnapshot(arrived);
    // Compare the 5 MiB as a Buffer: element-wise deep equality of a typed array this big is slow.
    expect(Buffer.compare(arrived.snapshot.data, data)).toBe(0);
    expect({ ...arrived, snapshot: { ...arrived.snapshot, data: undefined } }).toEqual({ ...snapshot, snapshot: { ...snapshot.snapshot, data: undefined } });
    expect(messagesFrom(b, 1).filter((message) => message.type === 'heartbeat')).toEqual(beats);
    expect(a.snapshotStatuses).toEqual([{ to: 2, group: 4, outcome: 'delivered' }]);
    expect(a.transport.stats().peers.get(2)!.sentFrames).toBeGreaterThanOrEqual(6);
  });
});

/** rawStream opens Peer.Stream to the port as an untrusted client, outside any transport. */
function rawStream(port: number): {
  write(bytes: Uint8Array): void;
  status: Promise<grpc.StatusObject>;
  frames: Buffer[];
} {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  openClients.push(client);
  const call = client.makeBidiStreamRequest(peerStreamPath, rawSerializer, rawDeserializer, new grpc.Metadata(), {});
  const frames: Buffer[] = [];
  call.on('data', (frame: Buffer) => frames.push(frame));
  call.on('error', () => {});
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return { write: (bytes) => call.write(bytes), status, frames };
}

function hello(overrides: Partial<Extract<PeerFrame, { kind: 'hello' }>>): Uint8Array {
  return encodeFrame({ kind: 'hello', clusterId, from: 1, to: 2, protocolVersion: peerProtocolVersion, directoryId: directoryOf(1), ...overrides });
}

describe('PeerTransport against a misbehaving peer', () => {
  it('rejects garbage and bad hellos with a status and a warning, and keeps serving a good peer', async () => {
    const [a, b] = (await startCluster(2)) as [TestNode, TestNode];
    const cases: { first: Uint8Array[]; code: grpc.status; details: RegExp }[] = [
      { first: [new Uint8Array([0xff, 0x13, 0x37, 0x00, 0x42])], code: grpc.status.INVALID_ARGUMENT, details: /not decodable|no known/ },
      { first: [hello({ clusterId: 'other-cluster' })], code: grpc.status.FAILED_PRECONDITION, details: /cluster id 'other-cluster'/ },
      { first: [hello({ from: 7 })], code: grpc.status.PERMISSION_DENIED, details: /node 7 is not a peer/ },
      { first: [hello({ to: 3 })], code: grpc.status.FAILED_PRECONDITION, details: /for node 3/ },
      { first: [hello({ directoryId: 'not-hex' })], code: grpc.status.INVALID_ARGUMENT, details: /directory_id 'not-hex' is not 32 lowercase hex digits/ },
      { first: [hello({ directoryId: '' })], code: grpc.status.INVALID_ARGUMENT, details: /directory_id '' is not/ },
      { first: [encodeFrame({ kind: 'helloAck', nodeId: 1 })], code: grpc.status.INVALID_ARGUMENT, details: /not hello/ },
      { first: [hello({}), new Uint8Array([0x1a, 0x05, 0x0a, 0x03, 0x08])], code: grpc.status.INVALID_ARGUMENT, details: /not decodable/ },
    ];
    for (const { first, code, details } of cases) {
      const stream = rawStream(b.port);
      for (const bytes of first) stream.write(bytes);
      const status = await stream.status;
      expect(status.code, status.details).toBe(code);
      expect(status.details).toMatch(details);
    }
    expect(b.logger.lines.filter((line) => line.level === 'warn' && line.message === 'peer stream rejected')).toHaveLength(cases.length);
    a.transport.send(heartbeats({ from: 1, to: 2, groups: 5, perGroup: 1 }));
    await waitFor(() => b.received.length === 5, 'good peer still served');
  });

  it('closes the stream of a peer that sends snapshot chunks out of order or oversized', async () => {
    const [, b] = (await startCluster(2, { snapshotBytesMax: 4 * 1024 * 1024 })) as [TestNode, TestNode];
    const header: InstallSnapshotMessage = {
      type: 'installSnapshot',
      group: 1,
      from: 1,
      to: 2,
      term: 1,
      snapshot: { metadata: { index: 5, term: 1, confState: { voters: [1, 2], learners: [] } }, data: new Uint8Array(0) },
    };
    const chunk = (fields: Partial<Extract<PeerFrame, { kind: 'snapshotChunk' }>>) =>
      encodeFrame({ kind: 'snapshotChunk', snapshotId: 1, offset: 0, totalBytes: 10, data: new Uint8Array(5), header, ...fields });
    const cases: { frames: Uint8Array[]; details: RegExp }[] = [
      { frames: [chunk({ header: undefined, offset: 5 })], details: /without a header/ },
      { frames: [chunk({}), chunk({ header: undefined, offset: 7 })], details: /out of order/ },
      { frames: [chunk({ totalBytes: 5 * 1024 * 1024 })], details: /over the limit/ },
      { frames: [chunk({ header: { ...header, from: 2, to: 1 } })], details: /on the stream from 1/ },
    ];
    for (const { frames, details } of cases) {
      const stream = rawStream(b.port);
      stream.write(hello({}));
      await waitFor(() => stream.frames.length === 1, 'the HelloAck'); // a dialer sends nothing more before it
      for (const frame of frames) stream.write(frame);
      const status = await stream.status;
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toMatch(details);
      expect(stream.frames).toHaveLength(1); // the HelloAck
    }
    expect(b.received).toHaveLength(0);
  });

  it('records the first data directory of a peer durably before it takes a message, then refuses another one', async () => {
    const saved: { nodeId: NodeId; directoryId: string }[] = [];
    let release: () => void = () => {};
    const saving = new Promise<void>((resolve) => (release = resolve));
    const store: PeerDirectoryStore = {
      recorded: new Map(),
      save: async (nodeId, directoryId) => {
        saved.push({ nodeId, directoryId });
        await saving;
      },
    };
    const knowsNode1 = new Map([[1, { host: '127.0.0.1', port: 1 }]]); // b only receives from node 1
    const b = await startNode({ nodeId: 2, peers: knowsNode1, peerDirectories: store });
    const a = await startNode({ nodeId: 1, peers: new Map([[2, { host: '127.0.0.1', port: b.port }]]) });
    a.transport.send(heartbeats({ from: 1, to: 2, groups: 3, perGroup: 1 }));
    await waitFor(() => saved.length === 1, 'the directory id to be saved');
    expect(saved).toEqual([{ nodeId: 1, directoryId: directoryOf(1) }]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.received).toHaveLength(0); // nothing is taken before the record is durable
    release();
    await waitFor(() => b.received.length === 3, 'delivery once recorded');

    // Node 1 comes back on an empty directory: a new id. Node 2 refuses it and tells it why.
    await a.transport.close();
    const emptied = await startNode({ nodeId: 1, directoryId: 'e'.repeat(32), peers: new Map([[2, { host: '127.0.0.1', port: b.port }]]) });
    emptied.transport.send(heartbeats({ from: 1, to: 2, groups: 2, perGroup: 1, term: 9 }));
    await waitFor(() => emptied.refusals.length > 0, 'the refusal');
    expect(emptied.refusals[0]!.peer).toBe(2);
    expect(emptied.refusals[0]!.details).toContain(`node 1 runs on data directory ${'e'.repeat(32)}, but node 2 knows it on directory ${directoryOf(1)}`);
    expect(emptied.refusals[0]!.details).toMatch(/lost its data directory/);
    expect(b.received).toHaveLength(3);
    expect(saved).toHaveLength(1);
    const rejected = b.logger.lines.filter((line) => line.level === 'warn' && line.message === 'peer stream rejected');
    expect(rejected.length).toBeGreaterThan(0);

    // The directory it had is still welcome.
    await emptied.transport.close();
    const restored = await startNode({ nodeId: 1, peers: new Map([[2, { host: '127.0.0.1', port: b.port }]]) });
    restored.transport.send(heartbeats({ from: 1, to: 2, groups: 4, perGroup: 1, term: 9 }));
    await waitFor(() => b.received.length === 7, 'delivery from the known directory');
    expect(restored.refusals).toEqual([]);
  });

  it('refuses a directory other than the recorded one from the first stream after a restart', async () => {
    const b = await startNode({ nodeId: 2, peers: new Map([[1, { host: '127.0.0.1', port: 1 }]]), peerDirectories: { recorded: new Map([[1, directoryOf(1)]]), save: () => Promise.reject(new Error('not expected')) } });
    const stream = rawStream(b.port);
    stream.write(hello({ directoryId: 'f'.repeat(32) }));
    const status = await stream.status;
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(status.metadata.get('raftbus-refusal')).toEqual(['directory']);
    expect(stream.frames).toHaveLength(0);
  });

  it('refuses a frame sent before the HelloAck, and a peer whose directory cannot be recorded', async () => {
    const knowsNode1 = new Map([[1, { host: '127.0.0.1', port: 1 }]]);
    const b = await startNode({ nodeId: 2, peers: knowsNode1, peerDirectories: { recorded: new Map(), save: () => new Promise(() => {}) } });
    const early = rawStream(b.port);
    early.write(hello({}));
    early.write(encodeFrame({ kind: 'batch', messages: heartbeats({ from: 1, to: 2, groups: 1, perGroup: 1 }) }));
    const status = await early.status;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/batch frame before the HelloAck/);
    expect(b.received).toHaveLength(0);

    const failing = await startNode({ nodeId: 3, peers: knowsNode1, peerDirectories: { recorded: new Map(), save: () => Promise.reject(new Error('disk full')) } });
    const stream = rawStream(failing.port);
    stream.write(hello({ to: 3 }));
    const failed = await stream.status;
    expect(failed.code).toBe(grpc.status.UNAVAILABLE);
    expect(failed.details).toMatch(/cannot record the data directory of node 1: disk full/);
  });

  it('times out a dialer that never says hello', async () => {
    const b = await startNode({ nodeId: 2, limits: { peerHelloTimeoutMs: 50 } });
    const status = await rawStream(b.port).status;
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });
});
