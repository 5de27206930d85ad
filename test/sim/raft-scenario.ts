// Random fault schedules for the Raft simulation, as fast-check arbitraries (so a failing
// schedule shrinks to a small one), and the runner: a safety phase with faults, then a liveness
// phase that heals everything and requires progress within a bounded number of ticks.
import fc from 'fast-check';
import type { ConfChangeType, NodeId } from '../../src/raft/types.js';
import { confChangeTypes } from '../../src/raft/types.js';
import { healthyLinks } from './network.js';
import { RaftSimulation, type SimOptions } from './raft-simulation.js';

/** Nodes are named by position (0..n-1 of all ids) so that shrinking keeps schedules valid. */
export type Op =
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'isolate'; readonly node: number }
  | { readonly kind: 'split'; readonly mask: number }
  | { readonly kind: 'bridge'; readonly bridge: number; readonly mask: number }
  | { readonly kind: 'oneWay'; readonly from: number; readonly to: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'links'; readonly dropRate: number; readonly duplicateRate: number; readonly delayMaxMs: number }
  | { readonly kind: 'propose'; readonly node: number; readonly count: number }
  | { readonly kind: 'confChange'; readonly type: ConfChangeType; readonly node: number }
  | { readonly kind: 'transfer'; readonly node: number }
  | { readonly kind: 'read'; readonly node: number }
  | { readonly kind: 'isolateLeader' }
  | { readonly kind: 'crashLeader' }
  | { readonly kind: 'hold'; readonly node: number; readonly ticks: number }
  | { readonly kind: 'holdLeader'; readonly ticks: number }
  | { readonly kind: 'loseTail'; readonly node: number; readonly count: number; readonly bounded: boolean }
  /** A disk loses its tail at the moment the leader proposes a membership change: just before (changeFirst) or just after it. */
  | {
      readonly kind: 'loseTailAmidChange';
      readonly node: number;
      readonly count: number;
      readonly bounded: boolean;
      readonly type: ConfChangeType;
      readonly target: number;
      readonly changeFirst: boolean;
    };

export interface Step {
  readonly atTick: number;
  readonly op: Op;
}

export interface Scenario {
  readonly seed: number;
  readonly voters: number;
  readonly learners: number;
  readonly spares: number;
  readonly snapshotEveryEntries: number;
  /** Raft settings vary per scenario: timing, batching and the optional protections. */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly appendBytesMax: number;
  readonly inflightMessagesMax: number;
  readonly steps: readonly Step[];
}

export const safetyTicks = 300;
export const livenessTicksMax = 400;
const tickMs = 10;

const node = fc.nat({ max: 15 });

const opArbitrary = (options: { membership: boolean }): fc.Arbitrary<Op> => {
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ kind: fc.constant('crash' as const), node }),
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
    fc.record({ kind: fc.constant('propose' as const), node, count: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('transfer' as const), node }),
    fc.record({ kind: fc.constant('read' as const), node }),
    // Faults aimed at whoever leads when they strike, and messages held for several election
    // timeouts and then released together (a reconnect replaying a queue): the interleavings of
    // Figure 8 and of stale votes need them.
    fc.record({ kind: fc.constant('isolateLeader' as const) }),
    fc.record({ kind: fc.constant('crashLeader' as const) }),
    fc.record({ kind: fc.constant('hold' as const), node, ticks: fc.integer({ min: 5, max: 60 }) }),
    fc.record({ kind: fc.constant('holdLeader' as const), ticks: fc.integer({ min: 5, max: 60 }) }),
  ];
  // A disk that loses its last entries (one node owing at a time). With membership changes the
  // owing node may come to be half the voters of a configuration, which no repair can elect
  // around: runScenario then still checks safety to the end, and skips only the liveness verdict.
  const loseTail = fc.record({ kind: fc.constant('loseTail' as const), node, count: fc.integer({ min: 1, max: 6 }), bounded: fc.boolean() });
  ops.push(loseTail);
  if (options.membership) {
    // Losses meeting membership changes are what these schedules are for: random timing alone
    // rarely puts a loss and a change in flight together, so an op does it on purpose.
    const change = fc.record({ kind: fc.constant('confChange' as const), type: fc.constantFrom(...confChangeTypes), node });
    const amidChange = fc.record({
      kind: fc.constant('loseTailAmidChange' as const),
      node,
      count: fc.integer({ min: 1, max: 6 }),
      bounded: fc.boolean(),
      type: fc.constantFrom(...confChangeTypes),
      target: node,
      changeFirst: fc.boolean(),
    });
    ops.push(change, change, amidChange);
  }
  return fc.oneof(...ops);
};

