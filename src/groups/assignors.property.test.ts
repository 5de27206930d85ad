// Properties of the assignors over random groups: every assignment is valid (each partition to at most one
// member, only to a subscriber, every member listed, lists sorted) and does not depend on the order of the
// members; range and roundrobin assign everything, evenly where Kafka's rules make them even; and
// cooperative-sticky never hands a partition to a new owner while another member still owns it, and after
// the two-rebalance dance (call, then call again owning the result) assigns everything, as evenly as the
// subscriptions allow, moving no more partitions than balance needs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, type Assignment, type AssignorMember, type AssignorName, type TopicPartition } from './assignors.js';

const topicNames = ['a', 'b', 'c', 'd'] as const;
const assignorNames: readonly AssignorName[] = ['range', 'roundrobin', 'cooperative-sticky'];

interface Group {
  readonly members: readonly AssignorMember[];
  readonly partitionCounts: ReadonlyMap<string, number>;
}

const countsArbitrary = fc
  .tuple(...topicNames.map(() => fc.integer({ min: 0, max: 12 })))
  .map((counts) => new Map<string, number>(topicNames.map((name, index) => [name, counts[index] ?? 0])));

// Ids from few characters, including non-ASCII code units, so instanceIds and memberIds often collide.
const idArbitrary = fc.string({ unit: fc.constantFrom('m', 'n', 'é', '\u{1F600}'), maxLength: 3 });
const claimArbitrary = fc.record({ topic: fc.constantFrom(...topicNames, 'ghost'), partition: fc.integer({ min: -1, max: 13 }) });

const memberArbitrary = fc.record({
  memberId: idArbitrary,
  instanceId: fc.option(idArbitrary, { nil: undefined }),
  topics: fc.subarray([...topicNames, 'ghost']),
  owned: fc.array(claimArbitrary, { maxLength: 10 }),
});

/** groupArbitrary: any group, with stale, duplicate and meaningless claims in `owned`. */
const groupArbitrary: fc.Arbitrary<Group> = fc.record({
  members: fc.uniqueArray(memberArbitrary, { selector: (member) => member.memberId, maxLength: 9 }),
  partitionCounts: countsArbitrary,
});

/** allPartitions lists every partition of the given topics that partitionCounts has. */
function allPartitions(partitionCounts: ReadonlyMap<string, number>, topics: Iterable<string>): TopicPartition[] {
  return [...new Set(topics)].flatMap((topic) => Array.from({ length: partitionCounts.get(topic) ?? 0 }, (_, partition) => ({ topic, partition })));
}

const key = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;

/**
 * groupWithPreviousOwnersArbitrary: a group whose `owned` lists come from one earlier assignment: each
 * partition of every topic was held by one member, by a member that has since left, or by nobody.
 */
function groupWithPreviousOwnersArbitrary(members: fc.Arbitrary<AssignorMember[]>): fc.Arbitrary<Group> {
  return fc.tuple(members, countsArbitrary).chain(([present, partitionCounts]) => {
    const partitions = allPartitions(partitionCounts, [...topicNames, 'ghost']);
    return fc.array(fc.integer({ min: -1, max: present.length + 2 }), { minLength: partitions.length, maxLength: partitions.length }).map((owners) => ({
      partitionCounts,
      members: present.map((member, index) => ({ ...member, owned: partitions.filter((_, partition) => owners[partition] === index) })),
    }));
  });
}

/** sameTopicsArbitrary: members that all subscribe to one set of topics (a few subscribe to nothing). */
const sameTopicsMembersArbitrary = fc
  .tuple(fc.uniqueArray(memberArbitrary, { selector: (member) => member.memberId, minLength: 1, maxLength: 9 }), fc.subarray([...topicNames], { minLength: 1 }))
  .chain(([members, topics]) =>
    fc.array(fc.boolean(), { minLength: members.length, maxLength: members.length }).map((idle) => members.map((member, index) => ({ ...member, topics: idle[index] === true && index > 0 ? [] : topics }))),
  );

/** subscribedTopics are the topics of a member that have partitions. */
function subscribedTopics(member: AssignorMember, partitionCounts: ReadonlyMap<string, number>): Set<string> {
  return new Set(member.topics.filter((topic) => (partitionCounts.get(topic) ?? 0) > 0));
}

