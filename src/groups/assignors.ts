// Partition assignors of consumer groups: which member consumes which partition in the next generation,
// by Kafka's rules for range, roundrobin and cooperative-sticky. Pure and deterministic: no I/O, no clock, no
// randomness; the same input in any member order gives the same result.
//
// Order: members by (instanceId ?? memberId), then memberId; topics by name; strings by UTF-16 code units,
// as Java's String.compareTo. (Kafka's Java assignors sort static members, those with an instanceId, before
// all dynamic ones; here an instanceId only replaces the memberId as the sort key.)
//
// cooperative-sticky builds a target assignment in three steps, then filters it:
//   1. Retain: each member keeps the partitions it owned, of topics it still subscribes to. Of several claims
//      on one partition (stale claims) the one kept is the first in member order by a member subscribed to
//      the topic, else the first in member order.
//   2. Fill: the partitions nobody retained go, topic by topic (fewest subscribers first, then by name), each
//      to a least loaded subscriber (ties: first in member order).
//   3. Balance: while a member could shed a partition to one holding at least two fewer, through a chain of
//      moves each to a member subscribed to the moved partition's topic (a cost-reducing path), move along a
//      shortest such chain. A first pass moves only partitions their holder did not own; a second moves any.
//      With no such path left the loads are as even as subscriptions allow: the highest load and the sum of
//      squared loads are as low as they can be (an optimal semi-matching, Harvey et al. 2003), and members
//      with the same subscriptions are within one partition of each other.
//   Filter: a partition whose target is not the member owning it now, while that member is still in the group,
//   is revoked: nobody gets it this time. Its owner drops it and rejoins, and the next rebalance (`owned` being
//   this result) gives it to its target. Partitions owned by nobody or by members that left go at once.
// The second rebalance revokes nothing (members and subscriptions unchanged): the partitions it retains plus
// the revoked ones form the first target, which is optimal, so the first pass, moving only the revoked
// partitions, reaches an optimum and the second pass has nothing to move. With the same subscriptions for all,
// only the most loaded members shed, so a member keeps min(owned, floor(partitions / members)) of its owned
// partitions and the members owning more keep the extra shares.
// Cost: at the bounds (10,000 members, 100,000 partitions) a call took 0.1-1.5 s on a shared 2-core machine,
// for one topic or random subscriptions to 10 of 100 topics, fresh or with all partitions owned by one member.
// Balancing costs a breadth-first search per partition moved; subscriptions shaped into long chains (each
// member sharing topics with only two others) would make the searches, and so the call, longer.
import { assert } from '../raft/assert.js';

export type AssignorName = 'range' | 'roundrobin' | 'cooperative-sticky';