/**
 * churnScenarioArbitrary: five voters and dense faults aimed at whoever leads (isolate, crash or
 * hold the leader, restart a node, heal), one entry per append message. This is where leaders of
 * different terms leave competing entries at the same index (Figure 8 of the Raft paper), which
 * uniform random faults rarely reach.
 */
export const churnScenarioArbitrary = (options: { stepsMax: number }): fc.Arbitrary<Scenario> => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('isolateLeader' as const) }),
    fc.record({ kind: fc.constant('crashLeader' as const) }),
    fc.record({ kind: fc.constant('holdLeader' as const), ticks: fc.integer({ min: 5, max: 40 }) }),
    fc.record({ kind: fc.constant('restart' as const), node }),
    fc.record({ kind: fc.constant('heal' as const) }),
    fc.record({ kind: fc.constant('propose' as const), node, count: fc.integer({ min: 1, max: 3 }) }),
  );
  return fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      voters: fc.constant(5),
      learners: fc.constant(0),
      spares: fc.constant(0),
      snapshotEveryEntries: fc.constant(1000),
      electionTicks: fc.constantFrom(6, 10),
      heartbeatTicks: fc.constant(1),
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
      appendBytesMax: fc.constant(1),
      inflightMessagesMax: fc.constantFrom(1, 8),
      steps: fc.array(fc.record({ atTick: fc.integer({ min: 0, max: safetyTicks }), op }), { minLength: 10, maxLength: options.stepsMax }),
    })
    .map((scenario) => ({ ...scenario, steps: [...scenario.steps].sort((a, b) => a.atTick - b.atTick) }));
};

/** scenarioArbitrary: 3 to 7 nodes (voters, learners, spares to add), and a fault schedule. */
export const scenarioArbitrary = (options: { membership: boolean; stepsMax: number }): fc.Arbitrary<Scenario> =>
  fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      voters: fc.integer({ min: 3, max: 5 }),
      learners: fc.integer({ min: 0, max: 1 }),
      spares: options.membership ? fc.integer({ min: 0, max: 1 }) : fc.constant(0),
      snapshotEveryEntries: fc.constantFrom(5, 20, 1000),
      electionTicks: fc.constantFrom(6, 10, 20),
      heartbeatTicks: fc.constantFrom(1, 2, 3),
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
      appendBytesMax: fc.constantFrom(1, 256, 65_536),
      inflightMessagesMax: fc.constantFrom(1, 8, 64),
      steps: fc.array(fc.record({ atTick: fc.integer({ min: 0, max: safetyTicks }), op: opArbitrary(options) }), { maxLength: options.stepsMax }),
    })
    .map((scenario) => ({ ...scenario, steps: [...scenario.steps].sort((a, b) => a.atTick - b.atTick) }));

/** ScenarioFailure carries what went wrong and, when traced, the events that led there. */
export class ScenarioFailure extends Error {
  override readonly name = 'ScenarioFailure';
  constructor(
    override readonly cause: unknown,
    readonly trace: readonly string[],
  ) {
    super(String(cause instanceof Error ? cause.message : cause));
  }
}

export interface ScenarioOutcome {
  readonly simulation: RaftSimulation;
  readonly acknowledged: number;
  /** livenessTicks: the ticks the healed cluster took to settle (undefined: it did not, and liveness was not promised). */
  readonly livenessTicks: number | undefined;
  /**
   * livenessPromised: false when, after healing, a node that owes lost entries is half or more of
   * the voters of a configuration some node uses: no election can succeed without its vote, which
   * it withholds until a leader repairs it. Safety was checked all the same.
   */
  readonly livenessPromised: boolean;
}

/**
 * runScenario plays a schedule and throws on any violated invariant (InvariantViolation) or on a
 * liveness failure (Error). Deterministic: the same scenario gives the same run.
 */
