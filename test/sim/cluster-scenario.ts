// One whole-cluster schedule: three or five nodes (each controller and broker) start from empty
// disks, an admin creates a topic (3 replicas), producers and consumer groups run while faults hit:
// kill -9 of one node, power loss of one or of all at once (unsynced writes lost or torn), a bit
// flip or a cut file on one node (a minority of every replica set) while it is down, isolation, a
// bridge, one-way cuts, lossy and slow links, pauses longer than the election timeout, clients cut
// off a node. Then everything heals, producers finish, and the run waits until every replica holds
// the same high watermark and every group has committed all of it. The chaos checker then judges
// the history, and every replica must hold exactly what the final read recorded. The groups' stores
// are checked too: each offsets partition's leader holds every commit a group was told of, and its
// caught-up replicas hold the same groups (compaction must not lose or invent any).
import fc from 'fast-check';
import { check } from '../../chaos/checker.js';
import { coordinatorPartition } from '../../src/groups/records.js';
import { offsetsTopic } from '../../src/node/group-coordinators.js';
import type { HostedPartition } from '../../src/node/hosted-partition.js';
import { decodePartitionSnapshot } from '../../src/partition/partition-state.js';
import { decodeGroupStoreSnapshot } from '../../src/rpc/group-codec.js';
import { decodeBatches } from '../../src/client/consumer.js';
import { seededRandom } from '../../src/raft/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import { ClusterSimulation } from './cluster-simulation.js';
import { ClusterWorkload, topic } from './cluster-workload.js';
import { healthyLinks, type LinkFaults } from './network.js';
import { ScenarioFailure } from './raft-scenario.js';

/** faultsFromMs: faults begin once the cluster had time to form (elections take 1 to 2 s). */
const faultsFromMs = 3000;
/** settleForMsMax: after healing, the cluster must converge within this long. */
const settleForMsMax = 60_000;
const probeEveryMs = 250;
/** messagesPerSecondMax: more peer messages than this in one virtual second is a storm. */
const messagesPerSecondMax = 5000;

export type ClusterFault =
  /** crash: kill -9 of one node, or (power) it loses power too. */
  | { readonly kind: 'crash'; readonly node: NodeId; readonly downMs: number; readonly power: boolean; readonly tear: boolean; readonly corrupt: 'none' | 'flip' | 'truncate'; readonly pick: number }
  | { readonly kind: 'powerLoss'; readonly downMs: number; readonly tear: boolean }
  | { readonly kind: 'isolate'; readonly node: NodeId; readonly forMs: number }
  /** bridge: the other nodes split in two sides by mask that reach each other only through the bridge node. */
  | { readonly kind: 'bridge'; readonly bridge: NodeId; readonly mask: number; readonly forMs: number }
  | { readonly kind: 'oneWay'; readonly from: NodeId; readonly to: NodeId; readonly forMs: number }
  | { readonly kind: 'links'; readonly dropRate: number; readonly duplicateRate: number; readonly delayMaxMs: number; readonly forMs: number }
  | { readonly kind: 'pause'; readonly node: NodeId; readonly forMs: number }
  | { readonly kind: 'clients'; readonly node: NodeId; readonly forMs: number };

export interface ClusterScenario {
  readonly seed: number;
  /** nodes: 3 or 5, each controller and broker. */
  readonly nodes: number;
  /** corruptible: the nodes whose files a crash may corrupt (one: a minority of every 3-replica set). */
  readonly corruptible: readonly NodeId[];
  readonly partitions: number;
  readonly producers: number;
  readonly groups: number;
  readonly consumersPerGroup: number;
  readonly faultForMs: number;
  /** syncMsMax[i]: how slow node i+1's disk is (its syncs complete 0 to this many ms after they are issued). */
  readonly syncMsMax: readonly number[];
  readonly faults: readonly { readonly atMs: number; readonly fault: ClusterFault }[];
  /**
   * offsetsCompactBytes: small, so that the offsets partitions are compacted at nearly every
   * retention check (5 s) and replicas restore their groups from snapshots; unset, never (the
   * pinned schedules from before compaction leave it out and keep their paths).
   */
  readonly offsetsCompactBytes?: number | undefined;
}

