// Schedules for the controller simulation, as fast-check arbitraries: the fault operations of
// raft-scenario.ts (crashes, partitions of every shape, loss, duplication, delay, leadership
// transfer) mixed with controller operations (broker registration with a fresh incarnation,
// heartbeats, fencing of silent brokers, controlled shutdown, topic creation with a fresh request
// id, a retry of an earlier creation with the same id, deletion, added partitions, altered
// configs). The runner plays a safety phase, then a liveness phase (heal, restart everything),
// after which every member's image must equal the leader's.
import fc from 'fast-check';
import type { NodeId } from '../../src/raft/types.js';
import { ControllerModel, type AdminRequest, type ModelTiming } from './controller-model.js';
import { healthyLinks } from './network.js';
import { ScenarioFailure, isNetworkOp, performNetworkOp } from './raft-scenario.js';
import { RaftSimulation, type SimOptions } from './raft-simulation.js';

/** Nodes are named by position (modulo the node count) so that shrinking keeps schedules valid. */
export type FaultOp =
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'crashLeader' }
  | { readonly kind: 'isolateLeader' }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'isolate'; readonly node: number }
  | { readonly kind: 'split'; readonly mask: number }
  | { readonly kind: 'bridge'; readonly bridge: number; readonly mask: number }
  | { readonly kind: 'oneWay'; readonly from: number; readonly to: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'links'; readonly dropRate: number; readonly duplicateRate: number; readonly delayMaxMs: number }
  | { readonly kind: 'transfer'; readonly node: number };

export type ControllerOp =
  | { readonly kind: 'register'; readonly node: number }
  | { readonly kind: 'heartbeat'; readonly node: number }
  | { readonly kind: 'shutdown'; readonly node: number }
  | { readonly kind: 'fence' }
  | { readonly kind: 'create'; readonly topic: number; readonly partitions: number; readonly replicationFactor: number; readonly configs: number; readonly via: number }
  | { readonly kind: 'retryCreate'; readonly which: number; readonly via: number }
  | { readonly kind: 'delete'; readonly topic: number; readonly via: number }
  | { readonly kind: 'addPartitions'; readonly topic: number; readonly partitions: number; readonly via: number }
  | { readonly kind: 'alterConfigs'; readonly topic: number; readonly change: number; readonly via: number };

export type Op = FaultOp | ControllerOp;

export interface Step {
  readonly atTick: number;
  readonly op: Op;
}

export interface Scenario {
  readonly seed: number;
  readonly voters: number;
  readonly learners: number;
  readonly snapshotEveryEntries: number;
  /** preVote, checkQuorum: the production default is both on; off exercises longer-lived stale leaders. */
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly steps: readonly Step[];
}

export const safetyTicks = 300;
export const livenessTicksMax = 600;
const tickMs = 10;
/** Broker and controller timing, in virtual ms, scaled to the simulation's 10 ms ticks and 100-200 ms elections. */
export const timing: ModelTiming = { heartbeatIntervalMs: 50, sessionTimeoutMs: 300, fenceCheckMs: 30, callDeadlineMs: 200 };

/** Few topic names, so creates collide, and deletes and alters find their topic. */
const topicNames = ['orders', 'payments', 'audit'] as const;
const configVariants: readonly Readonly<Record<string, string>>[] = [{}, { 'retention.ms': '60000' }, { 'segment.bytes': '1' }, { 'cleanup.policy': 'delete', 'retention.bytes': '1048576' }];
const alterVariants: readonly { set: Readonly<Record<string, string>>; remove: readonly string[] }[] = [
  { set: { 'retention.ms': '120000' }, remove: [] },
  { set: {}, remove: ['retention.ms'] },
  { set: { 'max.message.bytes': '2048' }, remove: ['retention.bytes'] },
  { set: { 'no.such.config': '1' }, remove: [] },
];

const node = fc.nat({ max: 15 });
const topic = fc.nat({ max: topicNames.length - 1 });

type Weighted = { readonly arbitrary: fc.Arbitrary<Op>; readonly weight: number };
const weight = (arbitrary: fc.Arbitrary<Op>, times: number): Weighted => ({ arbitrary, weight: times });

const faultOps: fc.Arbitrary<Op>[] = [
  fc.record({ kind: fc.constant('crash' as const), node }),
  fc.record({ kind: fc.constant('crashLeader' as const) }),
  fc.record({ kind: fc.constant('isolateLeader' as const) }),
  fc.record({ kind: fc.constant('restart' as const), node }),
  fc.record({ kind: fc.constant('isolate' as const), node }),
  fc.record({ kind: fc.constant('split' as const), mask: fc.nat({ max: 127 }) }),
  fc.record({ kind: fc.constant('bridge' as const), bridge: node, mask: fc.nat({ max: 127 }) }),
  fc.record({ kind: fc.constant('oneWay' as const), from: node, to: node }),
  fc.record({ kind: fc.constant('heal' as const) }),
  fc.record({
    kind: fc.constant('links' as const),
    dropRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
    duplicateRate: fc.constantFrom(0, 0.05, 0.2),
    delayMaxMs: fc.constantFrom(3, 15, 40),
  }),
  fc.record({ kind: fc.constant('transfer' as const), node }),
];

