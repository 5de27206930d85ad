// Three real `raftbus node` processes wired through the chaos network: isolating the metadata leader
// elects another among the two that still see each other, and after heal() all three agree again.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodePorts } from '../../src/cluster/free-port.js';
import { Admin } from '../../src/client/admin.js';
import { AdminClient } from '../../src/client/admin-client.js';
import { validateCluster } from '../../src/node/cluster-file.js';
import { seededRandom } from '../../src/raft/prng.js';
import type { QuorumDescription } from '../../src/rpc/admin-service.js';
import { cliPath } from '../../test/node/process-cluster.js';
import { isolate, startChaosNetwork, type ChaosNetwork } from './network.js';
import { pollUntil } from '../../src/cluster/poll.js';

interface Running {
  readonly dir: string;
  readonly net: ChaosNetwork;
  readonly children: Map<number, { child: ChildProcess; output: string[] }>;
  readonly clients: Map<number, AdminClient>;
  readonly admins: Admin[];
}

let running: Running | undefined;

afterEach(async (context) => {
  if (running === undefined) return;
  const { dir, net, children, clients, admins } = running;
  running = undefined;
  if (context.task.result?.state === 'fail') {
    for (const [id, { output }] of children) console.log(`--- node ${id} output (tail)\n${output.join('').split('\n').slice(-30).join('\n')}`);
    console.log(net.stats());
  }
  for (const admin of admins) admin.close();
  for (const client of clients.values()) client.close();
  await Promise.all([...children.values()].map(({ child }) => kill(child)));
  await net.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startCluster(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'raftbus-chaos-net-nodes-'));
  const nodes = [];
  const ports = await nodePorts(3);
  for (const id of [1, 2, 3]) nodes.push({ id, host: '127.0.0.1', ...ports[id - 1]!, roles: ['controller', 'broker'], dataDir: `node-${id}` });
  const validated = validateCluster({ clusterId: 'chaos-net', nodes }, { baseDir: dir });
  if (validated.kind !== 'valid') throw new Error(JSON.stringify(validated.problems));
  const net = await startChaosNetwork({ cluster: validated.cluster, dir: join(dir, 'files'), random: seededRandom(1) });
  const children = new Map<number, { child: ChildProcess; output: string[] }>();
  const clients = new Map<number, AdminClient>();
  running = { dir, net, children, clients, admins: [] };
  for (const id of net.nodeIds) {
    const advertised = net.clientAddressOf(id).split(':')[1]!;
    const args = [cliPath, 'node', '--cluster', net.clusterFileOf(id), '--id', String(id), '--advertised-client-port', advertised, '--log-level', 'info'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const keep = (chunk: Buffer): void => {
      output.push(chunk.toString());
      if (output.length > 2000) output.splice(0, 1000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.set(id, { child, output });
    clients.set(id, new AdminClient(net.clientAddressOf(id), { deadlineMs: 1000 }));
  }
  return running;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}

async function views(cluster: Running, ids: readonly number[]): Promise<(QuorumDescription | undefined)[]> {
  return Promise.all(ids.map((id) => cluster.clients.get(id)!.describeQuorum().catch(() => undefined)));
}

/** agreedLeader is the leader every one of ids follows in one term, or undefined. */
async function agreedLeader(cluster: Running, ids: readonly number[]): Promise<QuorumDescription | undefined> {
  const seen = await views(cluster, ids);
  const leader = seen.find((view) => view?.role === 'leader');
  if (leader === undefined) return undefined;
  return seen.every((view) => view !== undefined && view.leaderId === leader.nodeId && view.term === leader.term) ? leader : undefined;
}

function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  return pollUntil(check, { what, timeoutMs });
}

describe('chaos network on real nodes', () => {
  it('isolating the metadata leader elects another among the other two; after heal all three agree', async () => {
    const cluster = await startCluster();
    const { net } = cluster;
    const first = await waitFor(() => agreedLeader(cluster, net.nodeIds), 'a first leader followed by all three');
    const admin = new Admin({ bootstrap: net.nodeIds.map((id) => net.clientAddressOf(id)), requestTimeoutMs: 2000 });
    cluster.admins.push(admin);
    const brokers = await waitFor(async () => {
      const described = await admin.describeCluster().catch(() => undefined);
      return described !== undefined && described.brokers.filter((broker) => !broker.fenced).length === 3 ? described.brokers : undefined;
    }, 'three unfenced brokers');
    // Each broker registered its client proxy, so clients that follow metadata stay behind the proxies.
    for (const broker of brokers) expect(`${broker.host}:${broker.port}`).toBe(net.clientAddressOf(broker.id));
    await admin.createTopic({ name: 'chaos-net', partitions: 1, replicationFactor: 3 });

    isolate(net, first.nodeId);
    const others = net.nodeIds.filter((id) => id !== first.nodeId);
    const second = await waitFor(async () => {
      const leader = await agreedLeader(cluster, others);
      return leader !== undefined && leader.term > first.term ? leader : undefined;
    }, 'a new leader among the other two');
    expect(others).toContain(second.nodeId);
    // Check-quorum: the isolated leader, hearing from no majority, stops leading.
    await waitFor(async () => ((await views(cluster, [first.nodeId]))[0]?.role === 'leader' ? undefined : true), 'the isolated leader to step down');

    net.heal();
    const healed = await waitFor(() => agreedLeader(cluster, net.nodeIds), 'all three to follow one leader again');
    expect(healed.term).toBeGreaterThanOrEqual(second.term);
    const stats = new Map(net.stats().map((entry) => [entry.link, entry.bytes]));
    for (const other of others) expect(stats.get(`${first.nodeId}->${other}`)).toBeGreaterThan(0);
  });
});
