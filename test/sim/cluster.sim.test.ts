// The whole cluster in the simulator: see cluster-scenario.ts for what one schedule does and
// cluster-simulation.ts for how nodes, disks and networks are simulated. The seed is printed;
// replay a failure exactly with
//   RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run test/sim/cluster.sim.test.ts
// (the failing schedule and its trace, node logs included, are written to .sim-failures/), and
// raise the number of schedules for a soak with RAFTBUS_SIM_RUNS_FACTOR=<n>.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runScenario, scenarioArbitrary, type ClusterScenario } from './cluster-scenario.js';
import { checkAsyncSchedules, simFactor, simPath, simSeed, simTestTimeoutMs } from './property.js';

const propertyName = 'no acknowledged record is lost, duplicated or reordered, and replicas converge, under crashes, torn writes, corruption of a minority, partitions, pauses and lossy links';

interface Totals {
  runs: number;
  fiveNodes: number;
  acknowledged: number;
  consumed: number;
  commits: number;
  crashes: number;
  corruptions: number;
  pauses: number;
  events: number;
  virtualMs: number;
  messagesInOneSecondMax: number;
}

/**
 * offsetsUnderReplicated found a bug: the offsets topic was created while a broker was still
 * registering, with two replicas; when one of them came back repaired, neither could be elected
 * (the repaired one abstains, the other needs its vote), and a group stalled. (The storm this
 * simulation found first, a leader probing a repaired follower's lost index forever, is covered by
 * src/raft/abstain.test.ts: since the simulator reports a crashed peer unreachable, as the
 * transport does when the stream breaks, the leader forgets what it knew and no schedule reaches it.)
 */
const offsetsUnderReplicated: ClusterScenario = {
  seed: 1695062593,
  nodes: 3,
  corruptible: [2],
  partitions: 2,
  producers: 1,
  groups: 2,
  consumersPerGroup: 2,
  faultForMs: 8189,
  syncMsMax: [2, 40, 2],
  faults: [
    { atMs: 7261, fault: { kind: 'isolate', node: 1, forMs: 1174 } },
    { atMs: 8448, fault: { kind: 'crash', node: 2, downMs: 4320, power: true, tear: true, corrupt: 'truncate', pick: 0 } },
  ],
};

/**
 * preferredAbstainer: node 1, down, loses the last segment of its __consumer_offsets-1 log to a cut
 * inside the segment's header. A sync had covered it, so its repair owes an unknown bound, and it
 * abstains until an entry of a later term. But it is that partition's preferred replica: the leader
 * kept handing leadership to it, refusing proposals meanwhile, and it would not campaign, so the
 * group never found a coordinator. Now a node whose loss nothing bounds moves to the next term as
 * it starts: the leader steps down when it hears of it, and a leader of a later term ends abstaining.
 */
const preferredAbstainer: ClusterScenario = {
  seed: 273622400,
  nodes: 5,
  corruptible: [1],
  partitions: 1,
  producers: 1,
  groups: 1,
  consumersPerGroup: 1,
  faultForMs: 4317,
  syncMsMax: [2, 15, 40, 2, 40],
  faults: [
    { atMs: 6469, fault: { kind: 'isolate', node: 5, forMs: 2420 } },
    { atMs: 3640, fault: { kind: 'crash', node: 1, downMs: 600, power: false, tear: false, corrupt: 'truncate', pick: 1.3151726244414772e-95 } },
  ],
};

/**
 * deposedLeaderRefused: a bridge cuts the leader of events-0 off; the other replicas elect a new
 * leader, which takes each producer's first batch. The old leader has not noticed yet; asked for
 * the second batches, it knew no such producers and refused them for good (UnknownProducerId).
 * Now a leader confirms its leadership with a quorum before such a refusal.
 */
