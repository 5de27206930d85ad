// The chaos network on real loopback sockets, in front of stand-in nodes: plain TCP servers that
// record what each connection receives and can write back on it.
import { createHook } from 'node:async_hooks';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseClusterFile, validateCluster, type ClusterConfig } from '../../src/node/cluster-file.js';
import { seededRandom } from '../../src/raft/prng.js';
import { bridge, isolate, oneWay, partition, startChaosNetwork, type ChaosNetwork } from './network.js';
import { pollUntil } from '../../src/cluster/poll.js';

/** StandIn is a TCP server standing in for one port of a node. */
class StandIn {
  readonly accepted: { socket: Socket; received: string }[] = [];

  private constructor(readonly server: Server, readonly port: number) {
    server.on('connection', (socket) => {
      const entry = { socket, received: '' };
      this.accepted.push(entry);
      socket.on('data', (chunk: Buffer) => (entry.received += chunk.toString()));
      socket.on('error', () => {});
    });
  }

  static async start(): Promise<StandIn> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no port');
    return new StandIn(server, address.port);
  }

  received(): string {
    return this.accepted.map((entry) => entry.received).join('');
  }

  async close(): Promise<void> {
    for (const entry of this.accepted) entry.socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

interface Fixture {
  readonly dir: string;
  readonly cluster: ClusterConfig;
  readonly peers: Map<number, StandIn>;
  readonly clients: Map<number, StandIn>;
  readonly net: ChaosNetwork;
}

let fixture: Fixture | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  if (fixture === undefined) return;
  await fixture.net.close();
  for (const standIn of [...fixture.peers.values(), ...fixture.clients.values()]) await standIn.close();
  rmSync(fixture.dir, { recursive: true, force: true });
  fixture = undefined;
});

async function start(options: { seed?: number } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'raftbus-chaos-net-'));
  const peers = new Map<number, StandIn>();
  const clients = new Map<number, StandIn>();
  const nodes = [];
  for (const id of [1, 2, 3]) {
    peers.set(id, await StandIn.start());
    clients.set(id, await StandIn.start());
    nodes.push({ id, host: '127.0.0.1', peerPort: peers.get(id)!.port, clientPort: clients.get(id)!.port, roles: ['controller', 'broker'], dataDir: `node-${id}` });
  }
  const validated = validateCluster({ clusterId: 'chaos-net', nodes }, { baseDir: dir });
  if (validated.kind !== 'valid') throw new Error(JSON.stringify(validated.problems));
  const net = await startChaosNetwork({ cluster: validated.cluster, dir: join(dir, 'files'), random: seededRandom(options.seed ?? 7) });
  fixture = { dir, cluster: validated.cluster, peers, clients, net };
  return fixture;
}

/** entryOf reads node `to`'s entry in node `of`'s cluster file. */
function entryOf(net: ChaosNetwork, options: { of: number; to: number }): { host: string; peerPort: number; clientPort: number } {
  const loaded = parseClusterFile(readFileSync(net.clusterFileOf(options.of), 'utf8'), { filePath: net.clusterFileOf(options.of) });
  return loaded.cluster.nodes.find((node) => node.id === options.to)!;
}

/** dial connects as node `from` to node `to`'s peer port (through the proxy of that link). */
async function dial(net: ChaosNetwork, options: { from: number; to: number; port?: 'peerPort' | 'clientPort' }): Promise<Socket & { received: string }> {
  const entry = entryOf(net, { of: options.from, to: options.to });
  return dialAddress(`${entry.host}:${entry[options.port ?? 'peerPort']}`);
}