/** expectValid checks what every assignment must be; returns who got each partition. */
function expectValid(group: Group, assignment: Assignment): Map<string, string> {
  expect([...assignment.keys()].sort()).toEqual(group.members.map((member) => member.memberId).sort());
  const holders = new Map<string, string>();
  for (const member of group.members) {
    const partitions = assignment.get(member.memberId) ?? [];
    const subscribed = subscribedTopics(member, group.partitionCounts);
    partitions.forEach((tp, index) => {
      expect(subscribed.has(tp.topic)).toBe(true);
      expect(Number.isInteger(tp.partition) && tp.partition >= 0 && tp.partition < (group.partitionCounts.get(tp.topic) ?? 0)).toBe(true);
      expect(holders.has(key(tp))).toBe(false);
      holders.set(key(tp), member.memberId);
      const previous = partitions[index - 1];
      if (previous !== undefined) expect(previous.topic < tp.topic || (previous.topic === tp.topic && previous.partition < tp.partition)).toBe(true);
    });
  }
  return holders;
}

/** expectComplete checks that every partition of every subscribed topic went to someone. */
function expectComplete(group: Group, holders: ReadonlyMap<string, string>): void {
  const subscribed = group.members.flatMap((member) => [...subscribedTopics(member, group.partitionCounts)]);
  expect(holders.size).toBe(allPartitions(group.partitionCounts, subscribed).length);
}

/** reordered is the group with members, their topics and their claims in another order. */
function reordered(group: Group, order: readonly AssignorMember[]): Group {
  return { ...group, members: order.map((member) => ({ ...member, topics: [...member.topics].reverse(), owned: [...member.owned].reverse() })) };
}

/** spread is the largest load minus the smallest over the given members. */
function spread(assignment: Assignment, memberIds: readonly string[]): number {
  const loads = memberIds.map((memberId) => assignment.get(memberId)?.length ?? 0);
  return loads.length === 0 ? 0 : Math.max(...loads) - Math.min(...loads);
}

/** rejoined is the group with every member owning what `assignment` gave it. */
function rejoined(group: Group, assignment: Assignment): Group {
  return { ...group, members: group.members.map((member) => ({ ...member, owned: assignment.get(member.memberId) ?? [] })) };
}

/**
 * costReducingPath returns a pair of members [from, to] such that `from` could shed one partition to `to`,
 * which holds at least two fewer, by a chain of moves each to a member subscribed to the moved partition's
 * topic; undefined when none exists, that is when the loads are as even as the subscriptions allow.
 */
function costReducingPath(group: Group, assignment: Assignment): [string, string] | undefined {
  const load = (memberId: string): number => assignment.get(memberId)?.length ?? 0;
  const subscribers = (topic: string): string[] =>
    group.members.filter((member) => subscribedTopics(member, group.partitionCounts).has(topic)).map((member) => member.memberId);
  for (const start of group.members) {
    const reached = new Set([start.memberId]);
    const queue = [start.memberId];
    for (let memberId = queue.shift(); memberId !== undefined; memberId = queue.shift()) {
      for (const topic of new Set((assignment.get(memberId) ?? []).map((tp) => tp.topic))) {
        for (const next of subscribers(topic)) {
          if (reached.has(next)) continue;
          if (load(next) <= load(start.memberId) - 2) return [start.memberId, next];
          reached.add(next);
          queue.push(next);
        }
      }
    }
  }
  return undefined;
}

