// Exact assignments of the three assignors on small groups, written as `topic-partition` lists per member.
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import { assign, assignorLimits, type Assignment, type AssignorMember, type AssignorName, type TopicPartition } from './assignors.js';

function partitionOf(name: string): TopicPartition {
  const dash = name.lastIndexOf('-');
  return { topic: name.slice(0, dash), partition: Number(name.slice(dash + 1)) };
}

function member(memberId: string, topics: string[], options: { instanceId?: string; owned?: string[] } = {}): AssignorMember {
  return { memberId, instanceId: options.instanceId, topics, owned: (options.owned ?? []).map(partitionOf) };
}

function counts(entries: Record<string, number>): Map<string, number> {
  return new Map(Object.entries(entries));
}

/** shown is an assignment as memberId -> ['topic-partition', ...], in the result's member order. */
function shown(assignment: Assignment): [string, string[]][] {
  return [...assignment].map(([memberId, partitions]) => [memberId, partitions.map((tp) => `${tp.topic}-${tp.partition}`)]);
}

function run(name: AssignorName, members: AssignorMember[], partitionCounts: Map<string, number>): [string, string[]][] {
  return shown(assign(name, members, partitionCounts));
}

describe('range', () => {
  it('divides 7 partitions over 3 members into ranges of 3, 2 and 2', () => {
    const members = [member('c2', ['t']), member('c0', ['t']), member('c1', ['t'])];
    expect(run('range', members, counts({ t: 7 }))).toEqual([
      ['c0', ['t-0', 't-1', 't-2']],
      ['c1', ['t-3', 't-4']],
      ['c2', ['t-5', 't-6']],
    ]);
  });

  it('ranges each topic on its own, so the first member gets the extra of every topic', () => {
    const members = [member('c0', ['t0', 't1']), member('c1', ['t0', 't1'])];
    expect(run('range', members, counts({ t0: 3, t1: 3 }))).toEqual([
      ['c0', ['t0-0', 't0-1', 't1-0', 't1-1']],
      ['c1', ['t0-2', 't1-2']],
    ]);
  });

  it('ranges a topic over its subscribers only', () => {
    const members = [member('c0', ['t0']), member('c1', ['t0', 't1'])];
    expect(run('range', members, counts({ t0: 3, t1: 2 }))).toEqual([
      ['c0', ['t0-0', 't0-1']],
      ['c1', ['t0-2', 't1-0', 't1-1']],
    ]);
  });

  it('orders members by instanceId when they have one, else by memberId', () => {
    const members = [member('a', ['t'], { instanceId: 'x' }), member('m', ['t'])];
    expect(run('range', members, counts({ t: 3 }))).toEqual([
      ['m', ['t-0', 't-1']],
      ['a', ['t-2']],
    ]);
  });

  it('lists members that get nothing: more members than partitions, no subscription, unknown topics', () => {
    const members = [member('a', ['t']), member('b', ['t']), member('c', ['t']), member('d', []), member('e', ['ghost', 'empty'])];
    expect(run('range', members, counts({ t: 2, empty: 0 }))).toEqual([
      ['a', ['t-0']],
      ['b', ['t-1']],
      ['c', []],
      ['d', []],
      ['e', []],
    ]);
  });
});

describe('roundrobin', () => {
  it('deals the partitions of two topics in turn', () => {
    const members = [member('c1', ['t0', 't1']), member('c0', ['t1', 't0'])];
    expect(run('roundrobin', members, counts({ t0: 3, t1: 3 }))).toEqual([
      ['c0', ['t0-0', 't0-2', 't1-1']],
      ['c1', ['t0-1', 't1-0', 't1-2']],
    ]);
  });

  it('skips members not subscribed to the topic dealt', () => {
    const members = [member('c0', ['t0']), member('c1', ['t0', 't1']), member('c2', ['t0', 't1', 't2'])];
    expect(run('roundrobin', members, counts({ t0: 1, t1: 2, t2: 3 }))).toEqual([
      ['c0', ['t0-0']],
      ['c1', ['t1-0']],
      ['c2', ['t1-1', 't2-0', 't2-1', 't2-2']],
    ]);
  });

  it('moves the turn past a skipped member: the next partition goes to the one after the member dealt to', () => {
    const members = [member('a', ['x', 'y']), member('b', ['x']), member('c', ['x', 'y'])];
    expect(run('roundrobin', members, counts({ x: 2, y: 3 }))).toEqual([
      ['a', ['x-0', 'y-1']],
      ['b', ['x-1']],
      ['c', ['y-0', 'y-2']],
    ]);
  });
});

