// The chaos network: a fault-injecting TCP proxy on every link of a cluster of real node processes.
// Node i reaches node j only through proxies of its own (one for j's peer port, one for j's client
// port), named in node i's cluster file; clients reach node j only through j's client proxy, which j
// advertises. Faults belong to directions, not to proxies: cut(1, 2) holds every byte node 1 sends
// node 2, on connections 1 opened (its requests) and on connections 2 opened (its answers), and
// nothing of what 2 sends 1, as a one-way packet filter would.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClusterConfig, ClusterNode } from '../../src/node/cluster-file.js';
import { Direction, healthyFaults } from './direction.js';
import { FaultProxy } from './proxy.js';

export interface ChaosNetwork {
  /** clusterFileOf(id): the path of node id's cluster file. */
  clusterFileOf(id: number): string;
  /** clientAddressOf(id): host:port clients use to reach node id (its client proxy). */
  clientAddressOf(id: number): string;
  /** nodeIds in the cluster. */
  readonly nodeIds: readonly number[];
  /**
   * cut(from, to): bytes from node `from` to node `to` stop (both their peer and client links in that
   * direction). Bytes already sent are held, not forwarded, and new connections `from` opens to `to`
   * wait unopened: nobody is told (no reset), as behind a real partition, so each side must notice
   * through its own timeouts (election, keepalive, deadlines); on heal what was held flows, late.
   */
  cut(from: number, to: number): void;
  /** cutClients(node): clients cannot reach node (and its answers do not reach them). */
  cutClients(node: number): void;
  /** slow(from, to, { delayMs, jitterMs }): add latency to every chunk on that direction. */
  slow(from: number, to: number, options: { delayMs: number; jitterMs: number }): void;
  /** lossy(from, to, { resetRate }): reset a connection of that direction with this probability per chunk. */
  lossy(from: number, to: number, options: { resetRate: number }): void;
  /** heal(): every link back to normal. */
  heal(): void;
  /** stats: per direction (`1->2`, `clients->1`, `1->clients`), bytes forwarded and connections reset. */
  stats(): { link: string; bytes: number; resets: number }[];
  close(): Promise<void>;
}

/** proxyHost is where every proxy listens; the chaos harness runs the whole cluster on one machine. */
export const proxyHost = '127.0.0.1';

/** clientsName names the clients' end of a direction (`clients->1`). */
const clientsName = 'clients';

/**
 * startChaosNetwork starts every proxy of the cluster and writes each node's cluster file into dir
 * (`node-<id>.cluster.json`). random drives jitter and loss. Throws (after closing what it started)
 * when a proxy cannot listen or a file cannot be written.
 */
export async function startChaosNetwork(options: { cluster: ClusterConfig; dir: string; random: () => number }): Promise<ChaosNetwork> {
  const network = new ProxiedNetwork(options.cluster, options.dir, options.random);
  try {
    await network.start();
    return network;
  } catch (error) {
    await network.close();
    throw error;
  }
}

interface NodeLinks {
  /** peer, client: the proxies node `from` uses to reach one other node. */
  readonly peer: FaultProxy;
  readonly client: FaultProxy;
}

class ProxiedNetwork implements ChaosNetwork {
  readonly nodeIds: readonly number[];
  private readonly nodes: ReadonlyMap<number, ClusterNode>;
  private readonly directions = new Map<string, Direction>();
  /** links.get(`${from}->${to}`): the proxies of node from to node to. */
  private readonly links = new Map<string, NodeLinks>();
  private readonly clientProxies = new Map<number, FaultProxy>();
  private readonly proxies: FaultProxy[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly dir: string,
    private readonly random: () => number,
  ) {
    this.nodeIds = Object.freeze(cluster.nodes.map((node) => node.id));
    this.nodes = new Map(cluster.nodes.map((node) => [node.id, node]));
    if (this.nodes.size !== cluster.nodes.length || this.nodes.size === 0) throw new RangeError('cluster: give at least one node, with unique ids');
    for (const from of this.nodeIds) {
      for (const to of this.nodeIds) if (from !== to) this.addDirection(`${from}->${to}`);
      this.addDirection(`${clientsName}->${from}`);
      this.addDirection(`${from}->${clientsName}`);
    }
  }

  async start(): Promise<void> {
    const reservedPorts = new Set(this.cluster.nodes.flatMap((node) => [node.peerPort, node.clientPort]));
    for (const to of this.cluster.nodes) {
      const target = (port: number) => ({ host: to.host, port });
      const listen = async (forward: string, reverse: string, port: number): Promise<FaultProxy> => {
        const proxy = await FaultProxy.listen({ host: proxyHost, target: target(port), forward: this.direction(forward), reverse: this.direction(reverse), random: this.random, reservedPorts });
        this.proxies.push(proxy);
        return proxy;
      };
      this.clientProxies.set(to.id, await listen(`${clientsName}->${to.id}`, `${to.id}->${clientsName}`, to.clientPort));
      for (const from of this.nodeIds) {
        if (from === to.id) continue;
        const peer = await listen(`${from}->${to.id}`, `${to.id}->${from}`, to.peerPort);
        const client = await listen(`${from}->${to.id}`, `${to.id}->${from}`, to.clientPort);
        this.links.set(`${from}->${to.id}`, { peer, client });
      }
    }
    await mkdir(this.dir, { recursive: true });
    for (const id of this.nodeIds) await writeFile(this.clusterFileOf(id), `${JSON.stringify(this.clusterFileFor(id), null, 2)}\n`);
  }