describe('assignor properties', () => {
  it('every assignor gives a valid assignment, the same whatever the order of members, topics and claims', () => {
    fc.assert(
      fc.property(
        groupArbitrary.chain((group) => fc.tuple(fc.constant(group), fc.shuffledSubarray([...group.members], { minLength: group.members.length }))),
        fc.constantFrom(...assignorNames),
        ([group, order], name) => {
          const assignment = assign(name, group.members, group.partitionCounts);
          const holders = expectValid(group, assignment);
          if (name !== 'cooperative-sticky') expectComplete(group, holders);
          const again = assign(name, reordered(group, order).members, group.partitionCounts);
          expect([...again]).toEqual([...assignment]);
        },
      ),
    );
  });

  it('range gives each topic in ranges within one partition of each other over its subscribers', () => {
    fc.assert(
      fc.property(groupArbitrary, (group) => {
        const assignment = assign('range', group.members, group.partitionCounts);
        for (const topic of topicNames) {
          const subscribers = group.members.filter((member) => member.topics.includes(topic));
          const counts = subscribers.map((member) => (assignment.get(member.memberId) ?? []).filter((tp) => tp.topic === topic).length);
          if (counts.length > 0) expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        }
      }),
    );
  });

  it('roundrobin gives members with the same subscriptions within one partition of each other', () => {
    fc.assert(
      fc.property(groupWithPreviousOwnersArbitrary(sameTopicsMembersArbitrary), (group) => {
        const assignment = assign('roundrobin', group.members, group.partitionCounts);
        const subscribing = group.members.filter((member) => member.topics.length > 0).map((member) => member.memberId);
        expect(spread(assignment, subscribing)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('cooperative-sticky never gives a partition another member still claims, and gives every unclaimed one', () => {
    fc.assert(
      fc.property(groupArbitrary, (group) => {
        const holders = expectValid(group, assign('cooperative-sticky', group.members, group.partitionCounts));
        const claimants = new Map<string, Set<string>>();
        for (const member of group.members) {
          for (const tp of member.owned) claimants.set(key(tp), (claimants.get(key(tp)) ?? new Set()).add(member.memberId));
        }
        for (const [partition, holder] of holders) {
          const claims = claimants.get(partition);
          // With a stale claim (several claimants) the partition may stay with one of them, never go elsewhere.
          if (claims !== undefined) expect(claims.has(holder)).toBe(true);
        }
        const subscribed = group.members.flatMap((member) => [...subscribedTopics(member, group.partitionCounts)]);
        for (const tp of allPartitions(group.partitionCounts, subscribed)) {
          if (!claimants.has(key(tp))) expect(holders.has(key(tp))).toBe(true);
        }
      }),
    );
  });

  it('cooperative-sticky, same subscriptions: two rebalances assign everything, evenly, keeping all that balance allows', () => {
    fc.assert(
      fc.property(groupWithPreviousOwnersArbitrary(sameTopicsMembersArbitrary), (group) => {
        const first = assign('cooperative-sticky', group.members, group.partitionCounts);
        const second = assign('cooperative-sticky', rejoined(group, first).members, group.partitionCounts);
        expectComplete(group, expectValid(group, second));
        const third = assign('cooperative-sticky', rejoined(group, second).members, group.partitionCounts);
        expect([...third]).toEqual([...second]);

        const subscribing = group.members.filter((member) => member.topics.length > 0);
        expect(spread(second, subscribing.map((member) => member.memberId))).toBeLessThanOrEqual(1);
        const topics = subscribing[0]?.topics ?? [];
        const partitionCount = allPartitions(group.partitionCounts, topics).length;
        const fairShare = Math.floor(partitionCount / subscribing.length);
        const extraShares = partitionCount % subscribing.length;
        let keptTotal = 0;
        for (const member of subscribing) {
          const owned = new Set(member.owned.filter((tp) => topics.includes(tp.topic)).map(key));
          const kept = (second.get(member.memberId) ?? []).filter((tp) => owned.has(key(tp))).length;
          for (const tp of first.get(member.memberId) ?? []) expect(second.get(member.memberId)).toContainEqual(tp);
          expect(kept).toBeGreaterThanOrEqual(Math.min(owned.size, fairShare));
          keptTotal += kept;
        }
        // The most partitions any balanced assignment keeps: each member up to its fair share, and the members
        // owning more than the fair share keep one more while extra shares last.
        const owning = subscribing.map((member) => member.owned.filter((tp) => topics.includes(tp.topic)).length);
        const keptMax = owning.reduce((sum, owned) => sum + Math.min(owned, fairShare), 0) + Math.min(extraShares, owning.filter((owned) => owned > fairShare).length);
        expect(keptTotal).toBe(keptMax);
      }),
    );
  });

  it('cooperative-sticky, any subscriptions: two rebalances assign everything, as evenly as the subscriptions allow', () => {
    fc.assert(
      fc.property(fc.oneof(groupArbitrary, groupWithPreviousOwnersArbitrary(fc.uniqueArray(memberArbitrary, { selector: (member) => member.memberId, maxLength: 9 }))), (group) => {
        const first = assign('cooperative-sticky', group.members, group.partitionCounts);
        const second = assign('cooperative-sticky', rejoined(group, first).members, group.partitionCounts);
        expectComplete(group, expectValid(group, second));
        for (const member of group.members) {
          for (const tp of first.get(member.memberId) ?? []) expect(second.get(member.memberId)).toContainEqual(tp);
        }
        expect(costReducingPath(group, second)).toBeUndefined();
        const third = assign('cooperative-sticky', rejoined(group, second).members, group.partitionCounts);
        expect([...third]).toEqual([...second]);
        const bySubscriptions = new Map<string, string[]>();
        for (const member of group.members) {
          const subscriptions = [...subscribedTopics(member, group.partitionCounts)].sort().join(',');
          bySubscriptions.set(subscriptions, [...(bySubscriptions.get(subscriptions) ?? []), member.memberId]);
        }
        for (const memberIds of bySubscriptions.values()) expect(spread(second, memberIds)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 1000 }, // at 100 runs, a balancer that moves owned partitions as readily as new ones escaped now and then
    );
  });
});
