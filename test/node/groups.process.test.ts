// Consumer groups on real processes: two SDK consumers of one group share a six-partition topic of
// three `raftbus node` processes and commit after every poll. The group's coordinator (the Raft
// leader of the __consumer_offsets partition the group id hashes to) is killed with kill -9.
// The committed offsets are all there on the new coordinator; the members, heartbeating on,
// keep their member ids, assignments and generation (no rebalance) and keep committing past a
// session timeout. A third consumer forces a rebalance, after which a member speaking for the
// old generation (a zombie) is refused with IllegalGenerationError. The killed node is restarted,
// and the group reads every record at least once and commits up to the log end offsets.
// The members run in the test process, so the kill takes away only their coordinator (and the
// leaders of some partitions), never a member: no rebalance is needed, and none may happen.
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/client/broker-client.js';
import { Consumer } from '../../src/client/consumer.js';
import type { GroupMembership } from '../../src/client/group-membership.js';
import { GroupsAdmin } from '../../src/client/groups-admin.js';
import { Producer } from '../../src/client/producer.js';
import { IllegalGenerationError, UnknownMemberIdError } from '../../src/errors.js';
import { coordinatorPartition } from '../../src/groups/records.js';
import { offsetsTopic } from '../../src/node/group-coordinators.js';
import { groupsServiceName } from '../../src/rpc/groups-service.js';
import { UnaryClient } from '../../src/rpc/unary.js';
import { ProcessCluster } from './process-cluster.js';

const topic = 'payments';
const group = 'settlement';
const partitionCount = 6;
/** recordsPerPhase are produced before the kill, while the coordinator is down, and after its restart. */
const recordsPerPhase = 300;
/** brokerSessionTimeoutMs: the controller fences the killed broker within the test. */
const brokerSessionTimeoutMs = 2000;
/** The members' group timings: short, so that an expired session or a rebalance shows within the test. */
const memberSessionTimeoutMs = 3000;
const memberHeartbeatIntervalMs = 300;
const memberRebalanceTimeoutMs = 5000;
const requestTimeoutMs = 2000;
const phaseTimeoutMs = 20_000;

const decoder = new TextDecoder();

let cluster: ProcessCluster | undefined;
const closers: (() => unknown)[] = [];

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    for (const id of cluster.nodes.keys()) console.log(`--- node ${id} output (tail)\n${cluster.output(id).split('\n').slice(-40).join('\n')}`);
  }
  for (const close of closers.splice(0).reverse()) await Promise.resolve().then(close).catch(() => undefined);
  await cluster?.close();
  cluster = undefined;
});

const brokerClients = new Map<string, BrokerClient>();
const groupsClients = new Map<string, UnaryClient>();

/** brokerClient calls the Broker service of one node, one client per address. */
function brokerClient(address: string): BrokerClient {
  let client = brokerClients.get(address);
  if (client === undefined) {
    const created = new BrokerClient(address, requestTimeoutMs);
    brokerClients.set(address, created);
    closers.push(() => {
      created.close();
      brokerClients.delete(address);
    });
    client = created;
  }
  return client;
}

/** groupsClient calls the Groups service of one node, with no retries and no coordinator lookup. */
function groupsClient(address: string): UnaryClient {
  let client = groupsClients.get(address);
  if (client === undefined) {
    const created = new UnaryClient(address, groupsServiceName, requestTimeoutMs);
    groupsClients.set(address, created);
    closers.push(() => {
      created.close();
      groupsClients.delete(address);
    });
    client = created;
  }
  return client;
}

interface Coordinator {
  readonly nodeId: number;
  readonly address: string;
}

/**
 * agreedCoordinator polls every live node until all answer FindCoordinator with the same live node
 * and all see that node as the Raft leader of the offsets partition the group hashes to.
 */
