// Schedules for the partition simulation, as fast-check arbitraries: the fault operations of
// raft-scenario.ts (crashes, partitions of every shape, loss, duplication, delay, held messages,
// leadership transfer, faults aimed at whoever leads) while idempotent producers keep sending.
// The runner plays a safety phase, then a liveness phase that heals everything, restarts every
// node and requires every producer's batches (and one more each) acknowledged and every replica
// caught up; then every replica must read back the one committed log.
import fc from 'fast-check';
import { seededRandom } from '../../src/raft/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import { healthyLinks } from './network.js';
import { SimProducer, type ProducerTiming } from './partition-producer.js';
import { PartitionSimulation } from './partition-simulation.js';
import { ScenarioFailure, isNetworkOp, performNetworkOp } from './raft-scenario.js';

/** Nodes are named by position (modulo the node count) so that shrinking keeps schedules valid. */
export type Op =
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'crashLeader' }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'isolate'; readonly node: number }
  | { readonly kind: 'isolateLeader' }
  | { readonly kind: 'split'; readonly mask: number }
  | { readonly kind: 'bridge'; readonly bridge: number; readonly mask: number }
  | { readonly kind: 'oneWay'; readonly from: number; readonly to: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'links'; readonly dropRate: number; readonly duplicateRate: number; readonly delayMaxMs: number }
  | { readonly kind: 'transfer'; readonly node: number }
  | { readonly kind: 'holdLeader'; readonly ticks: number }
  | { readonly kind: 'burst'; readonly producer: number; readonly batches: number };

export interface Step {
  readonly atTick: number;
  readonly op: Op;
}

export interface Scenario {
  readonly seed: number;
  readonly voters: number;
  /** snapshotEveryEntries: a replica snapshots and compacts its log this often (retention on a node). */
  readonly snapshotEveryEntries: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly appendBytesMax: number;
  readonly producers: number;
  /** inFlightMax: batches a producer keeps in flight (Kafka allows up to 5 with idempotence). */
  readonly inFlightMax: number;
  /** makeEveryMs: how often each producer makes a batch in the safety phase. */
  readonly makeEveryMs: number;
  readonly steps: readonly Step[];
}

export const safetyTicks = 300;
export const livenessTicksMax = 600;
const tickMs = 10;
export const producerTiming: ProducerTiming = { requestTimeoutMs: 300, retryBackoffMsMax: 40, queuedBatchesMax: 8, recordsPerBatchMax: 3 };
const firstProducerId = 1000n;

const node = fc.nat({ max: 15 });

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('crash' as const), node }),
  fc.record({ kind: fc.constant('crashLeader' as const) }),
  fc.record({ kind: fc.constant('restart' as const), node }),
  fc.record({ kind: fc.constant('restart' as const), node }),
  fc.record({ kind: fc.constant('isolate' as const), node }),
  fc.record({ kind: fc.constant('isolateLeader' as const) }),
  fc.record({ kind: fc.constant('split' as const), mask: fc.nat({ max: 31 }) }),
  fc.record({ kind: fc.constant('bridge' as const), bridge: node, mask: fc.nat({ max: 31 }) }),
  fc.record({ kind: fc.constant('oneWay' as const), from: node, to: node }),
  fc.record({ kind: fc.constant('heal' as const) }),
  fc.record({
    kind: fc.constant('links' as const),
    dropRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
    duplicateRate: fc.constantFrom(0, 0.05, 0.2),
    delayMaxMs: fc.constantFrom(3, 15, 40),
  }),
  fc.record({ kind: fc.constant('transfer' as const), node }),
  fc.record({ kind: fc.constant('holdLeader' as const), ticks: fc.integer({ min: 5, max: 40 }) }),
  fc.record({ kind: fc.constant('burst' as const), producer: fc.nat({ max: 7 }), batches: fc.integer({ min: 1, max: 8 }) }),
);

/** noSnapshots: a replica never snapshots on its own, as partitions on a node (only retention snapshots them). */
export const noSnapshots = Number.MAX_SAFE_INTEGER;

/**
 * scenarioArbitrary: 3 or 5 replicas, 1 to 4 producers keeping 1, 2 or 5 batches in flight, and a
 * fault schedule. With snapshots, replicas snapshot and compact every 5 or 20 entries (retention
 * deleting all it may), so restarts and lagging followers restore from snapshots mid-log.
 */
export const scenarioArbitrary = (options: { stepsMax: number; snapshots: boolean }): fc.Arbitrary<Scenario> =>
  fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      voters: fc.constantFrom(3, 3, 5),
      snapshotEveryEntries: options.snapshots ? fc.constantFrom(5, 20, noSnapshots) : fc.constant(noSnapshots),
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
      appendBytesMax: fc.constantFrom(1, 512, 65_536),
      producers: fc.integer({ min: 1, max: 4 }),
      inFlightMax: fc.constantFrom(1, 2, 5),
      makeEveryMs: fc.constantFrom(20, 50, 120),
      steps: fc.array(fc.record({ atTick: fc.integer({ min: 0, max: safetyTicks }), op: opArbitrary }), { maxLength: options.stepsMax }),
    })
    .map((scenario) => ({ ...scenario, steps: [...scenario.steps].sort((a, b) => a.atTick - b.atTick) }));

