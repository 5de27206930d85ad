// Replica placement: which brokers hold the replicas of a topic's new partitions, and which of them
// is the preferred leader. Pure and deterministic: no I/O, no clock, no randomness, so every
// controller that replays the same request computes the same assignments.
//
// The algorithm is greedy, one partition at a time, over running counts of replicas and preferred
// leaderships per broker (seeded from the topic's existing partitions):
//   1. The leader is the broker with the fewest leaderships, then the fewest replicas.
//   2. Each follower is the broker, not yet in this partition, whose rack holds the fewest replicas of
//      this partition, then with the fewest replicas, then whose rack holds the fewest replicas of the
//      topic, then with the most leaderships (a broker that leads less will soon get a leader replica
//      instead, so it is kept free for that).
//   3. Remaining ties go to the broker that comes first in the id order rotated to a start that depends on
//      the topic's name and the partition's index (followers: rotated to just after the leader), so that
//      many single-partition topics do not all lead on the same broker.
// What that gives from an even start (a fresh topic, or existing partitions placed by this function):
// leaders per broker always differ by at most one (each leader goes to a least-leading broker); replicas
// per broker differ by at most one without racks (property-tested, not proven). With racks the rack rule
// comes first: on racks of equal size replicas differ by at most one except rare cases of two (the
// least-loaded broker is free only in racks this partition already uses); on unequal racks brokers of the
// same rack differ by at most one, while a small rack's brokers carry more (every partition needs them).
// Racks: rule 2 fills every rack once before it puts a second replica of the partition in any rack, so
// a partition spans min(replicationFactor, racks) distinct racks. A broker without a rack is its own
// singleton rack (its own failure domain, as when no broker declares a rack). A rack is any string,
// including ''; only undefined means "no rack".
// Cost: O(partitionCount × replicationFactor × brokers) comparisons, bounded by placementLimits; measured
// about 1.3 s for 10,000 partitions × RF 3 on 1,024 brokers, milliseconds for everyday requests.
import { assert } from '../raft/assert.js';

/** placementLimits are the bounds of one placement request; the caller validates user input against them. */
export const placementLimits = {
  /** brokersMax bounds the brokers of one request. */
  brokersMax: 1_024,
  /** partitionsPerRequestMax bounds the new partitions of one request. */
  partitionsPerRequestMax: 10_000,
  /** partitionsPerTopicMax bounds the existing plus new partitions of one topic. */
  partitionsPerTopicMax: 100_000,
  /** replicationFactorMax bounds the replicas of one partition. */
  replicationFactorMax: 16,
} as const;

/** PlacementBroker is an unfenced broker that may receive replicas; rack undefined means it declares none. */
export interface PlacementBroker {
  readonly id: number;
  readonly rack: string | undefined;
}

/** PlacementRequest asks for the replicas of partitionCount new partitions of topic. */
export interface PlacementRequest {
  /** topic seeds the deterministic starting offset of the rotation (a hash of the name). */
  readonly topic: string;
  /** brokers are the unfenced brokers to place on, in any order; ids are distinct. */
  readonly brokers: readonly PlacementBroker[];
  /** partitionCount is how many new partitions to place. */
  readonly partitionCount: number;
  readonly replicationFactor: number;
  /**
   * existing are the replicas of the topic's existing partitions (when adding partitions), first replica
   * the preferred leader; they weigh on the counts so the spread stays even. Brokers not in `brokers` are
   * ignored.
   */
  readonly existing?: readonly (readonly number[])[];
}

/** PlacementResult is the outcome: one replica list per new partition, or too few brokers. */
export type PlacementResult =
  | { readonly kind: 'placed'; readonly assignments: readonly (readonly number[])[] }
  | { readonly kind: 'notEnoughBrokers'; readonly brokers: number; readonly replicationFactor: number };

/** BrokerLoad is the running state of placement, indexed by a broker's position in id order. */
interface BrokerLoad {
  readonly ids: readonly number[];
  /** rackIndexes[position] is the broker's rack as a dense index; unracked brokers get their own. */
  readonly rackIndexes: readonly number[];
  readonly rackCount: number;
  /** replicas[position] counts the broker's replicas of the topic, leaders[position] its preferred leaderships. */
  readonly replicas: number[];
  readonly leaders: number[];
  /** rackReplicas[rack] counts the topic's replicas on the rack's brokers. */
  readonly rackReplicas: number[];
}

/**
 * placeReplicas returns the replica lists of the request's new partitions, the first replica of each being
 * the preferred leader, or notEnoughBrokers when replicationFactor exceeds the broker count.
 * Guarantees (asserted on the way out): replicas of a partition are distinct brokers from `brokers`, and span
 * min(replicationFactor, racks) distinct racks. The result does not depend on the order of `brokers`.
 * Throws AssertionError on a caller's bug: replicationFactor < 1, partitionCount < 0, a bound of
 * placementLimits exceeded, duplicate broker ids, or an existing partition naming a broker twice.
 */
