// The KRaft-style controller on real processes: failover of the active controller after kill -9
// (metadata intact, admin requests served again), retried creates after a failover, fencing of a
// silent broker and its return, and graceful stops of a broker and of the active controller.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterDescription, TopicDescription } from '../../src/client/admin.js';
import { BrokerClient } from '../../src/client/broker-client.js';
import { RaftbusError, TopicExistsError } from '../../src/errors.js';
import { ProcessCluster } from './process-cluster.js';

/** A short session so that fencing a silent broker takes ~2 s instead of the default 6 s. */
const sessionTimeoutMs = 2000;
/** Slack on top of the session timeout: the fence check period, a commit, and a loaded machine. */
const fenceSlackMs = 3000;

let cluster: ProcessCluster | undefined;

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    for (const id of cluster.nodes.keys()) console.log(`--- node ${id} output (tail)\n${cluster.output(id).split('\n').slice(-40).join('\n')}`);
  }
  await cluster?.close();
  cluster = undefined;
});

async function startCluster(): Promise<ProcessCluster> {
  cluster = await ProcessCluster.create({ nodes: 3, extraArgs: ['--session-timeout-ms', String(sessionTimeoutMs)] });
  cluster.startAll();
  await cluster.waitForLeader();
  await waitForBrokers(cluster, (view) => [1, 2, 3].every((id) => view.brokers.some((broker) => broker.id === id && !broker.fenced)), 'every broker registered and unfenced');
  return cluster;
}

function describeClusterOn(c: ProcessCluster, id: number): Promise<ClusterDescription> {
  return c.client(id).call<ClusterDescription>('DescribeCluster', {});
}

async function describeTopicsOn(c: ProcessCluster, id: number): Promise<TopicDescription[]> {
  const response = await c.client(id).call<{ topics: TopicDescription[] }>('DescribeTopics', { names: [] });
  return response.topics;
}

/** waitForBrokers polls describeCluster on every live node until each view satisfies check; returns the leader's view. */
async function waitForBrokers(c: ProcessCluster, check: (view: ClusterDescription) => boolean, what: string, timeoutMs = 15_000): Promise<ClusterDescription> {
  return c.waitFor(
    async () => {
      const leader = await c.waitForLeader();
      const live = c.liveIds();
      const views = await Promise.all(live.map((id) => describeClusterOn(c, id).catch(() => undefined)));
      if (!views.every((view) => view !== undefined && check(view))) return undefined;
      return views[live.indexOf(leader.nodeId)];
    },
    timeoutMs,
    what,
  );
}

/**
 * callController sends an Admin call to the group-0 leader, again while it is not (yet) the active
 * controller or unreachable; resolves with the answer and the node that gave it.
 */
async function callController<T>(c: ProcessCluster, method: string, request: object, timeoutMs = 15_000): Promise<{ value: T; nodeId: number }> {
  return c.waitFor(
    async () => {
      const leader = await c.waitForLeader();
      try {
        return { value: await c.client(leader.nodeId).call<T>(method, request), nodeId: leader.nodeId };
      } catch (error) {
        if (error instanceof RaftbusError && error.retriable) return undefined;
        throw error;
      }
    },
    timeoutMs,
    `${method} on the active controller`,
  );
}

/** shape is what must survive a failover: ids, partitions, replicas and configs (leaders may move). */
function shape(topics: readonly TopicDescription[]): unknown[] {
  return [...topics]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((topic) => ({
      name: topic.name,
      topicId: topic.topicId,
      replicas: topic.partitions.map((partition) => ({ partition: partition.partition, replicas: [...partition.replicas] })),
      configs: Object.fromEntries(Object.entries(topic.configs).sort(([a], [b]) => a.localeCompare(b))),
    }));
}