function faultArbitrary(nodes: number): fc.Arbitrary<ClusterFault> {
  const node = fc.integer({ min: 1, max: nodes });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('crash' as const), node, downMs: fc.integer({ min: 100, max: 6000 }), power: fc.boolean(), tear: fc.boolean(), corrupt: fc.constantFrom('none' as const, 'flip' as const, 'truncate' as const), pick: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('powerLoss' as const), downMs: fc.integer({ min: 100, max: 3000 }), tear: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('isolate' as const), node, forMs: fc.integer({ min: 200, max: 5000 }) }) },
    // mask splits the other nodes into two sides, neither empty.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bridge' as const), bridge: node, mask: fc.integer({ min: 1, max: 2 ** (nodes - 1) - 2 }), forMs: fc.integer({ min: 200, max: 5000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('oneWay' as const), from: node, to: node, forMs: fc.integer({ min: 200, max: 5000 }) }).filter((fault) => fault.from !== fault.to) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('links' as const), dropRate: fc.constantFrom(0, 0.05, 0.2), duplicateRate: fc.constantFrom(0, 0.05, 0.2), delayMaxMs: fc.constantFrom(3, 20, 100), forMs: fc.integer({ min: 500, max: 6000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), node, forMs: fc.integer({ min: 500, max: 4000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clients' as const), node, forMs: fc.integer({ min: 200, max: 4000 }) }) },
  );
}

/** scenarioArbitrary: three nodes in three schedules of four, five in the fourth. */
export function scenarioArbitrary(options: { faultsMax: number }): fc.Arbitrary<ClusterScenario> {
  return fc.constantFrom(3, 3, 3, 5).chain((nodes) =>
    fc
      .record({
        seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        nodes: fc.constant(nodes),
        // One node: a minority of every replica set (topics and the offsets topic have 3 replicas).
        corruptible: fc.integer({ min: 1, max: nodes }).map((id) => [id]),
        partitions: fc.integer({ min: 1, max: 3 }),
        producers: fc.integer({ min: 1, max: 3 }),
        groups: fc.integer({ min: 1, max: 2 }),
        consumersPerGroup: fc.integer({ min: 1, max: 2 }),
        faultForMs: fc.integer({ min: 3000, max: 10_000 }),
        syncMsMax: fc.array(fc.constantFrom(2, 2, 15, 40), { minLength: nodes, maxLength: nodes }),
        offsetsCompactBytes: fc.constantFrom(256, 2048, undefined),
      })
      .chain((base) => fc.array(fc.record({ atMs: fc.integer({ min: faultsFromMs, max: faultsFromMs + base.faultForMs }), fault: faultArbitrary(nodes) }), { maxLength: options.faultsMax }).map((faults) => ({ ...base, faults }))),
  );
}

export interface ClusterOutcome {
  readonly sim: ClusterSimulation;
  readonly workload: ClusterWorkload;
  readonly counts: Record<string, number>;
  readonly settledAtMs: number;
}