async function agreedCoordinator(c: ProcessCluster): Promise<Coordinator> {
  return c.waitFor(
    async () => {
      const live = c.liveIds();
      const views = await Promise.all(
        live.map(async (id) => {
          const address = c.nodes.get(id)!.clientAddress;
          const found = await groupsClient(address)
            .call<{ nodeId: number; host: string; port: number }>('FindCoordinator', { group })
            .catch(() => undefined);
          const metadata = await brokerClient(address)
            .metadata([offsetsTopic])
            .catch(() => undefined);
          const partitions = metadata?.topics[0]?.partitions ?? [];
          const leader = partitions.length === 0 ? undefined : partitions[coordinatorPartition(group, partitions.length)]?.leader;
          return { found, leader };
        }),
      );
      const first = views[0]?.found;
      if (first === undefined || !live.includes(first.nodeId)) return undefined;
      if (!views.every((view) => view.found?.nodeId === first.nodeId && view.leader === first.nodeId)) return undefined;
      return { nodeId: first.nodeId, address: `${first.host}:${first.port}` };
    },
    phaseTimeoutMs,
    `every live node to name the same live coordinator of ${group}, the leader of its ${offsetsTopic} partition`,
  );
}

/** offsetFetch asks one node's Groups service (no retries) for the group's committed offsets of the topic, by partition. */
async function offsetFetch(address: string): Promise<number[]> {
  const answer = await groupsClient(address).call<{ offsets: { topic: string; partition: number; offset: number }[] }>('OffsetFetch', { group, partitions: [] });
  const offsets: number[] = Array.from({ length: partitionCount }, () => -1);
  for (const offset of answer.offsets) if (offset.topic === topic) offsets[offset.partition] = offset.offset;
  return offsets;
}

/** highWatermarksAgreed polls every live node until all report the same high watermark for every partition. */
async function highWatermarksAgreed(c: ProcessCluster): Promise<number[]> {
  return c.waitFor(
    async () => {
      const perNode = await Promise.all(
        c.liveIds().map((id) => {
          const client = brokerClient(c.nodes.get(id)!.clientAddress);
          // 'earliest': every replica answers it, with its own high watermark ('latest' only the leader).
          return Promise.all(Array.from({ length: partitionCount }, (_, partition) => client.listOffsets({ topic, partition, spec: 'earliest' }).then((answer) => answer.highWatermark))).catch(() => undefined);
        }),
      );
      const first = perNode[0];
      if (first === undefined || !perNode.every((marks) => marks !== undefined && marks.join() === first.join())) return undefined;
      return first;
    },
    phaseTimeoutMs,
    'every live replica to reach the same high watermarks',
  );
}

/** Member is one SDK consumer of the group and what it has read. */
interface Member {
  readonly name: string;
  readonly consumer: Consumer;
  /** refusedCommits counts commits refused because the member was fenced (a rebalance moved on). */
  refusedCommits: number;
}

function membershipOf(member: Member): GroupMembership {
  return (member.consumer as unknown as { group: GroupMembership }).group;
}

function partitionsOf(member: Member): number[] {
  return member.consumer
    .assignment()
    .map((assigned) => assigned.partition)
    .sort((a, b) => a - b);
}

/**
 * GroupRun holds the cluster of one test, a producer of named records, and the group's members
 * with every record value they read.
 */
class GroupRun {
  readonly members: Member[] = [];
  readonly produced = new Set<string>();
  readonly seen = new Set<string>();

  private constructor(
    readonly cluster: ProcessCluster,
    readonly groupsAdmin: GroupsAdmin,
    private readonly producer: Producer,
  ) {}