export function placeReplicas(request: PlacementRequest): PlacementResult {
  const { brokers, partitionCount, replicationFactor } = request;
  const existing = request.existing ?? [];
  assertRequest(request, existing);
  if (replicationFactor > brokers.length) {
    return { kind: 'notEnoughBrokers', brokers: brokers.length, replicationFactor };
  }
  const load = initialLoad(brokers, existing);
  const start = topicOffset(request.topic);
  const assignments: number[][] = [];
  for (let index = 0; index < partitionCount; index++) {
    const positions = placePartition(load, replicationFactor, start + existing.length + index);
    assignments.push(positions.map((position) => idAt(load, position)));
  }
  for (const replicas of assignments) assertAssignment(load, replicas, replicationFactor);
  return { kind: 'placed', assignments };
}

function assertRequest(request: PlacementRequest, existing: readonly (readonly number[])[]): void {
  const { brokers, partitionCount, replicationFactor } = request;
  const limits = placementLimits;
  assert(Number.isInteger(replicationFactor) && replicationFactor >= 1, 'placement: replicationFactor must be >= 1', { replicationFactor });
  assert(replicationFactor <= limits.replicationFactorMax, 'placement: replicationFactor over its bound', { replicationFactor });
  assert(Number.isInteger(partitionCount) && partitionCount >= 0, 'placement: partitionCount must be >= 0', { partitionCount });
  assert(partitionCount <= limits.partitionsPerRequestMax, 'placement: partitionCount over its bound', { partitionCount });
  assert(existing.length + partitionCount <= limits.partitionsPerTopicMax, 'placement: partitions per topic over their bound', {
    existing: existing.length,
    partitionCount,
  });
  assert(brokers.length <= limits.brokersMax, 'placement: broker count over its bound', { brokers: brokers.length });
  const ids = new Set<number>();
  for (const broker of brokers) {
    assert(Number.isSafeInteger(broker.id), 'placement: broker id must be an integer', { id: broker.id });
    assert(!ids.has(broker.id), 'placement: duplicate broker id', { id: broker.id });
    ids.add(broker.id);
  }
  for (const replicas of existing) {
    assert(new Set(replicas).size === replicas.length, 'placement: existing partition names a broker twice', { replicas });
  }
}

/** initialLoad sorts the brokers by id, gives racks dense indexes and counts the existing partitions. */
function initialLoad(brokers: readonly PlacementBroker[], existing: readonly (readonly number[])[]): BrokerLoad {
  const sorted = [...brokers].sort((a, b) => a.id - b.id);
  const ids = sorted.map((broker) => broker.id);
  const rackNames = [...new Set(sorted.flatMap((broker) => (broker.rack === undefined ? [] : [broker.rack])))].sort();
  const rackIndexByName = new Map(rackNames.map((name, index) => [name, index] as const));
  let rackCount = rackNames.length;
  const rackIndexes = sorted.map((broker) => (broker.rack === undefined ? rackCount++ : (rackIndexByName.get(broker.rack) ?? -1)));
  const zeros = (length: number): number[] => new Array<number>(length).fill(0);
  const load: BrokerLoad = { ids, rackIndexes, rackCount, replicas: zeros(ids.length), leaders: zeros(ids.length), rackReplicas: zeros(rackCount) };
  const positionById = new Map(ids.map((id, position) => [id, position] as const));
  for (const replicas of existing) {
    replicas.forEach((id, replicaIndex) => {
      const position = positionById.get(id);
      if (position !== undefined) addReplica(load, { position, leader: replicaIndex === 0 }); // else fenced or gone: not counted
    });
  }
  return load;
}

/**
 * placePartition picks the positions of one partition's replicas, leader first, and adds them to load.
 * `rotation` is the partition's global index plus the topic's offset.
 */
function placePartition(load: BrokerLoad, replicationFactor: number, rotation: number): number[] {
  const brokerCount = load.ids.length;
  const leader = chooseLeader(load, rotation % brokerCount);
  const chosen = [leader];
  const isChosen = new Uint8Array(brokerCount);
  isChosen[leader] = 1;
  const rackUse = new Array<number>(load.rackCount).fill(0);
  rackUse[rackAt(load, leader)] = 1;
  while (chosen.length < replicationFactor) {
    const follower = chooseFollower(load, { isChosen, rackUse, start: (leader + 1) % brokerCount });
    chosen.push(follower);
    isChosen[follower] = 1;
    rackUse[rackAt(load, follower)] = countAt(rackUse, rackAt(load, follower)) + 1;
  }
  for (const position of chosen) addReplica(load, { position, leader: position === leader });
  return chosen;
}

