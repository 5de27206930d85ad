// Node roles on real processes: a broker-only node follows the metadata quorum as a learner and
// registers with the controller; a controller-only node votes but hosts no partition.
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster } from './process-cluster.js';

let cluster: ProcessCluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('node roles', () => {
  it('a broker-only node is a learner of the metadata quorum and hosts replicas; a controller-only node hosts none', async () => {
    cluster = await ProcessCluster.create({ nodes: 4, roles: [['controller', 'broker'], ['controller', 'broker'], ['controller'], ['broker']] });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    expect(leader.voters).toEqual([1, 2, 3]);
    expect(leader.learners).toEqual([4]);
    const admin = cluster.admin({});
    const brokers = await cluster.waitFor(
      async () => {
        const described = await admin.describeCluster();
        const unfenced = described.brokers.filter((broker) => !broker.fenced).map((broker) => broker.id);
        return unfenced.length === 3 ? unfenced : undefined;
      },
      20_000,
      'three unfenced brokers',
    );
    expect(brokers).toEqual([1, 2, 4]);
    const topic = await admin.createTopic({ name: 'roles', partitions: 6, replicationFactor: 3 });
    for (const partition of topic.partitions) expect([...partition.replicas].sort()).toEqual([1, 2, 4]);
    const learner = await cluster.describe(4);
    expect(learner?.role).toBe('follower');
    await cluster.waitFor(async () => ((await cluster!.describe(4))?.appliedIndex ?? 0) >= leader.appliedIndex || undefined, 10_000, 'the learner to apply the metadata log');
  });
});