/** runScenario plays a schedule and throws ScenarioFailure (with the trace when tracing) on any violation. */
export async function runScenario(scenario: ClusterScenario, options: { trace?: boolean } = {}): Promise<ClusterOutcome> {
  const { nodes } = scenario;
  const sim = new ClusterSimulation({ seed: scenario.seed, nodes, trace: options.trace === true, sessionTimeoutMs: 6000, snapshotEveryEntries: 100, syncMsMax: scenario.syncMsMax, offsetsCompactBytes: scenario.offsetsCompactBytes });
  const workload = new ClusterWorkload(sim, { partitions: scenario.partitions, producers: scenario.producers, groups: scenario.groups, consumersPerGroup: scenario.consumersPerGroup, sendGapMsMax: 20 }, seededRandom((scenario.seed ^ 0x27d4eb2d) >>> 0));
  try {
    for (let id = 1; id <= nodes; id++) sim.start(id);
    workload.start();
    const network = new NetworkFaults(sim);
    for (const { atMs, fault } of scenario.faults) sim.schedule(atMs, undefined, () => inject(sim, network, scenario, fault));
    const healAtMs = faultsFromMs + scenario.faultForMs;
    await sim.runUntil(healAtMs);
    sim.note(() => 'heal everything; producers finish');
    network.healAll();
    for (let id = 1; id <= nodes; id++) {
      sim.resume(id);
      sim.start(id);
    }
    workload.producing = false;
    let settled = false;
    const probe = (): void => {
      settled = isSettled(sim, workload, scenario.partitions);
      if (!settled) sim.schedule(sim.now + probeEveryMs, undefined, probe);
    };
    sim.schedule(sim.now + probeEveryMs, undefined, probe);
    await sim.runUntil(healAtMs + settleForMsMax, () => settled);
    if (!settled) throw new Error(`the cluster did not converge within ${settleForMsMax} ms of healing: ${describeState(sim, workload, scenario.partitions)}`);
    const settledAtMs = sim.now;

    await finalRead(sim, workload, scenario.partitions);
    checkGroupStores(sim, workload);
    const verdict = check({ seed: scenario.seed, startedAt: '', config: {}, events: workload.events });
    if (!verdict.ok) {
      const found = Object.entries(verdict.counts).filter(([kind, count]) => count > 0 && kind in verdict.examples);
      throw new Error(`the checker found anomalies: ${JSON.stringify(Object.fromEntries(found))}; examples ${JSON.stringify(verdict.examples).slice(0, 2000)}`);
    }
    if (workload.refusals.length > 0) throw new Error(`producers were refused for good: ${workload.refusals.join('; ')}`);
    if (workload.fetchedBehind.length > 0) throw new Error(`a coordinator answered below an acknowledged commit: ${workload.fetchedBehind.slice(0, 5).join('; ')}`);
    // A healthy cluster here sends at most a few thousand Raft messages in a second; more is a storm (a leader and a follower bouncing an append back and forth).
    if (sim.counts.messagesInOneSecondMax > messagesPerSecondMax) throw new Error(`message storm: ${sim.counts.messagesInOneSecondMax} peer messages in one virtual second (the bound is ${messagesPerSecondMax})`);
    return { sim, workload, counts: verdict.counts, settledAtMs };
  } catch (error) {
    throw new ScenarioFailure(error, sim.trace.length > 0 ? sim.trace : [`(run again with tracing for the trace)`]);
  }
}

function inject(sim: ClusterSimulation, network: NetworkFaults, scenario: ClusterScenario, fault: ClusterFault): void {
  sim.note(() => `fault ${JSON.stringify(fault)}`);
  switch (fault.kind) {
    case 'crash':
      sim.crash(fault.node, { power: fault.power, tear: fault.tear });
      if (fault.corrupt !== 'none' && scenario.corruptible.includes(fault.node)) sim.corrupt(fault.node, fault.corrupt, fault.pick);
      sim.schedule(sim.now + fault.downMs, undefined, () => sim.start(fault.node));
      return;
    case 'powerLoss':
      // Every node at once (a rack loses power): only what each had synced survives anywhere.
      for (const id of sim.slots.keys()) {
        sim.crash(id, { power: true, tear: fault.tear });
        sim.schedule(sim.now + fault.downMs, undefined, () => sim.start(id));
      }
      return;
    case 'pause':
      sim.pause(fault.node);
      sim.schedule(sim.now + fault.forMs, undefined, () => sim.resume(fault.node));
      return;
    default:
      network.add(fault, sim.now + fault.forMs);
  }
}

/** NetworkFaults keeps the network faults in force and rebuilds the network's cuts when one starts or ends. */
class NetworkFaults {
  private active: { fault: ClusterFault; untilMs: number }[] = [];

  constructor(private readonly sim: ClusterSimulation) {}

  add(fault: ClusterFault, untilMs: number): void {
    this.active.push({ fault, untilMs });
    this.apply();
    this.sim.schedule(untilMs, undefined, () => {
      this.active = this.active.filter((entry) => entry.untilMs > this.sim.now);
      this.apply();
    });
  }

  healAll(): void {
    this.active = [];
    this.apply();
  }

  private apply(): void {
    const { network } = this.sim;
    network.heal();
    this.sim.clientCuts.clear();
    let links: LinkFaults = healthyLinks;
    const all = [...this.sim.slots.keys()];
    for (const { fault } of this.active) {
      if (fault.kind === 'isolate') network.partition([[fault.node], all.filter((id) => id !== fault.node)]);
      else if (fault.kind === 'bridge') {
        const others = all.filter((id) => id !== fault.bridge);
        network.partition([others.filter((_id, i) => (fault.mask >> i) & 1), others.filter((_id, i) => !((fault.mask >> i) & 1))]);
      }
      else if (fault.kind === 'oneWay') network.cutOneWay(fault.from, fault.to);
      else if (fault.kind === 'clients') this.sim.clientCuts.add(fault.node);
      else if (fault.kind === 'links') links = { dropRate: fault.dropRate, duplicateRate: fault.duplicateRate, delayMinMs: 1, delayMaxMs: fault.delayMaxMs };
    }
    network.faults = links;
    this.sim.clientFaults = { ...links, duplicateRate: 0 };
  }
}