export interface ScenarioOutcome {
  readonly sim: PartitionSimulation;
  readonly producers: readonly SimProducer[];
  readonly livenessTicks: number;
}

/** runScenario plays a schedule; throws ScenarioFailure on a violated property or a liveness failure. Deterministic. */
export function runScenario(scenario: Scenario, options: { trace?: boolean } = {}): ScenarioOutcome {
  const ids = Array.from({ length: scenario.voters }, (_, i) => i + 1);
  let sim: PartitionSimulation | undefined;
  try {
    sim = new PartitionSimulation({
      seed: scenario.seed,
      voters: ids,
      learners: [],
      spares: [],
      electionTicks: 10,
      heartbeatTicks: 2,
      tickMs,
      fsyncMsMax: 3,
      snapshotEveryEntries: scenario.snapshotEveryEntries,
      preVote: scenario.preVote,
      checkQuorum: scenario.checkQuorum,
      appendBytesMax: scenario.appendBytesMax,
      inflightMessagesMax: 8,
      trace: options.trace ?? false,
    });
    const run = sim;
    const random = seededRandom((scenario.seed ^ 0x1b873593) >>> 0);
    const producers = Array.from({ length: scenario.producers }, (_, i) => new SimProducer(firstProducerId + BigInt(i), run, random, { ...producerTiming, inFlightMax: scenario.inFlightMax }));
    const pick = (position: number): NodeId => ids[position % ids.length]!;
    for (const step of scenario.steps) run.simulation.at(step.atTick * tickMs, () => perform(run, producers, step.op, { ids, pick }));
    producers.forEach((producer, i) => {
      for (let at = 1 + i * 7; at < safetyTicks * tickMs; at += scenario.makeEveryMs) run.simulation.at(at, () => producer.make());
    });
    run.simulation.runUntil(safetyTicks * tickMs);
    const livenessTicks = heal(run, producers, ids);
    return { sim: run, producers, livenessTicks };
  } catch (error) {
    throw new ScenarioFailure(error, sim?.simulation.trace ?? []);
  }
}

function perform(sim: PartitionSimulation, producers: readonly SimProducer[], op: Op, context: { ids: NodeId[]; pick: (position: number) => NodeId }): void {
  const { pick } = context;
  sim.simulation.note(`op ${JSON.stringify(op)}`);
  if (isNetworkOp(op)) return performNetworkOp(sim.simulation, op, context);
  const leader = sim.simulation.leader();
  switch (op.kind) {
    case 'crash':
      return sim.crash(pick(op.node));
    case 'crashLeader':
      if (leader !== undefined) sim.crash(leader);
      return;
    case 'restart':
      return sim.restart(pick(op.node));
    case 'transfer':
      if (leader !== undefined) sim.simulation.transferLeadership(leader, pick(op.node));
      return;
    case 'holdLeader':
      if (leader !== undefined) sim.simulation.hold(leader, sim.now + op.ticks * tickMs);
      return;
    case 'burst': {
      const producer = producers[op.producer % producers.length]!;
      for (let i = 0; i < op.batches; i++) producer.make();
      return;
    }
  }
}

/**
 * heal repairs the network, restarts every node, has each producer make one more batch, and runs
 * until every producer is idle (everything it made acknowledged), one leader leads every replica
 * and every replica applied all it committed; then the checker compares every replica with the
 * committed log. Returns the ticks it took; throws if that does not happen within livenessTicksMax.
 */
function heal(sim: PartitionSimulation, producers: readonly SimProducer[], ids: NodeId[]): number {
  const simulation = sim.simulation;
  simulation.network.heal();
  simulation.releaseAll();
  simulation.setLinkFaults(healthyLinks);
  for (const id of ids) sim.restart(id);
  for (const producer of producers) producer.make();
  const start = simulation.now;
  for (let tick = 1; tick <= livenessTicksMax; tick++) {
    simulation.runUntil(start + tick * tickMs);
    const leader = simulation.leader();
    if (leader === undefined || !producers.every((producer) => producer.idle) || !settled(sim, leader, ids)) continue;
    sim.checker.converged(sim.views());
    return tick;
  }
  const queued = producers.map((producer) => `${producer.producerId}: ${producer.queued} queued`).join(', ');
  throw new Error(`liveness: not settled within ${livenessTicksMax} ticks after healing; producers ${queued}; ${sim.describe()}`);
}

function settled(sim: PartitionSimulation, leader: NodeId, ids: NodeId[]): boolean {
  const simulation = sim.simulation;
  const leaderStatus = simulation.status(leader)!;
  if (leaderStatus.lastIndex !== leaderStatus.commit) return false;
  for (const id of ids) {
    const status = simulation.status(id);
    if (status === undefined || status.leader !== leader || status.term !== leaderStatus.term) return false;
    if (simulation.appliedIndex(id) < leaderStatus.commit) return false;
  }
  return true;
}