export function runScenario(scenario: Scenario, options: { trace?: boolean } = {}): ScenarioOutcome {
  const ids = Array.from({ length: scenario.voters + scenario.learners + scenario.spares }, (_, i) => i + 1);
  const simOptions: SimOptions = {
    seed: scenario.seed,
    voters: ids.slice(0, scenario.voters),
    learners: ids.slice(scenario.voters, scenario.voters + scenario.learners),
    spares: ids.slice(scenario.voters + scenario.learners),
    electionTicks: scenario.electionTicks,
    heartbeatTicks: Math.min(scenario.heartbeatTicks, scenario.electionTicks - 1),
    tickMs,
    fsyncMsMax: 3,
    snapshotEveryEntries: scenario.snapshotEveryEntries,
    preVote: scenario.preVote,
    checkQuorum: scenario.checkQuorum,
    appendBytesMax: scenario.appendBytesMax,
    inflightMessagesMax: scenario.inflightMessagesMax,
    trace: options.trace ?? false,
  };
  const simulation = new RaftSimulation(simOptions);
  const pick = (position: number): NodeId => ids[position % ids.length]!;
  for (const step of scenario.steps) simulation.at(step.atTick * tickMs, () => perform(simulation, step.op, { ids, pick }));
  for (let tick = 3; tick < safetyTicks; tick += 4) simulation.at(tick * tickMs, () => proposeToLeader(simulation, 1));
  try {
    simulation.runUntil(safetyTicks * tickMs);
    const { livenessTicks, livenessPromised } = heal(simulation, ids);
    return { simulation, acknowledged: simulation.acknowledged.size, livenessTicks, livenessPromised };
  } catch (error) {
    throw new ScenarioFailure(error, simulation.trace);
  }
}

/** NetworkOp: the faults of the network, shared by every simulation built on RaftSimulation. */
export type NetworkOp = Extract<Op, { kind: 'isolate' | 'split' | 'bridge' | 'oneWay' | 'heal' | 'links' | 'isolateLeader' }>;

const networkOpKinds: ReadonlySet<Op['kind']> = new Set(['isolate', 'split', 'bridge', 'oneWay', 'heal', 'links', 'isolateLeader']);

export function isNetworkOp(op: { kind: string }): op is NetworkOp {
  return networkOpKinds.has(op.kind as Op['kind']);
}

/** performNetworkOp cuts, heals or degrades links; nodes are named by position as in Op. */
export function performNetworkOp(simulation: RaftSimulation, op: NetworkOp, context: { ids: NodeId[]; pick: (position: number) => NodeId }): void {
  const { ids, pick } = context;
  const sideOf = (mask: number): [NodeId[], NodeId[]] => [ids.filter((_, i) => (mask >> i) & 1), ids.filter((_, i) => !((mask >> i) & 1))];
  switch (op.kind) {
    case 'isolate':
      return simulation.network.partition([[pick(op.node)], ids.filter((id) => id !== pick(op.node))]);
    case 'split':
      return simulation.network.partition(sideOf(op.mask));
    case 'bridge': {
      const bridge = pick(op.bridge);
      const [a, b] = sideOf(op.mask);
      return simulation.network.partition([a.filter((id) => id !== bridge), b.filter((id) => id !== bridge)]);
    }
    case 'oneWay':
      return simulation.network.cutOneWay(pick(op.from), pick(op.to));
    case 'heal':
      return simulation.network.heal();
    case 'links':
      return simulation.setLinkFaults({ dropRate: op.dropRate, duplicateRate: op.duplicateRate, delayMinMs: 1, delayMaxMs: op.delayMaxMs });
    case 'isolateLeader': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.network.partition([[leader], ids.filter((id) => id !== leader)]);
      return;
    }
  }
}

function perform(simulation: RaftSimulation, op: Op, context: { ids: NodeId[]; pick: (position: number) => NodeId }): void {
  const { pick } = context;
  if (isNetworkOp(op)) return performNetworkOp(simulation, op, context);
  switch (op.kind) {
    case 'crash':
      return simulation.crash(pick(op.node));
    case 'restart':
      return simulation.restart(pick(op.node));
    case 'propose':
      return proposeToLeader(simulation, op.count, pick(op.node));
    case 'confChange': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.proposeConfChange(leader, { type: op.type, nodeId: pick(op.node) });
      return;
    }
    case 'transfer': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.transferLeadership(leader, pick(op.node));
      return;
    }
    case 'read':
      return simulation.readIndex(pick(op.node));
    case 'loseTail':
      return simulation.loseTail(pick(op.node), op.count, { bounded: op.bounded });
    case 'loseTailAmidChange': {
      const proposeChange = (): void => {
        const leader = simulation.leader();
        if (leader !== undefined) simulation.proposeConfChange(leader, { type: op.type, nodeId: pick(op.target) });
      };
      if (op.changeFirst) proposeChange();
      simulation.loseTail(pick(op.node), op.count, { bounded: op.bounded });
      if (!op.changeFirst) proposeChange();
      return;
    }
    case 'crashLeader': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.crash(leader);
      return;
    }
    case 'hold':
      return simulation.hold(pick(op.node), simulation.now + op.ticks * tickMs);
    case 'holdLeader': {
      const leader = simulation.leader();
      if (leader !== undefined) simulation.hold(leader, simulation.now + op.ticks * tickMs);
      return;
    }
  }
}