/** Controller operations, weighted so that topics exist often enough for deletes, alters and added partitions. */
const controllerOps: Weighted[] = [
  weight(fc.record({ kind: fc.constant('register' as const), node }), 1),
  weight(fc.record({ kind: fc.constant('heartbeat' as const), node }), 1),
  weight(fc.record({ kind: fc.constant('shutdown' as const), node }), 1),
  weight(fc.record({ kind: fc.constant('fence' as const) }), 1),
  weight(
    fc.record({
      kind: fc.constant('create' as const),
      topic,
      partitions: fc.integer({ min: 1, max: 3 }),
      replicationFactor: fc.integer({ min: 1, max: 3 }),
      configs: fc.nat({ max: configVariants.length - 1 }),
      via: node,
    }),
    4,
  ),
  weight(fc.record({ kind: fc.constant('create' as const), topic, partitions: fc.integer({ min: 1, max: 3 }), replicationFactor: fc.constant(1), configs: fc.constant(0), via: node }), 4),
  weight(fc.record({ kind: fc.constant('retryCreate' as const), which: fc.nat({ max: 7 }), via: node }), 2),
  weight(fc.record({ kind: fc.constant('retryCreate' as const), which: fc.constant(0), via: node }), 2),
  weight(fc.record({ kind: fc.constant('delete' as const), topic, via: node }), 2),
  weight(fc.record({ kind: fc.constant('addPartitions' as const), topic, partitions: fc.integer({ min: 1, max: 5 }), via: node }), 3),
  weight(fc.record({ kind: fc.constant('alterConfigs' as const), topic, change: fc.nat({ max: alterVariants.length - 1 }), via: node }), 3),
];

/** Faults weigh as much as controller operations together. */
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(...faultOps.map((arbitrary) => weight(arbitrary, 2)), ...controllerOps);

/** scenarioArbitrary: 3 to 5 voters, maybe a learner (a broker that only observes the quorum), and a schedule. */
export const scenarioArbitrary = (options: { stepsMax: number }): fc.Arbitrary<Scenario> =>
  fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      voters: fc.integer({ min: 3, max: 5 }),
      learners: fc.integer({ min: 0, max: 1 }),
      snapshotEveryEntries: fc.constantFrom(5, 20, 1000),
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
      steps: fc.array(fc.record({ atTick: fc.integer({ min: 0, max: safetyTicks }), op: opArbitrary }), { maxLength: options.stepsMax, size: 'medium' }),
    })
    .map((scenario) => ({ ...scenario, steps: [...scenario.steps].sort((a, b) => a.atTick - b.atTick) }));

export interface ScenarioOutcome {
  readonly model: ControllerModel;
  readonly livenessTicks: number;
}

/** runScenario plays a schedule; throws ScenarioFailure on a violated property or a liveness failure. */
export function runScenario(scenario: Scenario, options: { trace?: boolean } = {}): ScenarioOutcome {
  const ids = Array.from({ length: scenario.voters + scenario.learners }, (_, i) => i + 1);
  const model = new ControllerModel(scenario.seed, timing);
  // Raft tuning as the raft scenarios vary it (the original message limits); spread so that these
  // options stay optional to this file.
  const tuning = { preVote: scenario.preVote, checkQuorum: scenario.checkQuorum, appendBytesMax: 256, inflightMessagesMax: 8 };
  const simOptions: SimOptions = {
    ...tuning,
    seed: scenario.seed,
    voters: ids.slice(0, scenario.voters),
    learners: ids.slice(scenario.voters),
    spares: [],
    electionTicks: 10,
    heartbeatTicks: 2,
    tickMs,
    fsyncMsMax: 3,
    snapshotEveryEntries: scenario.snapshotEveryEntries,
    trace: options.trace ?? false,
    extension: model.extension,
  };
  let simulation: RaftSimulation | undefined;
  try {
    simulation = new RaftSimulation(simOptions);
    const sim = simulation;
    model.attach(sim);
    const pick = (position: number): NodeId => ids[position % ids.length]!;
    for (const step of scenario.steps) sim.at(step.atTick * tickMs, () => perform(sim, model, step.op, { ids, pick }));
    // The brokers' and controllers' own clocks: heartbeats and session checks keep running.
    const endMs = (safetyTicks + livenessTicksMax) * tickMs;
    for (let at = timing.heartbeatIntervalMs; at < endMs; at += timing.heartbeatIntervalMs) sim.at(at, () => model.beatAll());
    for (let at = timing.fenceCheckMs; at < endMs; at += timing.fenceCheckMs) sim.at(at, () => model.checkSessions());
    sim.runUntil(safetyTicks * tickMs);
    const livenessTicks = heal(sim, model, ids);
    return { model, livenessTicks };
  } catch (error) {
    throw new ScenarioFailure(error, simulation?.trace ?? []);
  }
}

