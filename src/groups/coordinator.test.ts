// The group coordinator on its own: a fake partition (persist replays into the store at once),
// time passed by hand.
import { describe, expect, it } from 'vitest';
import { GroupCoordinator, groupLimits, type JoinAnswer, type JoinRequest } from './coordinator.js';
import { GroupStore, coordinatorPartition, type GroupRecord } from './records.js';

class Harness {
  readonly store = new GroupStore();
  readonly written: GroupRecord[] = [];
  nowMs = 1_000_000;
  private nextId = 0;
  failPersist = false;
  coordinator = this.fresh();

  fresh(): GroupCoordinator {
    return new GroupCoordinator({
      store: this.store,
      persist: async (records) => {
        if (this.failPersist) throw new Error('persist failed');
        for (const record of records) {
          this.written.push(record);
          this.store.replay(record);
        }
      },
      partitionCounts: (topics) => new Map(topics.filter((topic) => topic === 'orders' || topic === 'audit').map((topic) => [topic, topic === 'orders' ? 6 : 2])),
      newMemberId: (clientId) => `${clientId}-${++this.nextId}`,
      nowMs: () => this.nowMs,
    });
  }

  join(overrides: Partial<JoinRequest> = {}): Promise<JoinAnswer> {
    return this.coordinator.join({ group: 'g', memberId: '', instanceId: '', clientId: 'c', sessionTimeoutMs: 3000, rebalanceTimeoutMs: 5000, topics: ['orders'], assignors: ['range'], owned: [], ...overrides }, this.nowMs);
  }