/**
 * replicasOf returns the replicas of a partition as the metadata places them (read on an up node),
 * each node's HostedPartition or undefined where that node is not up or does not host it yet.
 */
function replicasOf(sim: ClusterSimulation, partition: number): (HostedPartition | undefined)[] {
  return replicaSlots(sim, partition, topic).map(([, replica]) => replica);
}

/** replicaSlots pairs each node placed to hold a partition of topic `of` with its replica (undefined while down); [0, undefined] before the topic exists. */
function replicaSlots(sim: ClusterSimulation, partition: number, of: string): [NodeId, HostedPartition | undefined][] {
  const up = [...sim.slots.values()].filter((slot) => slot.state === 'up' && slot.shell !== undefined);
  const placed = up[0]?.shell?.metadata.machine.image.topicByName(of)?.partitions[partition]?.replicas;
  if (placed === undefined) return [[0, undefined]];
  return placed.map((id): [NodeId, HostedPartition | undefined] => {
    const slot = sim.slot(id);
    if (slot.state !== 'up') return [id, undefined];
    try {
      return [id, slot.shell?.partitions?.partition(of, partition) as HostedPartition | undefined];
    } catch {
      return [id, undefined];
    }
  });
}

function isSettled(sim: ClusterSimulation, workload: ClusterWorkload, partitions: number): boolean {
  if (!workload.producersDone()) return false;
  const highWatermarks: number[] = [];
  for (let p = 0; p < partitions; p++) {
    const replicas = replicasOf(sim, p);
    if (replicas.some((replica) => replica === undefined)) return false;
    const marks = new Set(replicas.map((replica) => replica!.state.highWatermark));
    if (marks.size !== 1) return false;
    const led = replicas.some((replica) => replica!.leaderHint() !== 0);
    if (!led) return false;
    highWatermarks.push([...marks][0]!);
  }
  // A new leader of an offsets partition may not have applied its predecessor's last commits yet;
  // it answers no group request until it has (coordinator loading), so it is judged only then.
  return workload.groupsCaughtUp(highWatermarks) && coordinatorPartitions(sim, workload).every(({ leader }) => leader?.leadsCaughtUp() === true);
}

/** coordinatorPartitions lists the offsets partitions that coordinate a group that committed: their groups, replicas up, and leader (if up and known). */
function coordinatorPartitions(sim: ClusterSimulation, workload: ClusterWorkload): { index: number; groups: [string, Map<number, number>][]; replicas: HostedPartition[]; leader: HostedPartition | undefined }[] {
  const up = [...sim.slots.values()].find((slot) => slot.state === 'up' && slot.shell !== undefined);
  const count = up?.shell?.metadata.machine.image.topicByName(offsetsTopic)?.partitions.length ?? 0;
  const found = [];
  for (let index = 0; index < count; index++) {
    const groups = [...workload.committed].filter(([group]) => coordinatorPartition(group, count) === index);
    if (groups.length === 0) continue;
    const slots = replicaSlots(sim, index, offsetsTopic);
    const replicas = slots.flatMap(([, replica]) => (replica === undefined ? [] : [replica]));
    const leaderId = replicas[0]?.leaderHint() ?? 0;
    found.push({ index, groups, replicas, leader: slots.find(([id]) => id === leaderId)?.[1] });
  }
  return found;
}