describe('cooperative-sticky', () => {
  it('balances a group that owns nothing yet', () => {
    const members = [member('c0', ['t']), member('c1', ['t']), member('c2', ['t'])];
    expect(run('cooperative-sticky', members, counts({ t: 7 }))).toEqual([
      ['c0', ['t-0', 't-1', 't-2']],
      ['c1', ['t-3', 't-4']],
      ['c2', ['t-5', 't-6']],
    ]);
  });

  it('revokes the partitions a joining member takes, then assigns them in the next rebalance', () => {
    const partitionCounts = counts({ t: 6 });
    const first = assign('cooperative-sticky', [member('a', ['t'], { owned: ['t-0', 't-1', 't-2', 't-3', 't-4', 't-5'] }), member('b', ['t'])], partitionCounts);
    expect(shown(first)).toEqual([
      ['a', ['t-0', 't-1', 't-2']],
      ['b', []],
    ]);
    const rejoined = [...first].map(([memberId, owned]) => ({ memberId, instanceId: undefined, topics: ['t'], owned }));
    expect(run('cooperative-sticky', rejoined, partitionCounts)).toEqual([
      ['a', ['t-0', 't-1', 't-2']],
      ['b', ['t-3', 't-4', 't-5']],
    ]);
  });

  it('gives the partitions of a member that left to their new owner at once', () => {
    const members = [member('a', ['t'], { owned: ['t-0', 't-1', 't-2'] }), member('c', ['t'])];
    expect(run('cooperative-sticky', members, counts({ t: 6 }))).toEqual([
      ['a', ['t-0', 't-1', 't-2']],
      ['c', ['t-3', 't-4', 't-5']],
    ]);
  });

  it('revokes a partition its owner no longer subscribes to, before another member gets it', () => {
    const partitionCounts = counts({ t0: 2, t1: 1 });
    const first = [member('a', ['t0'], { owned: ['t0-0', 't1-0'] }), member('b', ['t0', 't1'])];
    expect(run('cooperative-sticky', first, partitionCounts)).toEqual([
      ['a', ['t0-0', 't0-1']],
      ['b', []],
    ]);
    const second = [member('a', ['t0'], { owned: ['t0-0', 't0-1'] }), member('b', ['t0', 't1'])];
    expect(run('cooperative-sticky', second, partitionCounts)).toEqual([
      ['a', ['t0-0', 't0-1']],
      ['b', ['t1-0']],
    ]);
  });

  it('keeps the claim of the first claimant still subscribed when two members claim one partition', () => {
    // a claimed t-0 but now subscribes only to u; b's claim on t-0 is kept, so b keeps t-0 without a revoke.
    const members = [member('a', ['u'], { owned: ['t-0'] }), member('b', ['t'], { owned: ['t-0'] }), member('c', ['t'])];
    expect(run('cooperative-sticky', members, counts({ t: 2, u: 1 }))).toEqual([
      ['a', ['u-0']],
      ['b', ['t-0']],
      ['c', ['t-1']],
    ]);
    // Both subscribed: the claim of the first in member order is kept; b keeps t-1 and loses t-0 to a.
    const both = [member('b', ['t'], { owned: ['t-0', 't-1'] }), member('a', ['t'], { owned: ['t-0'] })];
    expect(run('cooperative-sticky', both, counts({ t: 2 }))).toEqual([
      ['a', ['t-0']],
      ['b', ['t-1']],
    ]);
  });

  it('ignores claims on partitions that do not exist', () => {
    const members = [member('a', ['t'], { owned: ['t-9', 'ghost-0', 't--1'] }), member('b', ['t'], { owned: ['t-1'] })];
    expect(run('cooperative-sticky', members, counts({ t: 2 }))).toEqual([
      ['a', ['t-0']],
      ['b', ['t-1']],
    ]);
  });

  it('balances members with different subscriptions through chains of moves', () => {
    // a takes only x, c only y, b both. Balance is 2 each: c must take both y from b, so b takes x from a.
    const members = [member('a', ['x'], { owned: ['x-0', 'x-1', 'x-2', 'x-3'] }), member('b', ['x', 'y'], { owned: ['y-0', 'y-1'] }), member('c', ['y'])];
    const partitionCounts = counts({ x: 4, y: 2 });
    const first = assign('cooperative-sticky', members, partitionCounts);
    expect(shown(first)).toEqual([
      ['a', ['x-0', 'x-1']],
      ['b', []],
      ['c', []],
    ]);
    const second = members.map((previous) => ({ ...previous, owned: first.get(previous.memberId) ?? [] }));
    expect(run('cooperative-sticky', second, partitionCounts)).toEqual([
      ['a', ['x-0', 'x-1']],
      ['b', ['x-2', 'x-3']],
      ['c', ['y-0', 'y-1']],
    ]);
  });

  it('revokes nothing in the second rebalance, also when subscriptions differ', () => {
    // Found by search: had the balancing moved owned partitions as readily as new ones, the second
    // rebalance would have moved z-3 from a to e, and revoked it, to balance again after its fill.
    const members = [
      member('a', ['y', 'z', 'w'], { owned: ['x-0', 'z-3', 'z-4'] }),
      member('b', ['y'], { owned: ['x-2', 'z-2', 'w-4'] }),
      member('c', ['x', 'y'], { owned: ['z-1', 'w-2'] }),
      member('d', ['x', 'z', 'w'], { owned: ['z-0', 'w-1', 'w-3'] }),
      member('e', ['x', 'z']),
    ];
    const partitionCounts = counts({ x: 3, y: 1, z: 5, w: 5 });
    const first = assign('cooperative-sticky', members, partitionCounts);
    expect(shown(first)).toEqual([
      ['a', ['w-0', 'z-3']],
      ['b', ['y-0']],
      ['c', ['x-1']],
      ['d', ['w-1', 'w-3', 'z-0']],
      ['e', []],
    ]);
    const second = assign('cooperative-sticky', members.map((previous) => ({ ...previous, owned: first.get(previous.memberId) ?? [] })), partitionCounts);
    expect(shown(second)).toEqual([
      ['a', ['w-0', 'w-2', 'z-3']],
      ['b', ['y-0']],
      ['c', ['x-0', 'x-1', 'x-2']],
      ['d', ['w-1', 'w-3', 'w-4', 'z-0']],
      ['e', ['z-1', 'z-2', 'z-4']],
    ]);
  });
});