  /** start runs three nodes, waits for three unfenced brokers and creates the topic. */
  static async start(): Promise<GroupRun> {
    const c = await ProcessCluster.create({ nodes: 3, extraArgs: ['--session-timeout-ms', String(brokerSessionTimeoutMs)] });
    cluster = c;
    c.startAll();
    await c.waitForLeader();
    const admin = c.admin({ retryForMs: phaseTimeoutMs });
    await c.waitFor(async () => ((await admin.describeCluster().catch(() => undefined))?.brokers.filter((broker) => !broker.fenced).length === 3 ? true : undefined), phaseTimeoutMs, 'three unfenced brokers');
    await admin.createTopic({ name: topic, partitions: partitionCount, replicationFactor: 3 });
    const groupsAdmin = new GroupsAdmin({ bootstrap: c.clientAddresses(), requestTimeoutMs, retryForMs: phaseTimeoutMs });
    closers.push(() => groupsAdmin.close());
    const producer = new Producer({ bootstrap: c.clientAddresses(), acks: 'all', idempotent: true, lingerMs: 5, requestTimeoutMs, deliveryTimeoutMs: 30_000 });
    closers.push(() => producer.close());
    return new GroupRun(c, groupsAdmin, producer);
  }

  /** produce sends recordsPerPhase records named after the phase, spread evenly over the partitions. */
  async produce(phase: string): Promise<void> {
    const values = Array.from({ length: recordsPerPhase }, (_, i) => `${phase}-${i}`);
    await Promise.all(values.map((value, i) => this.producer.send({ topic, partition: i % partitionCount, value })));
    for (const value of values) this.produced.add(value);
  }

  /** addMember creates a consumer of the group, subscribed to the topic, that commits by hand. */
  addMember(): Member {
    const name = `member-${this.members.length + 1}`;
    const consumer = new Consumer({
      bootstrap: this.cluster.clientAddresses(),
      groupId: group,
      clientId: name,
      autoOffsetReset: 'earliest',
      autoCommit: false,
      maxWaitMs: 100,
      requestTimeoutMs,
      sessionTimeoutMs: memberSessionTimeoutMs,
      heartbeatIntervalMs: memberHeartbeatIntervalMs,
      rebalanceTimeoutMs: memberRebalanceTimeoutMs,
    });
    consumer.subscribe([topic]);
    closers.push(() => consumer.close());
    const member = { name, consumer, refusedCommits: 0 };
    this.members.push(member);
    return member;
  }