function perform(simulation: RaftSimulation, model: ControllerModel, op: Op, context: { ids: NodeId[]; pick: (position: number) => NodeId }): void {
  const { pick } = context;
  simulation.note(`op ${JSON.stringify(op)}`);
  if (isNetworkOp(op)) return performNetworkOp(simulation, op, context);
  switch (op.kind) {
    case 'crash': {
      const id = pick(op.node);
      if (!simulation.isUp(id)) return;
      simulation.crash(id);
      return model.crashed(id);
    }
    case 'crashLeader': {
      const leader = simulation.leader();
      if (leader === undefined) return;
      simulation.crash(leader);
      return model.crashed(leader);
    }
    case 'restart':
      return restart(simulation, model, pick(op.node));
    case 'transfer': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.transferLeadership(leader, pick(op.node));
      return;
    }
    case 'register':
      return model.reincarnate(pick(op.node));
    case 'heartbeat':
      return model.beat(pick(op.node));
    case 'shutdown':
      return model.requestShutdown(pick(op.node));
    case 'fence':
      return model.checkSessions();
    case 'create': {
      const request = model.newCreate({ name: topicNames[op.topic % topicNames.length]!, partitions: op.partitions, replicationFactor: op.replicationFactor, configs: configVariants[op.configs % configVariants.length]! });
      return model.admin(pick(op.via), { kind: 'create', request });
    }
    case 'retryCreate': {
      // The same request again, same request id: counted back from the latest create.
      const request = model.creates[model.creates.length - 1 - (op.which % Math.max(1, model.creates.length))];
      if (request !== undefined) model.admin(pick(op.via), { kind: 'create', request });
      return;
    }
    case 'delete':
      return model.admin(pick(op.via), model.newDelete(topicNames[op.topic % topicNames.length]!));
    case 'addPartitions':
      return model.admin(pick(op.via), { kind: 'addPartitions', name: topicNames[op.topic % topicNames.length]!, partitions: op.partitions });
    case 'alterConfigs': {
      const change = alterVariants[op.change % alterVariants.length]!;
      return model.admin(pick(op.via), { kind: 'alterConfigs', name: topicNames[op.topic % topicNames.length]!, set: change.set, remove: change.remove });
    }
  }
}

function restart(simulation: RaftSimulation, model: ControllerModel, id: NodeId): void {
  if (simulation.isUp(id)) return;
  simulation.restart(id);
  model.started(id);
}

/**
 * heal repairs the network, restarts every node (and every released broker), then runs until one
 * leader leads every member, a fresh create is answered, every broker is registered and unfenced,
 * the controllers are idle and every member applied everything: then every member's image must
 * equal the leader's. Returns the ticks it took; throws if that does not happen in livenessTicksMax.
 */
function heal(simulation: RaftSimulation, model: ControllerModel, ids: NodeId[]): number {
  simulation.network.heal();
  simulation.setLinkFaults(healthyLinks);
  for (const id of ids) restart(simulation, model, id);
  const start = simulation.now;
  const probe: { state: 'none' | 'sent' | 'answered'; sentAt: number } = { state: 'none', sentAt: 0 };
  for (let tick = 1; tick <= livenessTicksMax; tick++) {
    for (const id of ids) model.reincarnateIfStopped(id); // a shutdown may be answered after healing began
    simulation.runUntil(start + tick * tickMs);
    const leader = simulation.leader();
    if (leader === undefined) continue;
    if (probe.state === 'none' || (probe.state === 'sent' && tick - probe.sentAt >= 100)) {
      probe.state = 'sent';
      probe.sentAt = tick;
      const request: AdminRequest = { kind: 'create', request: model.newCreate({ name: `probe-${tick}`, partitions: 1, replicationFactor: 1, configs: {} }) };
      model.admin(leader, request, (result) => {
        probe.state = result.ok ? 'answered' : 'none'; // not ok: e.g. no unfenced broker yet, ask again
      });
      continue;
    }
    if (probe.state !== 'answered' || !model.brokersActive() || !model.idle() || !settled(simulation, leader)) continue;
    const members = simulation.members(leader);
    model.checker.converged(
      { node: leader, image: model.image(leader)! },
      members.map((member) => ({ node: member, image: model.image(member) })),
    );
    return tick;
  }
  throw new Error(`liveness: no settled controller within ${livenessTicksMax} ticks after healing; ${model.describe(ids)}`);
}

function settled(simulation: RaftSimulation, leader: NodeId): boolean {
  const leaderStatus = simulation.status(leader)!;
  if (leaderStatus.lastIndex !== leaderStatus.commit) return false;
  for (const member of simulation.members(leader)) {
    const status = simulation.status(member);
    if (status === undefined || status.leader !== leader || status.term !== leaderStatus.term) return false;
    if (simulation.appliedIndex(member) < leaderStatus.commit) return false;
  }
  return true;
}
