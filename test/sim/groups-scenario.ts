// Schedules for the consumer-groups simulation, as fast-check arbitraries (a failing schedule
// shrinks), and the runner: a safety phase of faults (lossy and slow links, consumers stopped for a
// while or for good, coordinator failovers, consumers joining and leaving) while the checker judges
// every event, then a liveness phase that heals the links, starts a consumer in any group left with
// none, and requires every group to settle: a Stable generation that assigns every partition to
// running consumers that hold exactly that, every record handed to some member, and the committed
// offsets at the end of every partition.
import fc from 'fast-check';
import type { AssignorName } from '../../src/groups/assignors.js';
import { ScenarioFailure } from './raft-scenario.js';
import type { FailoverMoment } from './groups-offsets-partition.js';
import { GroupsSimulation, healthyLinks, type GroupSpec } from './groups-simulation.js';

/** Consumers and groups are named by position (modulo how many there are) so that shrinking keeps schedules valid. */
export type Op =
  | { readonly kind: 'links'; readonly dropRate: number; readonly delayMaxMs: number }
  | { readonly kind: 'heal' }
  /** stop: a crash or a pause; forMs null: for good. */
  | { readonly kind: 'stop'; readonly consumer: number; readonly forMs: number | null }
  | { readonly kind: 'failover'; readonly commitFraction: number; readonly loadingMs: number; readonly staleMs: number }
  /** failoverAt: a failover just after the leader appends (or commits and answers) its next generation record or offset commit. */
  | {
      readonly kind: 'failoverAt';
      readonly record: 'groupMetadata' | 'offsetCommit';
      readonly moment: FailoverMoment;
      readonly commitFraction: number;
      readonly loadingMs: number;
      readonly staleMs: number;
    }
  | { readonly kind: 'start'; readonly group: number }
  | { readonly kind: 'leave'; readonly consumer: number };

export interface Step {
  readonly atMs: number;
  readonly op: Op;
}

/** GroupShape is a group of the scenario before it is named (the rebalance timeout is at least the session timeout: a member hears of a rebalance by its next heartbeat, a third of it later). */
export type GroupShape = Omit<GroupSpec, 'name'>;

export interface Scenario {
  readonly seed: number;
  readonly lengths: readonly number[];
  readonly groups: readonly GroupShape[];
  readonly commitDelayMsMax: number;
  readonly steps: readonly Step[];
}

export const safetyMs = 20_000;
/** produceForMs: the records appear over the first 15 s, so consumers read while the faults strike. */
const produceForMs = 15_000;
export const livenessMsMax = 120_000;
const livenessCheckEveryMs = 100;
export const consumersPerGroupMax = 4;
/**
 * fencedLosesPartitions: whether the modelled consumers drop their partitions, uncommitted, when
 * fenced, as the SDK's Consumer does (GroupMembership.fenced; see groups.sim.test.ts).
 */
export const fencedLosesPartitions = true;

const consumer = fc.nat({ max: 31 });

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('links' as const), dropRate: fc.constantFrom(0, 0.05, 0.2, 0.5), delayMaxMs: fc.constantFrom(5, 50, 400) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('stop' as const), consumer, forMs: fc.constantFrom(300, 1500, 5000, 9000, null) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('failover' as const),
      commitFraction: fc.constantFrom(0, 0.5, 1),
      loadingMs: fc.constantFrom(0, 200, 1500),
      staleMs: fc.constantFrom(0, 300, 2000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('failoverAt' as const),
      record: fc.constantFrom('groupMetadata' as const, 'offsetCommit' as const),
      moment: fc.constantFrom('appended' as const, 'committed' as const),
      commitFraction: fc.constantFrom(0, 0.5, 1),
      loadingMs: fc.constantFrom(0, 200, 1500),
      staleMs: fc.constantFrom(0, 300, 2000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), group: fc.nat({ max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), consumer }) },
);

const assignorLists: readonly (readonly AssignorName[])[] = [['range'], ['roundrobin'], ['cooperative-sticky'], ['cooperative-sticky', 'range']];

const groupArbitrary: fc.Arbitrary<GroupShape> = fc
  .record({
    assignors: fc.constantFrom(...assignorLists),
    staticMembers: fc.boolean(),
    consumers: fc.integer({ min: 1, max: consumersPerGroupMax }),
    sessionTimeoutMs: fc.constantFrom(1000, 2000, 3000),
    rebalanceTimeoutSessions: fc.constantFrom(1, 2),
    requestTimeoutMs: fc.constantFrom(500, 2000),
    autoCommitIntervalMs: fc.constantFrom(100, 500, 1000),
    maxWaitMs: fc.constantFrom(50, 200),
    recordsPerFetchMax: fc.constantFrom(1, 3, 8),
  })
  .map(({ rebalanceTimeoutSessions, ...shape }) => ({ ...shape, rebalanceTimeoutMs: rebalanceTimeoutSessions * shape.sessionTimeoutMs }));

/** scenarioArbitrary: 2 to 4 partitions of 5 to 60 records, 2 or 3 groups of 1 to 4 consumers, and a fault schedule. */
export const scenarioArbitrary = (options: { stepsMax: number }): fc.Arbitrary<Scenario> =>
  fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      lengths: fc.array(fc.integer({ min: 5, max: 60 }), { minLength: 2, maxLength: 4 }),
      groups: fc.array(groupArbitrary, { minLength: 2, maxLength: 3 }),
      commitDelayMsMax: fc.constantFrom(2, 30, 300),
      steps: fc.array(fc.record({ atMs: fc.integer({ min: 0, max: safetyMs }), op: opArbitrary }), { maxLength: options.stepsMax }),
    })
    .map((scenario) => ({ ...scenario, steps: [...scenario.steps].sort((a, b) => a.atMs - b.atMs) }));

