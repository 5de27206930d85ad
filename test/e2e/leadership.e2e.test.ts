// Partition leadership on an in-process cluster: spread evenly, moved off a broker that stops,
// and balanced back once it returns and has caught up.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { BrokerClient } from '../../src/client/broker-client.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { RaftbusNode } from '../../src/node/node.js';
import { pollUntil } from '../../src/cluster/poll.js';

let cluster: RunningCluster;
let admin: Admin;
const extraNodes: RaftbusNode[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
}, 60_000);

afterAll(async () => {
  admin?.close();
  await Promise.all(extraNodes.map((node) => node.close()));
  await cluster?.close();
});

/** raftLeaders asks each running node which partitions of topic it leads (by Raft). */
function raftLeaders(nodes: readonly RaftbusNode[], topic: string): Map<number, number> {
  const leaders = new Map<number, number>();
  for (const node of nodes) {
    for (const partition of node.partitions?.all() ?? []) {
      if (partition.id.topic !== topic) continue;
      if (node.host.status(partition.id.groupId)?.role === 'leader') leaders.set(partition.id.partition, node.self.id);
    }
  }
  return leaders;
}

function countBy(leaders: Map<number, number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const leader of leaders.values()) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  return counts;
}

async function eventually(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  await pollUntil(check, { what, timeoutMs });
}

describe('partition leadership', () => {
  it('spreads evenly, leaves a stopped broker and comes back to it once it caught up', async () => {
    await admin.createTopic({ name: 'events', partitions: 6, replicationFactor: 3 });
    const running = (): RaftbusNode[] => [...cluster.nodes.filter((node) => !stopped.has(node.self.id)), ...extraNodes];
    const stopped = new Set<number>();
    await eventually(() => raftLeaders(running(), 'events').size === 6, 'every partition has a Raft leader');
    await eventually(() => [...countBy(raftLeaders(running(), 'events')).values()].every((count) => count === 2), 'two leaderships per broker');

    const producer = new Producer({ bootstrap: cluster.bootstrap, lingerMs: 1 });
    await Promise.all(Array.from({ length: 60 }, (_, i) => producer.send({ topic: 'events', partition: i % 6, value: `before-${i}` })));

    const victim = cluster.nodes[2]!;
    await victim.close();
    stopped.add(victim.self.id);
    await eventually(() => raftLeaders(running(), 'events').size === 6 && !new Set(raftLeaders(running(), 'events').values()).has(victim.self.id), 'the stopped broker leads nothing');
    // Writes go on while it is away: each partition has a majority.
    await Promise.all(Array.from({ length: 60 }, (_, i) => producer.send({ topic: 'events', partition: i % 6, value: `during-${i}` })));

    const restarted = await RaftbusNode.start({ cluster: cluster.config, nodeId: victim.self.id, logger: pino({ level: 'silent' }) });
    extraNodes.push(restarted);
    await eventually(() => [...countBy(raftLeaders(running(), 'events')).values()].every((count) => count === 2) && countBy(raftLeaders(running(), 'events')).size === 3, 'leaderships balanced back over three brokers', 30_000);

    // The returned broker holds every record, as it leads again from a caught-up log.
    for (const partition of restarted.partitions!.all().filter((replica) => replica.id.topic === 'events')) {
      await eventually(() => partition.state.highWatermark === 20, `${partition.label} caught up to 20 records`);
    }
    await producer.close();
    const client = new BrokerClient(`127.0.0.1:${restarted.ports.client}`, 5000);
    const metadata = await client.metadata(['events']);
    client.close();
    expect(metadata.topics[0]!.partitions.map((partition) => partition.leader).filter((leader) => leader === victim.self.id)).toHaveLength(2);
  }, 90_000);
});