describe('bounds and bugs', () => {
  it(`refuses more than ${assignorLimits.membersMax} members`, () => {
    const members = Array.from({ length: assignorLimits.membersMax + 1 }, (_, index) => member(`m${index}`, ['t']));
    expect(() => assign('range', members, counts({ t: 1 }))).toThrow(new RangeError(`a group has at most 10000 members, got 10001`));
  });

  it(`refuses more than ${assignorLimits.partitionsMax} partitions in the subscribed topics`, () => {
    const partitionCounts = counts({ a: 60_000, b: 40_001, unsubscribed: 1_000_000 });
    expect(() => assign('roundrobin', [member('m', ['a', 'b'])], partitionCounts)).toThrow(RangeError);
    expect(() => assign('roundrobin', [member('m', ['a', 'b'])], partitionCounts)).toThrow(/at most 100000 partitions/);
    expect(assign('roundrobin', [member('m', ['a'])], partitionCounts).get('m')).toHaveLength(60_000);
  });

  it('balances a group at its bounds, where one member owned every partition, in two rebalances', () => {
    const partitionCounts = counts({ t: assignorLimits.partitionsMax });
    const owned = Array.from({ length: assignorLimits.partitionsMax }, (_, partition) => `t-${partition}`);
    const members = Array.from({ length: assignorLimits.membersMax }, (_, index) => member(`m${String(index).padStart(5, '0')}`, ['t'], index === 0 ? { owned } : {}));
    const first = assign('cooperative-sticky', members, partitionCounts);
    expect(first.get('m00000')).toHaveLength(10);
    const second = assign('cooperative-sticky', members.map((previous) => ({ ...previous, owned: first.get(previous.memberId) ?? [] })), partitionCounts);
    expect(new Set([...second.values()].map((partitions) => partitions.length))).toEqual(new Set([10]));
  });

  it('treats two members with one memberId as a bug', () => {
    expect(() => assign('range', [member('m', ['t']), member('m', ['t'], { instanceId: 'i' })], counts({ t: 1 }))).toThrow(AssertionError);
  });
});