export interface ScenarioOutcome {
  readonly sim: GroupsSimulation;
  readonly livenessMs: number;
}

function groupSpecs(scenario: Scenario): GroupSpec[] {
  return scenario.groups.map((shape, index) => ({ name: `g${index}`, ...shape }));
}

/** runScenario plays a schedule; throws ScenarioFailure on a violated property or a liveness failure. Deterministic. */
export async function runScenario(scenario: Scenario, options: { trace?: boolean; fencedLosesPartitions?: boolean } = {}): Promise<ScenarioOutcome> {
  let sim: GroupsSimulation | undefined;
  try {
    sim = new GroupsSimulation({
      seed: scenario.seed,
      lengths: scenario.lengths,
      produceForMs,
      groups: groupSpecs(scenario),
      commitDelayMsMax: scenario.commitDelayMsMax,
      fencedLosesPartitions: options.fencedLosesPartitions ?? fencedLosesPartitions,
      trace: options.trace ?? false,
    });
    const run = sim;
    for (const step of scenario.steps) run.at(step.atMs, () => perform(run, step.op));
    await run.runUntil(safetyMs);
    const livenessMs = await heal(run);
    return { sim: run, livenessMs };
  } catch (error) {
    throw new ScenarioFailure(error, sim?.trace ?? []);
  }
}

function perform(sim: GroupsSimulation, op: Op): void {
  sim.note(() => `op ${JSON.stringify(op)}`);
  const process = (position: number): number => position % sim.processes.length;
  switch (op.kind) {
    case 'links':
      return sim.setLinks({ dropRate: op.dropRate, delayMaxMs: op.delayMaxMs });
    case 'heal':
      return sim.setLinks(healthyLinks);
    case 'stop':
      return sim.stop(process(op.consumer), op.forMs ?? undefined);
    case 'failover':
      return sim.partition.failover(op);
    case 'failoverAt':
      return sim.partition.failoverAt({ type: op.record, moment: op.moment, failover: op });
    case 'start': {
      const group = op.group % sim.options.groups.length;
      if (sim.running(sim.options.groups[group]!.name).length < consumersPerGroupMax) sim.startConsumer(group);
      return;
    }
    case 'leave':
      return sim.leave(process(op.consumer));
  }
}

/**
 * heal ends the faults (links healthy; consumers stopped for a while still come back when due) and
 * starts a consumer in each group with none running, then runs until every group settled. Returns
 * how long that took; throws if it did not within livenessMsMax.
 */
async function heal(sim: GroupsSimulation): Promise<number> {
  sim.note(() => 'liveness: heal');
  sim.setLinks(healthyLinks);
  sim.options.groups.forEach((group, index) => {
    if (sim.running(group.name).length === 0) sim.startConsumer(index);
  });
  const start = sim.now;
  for (let elapsed = livenessCheckEveryMs; elapsed <= livenessMsMax; elapsed += livenessCheckEveryMs) {
    await sim.runUntil(start + elapsed);
    if (sim.options.groups.every((group) => unsettled(sim, group.name) === undefined)) {
      sim.checker.finish();
      return elapsed;
    }
  }
  const reasons = sim.options.groups.map((group) => `${group.name}: ${unsettled(sim, group.name) ?? 'settled'}`);
  throw new Error(`liveness: not settled ${livenessMsMax} ms after healing; ${reasons.join('; ')}`);
}

/** unsettled says why a group has not settled yet, or undefined once it has (properties (4) and (5)). */
export function unsettled(sim: GroupsSimulation, group: string): string | undefined {
  const leading = sim.partition.leading();
  if (leading === undefined) return 'no coordinator';
  if (!leading.touched.has(group)) return 'not loaded by the coordinator yet';
  const latest = sim.checker.latest(group);
  if (latest === undefined) return 'no generation';
  const assigned = new Set(latest.members.flatMap((member) => member.assignment.map((tp) => tp.partition)));
  if (assigned.size !== sim.options.lengths.length) return `generation ${latest.generation} assigns ${assigned.size} of ${sim.options.lengths.length} partitions`;
  for (const member of latest.members) {
    const slot = sim.running(group).find((candidate) => candidate.consumer.memberId === member.memberId);
    if (slot === undefined) return `member ${member.memberId} of generation ${latest.generation} is no running consumer`;
    const consumer = slot.consumer;
    if (consumer.generation !== latest.generation || consumer.rejoinNeeded) return `consumer ${consumer.process} is in generation ${consumer.generation}${consumer.rejoinNeeded ? ', rejoining' : ''}`;
    if (consumer.holdings().join(',') !== member.assignment.map((tp) => tp.partition).sort((a, b) => a - b).join(',')) return `consumer ${consumer.process} holds [${consumer.holdings().join(',')}]`;
  }
  const undelivered = sim.checker.undelivered(group);
  if (undelivered > 0) return `${undelivered} records never handed to a member`;
  const committed = sim.checker.committedOffsets(group);
  if (committed.some((offset, partition) => offset !== sim.options.lengths[partition])) return `committed [${committed.join(',')}] of [${sim.options.lengths.join(',')}]`;
  const described = leading.coordinator.describe(group, sim.now);
  if (described.state !== 'Stable' || described.generation !== latest.generation) return `the coordinator has generation ${described.generation} ${described.state}`;
  return undefined;
}