const deposedLeaderRefused: ClusterScenario = {
  // Re-pinned on 2026-11-22 (was 1326076230): a new log now writes synced-segment as it opens, and
  // the extra sync moved that schedule off the step-down. With the leadership check removed from
  // HostedPartition.produce, this one refuses a producer for good.
  seed: 1326432585,
  nodes: 5,
  corruptible: [4],
  partitions: 1,
  producers: 2,
  groups: 2,
  consumersPerGroup: 2,
  faultForMs: 3010,
  syncMsMax: [40, 2, 40, 2, 40],
  faults: [
    { atMs: 4629, fault: { kind: 'pause', node: 2, forMs: 1039 } },
    { atMs: 4164, fault: { kind: 'bridge', bridge: 3, mask: 4, forMs: 4999 } },
    { atMs: 3008, fault: { kind: 'crash', node: 5, downMs: 818, power: false, tear: false, corrupt: 'flip', pick: 0 } },
  ],
};

/**
 * syncedTailCut: node 2 goes down and, while down, the tail of its __consumer_offsets-0 segment is
 * cut away: entries it had synced and acknowledged. Recovery took the cut for a torn write, the
 * node voted with the shorter log, and with node 3 (which never had the entries) elected a leader
 * without them: committed offsets went backwards. Now every sync records in the segment's header
 * how far the log was synced, and a log found ending below that is repaired with a bound: the node
 * does not vote until the leader has sent the entries back.
 */
const syncedTailCut: ClusterScenario = {
  seed: 1700163021,
  nodes: 3,
  corruptible: [2],
  partitions: 2,
  producers: 2,
  groups: 2,
  consumersPerGroup: 2,
  faultForMs: 6463,
  syncMsMax: [15, 2, 2],
  faults: [
    { atMs: 3296, fault: { kind: 'isolate', node: 3, forMs: 3388 } },
    { atMs: 6687, fault: { kind: 'isolate', node: 1, forMs: 3713 } },
    { atMs: 4990, fault: { kind: 'powerLoss', downMs: 1234, tear: false } },
    { atMs: 5634, fault: { kind: 'bridge', bridge: 3, mask: 1, forMs: 4392 } },
    { atMs: 4879, fault: { kind: 'crash', node: 2, downMs: 3210, power: false, tear: true, corrupt: 'truncate', pick: 0 } },
  ],
};

/**
 * idleAbstainer: node 1 leads __consumer_offsets-1 alone (node 3 lost power, node 2 is cut off)
 * and appends entries nobody else gets; while it is down they are cut from its log. It comes back
 * abstaining until its log reaches them again, but the group stays idle under the new leader, so
 * the log never grows that far: node 1 abstained for good, and the controller, which wanted node 1
 * to lead, handed leadership to it every second, each hand-over holding up the group's commits.
 * Now a committed entry of a later term also ends abstaining.
 */
const idleAbstainer: ClusterScenario = {
  // Re-pinned (seed 1137342295 before) when the leader's own write came to wait a turn for its
  // sends: the virtual schedule shifted, and this seed takes the same path again.
  seed: 1137342306,
  nodes: 5,
  corruptible: [1],
  partitions: 2,
  producers: 3,
  groups: 2,
  consumersPerGroup: 2,
  faultForMs: 3012,
  syncMsMax: [2, 15, 15, 2, 2],
  faults: [
    { atMs: 5832, fault: { kind: 'crash', node: 1, downMs: 3308, power: false, tear: true, corrupt: 'truncate', pick: 0 } },
    { atMs: 5210, fault: { kind: 'oneWay', from: 2, to: 3, forMs: 2023 } },
    { atMs: 3042, fault: { kind: 'clients', node: 2, forMs: 954 } },
    { atMs: 4324, fault: { kind: 'isolate', node: 5, forMs: 1698 } },
    { atMs: 4029, fault: { kind: 'oneWay', from: 4, to: 3, forMs: 4687 } },
    { atMs: 4151, fault: { kind: 'isolate', node: 2, forMs: 4036 } },
    { atMs: 5493, fault: { kind: 'clients', node: 4, forMs: 3368 } },
    { atMs: 4118, fault: { kind: 'crash', node: 3, downMs: 2178, power: true, tear: false, corrupt: 'flip', pick: 0 } },
  ],
};