/** expectTopicsOn polls node id until its topics have the expected shape (it may still be applying), else fails showing the difference. */
async function expectTopicsOn(c: ProcessCluster, id: number, expected: unknown[], timeoutMs = 10_000): Promise<void> {
  let last: unknown[] = [];
  try {
    await c.waitFor(
      async () => {
        last = shape(await describeTopicsOn(c, id).catch(() => []));
        return JSON.stringify(last) === JSON.stringify(expected) ? true : undefined;
      },
      timeoutMs,
      `node ${id} to hold the expected topics`,
    );
  } catch {
    expect(last, `topics on node ${id}`).toEqual(expected);
  }
}

/** leadersOf counts the partitions broker leads. */
function leadersOf(topics: readonly TopicDescription[], broker: number): number {
  return topics.reduce((count, topic) => count + topic.partitions.filter((partition) => partition.leader === broker).length, 0);
}

/** expectLeadershipsMoved: no partition is led by `gone` if another usable replica exists; a partition without one has no leader. */
function expectLeadershipsMoved(topics: readonly TopicDescription[], view: ClusterDescription, gone: number): void {
  const usable = new Set(view.brokers.filter((broker) => !broker.fenced && !broker.inControlledShutdown).map((broker) => broker.id));
  for (const topic of topics) {
    for (const partition of topic.partitions) {
      const where = `${topic.name}-${partition.partition} replicas [${partition.replicas.join(',')}]`;
      expect(partition.leader, where).not.toBe(gone);
      if (partition.replicas.some((id) => id !== gone && usable.has(id))) expect(usable.has(partition.leader), `${where} led by usable broker, not ${partition.leader}`).toBe(true);
      else expect(partition.leader, `${where} has no usable replica`).toBe(0);
    }
  }
}

async function createSomeTopics(c: ProcessCluster): Promise<void> {
  const admin = c.admin();
  await admin.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3, configs: { 'retention.ms': '3600000' } });
  await admin.createTopic({ name: 'events', partitions: 4, replicationFactor: 2, configs: { 'compression.type': 'lz4' } });
  await admin.createTopic({ name: 'solo', partitions: 3, replicationFactor: 1 });
  await admin.createTopic({ name: 'doomed', partitions: 1, replicationFactor: 1 });
  await admin.createPartitions('events', 6);
  await admin.alterConfigs('orders', { set: { 'max.message.bytes': '2097152' } });
  await admin.deleteTopic('doomed');
}