  /**
   * pollUntil runs each member's poll-and-commit loop on its own (as separate processes would: a
   * member blocked in JoinGroup must not hold the others back from rejoining), does meanwhile,
   * then waits until done() says so. The loops stop before it returns; their heartbeats go on.
   */
  async pollUntil(what: string, done: () => Promise<boolean>, meanwhile: () => Promise<void> = async () => undefined): Promise<void> {
    let stopped = false;
    const loops = Promise.all(
      this.members.map(async (member) => {
        while (!stopped) await this.pollOnce(member);
      }),
    );
    const checked = (async () => {
      await meanwhile();
      const deadline = Date.now() + phaseTimeoutMs;
      while (!stopped && !(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${phaseTimeoutMs} ms polling the group until ${what}; ${await this.describeForFailure()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await Promise.race([checked, loops]);
    } finally {
      stopped = true;
      await loops.catch(() => undefined);
    }
  }

  /** pollOnce: one poll of a member, then a commit of its positions. */
  private async pollOnce(member: Member): Promise<void> {
    for (const record of await member.consumer.poll()) this.seen.add(decoder.decode(record.value!));
    try {
      await member.consumer.commit();
    } catch (error) {
      // A member a rebalance moved past commits in vain; its next poll rejoins.
      if (!(error instanceof IllegalGenerationError || error instanceof UnknownMemberIdError)) throw error;
      member.refusedCommits++;
    }
  }

  /** committedUpTo: the coordinator's committed offsets equal the given high watermarks. */
  async committedUpTo(highWatermarks: readonly number[]): Promise<boolean> {
    const coordinator = await agreedCoordinator(this.cluster);
    const committed = await offsetFetch(coordinator.address).catch(() => undefined);
    return committed !== undefined && committed.join() === highWatermarks.join();
  }

  private async describeForFailure(): Promise<string> {
    const described = await this.groupsAdmin.describeGroup(group).catch((error: unknown) => error);
    const views = this.members.map((member) => `${member.name} ${JSON.stringify(membershipOf(member).current)} rejoinNeeded=${membershipOf(member).rejoinNeeded}: [${partitionsOf(member).join(', ')}]`);
    return `members ${views.join('; ')}; described ${JSON.stringify(described)}`;
  }
}

describe('consumer groups on real processes', () => {
  it('kill -9 of the coordinator: offsets survive, members keep their generation, a zombie is fenced, every record is read and committed', async () => {
    const startedMs = Date.now();
    const run = await GroupRun.start();
    const { cluster: c, groupsAdmin, members, produced, seen } = run;

    // Two members share the six partitions and commit everything produced so far.
    await run.produce('before');
    const beforeHighWatermarks = await highWatermarksAgreed(c);
    run.addMember();
    run.addMember();
    await run.pollUntil('both members hold partitions and committed up to the high watermarks', async () => members.every((member) => partitionsOf(member).length > 0) && (await run.committedUpTo(beforeHighWatermarks)));
    const groupFormedMs = Date.now();

    // Polling stops here (the members' heartbeats go on in the background): nothing commits until after the kill.
    await Promise.all(members.map((member) => member.consumer.commit()));
    const before = await agreedCoordinator(c);
    const committedBefore = await offsetFetch(before.address);
    expect(committedBefore, 'committed offsets before the kill').toEqual(beforeHighWatermarks);
    const describedBefore = await groupsAdmin.describeGroup(group);
    expect(describedBefore).toMatchObject({ state: 'Stable', coordinator: before.nodeId });
    const identitiesBefore = members.map((member) => ({ ...membershipOf(member).current }));
    const assignmentsBefore = members.map(partitionsOf);
    for (const identity of identitiesBefore) expect(identity.generation, 'each member is of the described generation').toBe(describedBefore.generation);
    expect(describedBefore.members.map((member) => member.memberId).sort()).toEqual(identitiesBefore.map((identity) => identity.memberId).sort());
    expect(assignmentsBefore.flat().sort((a, b) => a - b), 'the members share every partition').toEqual([0, 1, 2, 3, 4, 5]);

    await c.kill(before.nodeId);
    const killedMs = Date.now();
    const after = await agreedCoordinator(c);
    expect(after.nodeId, 'the new coordinator').not.toBe(before.nodeId);
    // The new coordinator answers OffsetFetch once it has replayed its predecessor's records.
    const committedAfter = await c.waitFor(() => offsetFetch(after.address).catch(() => undefined), phaseTimeoutMs, `OffsetFetch on the new coordinator, node ${after.nodeId}`);
    expect(committedAfter, 'committed offsets on the new coordinator: exactly those committed before the kill').toEqual(committedBefore);
    const takeoverMs = Date.now();

    // While the killed node is down, more records arrive. The members, which kept heartbeating,
    // read and commit them under their old generation on the new coordinator; polling goes on past
    // two session timeouts after the takeover, which a member that did not heartbeat there would not survive.
    const refusedBefore = members.map((member) => member.refusedCommits);
    await run.pollUntil(
      'the records produced while the coordinator was down are committed, two session timeouts after the takeover',
      async () => Date.now() >= takeoverMs + 2 * memberSessionTimeoutMs && (await run.committedUpTo(await highWatermarksAgreed(c))),
      () => run.produce('during'),
    );
    const describedAfter = await groupsAdmin.describeGroup(group);
    expect(describedAfter, 'the group after the failover').toMatchObject({ state: 'Stable', generation: describedBefore.generation });
    expect(describedAfter.coordinator, 'the coordinator after the failover').not.toBe(before.nodeId);
    expect(describedAfter.members.map((member) => member.memberId).sort(), 'the same members').toEqual(identitiesBefore.map((identity) => identity.memberId).sort());
    expect(members.map((member) => ({ ...membershipOf(member).current })), 'member ids and generation, as the members see them').toEqual(identitiesBefore);
    expect(members.map(partitionsOf), 'assignments').toEqual(assignmentsBefore);
    expect(members.map((member) => member.refusedCommits), 'commits refused across the failover').toEqual(refusedBefore);
    const failoverDoneMs = Date.now();

    // A third member joins: a rebalance moves the group to a later generation. The first member,
    // as it was before (its member id and the generation it had), is now a zombie.
    const zombie = { ...membershipOf(members[0]!).current };
    run.addMember();
    await run.pollUntil('three members of one generation each hold partitions', async () => {
      if (!members.every((member) => partitionsOf(member).length > 0)) return false;
      const described = await groupsAdmin.describeGroup(group).catch(() => undefined);
      return described?.state === 'Stable' && described.members.length === 3 && members.every((member) => membershipOf(member).current.generation === described.generation);
    });
    expect(members.flatMap(partitionsOf).sort((a, b) => a - b), 'the three members share every partition').toEqual([0, 1, 2, 3, 4, 5]);
    const rebalanced = await groupsAdmin.describeGroup(group);
    expect(rebalanced.generation).toBeGreaterThan(zombie.generation);
    const coordinator = await agreedCoordinator(c);
    const committedBeforeZombie = await offsetFetch(coordinator.address);
    const zombieCommit = groupsClient(coordinator.address).call('OffsetCommit', { group, memberId: zombie.memberId, generation: zombie.generation, offsets: [{ topic, partition: 0, offset: 0, metadata: '' }] });
    await expect(zombieCommit, 'a commit for the old generation').rejects.toBeInstanceOf(IllegalGenerationError);
    await expect(zombieCommit).rejects.toMatchObject({ group, generation: zombie.generation, currentGeneration: rebalanced.generation });
    const zombieHeartbeat = groupsClient(coordinator.address).call('Heartbeat', { group, memberId: zombie.memberId, generation: zombie.generation });
    await expect(zombieHeartbeat, 'a heartbeat for the old generation').rejects.toBeInstanceOf(IllegalGenerationError);
    // Nobody polls now, so nothing else commits: the committed offsets are as they were, the zombie's 0 not among them.
    expect(await offsetFetch(coordinator.address), 'committed offsets after the zombie\'s commit').toEqual(committedBeforeZombie);
    expect(committedBeforeZombie[0]).toBeGreaterThan(0);
    const zombieDoneMs = Date.now();

    // The killed node comes back; more records arrive; the group reads every record and commits up to the log end offsets.
    let finalHighWatermarks: number[] = [];
    await run.pollUntil(
      'the group committed up to the log end offsets',
      () => run.committedUpTo(finalHighWatermarks),
      async () => {
        c.start(before.nodeId);
        await run.produce('after');
        finalHighWatermarks = await c.waitFor(
          async () => {
            const marks = await highWatermarksAgreed(c);
            return c.liveIds().length === 3 && marks.reduce((sum, mark) => sum + mark, 0) >= produced.size ? marks : undefined;
          },
          phaseTimeoutMs,
          'all three replicas, the restarted one included, to hold every record',
        );
      },
    );
    const missing = [...produced].filter((value) => !seen.has(value));
    expect(missing, 'records the group never read').toEqual([]);
    expect([...seen].filter((value) => !produced.has(value)), 'records read that were never produced').toEqual([]);
    for (const member of members.splice(0)) await member.consumer.close();
    const finalCoordinator = await agreedCoordinator(c);
    expect(await offsetFetch(finalCoordinator.address), 'final committed offsets: the log end offsets').toEqual(finalHighWatermarks);

    console.log(
      `group ${group}: coordinator node ${before.nodeId} killed, node ${after.nodeId} took over (generation ${describedBefore.generation} kept), rebalanced to generation ${rebalanced.generation}; ` +
        `read ${seen.size} distinct of ${produced.size} records; ` +
        `timings ms: group formed ${groupFormedMs - startedMs}, takeover ${takeoverMs - killedMs}, failover phase ${failoverDoneMs - takeoverMs}, zombie phase ${zombieDoneMs - failoverDoneMs}, restart phase ${Date.now() - zombieDoneMs}, total ${Date.now() - startedMs}`,
    );
  }, 90_000);
});