  clusterFileOf(id: number): string {
    this.node(id);
    return path.join(this.dir, `node-${id}.cluster.json`);
  }

  clientAddressOf(id: number): string {
    this.node(id);
    return `${proxyHost}:${this.clientProxies.get(id)!.port}`;
  }

  cut(from: number, to: number): void {
    this.nodeDirection(from, to).update({ cut: true });
  }

  cutClients(node: number): void {
    this.node(node);
    this.direction(`${clientsName}->${node}`).update({ cut: true });
    this.direction(`${node}->${clientsName}`).update({ cut: true });
  }

  slow(from: number, to: number, options: { delayMs: number; jitterMs: number }): void {
    this.nodeDirection(from, to).update({ delayMs: options.delayMs, jitterMs: options.jitterMs });
  }

  lossy(from: number, to: number, options: { resetRate: number }): void {
    this.nodeDirection(from, to).update({ resetRate: options.resetRate });
  }

  heal(): void {
    for (const direction of this.directions.values()) direction.update(healthyFaults);
  }

  stats(): { link: string; bytes: number; resets: number }[] {
    return [...this.directions.values()].map((direction) => ({ link: direction.name, bytes: direction.bytes, resets: direction.resets }));
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(this.proxies.map((proxy) => proxy.close())).then(() => undefined);
    return this.closing;
  }

  /**
   * clusterFileFor is node id's cluster file: its own entry as it is, every other node at the
   * proxies of the link id -> other.
   */
  private clusterFileFor(id: number): object {
    const nodes = this.cluster.nodes.map((node) => {
      const fields = { id: node.id, host: node.host, peerPort: node.peerPort, clientPort: node.clientPort, roles: [...node.roles], dataDir: node.dataDir };
      const proxied = node.id === id ? fields : { ...fields, host: proxyHost, ...this.proxiedPorts(id, node.id) };
      return node.rack === undefined ? proxied : { ...proxied, rack: node.rack };
    });
    return { clusterId: this.cluster.clusterId, nodes };
  }

  private proxiedPorts(from: number, to: number): { peerPort: number; clientPort: number } {
    const links = this.links.get(`${from}->${to}`)!;
    return { peerPort: links.peer.port, clientPort: links.client.port };
  }

  private addDirection(name: string): void {
    this.directions.set(name, new Direction(name));
  }

  private direction(name: string): Direction {
    const direction = this.directions.get(name);
    if (direction === undefined) throw new Error(`no direction ${name}`);
    return direction;
  }

  /** nodeDirection is the direction from -> to between two distinct nodes; throws RangeError otherwise. */
  private nodeDirection(from: number, to: number): Direction {
    this.node(from);
    this.node(to);
    if (from === to) throw new RangeError(`a node has no link to itself (node ${from})`);
    return this.direction(`${from}->${to}`);
  }

  private node(id: number): ClusterNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new RangeError(`node ${id} is not in the cluster; its nodes are ${this.nodeIds.join(', ')}`);
    return node;
  }
}

/** isolate cuts node off from every other node, both ways (its clients still reach it). */
export function isolate(net: ChaosNetwork, node: number): void {
  for (const other of net.nodeIds) {
    if (other === node) continue;
    net.cut(node, other);
    net.cut(other, node);
  }
}

/** partition cuts every node of groupA off from every node of groupB, both ways. Throws RangeError if the groups share a node. */
export function partition(net: ChaosNetwork, groupA: readonly number[], groupB: readonly number[]): void {
  const shared = groupA.filter((id) => groupB.includes(id));
  if (shared.length > 0) throw new RangeError(`partition: node(s) ${shared.join(', ')} cannot be on both sides`);
  for (const a of groupA) {
    for (const b of groupB) {
      net.cut(a, b);
      net.cut(b, a);
    }
  }
}

/**
 * bridge cuts a off from b, both ways, while both still see bridgeNode (Jepsen's bridge: two halves
 * joined by one node). a and b are nodes or groups of nodes. Throws RangeError if bridgeNode is in a
 * or b, or they share a node.
 */
export function bridge(net: ChaosNetwork, a: number | readonly number[], b: number | readonly number[], bridgeNode: number): void {
  const groupA = typeof a === 'number' ? [a] : a;
  const groupB = typeof b === 'number' ? [b] : b;
  if (groupA.includes(bridgeNode) || groupB.includes(bridgeNode)) throw new RangeError(`bridge: the bridge node ${bridgeNode} cannot be on either side`);
  partition(net, groupA, groupB);
}

/** oneWay cuts the direction from -> to only: to still reaches from. */
export function oneWay(net: ChaosNetwork, from: number, to: number): void {
  net.cut(from, to);
}