describe('controller on real processes', () => {
  it('kill -9 of the active controller: a standby takes over with every topic intact, and admin requests succeed again', async () => {
    const c = await startCluster();
    await createSomeTopics(c);
    const admin = c.admin();
    const first = await c.waitForLeader();
    expect((await admin.describeCluster()).controllerId).toBe(first.nodeId);
    const before = await describeTopicsOn(c, first.nodeId);
    expect(before.map((topic) => topic.name).sort()).toEqual(['events', 'orders', 'solo']);
    for (const id of c.liveIds()) await expectTopicsOn(c, id, shape(before));

    await c.kill(first.nodeId);
    const survivors = [1, 2, 3].filter((id) => id !== first.nodeId);
    const second = await c.waitForLeader({ among: survivors, notTerm: first.term });
    expect(second.nodeId).not.toBe(first.nodeId);
    expect(second.term).toBeGreaterThan(first.term);
    const view = await c.waitFor(async () => {
      const cluster = await admin.describeCluster();
      return cluster.controllerId === second.nodeId ? cluster : undefined;
    }, 10_000, 'describeCluster to name the new controller');
    expect(view.controllerId).not.toBe(first.nodeId);
    for (const id of survivors) await expectTopicsOn(c, id, shape(before));

    // Admin requests succeed again, on the new controller, and every survivor sees their result.
    const created = await admin.createTopic({ name: 'after-failover', partitions: 2, replicationFactor: 2 });
    const altered = await admin.alterConfigs('events', { set: { 'retention.ms': '60000' } });
    expect(altered.configs['retention.ms']).toBe('60000');
    const grown = await admin.createPartitions('orders', 8);
    expect(grown.partitions).toHaveLength(8);
    await admin.deleteTopic('solo');
    const after = await describeTopicsOn(c, second.nodeId);
    expect(after.map((topic) => topic.name).sort()).toEqual(['after-failover', 'events', 'orders']);
    expect(after.find((topic) => topic.name === 'after-failover')!.topicId).toBe(created.topicId);
    for (const id of survivors) await expectTopicsOn(c, id, shape(after));

    // The old controller comes back as a standby and catches up on what happened without it.
    c.start(first.nodeId);
    await expectTopicsOn(c, first.nodeId, shape(after), 15_000);
    expect((await c.waitForLeader()).nodeId).toBe(second.nodeId);
  });

  it('SDK reads (listTopics, describeTopics) are answered by a live node after the controller the Admin knew is killed', async () => {
    const c = await startCluster();
    await createSomeTopics(c);
    const first = await c.waitForLeader();
    // An Admin that has learned the controller (reads go to it), with retries bounded to keep the test short.
    const reader = c.admin({ retryForMs: 3000 });
    expect(await reader.listTopics()).toEqual(['events', 'orders', 'solo']);
    expect((await reader.describeCluster()).controllerId).toBe(first.nodeId);

    await c.kill(first.nodeId);
    await c.waitForLeader({ among: [1, 2, 3].filter((id) => id !== first.nodeId), notTerm: first.term });
    // Two live nodes hold the metadata: a read must not keep retrying the dead node until it gives up.
    const listStartMs = Date.now();
    const listed = await reader.listTopics().catch((error: unknown) => error);
    expect(listed, `listTopics after ${Date.now() - listStartMs} ms`).toEqual(['events', 'orders', 'solo']);
    const described = await reader.describeTopics().catch((error: unknown) => error);
    expect((described as { topics?: TopicDescription[] }).topics?.map((topic) => topic.name), String(described)).toEqual(['events', 'orders', 'solo']);
  });

  it('a create retried with the same request id after a failover answers the same topic; another id gets TopicExistsError', async () => {
    const c = await startCluster();
    const first = await c.waitForLeader();
    const requestId = randomUUID();
    const request = { name: 'retried', partitions: 3, replicationFactor: 2, configs: { 'retention.ms': '120000' }, requestId };
    const { value: original, nodeId: firstController } = await callController<TopicDescription>(c, 'CreateTopic', request);
    expect(firstController).toBe(first.nodeId);
    expect(original.name).toBe('retried');

    await c.kill(first.nodeId);
    const survivors = [1, 2, 3].filter((id) => id !== first.nodeId);
    const second = await c.waitForLeader({ among: survivors, notTerm: first.term });
    expect(second.nodeId).not.toBe(first.nodeId);
    const { value: retried, nodeId: retriedOn } = await callController<TopicDescription>(c, 'CreateTopic', request);
    expect(retriedOn).toBe(second.nodeId);
    expect(retried.topicId).toBe(original.topicId);
    expect(retried.partitions.map((partition) => partition.replicas)).toEqual(original.partitions.map((partition) => partition.replicas));
    for (const id of survivors) {
      // Each node answers from its own copy, and a follower learns the last commits with its
      // leader's next append: wait until it lists a topic, then it must hold exactly this one.
      const names = async (): Promise<string[]> => (await c.client(id).call<{ names: string[] }>('ListTopics', {})).names;
      await c.waitFor(async () => ((await names()).length > 0 ? true : undefined), 10_000, `node ${id} to apply the topic`);
      expect(await names(), `topics on node ${id}`).toEqual(['retried']);
      const topics = await describeTopicsOn(c, id);
      expect(topics.map((topic) => topic.topicId)).toEqual([original.topicId]);
    }

    // The same name with another request id is a different request: the topic exists.
    await expect(callController(c, 'CreateTopic', { ...request, requestId: randomUUID() })).rejects.toBeInstanceOf(TopicExistsError);
    await expect(c.admin().createTopic({ name: 'retried', partitions: 3, replicationFactor: 2 })).rejects.toBeInstanceOf(TopicExistsError);

    // A create whose answer is lost in a kill -9 of the controller: the retry with the same id creates exactly one topic.
    c.start(first.nodeId);
    await c.waitFor(async () => ((await c.describe(first.nodeId))?.leaderId === second.nodeId ? true : undefined), 15_000, `node ${first.nodeId} to follow again`);
    const inFlight = { name: 'in-flight', partitions: 2, replicationFactor: 2, configs: {}, requestId: randomUUID() };
    const lost = c.client(second.nodeId).call<TopicDescription>('CreateTopic', inFlight).then(
      (answer) => answer,
      () => undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    await c.kill(second.nodeId);
    const third = await c.waitForLeader({ among: [1, 2, 3].filter((id) => id !== second.nodeId), notTerm: second.term });
    const { value: answered, nodeId: answeredBy } = await callController<TopicDescription>(c, 'CreateTopic', inFlight);
    expect(answeredBy).toBe(third.nodeId);
    const lostAnswer = await lost;
    if (lostAnswer !== undefined) expect(answered.topicId).toBe(lostAnswer.topicId);
    // Every live node ends up with the two topics, 'in-flight' under the id the retry answered (a
    // second create would have been refused by name, or have shown a different id somewhere).
    for (const id of c.liveIds()) {
      const topics = await c.waitFor(async () => {
        const now = await describeTopicsOn(c, id).catch(() => []);
        return now.some((topic) => topic.name === 'in-flight') ? now : undefined;
      }, 5000, `node ${id} to apply the create of in-flight`);
      expect(topics.map((topic) => [topic.name, topic.topicId]), `node ${id} (leader ${third.nodeId})`).toEqual([
        ['in-flight', answered.topicId],
        ['retried', original.topicId],
      ]);
    }
  });

  it('kill -9 of a broker: fenced within the session timeout, its leaderships moved; on restart unfenced with a higher epoch', async () => {
    const c = await startCluster();
    const admin = c.admin();
    await admin.createTopic({ name: 'wide', partitions: 6, replicationFactor: 3 });
    await admin.createTopic({ name: 'pairs', partitions: 6, replicationFactor: 2 });
    await admin.createTopic({ name: 'single', partitions: 3, replicationFactor: 1 });
    const controller = await c.waitForLeader();
    const topics = await describeTopicsOn(c, controller.nodeId);
    const victim = [1, 2, 3].filter((id) => id !== controller.nodeId).sort((a, b) => leadersOf(topics, b) - leadersOf(topics, a))[0]!;
    expect(leadersOf(topics, victim), `broker ${victim} leads partitions`).toBeGreaterThan(0);
    const before = (await describeClusterOn(c, controller.nodeId)).brokers.find((broker) => broker.id === victim)!;
    expect(before.fenced).toBe(false);

    const killedAtMs = Date.now();
    await c.kill(victim);
    const fencedView = await waitForBrokers(c, (view) => view.brokers.find((broker) => broker.id === victim)?.fenced === true, `broker ${victim} fenced`, sessionTimeoutMs + fenceSlackMs);
    const fencedAfterMs = Date.now() - killedAtMs;
    // Not before the session ran out (less a heartbeat interval or two of a busy machine), not much after.
    expect(fencedAfterMs, 'ms from kill -9 to fenced').toBeGreaterThanOrEqual(sessionTimeoutMs - 1000);
    expect(fencedAfterMs, 'ms from kill -9 to fenced').toBeLessThan(sessionTimeoutMs + fenceSlackMs);
    expect(fencedView.brokers.find((broker) => broker.id === victim)!.leaders).toBe(0);
    for (const id of c.liveIds()) {
      await c.waitFor(async () => (leadersOf(await describeTopicsOn(c, id), victim) === 0 ? true : undefined), 5000, `node ${id} to see no leadership on ${victim}`);
      expectLeadershipsMoved(await describeTopicsOn(c, id), fencedView, victim);
    }
    expect(await admin.createTopic({ name: 'while-fenced', partitions: 2 })).toMatchObject({ name: 'while-fenced' });

    c.start(victim);
    const back = await waitForBrokers(c, (view) => view.brokers.some((broker) => broker.id === victim && !broker.fenced && broker.epoch > before.epoch), `broker ${victim} unfenced with a new epoch`);
    expect(back.brokers.find((broker) => broker.id === victim)!.epoch).toBeGreaterThan(before.epoch);
    // An unfenced broker takes back the partitions it prefers (first replica) and leaderless ones.
    const restored = await c.waitFor(async () => {
      const now = await describeTopicsOn(c, controller.nodeId);
      return now.every((topic) => topic.partitions.every((partition) => partition.replicas[0] !== victim || partition.leader === victim)) ? now : undefined;
    }, 5000, `broker ${victim} to lead its preferred partitions again`);
    expect(restored.flatMap((topic) => topic.partitions).every((partition) => partition.leader !== 0)).toBe(true);
  });

  it('SIGTERM of a broker: the controller releases it and moves its leaderships, and it exits 0 within seconds', async () => {
    const c = await startCluster();
    const admin = c.admin();
    await admin.createTopic({ name: 'wide', partitions: 6, replicationFactor: 3 });
    await admin.createTopic({ name: 'single', partitions: 3, replicationFactor: 1 });
    const controller = await c.waitForLeader();
    const topics = await describeTopicsOn(c, controller.nodeId);
    const victim = [1, 2, 3].filter((id) => id !== controller.nodeId).sort((a, b) => leadersOf(topics, b) - leadersOf(topics, a))[0]!;
    expect(leadersOf(topics, victim), `broker ${victim} leads partitions`).toBeGreaterThan(0);

    // A client keeps a Subscribe stream open on it, as a consumer does: the stop must not wait for it.
    const led = topics.flatMap((topic) => topic.partitions.map((partition) => ({ topic: topic.name, ...partition }))).find((partition) => partition.leader === victim)!;
    const subscriber = new BrokerClient(c.nodes.get(victim)!.clientAddress, 5000);
    // Opened again until it stays open: the victim may not have taken up that leadership yet.
    const subscription = await c.waitFor(async () => {
      const subscription = subscriber.subscribe({ topic: led.topic, partition: led.partition, offset: 0, maxBytes: 1024 });
      let open = true;
      const ended = new Promise<void>((resolve) => {
        subscription.on('error', () => resolve());
        subscription.on('end', () => resolve());
      }).then(() => void (open = false));
      subscription.on('data', () => {});
      await new Promise((resolve) => setTimeout(resolve, 300));
      return open ? { ended } : undefined; // wrapped: a returned promise would be awaited
    }, 10_000, `a Subscribe stream to stay open on node ${victim}`);

    const stopped = await c.stop(victim, { signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(stopped.code).toBe(0);
    expect(stopped.elapsedMs, 'ms from SIGTERM to exit').toBeLessThan(5000);
    await subscription.ended; // the node ended it
    subscriber.close();
    expect(c.output(victim)).toContain('the controller released this broker');
    const released = await waitForBrokers(c, (view) => view.brokers.some((broker) => broker.id === victim && broker.inControlledShutdown && broker.fenced), `broker ${victim} in controlled shutdown`, 5000);
    expect(released.brokers.find((broker) => broker.id === victim)!.leaders).toBe(0);
    for (const id of c.liveIds()) {
      await c.waitFor(async () => (leadersOf(await describeTopicsOn(c, id), victim) === 0 ? true : undefined), 5000, `node ${id} to see no leadership on ${victim}`);
      expectLeadershipsMoved(await describeTopicsOn(c, id), released, victim);
    }
    // The controller keeps it fenced rather than fencing it again on silence, and still serves.
    await new Promise((resolve) => setTimeout(resolve, sessionTimeoutMs + 500));
    const later = await describeClusterOn(c, controller.nodeId);
    expect(later.brokers.find((broker) => broker.id === victim)).toMatchObject({ fenced: true, inControlledShutdown: true, leaders: 0 });
    const created = await admin.createTopic({ name: 'after-release', partitions: 2 });
    expect(created.partitions.every((partition) => !partition.replicas.includes(victim))).toBe(true);

    // Started again, it registers anew and is unfenced, out of controlled shutdown.
    const epochBefore = later.brokers.find((broker) => broker.id === victim)!.epoch;
    c.start(victim);
    await waitForBrokers(c, (view) => view.brokers.some((broker) => broker.id === victim && !broker.fenced && !broker.inControlledShutdown && broker.epoch > epochBefore), `broker ${victim} back and unfenced`);
  });

  it('SIGTERM of the active controller hands group-0 leadership to another node; admin requests keep working', async () => {
    const c = await startCluster();
    const admin = c.admin({ retryForMs: 10_000 });
    await admin.createTopic({ name: 'busy', partitions: 3, replicationFactor: 3 });
    const first = await c.waitForLeader();

    // Admin traffic throughout the handoff: every request must succeed; record how long each took.
    let running = true;
    let written = 0;
    const latencies: { atMs: number; ms: number }[] = [];
    const failures: unknown[] = [];
    const traffic = (async () => {
      while (running) {
        const startMs = Date.now();
        try {
          const next = written + 1;
          await admin.alterConfigs('busy', { set: { 'retention.ms': String(60_000 + next) } });
          written = next;
          await admin.describeCluster();
        } catch (error) {
          failures.push(error);
        }
        latencies.push({ atMs: startMs, ms: Date.now() - startMs });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 500));

    const stopAtMs = Date.now();
    const survivors = [1, 2, 3].filter((id) => id !== first.nodeId);
    let stopped: Awaited<ReturnType<ProcessCluster['stop']>>;
    let second: Awaited<ReturnType<ProcessCluster['waitForLeader']>>;
    let movedAfterMs: number;
    try {
      stopped = await c.stop(first.nodeId, { signal: 'SIGTERM', timeoutMs: 10_000 });
      // Followers start an election only after 1 to 2 s without the leader (20 ticks of 50 ms), so a
      // leader among the survivors within 900 ms of the exit can only come from the handoff.
      second = await c.waitForLeader({ among: survivors, notTerm: first.term, timeoutMs: 900 });
      movedAfterMs = Date.now() - stopAtMs;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      running = false;
      await traffic;
    }

    expect(stopped.code).toBe(0);
    expect(stopped.elapsedMs, 'ms from SIGTERM to exit').toBeLessThan(5000);
    const handoff = c.output(first.nodeId).split('\n').find((line) => line.includes('handing metadata leadership over before stopping'));
    expect(handoff, 'the stopping controller logs its handoff').toBeDefined();
    expect((JSON.parse(handoff!) as { target: number }).target).toBe(second.nodeId);
    expect(second.nodeId).not.toBe(first.nodeId);
    expect(second.term).toBeGreaterThan(first.term);
    expect(movedAfterMs, 'ms from SIGTERM to a new leader followed by the survivors').toBeLessThan(6000);
    expect(failures).toEqual([]);
    const during = latencies.filter((latency) => latency.atMs + latency.ms >= stopAtMs);
    expect(during.length).toBeGreaterThan(0);
    const blipMs = Math.max(...during.map((latency) => latency.ms));
    expect(blipMs, `slowest admin round trip during the handoff (${JSON.stringify(during.slice(0, 10))})`).toBeLessThan(3000);
    const view = await admin.describeCluster();
    expect(view.controllerId).toBe(second.nodeId);
    // The stopping controller is a broker too: it was released (controlled shutdown) before handing off.
    expect(c.output(first.nodeId)).toContain('the controller released this broker');
    expect(view.brokers.find((broker) => broker.id === first.nodeId)).toMatchObject({ fenced: true, inControlledShutdown: true, leaders: 0 });
    for (const id of survivors) {
      await c.waitFor(async () => {
        const topic = (await describeTopicsOn(c, id)).find((candidate) => candidate.name === 'busy');
        return topic?.configs['retention.ms'] === String(60_000 + written) ? true : undefined;
      }, 5000, `node ${id} to hold the last config written (${written} writes)`);
    }
  });
});