/** AssignorMember is one member of a group as the assignor sees it. */
export interface AssignorMember {
  readonly memberId: string;
  /** instanceId: static membership id, or undefined. Sorting uses instanceId ?? memberId, as Kafka. */
  readonly instanceId: string | undefined;
  readonly topics: readonly string[]; // the topics this member subscribes to
  /** owned: the partitions this member held in the previous generation (cooperative-sticky uses it). */
  readonly owned: readonly TopicPartition[];
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export type Assignment = ReadonlyMap<string, readonly TopicPartition[]>; // memberId -> partitions, each sorted by topic then partition

/** assignorLimits bound one call of assign; beyond them it throws RangeError. */
export const assignorLimits = {
  /** membersMax bounds the members of a group. */
  membersMax: 10_000,
  /** partitionsMax bounds the partitions of all topics some member subscribes to, together. */
  partitionsMax: 100_000,
  /** subscriptionsMax bounds the entries of all members' `topics` lists, together. */
  subscriptionsMax: 1_000_000,
  /** ownedPartitionsMax bounds the entries of all members' `owned` lists, together. */
  ownedPartitionsMax: 1_000_000,
} as const;

/**
 * assign returns the partitions of each member for the next generation under the named strategy (see the
 * file comment). Every member appears in the result, in member order, with its partitions sorted by topic
 * then partition (an empty list when it gets none). A partition goes to at most one member, and only to a
 * member subscribed to its topic; a topic absent from partitionCounts has no partitions. range and
 * roundrobin assign every partition of every subscribed topic; cooperative-sticky assigns every one except
 * those it revokes. Throws RangeError when the input exceeds a bound of assignorLimits, and AssertionError
 * on a caller's bug: two members with one memberId, or a partition count that is not a non-negative integer.
 */
export function assign(name: AssignorName, members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Assignment {
  const problem = normalize(members, partitionCounts);
  let holdings: number[][];
  switch (name) {
    case 'range':
      holdings = assignRange(problem);
      break;
    case 'roundrobin':
      holdings = assignRoundRobin(problem);
      break;
    case 'cooperative-sticky':
      holdings = assignCooperativeSticky(problem);
      break;
  }
  assertHoldings(problem, holdings, { complete: name !== 'cooperative-sticky' });
  return toAssignment(problem, holdings);
}

/**
 * Problem is the input in index form: members in member order (index m), subscribed topics with at least
 * one partition in name order (index t), and their partitions numbered from 0 in topic then partition order
 * (index p). Holdings are lists of p per m.
 */
interface Problem {
  readonly members: readonly AssignorMember[];
  readonly topics: readonly string[];
  readonly topicIndex: ReadonlyMap<string, number>;
  /** firstPartition[t] is the p of partition 0 of topic t; firstPartition[topics.length] is the count. */
  readonly firstPartition: readonly number[];
  readonly topicOfPartition: Int32Array;
  /** memberTopics[m] are the topics member m subscribes to, ascending, without repeats. */
  readonly memberTopics: readonly (readonly number[])[];
  /** topicSubscribers[t] are the members subscribed to topic t, ascending; never empty. */
  readonly topicSubscribers: readonly (readonly number[])[];
}

function normalize(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Problem {
  checkBounds(members);
  const sorted = [...members].sort(compareMembers);
  assert(new Set(sorted.map((member) => member.memberId)).size === sorted.length, 'assignors: two members share a memberId');
  const subscribed = new Set<string>();
  for (const member of sorted) {
    for (const topic of member.topics) {
      const count = partitionCounts.get(topic) ?? 0;
      assert(Number.isSafeInteger(count) && count >= 0, 'assignors: a partition count must be a non-negative integer', { topic, count });
      if (count > 0) subscribed.add(topic);
    }
  }
  const topics = [...subscribed].sort(compareStrings);
  const firstPartition = [0];
  for (const topic of topics) firstPartition.push(at(firstPartition, firstPartition.length - 1) + (partitionCounts.get(topic) ?? 0));
  const partitionCount = at(firstPartition, topics.length);
  if (partitionCount > assignorLimits.partitionsMax) {
    throw new RangeError(`the subscribed topics of a group have at most ${assignorLimits.partitionsMax} partitions together, got ${partitionCount}`);
  }
  const topicIndex = new Map(topics.map((topic, index) => [topic, index] as const));
  const topicOfPartition = new Int32Array(partitionCount);
  topics.forEach((_, topic) => topicOfPartition.fill(topic, at(firstPartition, topic), at(firstPartition, topic + 1)));
  const memberTopics = sorted.map((member) => [...new Set(member.topics.flatMap((topic) => topicIndex.get(topic) ?? []))].sort((a, b) => a - b));
  const topicSubscribers = topics.map((): number[] => []);
  memberTopics.forEach((subscriptions, member) => subscriptions.forEach((topic) => at(topicSubscribers, topic).push(member)));
  return { members: sorted, topics, topicIndex, firstPartition, topicOfPartition, memberTopics, topicSubscribers };
}

function checkBounds(members: readonly AssignorMember[]): void {
  const limits = assignorLimits;
  if (members.length > limits.membersMax) throw new RangeError(`a group has at most ${limits.membersMax} members, got ${members.length}`);
  let subscriptions = 0;
  let owned = 0;
  for (const member of members) {
    subscriptions += member.topics.length;
    owned += member.owned.length;
  }
  if (subscriptions > limits.subscriptionsMax) {
    throw new RangeError(`the members of a group list at most ${limits.subscriptionsMax} topics together, got ${subscriptions}`);
  }
  if (owned > limits.ownedPartitionsMax) {
    throw new RangeError(`the members of a group list at most ${limits.ownedPartitionsMax} owned partitions together, got ${owned}`);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMembers(a: AssignorMember, b: AssignorMember): number {
  return compareStrings(a.instanceId ?? a.memberId, b.instanceId ?? b.memberId) || compareStrings(a.memberId, b.memberId);
}

/** partitionCountOf returns how many partitions the problem numbers. */
function partitionCountOf(problem: Problem): number {
  return problem.topicOfPartition.length;
}

/** partitionIndexOf returns the p of a claimed partition, or undefined when no subscribed topic has it. */
function partitionIndexOf(problem: Problem, claimed: TopicPartition): number | undefined {
  const topic = problem.topicIndex.get(claimed.topic);
  if (topic === undefined || !Number.isInteger(claimed.partition) || claimed.partition < 0) return undefined;
  const partition = at(problem.firstPartition, topic) + claimed.partition;
  return partition < at(problem.firstPartition, topic + 1) ? partition : undefined;
}

/** subscribes says whether member m subscribes to topic t. */
function subscribes(problem: Problem, member: number, topic: number): boolean {
  return firstAtOrAfter(at(problem.memberTopics, member), topic) === topic;
}

/** firstAtOrAfter returns the first value >= target of an ascending list, or undefined. */
function firstAtOrAfter(ascending: readonly number[], target: number): number | undefined {
  let low = 0;
  let high = ascending.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (at(ascending, middle) < target) low = middle + 1;
    else high = middle;
  }
  return ascending[low];
}

function toAssignment(problem: Problem, holdings: readonly (readonly number[])[]): Assignment {
  const assignment = new Map<string, readonly TopicPartition[]>();
  problem.members.forEach((member, index) => {
    const partitions = [...at(holdings, index)].sort((a, b) => a - b);
    assignment.set(
      member.memberId,
      partitions.map((partition) => {
        const topic = at(problem.topicOfPartition, partition);
        return { topic: at(problem.topics, topic), partition: partition - at(problem.firstPartition, topic) };
      }),
    );
  });
  return assignment;
}

/** assertHoldings checks, on the way out, that no partition has two members and each member subscribes to its partitions' topics. */
function assertHoldings(problem: Problem, holdings: readonly (readonly number[])[], options: { complete: boolean }): void {
  const taken = new Uint8Array(partitionCountOf(problem));
  holdings.forEach((partitions, member) => {
    for (const partition of partitions) {
      assert(at(taken, partition) === 0, 'assignors: a partition went to two members', { partition });
      taken[partition] = 1;
      assert(subscribes(problem, member, at(problem.topicOfPartition, partition)), 'assignors: a partition went to a member not subscribed to its topic', {
        partition,
        member,
      });
    }
  });
  if (options.complete) assert(taken.every((flag) => flag === 1), 'assignors: a partition of a subscribed topic went to nobody');
}

/** assignRange divides each topic's partitions into contiguous ranges over its subscribers; the first (count % subscribers) get one more. */
function assignRange(problem: Problem): number[][] {
  const holdings = problem.members.map((): number[] => []);
  problem.topicSubscribers.forEach((subscribers, topic) => {
    const first = at(problem.firstPartition, topic);
    const count = at(problem.firstPartition, topic + 1) - first;
    const share = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    let next = first;
    subscribers.forEach((member, position) => {
      const end = next + share + (position < extra ? 1 : 0);
      for (; next < end; next++) at(holdings, member).push(next);
    });
  });
  return holdings;
}

/**
 * assignRoundRobin deals all partitions, in topic then partition order, to the members in turn (member order,
 * wrapping), skipping members not subscribed to the partition's topic; the turn moves past each member dealt to.
 */
function assignRoundRobin(problem: Problem): number[][] {
  const holdings = problem.members.map((): number[] => []);
  let turn = 0;
  for (let partition = 0; partition < partitionCountOf(problem); partition++) {
    const subscribers = at(problem.topicSubscribers, at(problem.topicOfPartition, partition));
    const member = firstAtOrAfter(subscribers, turn) ?? at(subscribers, 0);
    at(holdings, member).push(partition);
    turn = (member + 1) % problem.members.length;
  }
  return holdings;
}

function assignCooperativeSticky(problem: Problem): number[][] {
  const claimant = resolveClaims(problem);
  const plan = new StickyPlan(problem, claimant);
  fillUnheld(problem, plan);
  new Balancer(problem, plan, { onlyNew: true }).run();
  new Balancer(problem, plan, { onlyNew: false }).run();
  const holdings = problem.members.map((): number[] => []);
  for (let partition = 0; partition < partitionCountOf(problem); partition++) {
    const holder = plan.holderOf(partition);
    assert(holder >= 0, 'assignors: the target of cooperative-sticky leaves a partition without a holder', { partition });
    const owner = at(claimant, partition);
    if (owner === -1 || owner === holder) at(holdings, holder).push(partition); // else revoked this round
  }
  return holdings;
}

/**
 * resolveClaims returns, for each p, the member whose claim on p is kept, or -1 when no member claims it:
 * the first claimant in member order subscribed to p's topic, else the first claimant in member order.
 * Claims on partitions no subscribed topic has are ignored.
 */
function resolveClaims(problem: Problem): Int32Array {
  const claimant = new Int32Array(partitionCountOf(problem)).fill(-1);
  problem.members.forEach((member, index) => {
    for (const claimed of member.owned) {
      const partition = partitionIndexOf(problem, claimed);
      if (partition === undefined) continue;
      const current = at(claimant, partition);
      const topic = at(problem.topicOfPartition, partition);
      if (current === -1 || (!subscribes(problem, current, topic) && subscribes(problem, index, topic))) claimant[partition] = index;
    }
  });
  return claimant;
}

/**
 * StickyPlan is the target assignment of cooperative-sticky while it is built: each partition's holder, each
 * member's load, and what each member holds by topic, split into partitions it owned (kept) and the others
 * (new). Each list is a stack: a member sheds the partition it got last, so it keeps its lowest owned ones.
 * Emptied lists stay in their maps (deleting and re-adding one key of a large Map is slow in V8).
 * Invariant: load[m] is the number of partitions whose holder is m; position[p] is p's place in its list.
 */
class StickyPlan {
  private readonly holder: Int32Array;
  private readonly load: Int32Array;
  /** owner[p] is the member whose claim on p is kept, if it subscribes to p's topic; else -1. */
  private readonly owner: Int32Array;
  private readonly keptHeld: Map<number, number[]>[];
  private readonly newHeld: Map<number, number[]>[];
  private readonly position: Int32Array;
  private readonly topicOfPartition: Int32Array;

  /** The constructor retains each partition for its owner (step 1), in partition order. */
  constructor(problem: Problem, claimant: Int32Array) {
    const partitionCount = partitionCountOf(problem);
    this.holder = new Int32Array(partitionCount).fill(-1);
    this.load = new Int32Array(problem.members.length);
    this.owner = claimant.map((member, partition) => (member !== -1 && subscribes(problem, member, at(problem.topicOfPartition, partition)) ? member : -1));
    this.keptHeld = problem.members.map(() => new Map());
    this.newHeld = problem.members.map(() => new Map());
    this.position = new Int32Array(partitionCount);
    this.topicOfPartition = problem.topicOfPartition;
    for (let partition = 0; partition < partitionCount; partition++) {
      const owner = at(this.owner, partition);
      if (owner !== -1) this.give(partition, owner);
    }
  }

  holderOf(partition: number): number {
    return at(this.holder, partition);
  }

  loadOf(member: number): number {
    return at(this.load, member);
  }

  /** give hands partition, held by nobody, to member. */
  give(partition: number, member: number): void {
    assert(at(this.holder, partition) === -1, 'assignors: give of a held partition', { partition });
    this.holder[partition] = member;
    this.load[member] = at(this.load, member) + 1;
    const byTopic = this.listsOf(member, partition);
    const topic = at(this.topicOfPartition, partition);
    const partitions = byTopic.get(topic) ?? [];
    this.position[partition] = partitions.length;
    partitions.push(partition);
    byTopic.set(topic, partitions);
  }

  /** move takes partition from its holder and gives it to member. */
  move(partition: number, member: number): void {
    const from = at(this.holder, partition);
    const byTopic = this.listsOf(from, partition);
    const topic = at(this.topicOfPartition, partition);
    const partitions = byTopic.get(topic);
    const place = at(this.position, partition);
    assert(partitions !== undefined && partitions[place] === partition, 'assignors: move of a partition its holder does not list', { partition });
    const last = partitions.pop();
    if (last !== undefined && last !== partition) {
      partitions[place] = last;
      this.position[last] = place;
    }
    this.load[from] = at(this.load, from) - 1;
    this.holder[partition] = -1;
    this.give(partition, member);
  }

  /** heldTopics yields the topics of which member holds a new partition, and unless onlyNew one it kept (a topic may come twice). */
  *heldTopics(member: number, options: { onlyNew: boolean }): Iterable<number> {
    for (const [topic, partitions] of at(this.newHeld, member)) if (partitions.length > 0) yield topic;
    if (options.onlyNew) return;
    for (const [topic, partitions] of at(this.keptHeld, member)) if (partitions.length > 0) yield topic;
  }

  /** partitionToShed returns the partition of topic that member got last, a new one if it holds any. */
  partitionToShed(member: number, topic: number): number {
    const newPartitions = at(this.newHeld, member).get(topic);
    const partitions = newPartitions !== undefined && newPartitions.length > 0 ? newPartitions : at(this.keptHeld, member).get(topic);
    const last = partitions?.[partitions.length - 1];
    assert(last !== undefined, 'assignors: no partition of the topic to shed', { member, topic });
    return last;
  }

  private listsOf(member: number, partition: number): Map<number, number[]> {
    return at(at(this.owner, partition) === member ? this.keptHeld : this.newHeld, member);
  }
}

/** fillUnheld gives the partitions nobody holds to the least loaded subscribers (step 2). */
function fillUnheld(problem: Problem, plan: StickyPlan): void {
  const order = problem.topics.map((_, topic) => topic);
  order.sort((a, b) => at(problem.topicSubscribers, a).length - at(problem.topicSubscribers, b).length || a - b);
  for (const topic of order) {
    const unheld: number[] = [];
    for (let partition = at(problem.firstPartition, topic); partition < at(problem.firstPartition, topic + 1); partition++) {
      if (plan.holderOf(partition) === -1) unheld.push(partition);
    }
    if (unheld.length === 0) continue;
    const subscribers = at(problem.topicSubscribers, topic);
    const shares = waterFill(subscribers.map((member) => plan.loadOf(member)), unheld.length);
    let next = 0;
    subscribers.forEach((member, position) => {
      for (let count = at(shares, position); count > 0; count--) plan.give(at(unheld, next++), member);
    });
  }
}

/**
 * waterFill returns how many of `units` each member gets when each unit in turn goes to a member of least load
 * (ties: the earliest in the list), given the members' loads in member order; the counts are in the same order.
 */
function waterFill(loads: readonly number[], units: number): number[] {
  const byLoad = loads.map((_, position) => position).sort((a, b) => at(loads, a) - at(loads, b) || a - b);
  const shares = loads.map(() => 0);
  if (byLoad.length === 0) return shares;
  let level = at(loads, at(byLoad, 0));
  let raised = 1; // the first `raised` of byLoad are at `level`
  let remaining = units;
  for (; raised < byLoad.length; raised++) {
    const cost = (at(loads, at(byLoad, raised)) - level) * raised;
    if (cost > remaining) break;
    remaining -= cost;
    level = at(loads, at(byLoad, raised));
  }
  const lift = Math.floor(remaining / raised);
  level += lift;
  remaining -= lift * raised;
  for (const position of byLoad.slice(0, raised).sort((a, b) => a - b)) {
    shares[position] = level - at(loads, position) + (remaining > 0 ? 1 : 0);
    if (remaining > 0) remaining--;
  }
  return shares;
}

/**
 * LoadBuckets holds members grouped by load, and keeps the lowest and highest load held. A bucket is a list with
 * removal by swapping in the last member, so every operation is O(1) but a recount of the bounds when a bucket
 * at a bound empties (O(distinct loads)).
 */
class LoadBuckets {
  private readonly buckets = new Map<number, number[]>();
  /** place[member] is the member's index in the list of its bucket. */
  private readonly place = new Map<number, number>();
  private lowestLoad: number | undefined;
  private highestLoad: number | undefined;

  add(member: number, load: number): void {
    const bucket = this.buckets.get(load) ?? [];
    this.place.set(member, bucket.length);
    bucket.push(member);
    this.buckets.set(load, bucket);
    if (this.lowestLoad === undefined || load < this.lowestLoad) this.lowestLoad = load;
    if (this.highestLoad === undefined || load > this.highestLoad) this.highestLoad = load;
  }

  remove(member: number, load: number): void {
    const bucket = this.buckets.get(load);
    const index = this.place.get(member);
    assert(bucket !== undefined && index !== undefined && bucket[index] === member, 'assignors: member missing from its load bucket', { member, load });
    const last = bucket.pop();
    if (last !== undefined && last !== member) {
      bucket[index] = last;
      this.place.set(last, index);
    }
    // place keeps the stale entry of member: deleting and re-adding one key of a large Map is slow in V8.
    if (bucket.length > 0) return;
    this.buckets.delete(load);
    if (load === this.lowestLoad || load === this.highestLoad) this.recountBounds();
  }

  /** at returns the members of load; the list changes as members come and go. */
  at(load: number): readonly number[] {
    return this.buckets.get(load) ?? [];
  }

  /** lowest returns a member of the lowest load and that load, or undefined when empty. */
  lowest(): { readonly member: number; readonly load: number } | undefined {
    if (this.lowestLoad === undefined) return undefined;
    const bucket = this.buckets.get(this.lowestLoad);
    const member = bucket?.[bucket.length - 1];
    assert(member !== undefined, 'assignors: the lowest load bucket is empty');
    return { member, load: this.lowestLoad };
  }

  highest(): number | undefined {
    return this.highestLoad;
  }

  private recountBounds(): void {
    this.lowestLoad = undefined;
    this.highestLoad = undefined;
    for (const load of this.buckets.keys()) {
      if (this.lowestLoad === undefined || load < this.lowestLoad) this.lowestLoad = load;
      if (this.highestLoad === undefined || load > this.highestLoad) this.highestLoad = load;
    }
  }
}

/**
 * Balancer runs step 3 over a StickyPlan. The unfrozen members sit in load buckets, all together and per
 * topic they subscribe to, so a search finds at once whether a topic has a subscriber light enough to take a
 * partition. Members with the same subscriptions form a class: reaching one member of a class through a topic
 * reaches them all, so a search walks each class once. A member is frozen when no search from the highest
 * load can ever move a partition to or from it usefully; frozen members leave the buckets. With
 * shed.onlyNew (the first pass) a path moves only partitions their holder did not own.
 */
class Balancer {
  private readonly memberTopics: readonly (readonly number[])[];
  private readonly classMembers: number[][] = [];
  private readonly topicClasses: number[][];
  private readonly unfrozen = new LoadBuckets();
  private readonly topicBuckets: LoadBuckets[];
  private readonly frozen: Uint8Array;
  // The search: marks say what this search reached; parentTopic[m] is the topic through which m was reached
  // (-1: a source), topicShedder[t] the reached member that would shed a partition of t.
  private mark = 0;
  private readonly memberMark: Int32Array;
  private readonly topicMark: Int32Array;
  private readonly classMark: Int32Array;
  private readonly parentTopic: Int32Array;
  private readonly topicShedder: Int32Array;

  constructor(
    problem: Problem,
    private readonly plan: StickyPlan,
    private readonly shed: { readonly onlyNew: boolean },
  ) {
    const memberCount = problem.members.length;
    const topicCount = problem.topics.length;
    this.memberTopics = problem.memberTopics;
    this.topicClasses = problem.topics.map(() => []);
    this.topicBuckets = problem.topics.map(() => new LoadBuckets());
    const classByKey = new Map<string, number>();
    problem.memberTopics.forEach((topics, member) => {
      if (topics.length === 0) return; // takes nothing: in no class, never searched
      const key = topics.join(',');
      let classIndex = classByKey.get(key);
      if (classIndex === undefined) {
        classIndex = this.classMembers.length;
        classByKey.set(key, classIndex);
        this.classMembers.push([]);
        for (const topic of topics) at(this.topicClasses, topic).push(classIndex);
      }
      at(this.classMembers, classIndex).push(member);
      this.bucket(member);
    });
    this.frozen = new Uint8Array(memberCount);
    this.memberMark = new Int32Array(memberCount);
    this.topicMark = new Int32Array(topicCount);
    this.classMark = new Int32Array(this.classMembers.length);
    this.parentTopic = new Int32Array(memberCount);
    this.topicShedder = new Int32Array(topicCount);
  }

  /**
   * run moves partitions along cost-reducing paths until none is left. It ends: each move lowers the sum of
   * squared loads, and each search that finds no path freezes at least one member.
   */
  run(): void {
    for (;;) {
      const highest = this.unfrozen.highest();
      const lowest = this.unfrozen.lowest();
      if (highest === undefined || lowest === undefined || highest - lowest.load <= 1) return;
      this.shedFrom(highest);
    }
  }

  /**
   * shedFrom searches breadth first, from each unfrozen member at `level` (the highest load) in turn, through
   * the topics a reached member holds to the members subscribed to them, for a member with load <= level - 2.
   * On the first found it moves one partition along each step of the path. Else it freezes every member
   * reached: they hold >= level - 1 and reach only each other, so no later
   * path can start from them, and a path into them from a lower load is never cost-reducing.
   */
  private shedFrom(level: number): void {
    const mark = ++this.mark;
    const queue: number[] = [];
    let head = 0;
    for (const source of this.unfrozen.at(level)) {
      if (at(this.memberMark, source) === mark) continue;
      this.reach(source, -1, queue);
      while (head < queue.length) {
        const shedder = at(queue, head++);
        for (const topic of this.plan.heldTopics(shedder, this.shed)) {
          if (at(this.topicMark, topic) === mark) continue;
          this.topicMark[topic] = mark;
          this.topicShedder[topic] = shedder;
          const target = this.reachThrough(topic, level, queue);
          if (target === undefined) continue;
          this.shiftTo(target);
          return;
        }
      }
    }
    for (const member of queue) this.freeze(member);
  }

  /**
   * reachThrough returns an unfrozen subscriber of topic with load <= level - 2 if there is one; else it reaches
   * the subscribers, all with load >= level - 1, through topic.
   */
  private reachThrough(topic: number, level: number, queue: number[]): number | undefined {
    const lowest = at(this.topicBuckets, topic).lowest();
    if (lowest !== undefined && lowest.load <= level - 2) {
      this.parentTopic[lowest.member] = topic; // not reached before: all reached hold >= level - 1
      return lowest.member;
    }
    for (const classIndex of at(this.topicClasses, topic)) {
      if (at(this.classMark, classIndex) === this.mark) continue;
      this.classMark[classIndex] = this.mark;
      for (const member of at(this.classMembers, classIndex)) {
        if (at(this.frozen, member) === 0 && at(this.memberMark, member) !== this.mark) this.reach(member, topic, queue);
      }
    }
    return undefined;
  }

  private reach(member: number, throughTopic: number, queue: number[]): void {
    this.memberMark[member] = this.mark;
    this.parentTopic[member] = throughTopic;
    queue.push(member);
  }

  /** shiftTo moves one partition along each step of the path the search found to target, from target back to its source. */
  private shiftTo(target: number): void {
    let receiver = target;
    for (let topic = at(this.parentTopic, receiver); topic !== -1; topic = at(this.parentTopic, receiver)) {
      const shedder = at(this.topicShedder, topic);
      const partition = this.plan.partitionToShed(shedder, topic);
      this.unbucket(shedder);
      this.unbucket(receiver);
      this.plan.move(partition, receiver);
      this.bucket(shedder);
      this.bucket(receiver);
      receiver = shedder;
    }
  }

  /** bucket puts an unfrozen member in the buckets of its load; unbucket takes it out. */
  private bucket(member: number): void {
    const load = this.plan.loadOf(member);
    this.unfrozen.add(member, load);
    for (const topic of at(this.memberTopics, member)) at(this.topicBuckets, topic).add(member, load);
  }

  private unbucket(member: number): void {
    const load = this.plan.loadOf(member);
    this.unfrozen.remove(member, load);
    for (const topic of at(this.memberTopics, member)) at(this.topicBuckets, topic).remove(member, load);
  }

  private freeze(member: number): void {
    this.frozen[member] = 1;
    this.unbucket(member);
  }
}

/** at returns array[index], asserting that index is inside the array. */
function at<T>(array: ArrayLike<T>, index: number): T {
  const value = array[index];
  if (value === undefined) assert(false, 'assignors: index out of range', { index, length: array.length });
  return value;
}