async function dialAddress(address: string): Promise<Socket & { received: string }> {
  const [host, port] = address.split(':');
  const socket = Object.assign(connect({ host: host!, port: Number(port) }), { received: '' });
  sockets.push(socket);
  socket.on('data', (chunk: Buffer) => (socket.received += chunk.toString()));
  socket.on('error', () => {});
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

async function eventually(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  await pollUntil(check, { what, timeoutMs, everyMs: 5 });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** holdMs: how long a test watches for bytes that must not arrive. */
const holdMs = 150;

describe('chaos network', () => {
  it('writes cluster files the project accepts: own real ports, proxies of the link for every other node', async () => {
    const { net, cluster, peers, clients } = await start();
    expect(net.nodeIds).toEqual([1, 2, 3]);
    for (const id of net.nodeIds) {
      const loaded = parseClusterFile(readFileSync(net.clusterFileOf(id), 'utf8'), { filePath: net.clusterFileOf(id) });
      expect(loaded.cluster.clusterId).toBe(cluster.clusterId);
      expect(loaded.cluster.nodes.map((node) => [node.id, node.dataDir, node.roles])).toEqual(cluster.nodes.map((node) => [node.id, node.dataDir, node.roles]));
      const self = loaded.cluster.nodes.find((node) => node.id === id)!;
      expect([self.peerPort, self.clientPort]).toEqual([peers.get(id)!.port, clients.get(id)!.port]);
      for (const other of loaded.cluster.nodes.filter((node) => node.id !== id)) {
        expect([other.peerPort, other.clientPort]).not.toContain(peers.get(other.id)!.port);
        expect([other.peerPort, other.clientPort]).not.toContain(clients.get(other.id)!.port);
      }
    }
    // Each proxied port leads to the right port of the right node.
    for (const from of net.nodeIds) {
      for (const to of net.nodeIds.filter((id) => id !== from)) {
        for (const port of ['peerPort', 'clientPort'] as const) {
          const socket = await dial(net, { from, to, port });
          socket.write(`${from}->${to} ${port};`);
        }
      }
    }
    for (const to of net.nodeIds) {
      const others = net.nodeIds.filter((id) => id !== to);
      await eventually(() => others.every((from) => peers.get(to)!.received().includes(`${from}->${to} peerPort;`)), `peer bytes at ${to}`);
      await eventually(() => others.every((from) => clients.get(to)!.received().includes(`${from}->${to} clientPort;`)), `client bytes at ${to}`);
      expect(peers.get(to)!.received()).not.toContain('clientPort');
    }
    const clientSocket = await dialAddress(net.clientAddressOf(2));
    clientSocket.write('from a client');
    await eventually(() => clients.get(2)!.received().includes('from a client'), 'client bytes at node 2');
  });

  it('forwards bytes both ways and counts them per direction', async () => {
    const { net, peers } = await start();
    const socket = await dial(net, { from: 1, to: 2 });
    socket.write('ping');
    await eventually(() => peers.get(2)!.received() === 'ping', 'ping at node 2');
    peers.get(2)!.accepted[0]!.socket.write('pong!');
    await eventually(() => socket.received === 'pong!', 'pong at node 1');
    const stats = new Map(net.stats().map((entry) => [entry.link, entry]));
    expect(stats.get('1->2')).toEqual({ link: '1->2', bytes: 4, resets: 0 });
    expect(stats.get('2->1')).toEqual({ link: '2->1', bytes: 5, resets: 0 });
    expect([...stats.keys()].sort()).toEqual(['1->2', '1->3', '1->clients', '2->1', '2->3', '2->clients', '3->1', '3->2', '3->clients', 'clients->1', 'clients->2', 'clients->3']);
  });

  it('cut(1, 2) holds what 1 sends 2, on connections either opened, while 2 still reaches 1; heal() delivers it', async () => {
    const { net, peers } = await start();
    const oneToTwo = await dial(net, { from: 1, to: 2 });
    const twoToOne = await dial(net, { from: 2, to: 1 });
    oneToTwo.write('hello ');
    twoToOne.write('hello ');
    await eventually(() => peers.get(2)!.accepted.length === 1 && peers.get(1)!.accepted.length === 1, 'both connections');
    const atTwo = peers.get(2)!.accepted[0]!;
    const atOne = peers.get(1)!.accepted[0]!;
    await eventually(() => atTwo.received === 'hello ' && atOne.received === 'hello ', 'hellos');

    net.cut(1, 2);
    oneToTwo.write('request from 1');
    atOne.socket.write('answer from 1');
    atTwo.socket.write('answer from 2');
    twoToOne.write('request from 2');
    await eventually(() => oneToTwo.received === 'answer from 2' && atOne.received === 'hello request from 2', '2 -> 1 bytes');
    await sleep(holdMs);
    expect(atTwo.received).toBe('hello ');
    expect(twoToOne.received).toBe('');

    net.heal();
    await eventually(() => atTwo.received === 'hello request from 1' && twoToOne.received === 'answer from 1', 'held bytes after heal');
  });

  it('a connection opened across a cut waits unopened and opens on heal; new connections work after heal', async () => {
    const { net, peers } = await start();
    oneWay(net, 1, 3);
    const held = await dial(net, { from: 1, to: 3 });
    held.write('sent during the cut');
    await sleep(holdMs);
    expect(peers.get(3)!.accepted).toHaveLength(0);
    const otherWay = await dial(net, { from: 3, to: 1 });
    otherWay.write('3 reaches 1');
    await eventually(() => peers.get(1)!.received() === '3 reaches 1', '3 -> 1 during the cut');

    net.heal();
    await eventually(() => peers.get(3)!.received() === 'sent during the cut', 'held connection after heal');
    const fresh = await dial(net, { from: 1, to: 3 });
    fresh.write('+fresh');
    await eventually(() => peers.get(3)!.received() === 'sent during the cut+fresh', 'new connection after heal');
  });

  it('cut() covers the client link between two nodes too; cutClients() cuts a node off from its clients both ways', async () => {
    const { net, clients } = await start();
    net.cut(2, 3);
    const nodeClient = await dial(net, { from: 2, to: 3, port: 'clientPort' });
    nodeClient.write('heartbeat');
    const client = await dialAddress(net.clientAddressOf(3));
    client.write('produce');
    await eventually(() => clients.get(3)!.received() === 'produce', 'client bytes while 2 -/-> 3');
    const atThree = clients.get(3)!.accepted[0]!;

    net.cutClients(3);
    client.write(' more');
    atThree.socket.write('answer');
    const late = await dialAddress(net.clientAddressOf(3));
    late.write('late');
    await sleep(holdMs);
    expect(clients.get(3)!.received()).toBe('produce');
    expect(client.received).toBe('');
    expect(late.received).toBe('');

    net.heal();
    await eventually(() => client.received === 'answer', 'answer after heal');
    await eventually(() => ['heartbeat', 'produce more', 'late'].every((text) => clients.get(3)!.accepted.some((entry) => entry.received === text)), 'everything held');
  });

  it('slow() delays every chunk of its direction by at least delayMs', async () => {
    const { net, peers } = await start();
    const socket = await dial(net, { from: 1, to: 2 });
    socket.write('warm');
    await eventually(() => peers.get(2)!.received() === 'warm', 'warm-up');
    const delayMs = 120;
    net.slow(1, 2, { delayMs, jitterMs: 30 });
    for (const round of [1, 2, 3]) {
      const startedMs = performance.now();
      socket.write(`;${round}`);
      await eventually(() => peers.get(2)!.received().endsWith(`;${round}`), `round ${round}`);
      expect(performance.now() - startedMs).toBeGreaterThanOrEqual(delayMs);
    }
    // The other direction is not slowed: an answer from 2 comes back with no added delay, in order.
    peers.get(2)!.accepted[0]!.socket.write('a');
    peers.get(2)!.accepted[0]!.socket.write('b');
    await eventually(() => socket.received === 'ab', 'answers');
  });

  it('lossy() resets some connections of its direction, and counts them', async () => {
    const { net, peers } = await start({ seed: 11 });
    net.lossy(1, 2, { resetRate: 0.5 });
    const connections = await Promise.all(Array.from({ length: 12 }, () => dial(net, { from: 1, to: 2 })));
    let reset = 0;
    for (const socket of connections) socket.once('close', () => reset++);
    for (const socket of connections) socket.write('x');
    await eventually(() => reset + peers.get(2)!.received().length === 12, 'every chunk forwarded or its connection reset');
    await sleep(holdMs);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThan(12);
    expect(net.stats().find((entry) => entry.link === '1->2')!.resets).toBe(reset);
    expect(peers.get(2)!.received()).toBe('x'.repeat(12 - reset));
  });

  it('close() stops every listener and leaves no socket, server or timer behind', async () => {
    const handles = trackHandles();
    const { net, peers } = await start();
    const addresses = net.nodeIds.flatMap((id) => [net.clientAddressOf(id), ...net.nodeIds.filter((to) => to !== id).flatMap((to) => {
      const entry = entryOf(net, { of: id, to });
      return [`${entry.host}:${entry.peerPort}`, `${entry.host}:${entry.clientPort}`];
    })]);
    expect(addresses).toHaveLength(3 + 3 * 2 * 2);
    net.slow(1, 2, { delayMs: 10_000, jitterMs: 0 });
    net.cut(2, 1);
    const open = [await dial(net, { from: 1, to: 2 }), await dial(net, { from: 1, to: 3 }), await dial(net, { from: 2, to: 1 })];
    open[0]!.write('delayed');
    open[1]!.write('fine');
    open[2]!.write('held');
    await eventually(() => peers.get(2)!.accepted.length === 1 && peers.get(3)!.received() === 'fine', 'connections');
    const closed = open.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    await net.close();
    await Promise.all(closed);
    for (const address of addresses) await expect(dialAddress(address)).rejects.toThrow(/ECONNREFUSED/);
    await eventually(() => handles.live().length === 0, 'every handle of the network gone');
    handles.stop();
  });

  it('isolate, partition and bridge cut both ways between the groups they name, and nothing else', () => {
    const cuts: string[] = [];
    const recorder = { nodeIds: [1, 2, 3, 4, 5], cut: (from: number, to: number) => cuts.push(`${from}->${to}`) } as unknown as ChaosNetwork;
    const take = (): string[] => cuts.splice(0).sort();
    isolate(recorder, 2);
    expect(take()).toEqual(['1->2', '2->1', '2->3', '2->4', '2->5', '3->2', '4->2', '5->2']);
    partition(recorder, [1, 2, 3], [4, 5]);
    expect(take()).toEqual(['1->4', '1->5', '2->4', '2->5', '3->4', '3->5', '4->1', '4->2', '4->3', '5->1', '5->2', '5->3']);
    bridge(recorder, [1, 2], [4, 5], 3);
    expect(take()).toEqual(['1->4', '1->5', '2->4', '2->5', '4->1', '4->2', '5->1', '5->2']);
    bridge(recorder, 1, 3, 2);
    expect(take()).toEqual(['1->3', '3->1']);
    oneWay(recorder, 4, 1);
    expect(take()).toEqual(['4->1']);
    expect(() => partition(recorder, [1, 2], [2, 3])).toThrow(RangeError);
    expect(() => bridge(recorder, [1], [3], 3)).toThrow(RangeError);
  });

  it('refuses a link a node does not have and faults out of range', async () => {
    const { net } = await start();
    expect(() => net.cut(1, 1)).toThrow(RangeError);
    expect(() => net.cut(1, 9)).toThrow(RangeError);
    expect(() => net.cutClients(9)).toThrow(RangeError);
    expect(() => net.slow(1, 2, { delayMs: -1, jitterMs: 0 })).toThrow(RangeError);
    expect(() => net.lossy(1, 2, { resetRate: 2 })).toThrow(RangeError);
  });
});

/**
 * trackHandles follows the sockets, servers and timers the network's own modules open: those created
 * with one of its files on the stack, and those created on behalf of one (a server listening after
 * its address lookup, the sockets it accepts). live() lists those still open.
 */
function trackHandles(): { live(): string[]; stop(): void } {
  const ours = new Set<number>();
  const live = new Map<number, string>();
  const handleTypes = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP']);
  const carrierTypes = new Set(['TickObject', 'Immediate', 'GETADDRINFOREQWRAP', 'TCPCONNECTWRAP']);
  const networkModule = /chaos[\\/]net[\\/][a-z-]+\.ts/;
  const hook = createHook({
    init(asyncId, type, triggerAsyncId) {
      if (!handleTypes.has(type) && !carrierTypes.has(type)) return;
      if (!ours.has(triggerAsyncId) && !networkModule.test(stackOfDepth(40))) return;
      ours.add(asyncId);
      if (handleTypes.has(type)) live.set(asyncId, type);
    },
    destroy(asyncId) {
      live.delete(asyncId);
    },
  });
  hook.enable();
  return { live: () => [...live.values()], stop: () => hook.disable() };
}

function stackOfDepth(depth: number): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = depth;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack;
}