/** proposeToLeader sends count proposals to the current leader, or to `fallback` when there is none. */
function proposeToLeader(simulation: RaftSimulation, count: number, fallback?: NodeId): void {
  const target = simulation.leader() ?? fallback;
  if (target === undefined) return;
  for (let i = 0; i < count; i++) simulation.propose(target);
}

/**
 * heal restarts every node, repairs the network and runs until one leader leads every member,
 * a fresh proposal is acknowledged, and every member applied every acknowledged proposal.
 * Returns the ticks it took; throws if that does not happen within livenessTicksMax, unless a
 * debt of lost entries makes liveness impossible to promise (see livenessPromised): then it runs
 * the same ticks, every safety check still on, and returns undefined if the cluster never settled.
 */
function heal(simulation: RaftSimulation, ids: NodeId[]): { livenessTicks: number | undefined; livenessPromised: boolean } {
  simulation.network.heal();
  simulation.releaseAll();
  simulation.setLinkFaults(healthyLinks);
  for (const id of ids) simulation.restart(id);
  // Judged again at every tick: a configuration may still be on its way in a message when the
  // healing starts (a leader that proposed a change and lost its disk's tail at once).
  let livenessPromised = true;
  const judge = (): void => {
    if (!livenessPromised || !debtBlocksElections(simulation, ids)) return;
    livenessPromised = false;
    simulation.note(`liveness not promised: nodes [${simulation.owing().join(',')}] owe lost entries and are half or more of the voters of a configuration in use`);
  };
  judge();
  const start = simulation.now;
  let probeProposed = false;
  for (let tick = 1; tick <= livenessTicksMax; tick++) {
    simulation.runUntil(start + tick * tickMs);
    judge();
    const leader = simulation.leader();
    if (leader === undefined) continue;
    if (!probeProposed) {
      simulation.propose(leader);
      probeProposed = true;
      continue;
    }
    if (settled(simulation, leader)) return { livenessTicks: tick, livenessPromised };
    if (tick % 50 === 0) probeProposed = false; // the probe may have been lost to a leader change
  }
  if (!livenessPromised) return { livenessTicks: undefined, livenessPromised };
  throw new Error(`liveness: no settled cluster within ${livenessTicksMax} ticks after healing; ${describeCluster(simulation, ids)}`);
}

/**
 * debtBlocksElections: some node owes entries its disk lost (it abstains from elections until a
 * leader sends them back) and the owing nodes are half or more of the voters of a configuration
 * in use: the latest one of some live node's log (the one it counts votes in) or its committed
 * one. A candidate of that configuration cannot win without an owing vote, and with an
 * uncommitted change (a demotion the log of every candidate holds) no candidate may be able to:
 * liveness is not promised. One owing voter of three or more is a minority of every such set.
 */
function debtBlocksElections(simulation: RaftSimulation, ids: NodeId[]): boolean {
  const owing = new Set(simulation.owing());
  if (owing.size === 0) return false;
  for (const id of ids) {
    for (const voters of simulation.voterSets(id)) {
      const owingVoters = voters.filter((voter) => owing.has(voter)).length;
      if (owingVoters > 0 && 2 * owingVoters >= voters.length) return true;
    }
  }
  return false;
}

function settled(simulation: RaftSimulation, leader: NodeId): boolean {
  const leaderStatus = simulation.status(leader)!;
  const highestAcknowledged = Math.max(0, ...simulation.acknowledged.keys());
  if (leaderStatus.lastIndex !== leaderStatus.commit || leaderStatus.commit < highestAcknowledged) return false;
  if (simulation.acknowledged.size === 0) return false;
  for (const member of simulation.members(leader)) {
    const status = simulation.status(member);
    if (status === undefined || status.leader !== leader || status.term !== leaderStatus.term) return false;
    if (simulation.appliedIndex(member) < leaderStatus.commit) return false;
  }
  return true;
}

function describeCluster(simulation: RaftSimulation, ids: NodeId[]): string {
  return ids
    .map((id) => {
      const status = simulation.status(id);
      if (status === undefined) return `${id}: down`;
      return `${id}: ${status.role} t${status.term} leader=${status.leader} commit=${status.commit} applied=${simulation.appliedIndex(id)} last=${status.lastIndex} voters=[${status.confState.voters.join(',')}] learners=[${status.confState.learners.join(',')}]`;
    })
    .join('; ');
}