function describeState(sim: ClusterSimulation, workload: ClusterWorkload, partitions: number): string {
  const lines: string[] = [`producers done: ${workload.producersDone()}`];
  for (const slot of sim.slots.values()) lines.push(`node ${slot.id}: ${slot.state}, metadata ${JSON.stringify(slot.shell?.host.status(0)?.role)} leader ${slot.shell?.host.status(0)?.leader}`);
  for (let p = 0; p < partitions; p++) {
    lines.push(`partition ${p}: high watermarks ${replicasOf(sim, p).map((replica) => (replica === undefined ? '-' : `${replica.state.highWatermark}(leader ${replica.leaderHint()})`)).join(' ')}`);
  }
  lines.push(`committed: ${JSON.stringify([...workload.committed].map(([group, offsets]) => [group, [...offsets]]))}`);
  lines.push(`coordinators: ${coordinatorPartitions(sim, workload).map(({ index, leader }) => `${offsetsTopic}-${index} ${leader === undefined ? 'no leader up' : `led by ${leader.leaderHint()}`}`).join(', ')}`);
  return lines.join('; ');
}

/** committedIn is what a replica of an offsets partition holds, read from its snapshot data: group -> partition of the topic -> offset. */
function committedIn(replica: HostedPartition): Map<string, Map<number, number>> {
  const { recordState } = decodePartitionSnapshot(replica.state.snapshotData());
  const committed = new Map<string, Map<number, number>>();
  for (const record of recordState === undefined ? [] : decodeGroupStoreSnapshot(recordState)) {
    if (record.type !== 'offsetCommit' || record.topic !== topic) continue;
    const partitions = committed.get(record.group) ?? new Map<number, number>();
    partitions.set(record.partition, record.offset);
    committed.set(record.group, partitions);
  }
  return committed;
}

/**
 * checkGroupStores: the leader of each offsets partition holds, for every group it coordinates, at
 * least the highest commit the group was told succeeded (more when an answer was lost); each
 * replica at the leader's high watermark holds the leader's offsets exactly.
 */
function checkGroupStores(sim: ClusterSimulation, workload: ClusterWorkload): void {
  const partitions = coordinatorPartitions(sim, workload);
  if (workload.committed.size > 0 && partitions.length === 0) throw new Error('groups committed offsets, but the offsets topic is gone');
  const show = (committed: Map<string, Map<number, number>>): string => JSON.stringify([...committed].map(([group, offsets]) => [group, [...offsets].sort((a, b) => a[0] - b[0])]).sort());
  for (const { index, groups, replicas, leader } of partitions) {
    if (leader === undefined) throw new Error(`${offsetsTopic}-${index} has no leader up after the cluster settled`);
    const held = committedIn(leader);
    for (const [group, offsets] of groups) {
      for (const [partition, offset] of offsets) {
        const stored = held.get(group)?.get(partition);
        if (stored === undefined || stored < offset) throw new Error(`${offsetsTopic}-${index} on its leader holds ${stored ?? 'no'} offset for ${group} ${topic}-${partition}, below the commit of ${offset} acknowledged`);
      }
    }
    for (const replica of replicas) {
      if (replica === leader || replica.state.highWatermark !== leader.state.highWatermark) continue;
      const other = committedIn(replica);
      if (show(other) !== show(held)) throw new Error(`replicas of ${offsetsTopic}-${index} at the same high watermark hold different groups: ${show(other)} against the leader's ${show(held)}`);
    }
  }
}

/** finalRead records every partition as one replica holds it and requires every other replica to hold the same. */
async function finalRead(sim: ClusterSimulation, workload: ClusterWorkload, partitions: number): Promise<void> {
  for (let p = 0; p < partitions; p++) {
    const contents: string[][] = [];
    for (const replica of replicasOf(sim, p)) {
      const values: string[] = [];
      const end = replica!.state.highWatermark;
      for (let offset = replica!.state.logStartOffset; offset < end; ) {
        const answer = await replica!.fetch({ offset, maxBytes: 1 << 20, maxWaitMs: 0, minBytes: 0 });
        const records = decodeBatches(topic, p, answer.batches, offset);
        if (records.length === 0) throw new Error(`replica of ${topic}-${p} returned nothing at ${offset} below its high watermark ${end}`);
        for (const record of records) values[record.offset] = new TextDecoder().decode(record.value ?? new Uint8Array());
        offset = records[records.length - 1]!.offset + 1;
      }
      contents.push(values);
    }
    const [first, ...others] = contents;
    for (const [i, other] of others.entries()) {
      if (JSON.stringify(other) !== JSON.stringify(first)) throw new Error(`replicas of ${topic}-${p} differ: replica ${i + 2} holds ${other.length} records against ${first!.length}`);
    }
    first!.forEach((value, offset) => workload.record({ kind: 'final-read', topic, partition: p, offset, value }));
  }
}