  /** advance moves time and lets the coordinator act, then lets promises settle. */
  async advance(ms: number): Promise<void> {
    this.nowMs += ms;
    this.coordinator.tick(this.nowMs);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('group coordinator', () => {
  it('a new group waits the initial delay, then every member joins one generation and syncs disjoint partitions', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    const b = h.join({ clientId: 'b' });
    await h.advance(groupLimits.initialRebalanceDelayMs - 1);
    expect(h.coordinator.describe('g', h.nowMs).state).toBe('PreparingRebalance');
    await h.advance(2);
    const [ja, jb] = await Promise.all([a, b]);
    expect(ja.generation).toBe(1);
    expect(jb.generation).toBe(1);
    expect(ja.leaderId).toBe(jb.leaderId);
    const sa = h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs);
    const sb = h.coordinator.sync({ group: 'g', memberId: jb.memberId, generation: 1 }, h.nowMs);
    expect([...sa, ...sb].map((tp) => tp.partition).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sa.length).toBe(3);
    expect(h.written.at(-1)).toMatchObject({ type: 'groupMetadata', group: 'g', generation: 1, assignor: 'range' });
    expect(h.coordinator.describe('g', h.nowMs).state).toBe('Stable');
  });

  it('a join of a new member makes the others rejoin (heartbeat says so); one that does not rejoin in time is dropped', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const ja = await a;
    const b = h.join({ clientId: 'b' });
    expect(h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toEqual({ rebalanceInProgress: true });
    // a never rejoins: after the rebalance timeout it is dropped and b's generation goes on alone.
    await h.advance(5001);
    const jb = await b;
    expect(jb.generation).toBe(2);
    expect(jb.members).toEqual([jb.memberId]);
    expect(() => h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
    expect(h.coordinator.sync({ group: 'g', memberId: jb.memberId, generation: 2 }, h.nowMs)).toHaveLength(6);
  });

  it('a member that waited in a rebalance longer than its session timeout is not dropped before its first heartbeat', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const ja = await a;
    const b = h.join({ clientId: 'b' }); // session 3000 ms, rebalance 5000 ms: a is slow to rejoin
    for (let t = 0; t < 4000; t += 500) {
      await h.advance(500);
      h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: ja.generation }, h.nowMs);
    }
    const [jb] = await Promise.all([b, h.join({ clientId: 'a', memberId: ja.memberId })]);
    await h.advance(100); // the next tick, before b's first heartbeat
    expect(h.coordinator.sync({ group: 'g', memberId: jb.memberId, generation: 2 }, h.nowMs)).toHaveLength(3);
  });

  it('a silent member is dropped after its session timeout and its partitions go to the others', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    const b = h.join({ clientId: 'b' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const [ja, jb] = await Promise.all([a, b]);
    for (let t = 0; t < 4; t++) {
      await h.advance(1000);
      h.coordinator.heartbeat({ group: 'g', memberId: jb.memberId, generation: 1 }, h.nowMs);
    }
    // a has been silent for 4 s (> 3 s session): it is gone, and b must rejoin for generation 2.
    expect(h.coordinator.describe('g', h.nowMs).members.map((member) => member.memberId)).toEqual([jb.memberId]);
    expect(h.coordinator.heartbeat({ group: 'g', memberId: jb.memberId, generation: 1 }, h.nowMs).rebalanceInProgress).toBe(true);
    const rejoined = h.join({ memberId: jb.memberId, clientId: 'b' });
    await h.advance(1);
    expect((await rejoined).generation).toBe(2);
    expect(h.coordinator.sync({ group: 'g', memberId: jb.memberId, generation: 2 }, h.nowMs)).toHaveLength(6);
    expect(() => h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
  });

  it('commits are fenced by generation; a group without members takes commits from outside only', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const ja = await a;
    await h.coordinator.commitOffsets({ group: 'g', memberId: ja.memberId, generation: 1, offsets: [{ topic: 'orders', partition: 0, offset: 5, metadata: '' }] }, h.nowMs);
    await expect(h.coordinator.commitOffsets({ group: 'g', memberId: ja.memberId, generation: 0, offsets: [{ topic: 'orders', partition: 0, offset: 9, metadata: '' }] }, h.nowMs)).rejects.toMatchObject({ name: 'IllegalGenerationError', currentGeneration: 1 });
    await expect(h.coordinator.commitOffsets({ group: 'g', memberId: '', generation: -1, offsets: [{ topic: 'orders', partition: 0, offset: 9, metadata: '' }] }, h.nowMs)).rejects.toMatchObject({ name: 'UnknownMemberIdError' });
    await expect(h.coordinator.resetOffsets({ group: 'g', offsets: [{ topic: 'orders', partition: 0, offset: 0, metadata: '' }] }, h.nowMs)).rejects.toMatchObject({ name: 'GroupNotEmptyError', members: 1 });
    expect(h.coordinator.fetchOffsets({ group: 'g', partitions: [] })).toEqual([{ topic: 'orders', partition: 0, offset: 5, metadata: '' }]);
    h.coordinator.leave({ group: 'g', memberId: ja.memberId }, h.nowMs);
    await h.advance(1);
    expect(h.coordinator.describe('g', h.nowMs).state).toBe('Empty');
    await h.coordinator.resetOffsets({ group: 'g', offsets: [{ topic: 'orders', partition: 0, offset: 2, metadata: '' }] }, h.nowMs);
    expect(h.coordinator.fetchOffsets({ group: 'g', partitions: [{ topic: 'orders', partition: 0 }] })[0]!.offset).toBe(2);
    await h.coordinator.deleteGroup('g', h.nowMs);
    expect(() => h.coordinator.describe('g', h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownGroupError' }));
  });

  it('a new coordinator (failover) takes over members, generation and offsets from the replayed store', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const ja = await a;
    await h.coordinator.commitOffsets({ group: 'g', memberId: ja.memberId, generation: 1, offsets: [{ topic: 'orders', partition: 3, offset: 42, metadata: 'm' }] }, h.nowMs);
    h.coordinator.close(new Error('leadership moved'));
    const replica = new GroupStore();
    for (const record of h.written) replica.replay(record);
    h.coordinator = h.fresh();
    // The member heartbeats to the new coordinator with its generation: nothing to rebalance.
    expect(h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toEqual({ rebalanceInProgress: false });
    expect(h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toHaveLength(6);
    expect(h.coordinator.fetchOffsets({ group: 'g', partitions: [] })).toEqual([{ topic: 'orders', partition: 3, offset: 42, metadata: 'm' }]);
    expect(replica.committed('g')).toEqual(h.store.committed('g'));
  });

  it('a static member that restarts takes its place and assignment back without a rebalance; its old id is fenced', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a', instanceId: 'host-a' });
    const b = h.join({ clientId: 'b', instanceId: 'host-b' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const [ja] = await Promise.all([a, b]);
    const before = h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs);
    const again = await h.join({ clientId: 'a', instanceId: 'host-a' });
    expect(again.generation).toBe(1);
    expect(again.memberId).not.toBe(ja.memberId);
    expect(h.coordinator.sync({ group: 'g', memberId: again.memberId, generation: 1 }, h.nowMs)).toEqual(before);
    expect(h.coordinator.describe('g', h.nowMs).state).toBe('Stable');
    expect(() => h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
  });

  it('cooperative-sticky: a joining member gets partitions only after their owner gave them up, in a second generation', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a', assignors: ['cooperative-sticky'] });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    const ja = await a;
    const owned = h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 1 }, h.nowMs);
    expect(owned).toHaveLength(6);
    const b = h.join({ clientId: 'b', assignors: ['cooperative-sticky'] });
    const aRejoin = h.join({ memberId: ja.memberId, clientId: 'a', assignors: ['cooperative-sticky'], owned });
    await h.advance(1);
    const [ja2, jb2] = await Promise.all([aRejoin, b]);
    expect(ja2.generation).toBe(2);
    const aKeeps = h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 2 }, h.nowMs);
    expect(aKeeps).toHaveLength(3); // three revoked, given to nobody yet
    expect(h.coordinator.sync({ group: 'g', memberId: jb2.memberId, generation: 2 }, h.nowMs)).toHaveLength(0);
    // A second rebalance follows at once; after it b has the three a gave up.
    expect(h.coordinator.heartbeat({ group: 'g', memberId: ja.memberId, generation: 2 }, h.nowMs).rebalanceInProgress).toBe(true);
    const a3 = h.join({ memberId: ja.memberId, clientId: 'a', assignors: ['cooperative-sticky'], owned: aKeeps });
    const b3 = h.join({ memberId: jb2.memberId, clientId: 'b', assignors: ['cooperative-sticky'], owned: [] });
    await h.advance(1);
    await Promise.all([a3, b3]);
    expect(h.coordinator.sync({ group: 'g', memberId: ja.memberId, generation: 3 }, h.nowMs)).toEqual(aKeeps);
    expect(h.coordinator.sync({ group: 'g', memberId: jb2.memberId, generation: 3 }, h.nowMs)).toHaveLength(3);
  });

  it('requests about a group that does not exist create nothing', async () => {
    const h = new Harness();
    expect(() => h.coordinator.heartbeat({ group: 'ghost', memberId: 'nobody', generation: 1 }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
    expect(() => h.coordinator.sync({ group: 'ghost', memberId: 'nobody', generation: 1 }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
    expect(() => h.coordinator.leave({ group: 'ghost', memberId: 'nobody' }, h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownMemberIdError' }));
    await expect(h.coordinator.commitOffsets({ group: 'ghost', memberId: 'nobody', generation: 3, offsets: [] }, h.nowMs)).rejects.toMatchObject({ name: 'UnknownMemberIdError' });
    expect(h.coordinator.list(h.nowMs)).toEqual([]);
    expect(() => h.coordinator.describe('ghost', h.nowMs)).toThrow(expect.objectContaining({ name: 'UnknownGroupError' }));
  });

  it('a member that joins while the group is being deleted is answered', async () => {
    const h = new Harness();
    await h.coordinator.commitOffsets({ group: 'g', memberId: '', generation: -1, offsets: [{ topic: 'orders', partition: 0, offset: 1, metadata: '' }] }, h.nowMs);
    const deleting = h.coordinator.deleteGroup('g', h.nowMs);
    const joined = h.join({ clientId: 'late' });
    await deleting;
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    expect((await joined).generation).toBeGreaterThan(0);
  });

  it('a static member whose takeover took longer than its session is not dropped before its first heartbeat', async () => {
    const h = new Harness();
    const a = h.join({ clientId: 'a', instanceId: 'host-a' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    await a;
    const release = holdPersist(h, () => true);
    const again = h.join({ clientId: 'a', instanceId: 'host-a' });
    h.nowMs += 5000; // the record takes longer than the 3 s session to commit
    release();
    const answer = await again;
    await h.advance(100);
    expect(h.coordinator.heartbeat({ group: 'g', memberId: answer.memberId, generation: answer.generation }, h.nowMs)).toEqual({ rebalanceInProgress: false });
  });

  it('refuses bad requests naming the field: group id, session timeout, assignors, a member with no common assignor', async () => {
    const h = new Harness();
    expect(() => h.join({ group: '' })).toThrow(/group: is required/);
    expect(() => h.join({ group: 'x'.repeat(256) })).toThrow(/group: is 256 characters; at most 255/);
    expect(() => h.join({ sessionTimeoutMs: 10 })).toThrow(/sessionTimeoutMs: must be 1000 to 300000, got 10/);
    expect(() => h.join({ assignors: ['sticky-ish'] })).toThrow(/assignors: must include one of range, roundrobin, cooperative-sticky/);
    const a = h.join({ assignors: ['range'] });
    await expect(h.join({ assignors: ['roundrobin'] })).rejects.toMatchObject({ name: 'InconsistentGroupProtocolError' });
    await h.advance(groupLimits.initialRebalanceDelayMs + 1);
    await a;
  });

  it('places a group on the partition Kafka would: Java String.hashCode, non-negative, modulo the count', () => {
    // "my-group".hashCode() is -1906497762 in Java; & 0x7fffffff gives 240985886, and % 50 gives 36. "" hashes to 0.
    expect(coordinatorPartition('my-group', 50)).toBe(36);
    expect(coordinatorPartition('', 6)).toBe(0);
  });
});

describe('offsets retention (expire)', () => {
  const dayMs = 24 * 3_600_000;
  const retentionMs = 7 * dayMs;
  const commit = (h: Harness, group: string, offset: number): Promise<void> =>
    h.coordinator.commitOffsets({ group, memberId: '', generation: -1, offsets: [{ topic: 'orders', partition: 0, offset, metadata: '' }] }, h.nowMs);

  it('deletes a group without members once retentionMs passed since its last commit, and not before', async () => {
    const h = new Harness();
    await commit(h, 'standalone', 5);
    h.nowMs += retentionMs - 1;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    await commit(h, 'fresh', 1); // a later commit of another group
    h.nowMs += 1;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual(['standalone']);
    expect(h.written.at(-1)).toEqual({ type: 'groupDelete', group: 'standalone' });
    expect(h.store.groups()).toEqual(['fresh']);
    expect(h.coordinator.fetchOffsets({ group: 'standalone', partitions: [] })).toEqual([]);
  });

  it('counts from when the last member left, when that is after the last commit, and never deletes a group with members', async () => {
    const h = new Harness();
    const joined = h.join();
    await h.advance(groupLimits.initialRebalanceDelayMs);
    const member = await joined;
    await h.coordinator.commitOffsets({ group: 'g', memberId: member.memberId, generation: member.generation, offsets: [{ topic: 'orders', partition: 0, offset: 9, metadata: '' }] }, h.nowMs);
    // Ten days with the member heartbeating: the offsets stay.
    for (let day = 0; day < 10; day++) {
      h.nowMs += dayMs;
      h.coordinator.heartbeat({ group: 'g', memberId: member.memberId, generation: member.generation }, h.nowMs);
      expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    }
    const emptySinceMs = h.nowMs;
    h.coordinator.leave({ group: 'g', memberId: member.memberId }, h.nowMs);
    await h.advance(1);
    expect(h.store.metadata.get('g')).toMatchObject({ members: [], stateTimestampMs: emptySinceMs });
    h.nowMs = emptySinceMs + retentionMs - 1;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    h.nowMs = emptySinceMs + retentionMs;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual(['g']);
    expect(h.store.groups()).toEqual([]);
    expect(h.coordinator.list(h.nowMs)).toEqual([]);
  });

  it('a new coordinator lets the members it took over time out, then counts retention from then', async () => {
    const h = new Harness();
    const joined = h.join();
    await h.advance(groupLimits.initialRebalanceDelayMs);
    await joined;
    // Failover: the member never comes back to the new coordinator.
    h.coordinator = h.fresh();
    h.nowMs += retentionMs * 2;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]); // loads the group and its member
    await h.advance(3001); // past the member's session timeout: the group empties
    expect(h.store.metadata.get('g')?.members).toEqual([]);
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    h.nowMs += retentionMs;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual(['g']);
  });

  it('a group whose records carry no time (written before they did) counts as active when the coordinator took over', async () => {
    const h = new Harness();
    h.store.replay({ type: 'groupMetadata', group: 'old', generation: 3, assignor: 'range', leaderId: '', members: [], stateTimestampMs: 0 });
    h.coordinator = h.fresh();
    const startedMs = h.nowMs;
    h.nowMs = startedMs + retentionMs - 1;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    h.nowMs = startedMs + retentionMs;
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual(['old']);
  });

  it('a group whose records carry no time but that has commits counts from its commits, not from each new coordinator', async () => {
    const h = new Harness();
    h.store.replay({ type: 'groupMetadata', group: 'old', generation: 3, assignor: 'range', leaderId: '', members: [], stateTimestampMs: 0 });
    h.store.replay({ type: 'offsetCommit', group: 'old', topic: 'orders', partition: 0, offset: 4, metadata: '', commitTimestampMs: h.nowMs });
    h.nowMs += retentionMs;
    h.coordinator = h.fresh(); // leadership moved just now
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual(['old']);
  });

  it('keeps a group whose commit is on its way to being acknowledged', async () => {
    const h = new Harness();
    await commit(h, 'standalone', 5);
    h.nowMs += retentionMs;
    const release = holdPersist(h, (records) => records[0]?.type === 'offsetCommit');
    const late = commit(h, 'standalone', 6);
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]);
    release();
    await late;
    expect(h.coordinator.fetchOffsets({ group: 'standalone', partitions: [] }).map(({ offset }) => offset)).toEqual([6]);
    expect(await h.coordinator.expire(h.nowMs, retentionMs)).toEqual([]); // its last commit is now
  });
});

/** holdPersist holds the records that `which` picks back from the store until the returned release is called. */
function holdPersist(h: Harness, which: (records: GroupRecord[]) => boolean): () => void {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const deps = (h.coordinator as unknown as { deps: { persist: (records: GroupRecord[]) => Promise<void> } }).deps;
  const original = deps.persist;
  deps.persist = async (records) => {
    if (which(records)) await held;
    await original(records);
  };
  return release;
}

describe('commits from outside a membership', () => {
  it('start a group only while the coordinator holds fewer than groupsPerCoordinatorMax', async () => {
    const h = new Harness();
    const max = groupLimits.groupsPerCoordinatorMax;
    for (let i = 0; i < max - 1; i++) h.store.replay({ type: 'offsetCommit', group: `g${i}`, topic: 'orders', partition: 0, offset: 1, metadata: '', commitTimestampMs: 1 });
    h.store.replay({ type: 'groupMetadata', group: 'metadata-only', generation: 1, assignor: 'range', leaderId: '', members: [], stateTimestampMs: 1 });
    expect(h.store.groupCount).toBe(max);
    const commit = (group: string): Promise<void> => h.coordinator.commitOffsets({ group, memberId: '', generation: -1, offsets: [{ topic: 'orders', partition: 1, offset: 9, metadata: '' }] }, h.nowMs);
    await expect(commit('one-too-many')).rejects.toMatchObject({ name: 'InvalidRequestError', message: expect.stringContaining(`already holds ${max} groups`) });
    await commit('g7'); // a group it holds: committed
    await commit('metadata-only');
    expect(h.store.committed('g7').map(({ partition, offset }) => [partition, offset])).toEqual([[0, 1], [1, 9]]);
    expect(h.store.groupCount).toBe(max);
  });

  it('count the groups that commits still in flight are starting', async () => {
    const h = new Harness();
    const max = groupLimits.groupsPerCoordinatorMax;
    for (let i = 0; i < max - 1; i++) h.store.replay({ type: 'offsetCommit', group: `g${i}`, topic: 'orders', partition: 0, offset: 1, metadata: '', commitTimestampMs: 1 });
    const commit = (group: string): Promise<void> => h.coordinator.commitOffsets({ group, memberId: '', generation: -1, offsets: [{ topic: 'orders', partition: 0, offset: 3, metadata: '' }] }, h.nowMs);
    const release = holdPersist(h, (records) => records[0]?.type === 'offsetCommit');
    const first = commit('new-1'); // the last group it may hold, not applied yet
    const again = commit('new-1'); // the same group: not a new one
    await expect(commit('new-2')).rejects.toMatchObject({ name: 'InvalidRequestError', message: expect.stringContaining(`already holds ${max} groups`) });
    release();
    await Promise.all([first, again]);
    expect(h.store.groupCount).toBe(max);
  });
});