/** addReplica counts one replica (and leadership, if leader) on the broker at position and on its rack. */
function addReplica(load: BrokerLoad, options: { position: number; leader: boolean }): void {
  const { position, leader } = options;
  const rack = rackAt(load, position);
  load.replicas[position] = countAt(load.replicas, position) + 1;
  load.rackReplicas[rack] = countAt(load.rackReplicas, rack) + 1;
  if (leader) load.leaders[position] = countAt(load.leaders, position) + 1;
}

/** chooseLeader returns the position with the fewest leaderships, then fewest replicas, then first from start. */
function chooseLeader(load: BrokerLoad, start: number): number {
  const brokerCount = load.ids.length;
  let best = start;
  for (let step = 1; step < brokerCount; step++) {
    const position = (start + step) % brokerCount;
    const leadersDelta = countAt(load.leaders, position) - countAt(load.leaders, best);
    const replicasDelta = countAt(load.replicas, position) - countAt(load.replicas, best);
    const rackReplicasDelta = countAt(load.rackReplicas, rackAt(load, position)) - countAt(load.rackReplicas, rackAt(load, best));
    if (leadersDelta !== 0 ? leadersDelta < 0 : replicasDelta !== 0 ? replicasDelta < 0 : rackReplicasDelta < 0) best = position;
  }
  return best;
}

/**
 * chooseFollower returns the position, not marked in isChosen, whose rack holds the fewest of this partition's
 * replicas, then with the fewest replicas, then whose rack holds the fewest of the topic's replicas,
 * then with the most leaderships, then first from start.
 * Requires: some position is not marked in isChosen.
 */
function chooseFollower(load: BrokerLoad, options: { isChosen: Uint8Array; rackUse: readonly number[]; start: number }): number {
  const { isChosen, rackUse, start } = options;
  const brokerCount = load.ids.length;
  let best = -1;
  for (let step = 0; step < brokerCount; step++) {
    const position = (start + step) % brokerCount;
    if (isChosen[position] === 1) continue;
    if (best === -1 || followerBefore(load, rackUse, { position, best })) best = position;
  }
  assert(best !== -1, 'placement: no broker left for a follower', { brokers: brokerCount });
  return best;
}

/** followerBefore says whether position is a strictly better follower than best (ties keep best). */
function followerBefore(load: BrokerLoad, rackUse: readonly number[], options: { position: number; best: number }): boolean {
  const { position, best } = options;
  const rackDelta = countAt(rackUse, rackAt(load, position)) - countAt(rackUse, rackAt(load, best));
  if (rackDelta !== 0) return rackDelta < 0;
  const replicasDelta = countAt(load.replicas, position) - countAt(load.replicas, best);
  if (replicasDelta !== 0) return replicasDelta < 0;
  const rackReplicasDelta = countAt(load.rackReplicas, rackAt(load, position)) - countAt(load.rackReplicas, rackAt(load, best));
  if (rackReplicasDelta !== 0) return rackReplicasDelta < 0;
  return countAt(load.leaders, position) > countAt(load.leaders, best);
}

/** assertAssignment checks one placed partition: RF distinct known brokers over min(RF, racks) racks. */
function assertAssignment(load: BrokerLoad, replicas: readonly number[], replicationFactor: number): void {
  assert(replicas.length === replicationFactor, 'placement: wrong replica count', { replicas, replicationFactor });
  assert(new Set(replicas).size === replicas.length, 'placement: replicas not distinct', { replicas });
  const racks = new Set(replicas.map((id) => rackAt(load, load.ids.indexOf(id))));
  const racksWanted = Math.min(replicationFactor, load.rackCount);
  assert(racks.size === racksWanted, 'placement: replicas span too few racks', { replicas, racks: racks.size, racksWanted });
}

/**
 * topicOffset returns a deterministic non-negative offset for a topic name (32-bit FNV-1a over its UTF-16
 * code units), so different topics start their rotation at different brokers.
 */
function topicOffset(topic: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < topic.length; index++) {
    hash ^= topic.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

// The accessors below narrow an index that is in range by construction; they build the assertion's
// details only when it fails, since they run in the innermost loops.

function idAt(load: BrokerLoad, position: number): number {
  const id = load.ids[position];
  if (id === undefined) assert(false, 'placement: position out of range', { position });
  return id;
}

function rackAt(load: BrokerLoad, position: number): number {
  const rack = load.rackIndexes[position];
  if (rack === undefined) assert(false, 'placement: position without a rack index', { position });
  return rack;
}

function countAt(counts: readonly number[], index: number): number {
  const count = counts[index];
  if (count === undefined) assert(false, 'placement: count index out of range', { index });
  return count;
}