/**
 * laggingReplicaOutOfRange: both power losses restart the cluster; node 2 comes back holding
 * events-1 up to offset 31 while its consumer had read to 163 elsewhere. Asked for 163, node 2
 * answered "out of range"; the consumer (as the SDK, auto.offset.reset 'earliest') went back to 0
 * and its group committed 0 after 163. Now only a leader that has applied an entry of its term says
 * "out of range" past its high watermark; node 2 answers "not the leader".
 */
const laggingReplicaOutOfRange: ClusterScenario = {
  seed: 1009215415,
  nodes: 3,
  corruptible: [2],
  partitions: 2,
  producers: 2,
  groups: 1,
  consumersPerGroup: 1,
  faultForMs: 6168,
  syncMsMax: [2, 15, 15],
  faults: [
    { atMs: 5412, fault: { kind: 'clients', node: 2, forMs: 4000 } },
    { atMs: 7624, fault: { kind: 'powerLoss', downMs: 2998, tear: false } },
    { atMs: 8183, fault: { kind: 'powerLoss', downMs: 2990, tear: false } },
  ],
};

describe('whole-cluster simulation', () => {
  it('a deposed leader that has not noticed yet does not refuse a producer for good', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(deposedLeaderRefused, { trace: true });
    expect(sim.trace.some((line) => line.includes('events-0') && line.includes('stepping down: no quorum heard'))).toBe(true);
    expect(workload.refusals).toEqual([]);
    expect(workload.counts.acknowledged).toBeGreaterThan(0);
  });


  it('the offsets topic is created fully replicated, so one repaired replica cannot stall a group', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(offsetsUnderReplicated, { trace: true });
    // Still the schedule that found the bug: a node comes back from corruption owing entries it had acknowledged.
    expect(sim.counts.corruptions).toBeGreaterThan(0);
    expect(sim.trace.some((line) => line.includes('log ends before entries this node acknowledged'))).toBe(true);
    expect(workload.counts.acknowledged).toBeGreaterThan(0);
  });

  it('a node whose synced log tail was cut does not vote until it has the entries back', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(syncedTailCut, { trace: true });
    expect(sim.trace.some((line) => line.includes('__consumer_offsets-0') && line.includes('synced entries are missing'))).toBe(true);
    expect(workload.counts.commits).toBeGreaterThan(0);
  });

  it('a node abstaining in an idle group votes again once it holds a committed entry of a later term', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(idleAbstainer, { trace: true });
    const offsets = sim.trace.filter((line) => line.includes('node 1 ') && line.includes('__consumer_offsets-1'));
    expect(offsets.some((line) => line.includes('not voting or campaigning until caught up'))).toBe(true);
    const ended = offsets.find((line) => line.includes('voting and campaigning again'));
    const details = JSON.parse(ended!.slice(ended!.indexOf('{'))) as { lastIndex: number; abstainUntilIndex: number; abstainTerm: number; committedTerm: number };
    expect(details.lastIndex).toBeLessThan(details.abstainUntilIndex); // ended by the committed entry of a later term
    expect(details.committedTerm).toBeGreaterThan(details.abstainTerm);
    expect(workload.counts.commits).toBeGreaterThan(0);
  });

  it('a repaired replica that owes an unknown bound does not stall the partition that prefers it', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(preferredAbstainer, { trace: true });
    expect(sim.trace.some((line) => line.includes('a sync covered the segment'))).toBe(true);
    expect(sim.trace.some((line) => line.includes('nothing bounds the entries this log lost: moving to the next term'))).toBe(true);
    expect(sim.trace.some((line) => line.includes('log caught up; voting and campaigning again'))).toBe(true);
    expect(workload.counts.commits).toBeGreaterThan(0);
  });

  it('a replica behind the offset a consumer reached does not send it back to the start', { timeout: 60_000 }, async () => {
    const { sim, workload } = await runScenario(laggingReplicaOutOfRange, { trace: true });
    // Still a schedule that meets the bug: after the power losses the consumer asks a replica that
    // cannot tell the end yet for the offset it had reached, far from the start. (Which node and
    // offset moves with the disk's timing; put back, the bug makes this schedule commit offsets backwards.)
    expect(sim.trace.some((line) => /fetch of consumer 0 from node \d: 1\/[1-9]\d{2,} -> NotLeaderError/.test(line))).toBe(true);
    expect(sim.trace.some((line) => line.includes('OffsetOutOfRangeError'))).toBe(false);
    expect(workload.counts.commits).toBeGreaterThan(0);
  });

  it('replays a schedule exactly: the same trace (node logs included) and the same history', { timeout: 60_000 }, async () => {
    const [scenario] = fc.sample(scenarioArbitrary({ faultsMax: 8 }).filter((candidate) => candidate.faults.length >= 3), { seed: simSeed, numRuns: 1 });
    const first = await runScenario(scenario!, { trace: true });
    const second = await runScenario(scenario!, { trace: true });
    expect(first.sim.trace.length).toBeGreaterThan(20);
    expect(first.workload.counts.acknowledged).toBeGreaterThan(0);
    expect(second.sim.trace).toEqual(first.sim.trace);
    expect(second.workload.events).toEqual(first.workload.events);
  });

  it(propertyName, { timeout: simTestTimeoutMs * 3 }, async () => {
    const totals: Totals = { runs: 0, fiveNodes: 0, acknowledged: 0, consumed: 0, commits: 0, crashes: 0, corruptions: 0, pauses: 0, events: 0, virtualMs: 0, messagesInOneSecondMax: 0 };
    const startedAt = performance.now();
    const runs = Number(process.env.RAFTBUS_CLUSTER_SIM_RUNS ?? 500) * simFactor;
    await checkAsyncSchedules({
      name: 'cluster',
      file: 'test/sim/cluster.sim.test.ts',
      testName: propertyName,
      arbitrary: scenarioArbitrary({ faultsMax: 8 }),
      numRuns: runs,
      shrink: false,
      run: async (scenario) => {
        const { sim, workload } = await runScenario(scenario);
        totals.runs++;
        if (scenario.nodes === 5) totals.fiveNodes++;
        totals.acknowledged += workload.counts.acknowledged;
        totals.consumed += workload.counts.consumed;
        totals.commits += workload.counts.commits;
        totals.crashes += sim.counts.crashes;
        totals.corruptions += sim.counts.corruptions;
        totals.pauses += sim.counts.pauses;
        totals.events += sim.counts.events;
        totals.virtualMs += sim.now;
        totals.messagesInOneSecondMax = Math.max(totals.messagesInOneSecondMax, sim.counts.messagesInOneSecondMax);
      },
      traced: async (scenario) => {
        await runScenario(scenario, { trace: true });
      },
    });
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    console.log(`cluster: ${totals.runs} schedules (${totals.fiveNodes} of 5 nodes, the rest of 3) in ${seconds} s (${(totals.virtualMs / 1000).toFixed(0)} s virtual, ${totals.events} events): ${totals.acknowledged} records acknowledged, ${totals.consumed} consumed, ${totals.commits} commits acknowledged, ${totals.crashes} crashes, ${totals.corruptions} files corrupted, ${totals.pauses} pauses; at most ${totals.messagesInOneSecondMax} peer messages in one virtual second`);
    expect(totals.runs).toBeGreaterThan(0);
    if (simPath === undefined) {
      expect(totals.acknowledged).toBeGreaterThan(10 * totals.runs);
      expect(totals.crashes).toBeGreaterThan(0);
    }
  });
});
