// HostedPartition.fetch past the high watermark, a long poll whose caller goes away, and the
// compaction of an offsets partition.
// Past the high watermark, only a leader that has applied an entry of its own term and everything
// it knows committed can tell that an offset is past the end. Elsewhere the offset may have been
// read already on a replica that knew of more commits. The chaos harness
// found this: a consumer at offset 91 fetched from a new leader whose high watermark was still 79.
// It was told "out of range", reset to the earliest offset, and its group committed 0 after 91.
import { describe, expect, it } from 'vitest';
import { NotLeaderError, OffsetNotAvailableError, OffsetOutOfRangeError } from '../../src/errors.js';
import { HostedPartition } from '../../src/node/hosted-partition.js';
import type { DurableRaftStorage } from '../../src/node/durable-raft-storage.js';
import type { RaftHost } from '../../src/node/raft-host.js';
import { systemClock } from '../../src/node/runtime.js';
import { encodeRecordBatch, plainBatch, withBaseOffset } from '../../src/partition/record-batch.js';
import { decodePartitionSnapshot } from '../../src/partition/partition-state.js';
import { groupStoreListener } from '../../src/node/group-coordinators.js';
import { GroupStore, type GroupRecord } from '../../src/groups/records.js';
import { decodeGroupStoreSnapshot, encodeGroupBatch } from '../../src/rpc/group-codec.js';
import type { Entry, Snapshot } from '../../src/raft/types.js';
import type { SnapshotStore } from '../../src/storage/snapshot-store.js';
import { defaultTopicConfigs } from '../../src/controller/topic-validation.js';

const groupId = 7;

/** batchEntry is Raft entry index holding one batch of `records` records starting at baseOffset. */
function batchEntry(index: number, baseOffset: number, records: number): Entry {
  const data = encodeRecordBatch({
    ...plainBatch,
    baseOffset: BigInt(baseOffset),
    records: Array.from({ length: records }, (_, i) => ({ timestamp: 1_000, key: null, value: new TextEncoder().encode(`r${baseOffset + i}`), headers: [] })),
  });
  return { index, term: 2, type: 'normal', data };
}

interface RaftView {
  role: 'leader' | 'follower';
  leader: number;
  term: number;
  commit: number;
  applied: number;
  appliedTerm: number;
}

/** replica is a HostedPartition over a stand-in Raft host (its view is set by the test) and log, whose entries it has applied. */
function replica(view: RaftView, log: readonly Entry[]): HostedPartition {
  const host = { status: () => ({ ...view, group: groupId }), appliedTerm: () => view.appliedTerm, readingLog: <T>(work: () => T): T => work() } as unknown as RaftHost;
  const storage = {
    entries: (lo: number, hi: number) => log.filter((entry) => entry.index >= lo && entry.index < hi),
  } as unknown as DurableRaftStorage;
  const partition = new HostedPartition({ topic: 'orders', topicId: 'orders-id', partition: 0, groupId, dir: '/nowhere' }, storage, {} as SnapshotStore, host, () => defaultTopicConfigs, systemClock);
  partition.state.apply(log);
  return partition;
}

const read = (partition: HostedPartition, offset: number, maxWaitMs = 0): ReturnType<HostedPartition['fetch']> =>
  partition.fetch({ offset, maxBytes: 1 << 20, maxWaitMs, minBytes: 1 });

describe('a fetch past the high watermark', () => {
  const log: readonly Entry[] = [batchEntry(2, 0, 5)]; // offsets 0..4: high watermark 5

  it('from a leader that knows every commit: OffsetOutOfRangeError with the range', async () => {
    const leader = replica({ role: 'leader', leader: 1, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, log);
    await expect(read(leader, 6)).rejects.toMatchObject({ name: 'OffsetOutOfRangeError', offset: 6, logStartOffset: 0, highWatermark: 5 });
    await expect(read(leader, 6)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(await read(leader, 5)).toMatchObject({ highWatermark: 5, nextOffset: 5, batches: new Uint8Array(0) }); // at the end: nothing, no error
  });

  it('from a new leader that has not applied an entry of its term: nothing yet, and the records once applied', async () => {
    const view: RaftView = { role: 'leader', leader: 1, term: 3, commit: 2, applied: 2, appliedTerm: 2 };
    const log = [batchEntry(2, 0, 5)];
    const leader = replica(view, log);
    const early = await read(leader, 6);
    expect(early).toMatchObject({ highWatermark: 5, nextOffset: 6 });
    expect(early.batches.length).toBe(0);

    // A long poll waits; the predecessor's last batch (offsets 5..7) commits under the new term.
    const waiting = read(leader, 6, 10_000);
    const next = batchEntry(3, 5, 3);
    log.push(next);
    Object.assign(view, { commit: 4, applied: 4, appliedTerm: 3 });
    leader.state.apply([next]);
    const answer = await waiting;
    expect(answer.highWatermark).toBe(8);
    expect(answer.batches.length).toBeGreaterThan(0);
    expect(answer.nextOffset).toBe(8);
  });

  it('from a leader with commits it has not applied yet: nothing yet, not an error', async () => {
    const leader = replica({ role: 'leader', leader: 1, term: 2, commit: 3, applied: 2, appliedTerm: 2 }, log);
    const answer = await read(leader, 6);
    expect(answer).toMatchObject({ highWatermark: 5, nextOffset: 6 });
    expect(answer.batches.length).toBe(0);
  });

  it('from a follower: NotLeaderError naming the leader, so the consumer asks the leader instead', async () => {
    const follower = replica({ role: 'follower', leader: 2, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, log);
    const error = await read(follower, 6).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect(error).toMatchObject({ group: groupId, leaderHint: 2 });
    // Below the high watermark and at it, a follower serves as before.
    expect(await read(follower, 5)).toMatchObject({ highWatermark: 5, nextOffset: 5 });
    expect((await read(follower, 0)).nextOffset).toBe(5);
  });
});

describe('list offsets', () => {
  const log: readonly Entry[] = [batchEntry(2, 0, 5)]; // offsets 0..4: high watermark 5

  it('latest and by timestamp: from a leader that knows every commit only; a new leader asks to retry, a follower names the leader', () => {
    const leader = replica({ role: 'leader', leader: 1, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, log);
    expect(leader.listOffset({ kind: 'latest' })).toBe(5);
    expect(leader.listOffset({ kind: 'timestamp', timestampMs: 1_000 })).toBe(0);
    expect(leader.listOffset({ kind: 'timestamp', timestampMs: 2_000 })).toBe(5);

    const fresh = replica({ role: 'leader', leader: 1, term: 3, commit: 2, applied: 2, appliedTerm: 2 }, log);
    expect(() => fresh.listOffset({ kind: 'latest' })).toThrow(OffsetNotAvailableError);
    expect(() => fresh.listOffset({ kind: 'timestamp', timestampMs: 2_000 })).toThrow(OffsetNotAvailableError);
    const behind = replica({ role: 'leader', leader: 1, term: 2, commit: 3, applied: 2, appliedTerm: 2 }, log);
    expect(() => behind.listOffset({ kind: 'latest' })).toThrow(OffsetNotAvailableError);

    const follower = replica({ role: 'follower', leader: 2, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, log);
    expect(() => follower.listOffset({ kind: 'latest' })).toThrow(expect.objectContaining({ name: 'NotLeaderError', leaderHint: 2 }));
  });

  it('earliest: from any replica, the first offset it holds', () => {
    expect(replica({ role: 'follower', leader: 2, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, log).listOffset({ kind: 'earliest' })).toBe(0);
    expect(replica({ role: 'leader', leader: 1, term: 3, commit: 2, applied: 2, appliedTerm: 2 }, log).listOffset({ kind: 'earliest' })).toBe(0);
  });
});

describe('a long poll', () => {
  it('stops waiting, and frees its place, once its caller goes away', async () => {
    const leader = replica({ role: 'leader', leader: 1, term: 2, commit: 2, applied: 2, appliedTerm: 2 }, [batchEntry(2, 0, 5)]);
    const gone = new AbortController();
    const waiting = leader.fetch({ offset: 5, maxBytes: 1 << 20, maxWaitMs: 600_000, minBytes: 1 }, gone.signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(leader.waitingFetchCount).toBe(1);
    gone.abort();
    // Without the abort this would wait ten minutes, far past the test's timeout.
    expect(await waiting).toMatchObject({ highWatermark: 5, nextOffset: 5, batches: new Uint8Array(0) });
    expect(leader.waitingFetchCount).toBe(0);
    // A caller already gone does not park at all.
    expect(await leader.fetch({ offset: 5, maxBytes: 1 << 20, maxWaitMs: 600_000, minBytes: 1 }, gone.signal)).toMatchObject({ nextOffset: 5 });
    expect(leader.waitingFetchCount).toBe(0);
  });
});

describe('an offsets partition', () => {
  const confState = { voters: [1, 2, 3], learners: [] };
  const bootstrap: Snapshot = { metadata: { index: 1, term: 1, confState }, data: new Uint8Array(0) };
  const commit = (offset: number, partition: number): GroupRecord => ({ type: 'offsetCommit', group: 'g', topic: 'orders', partition, offset, metadata: '', commitTimestampMs: 5 });

  /** offsetsReplica is a leader's replica of an offsets partition over stand-ins that keep the snapshots its compactions take. */
  function offsetsReplica(compactBytesMin: number, installed: Snapshot = bootstrap): { partition: HostedPartition; store: GroupStore; compactions: Snapshot[] } {
    const compactions: Snapshot[] = [];
    const host = {
      status: () => ({ role: 'leader', leader: 1, term: 2, group: groupId, confState }),
      appliedTerm: () => 2,
      compact: (_group: number, snapshot: Snapshot) => {
        compactions.push(snapshot);
        return Promise.resolve();
      },
    } as unknown as RaftHost;
    const storage = {
      log: { segmentBaseIndexes: () => [2] },
      snapshot: () => compactions[compactions.length - 1] ?? installed,
      term: () => 2,
    } as unknown as DurableRaftStorage;
    const partition = new HostedPartition({ topic: '__consumer_offsets', topicId: 'offsets-id', partition: 0, groupId, dir: '/nowhere' }, storage, {} as SnapshotStore, host, () => defaultTopicConfigs, systemClock);
    const store = new GroupStore();
    partition.replayInto(groupStoreListener(store), { compactBytesMin });
    return { partition, store, compactions };
  }

  /** commits applies entries (from index `from`) of one offset commit each, partitions 0..2 in turn, offsets rising. */
  function commits(partition: HostedPartition, from: number, count: number): Entry[] {
    const entries = Array.from({ length: count }, (_, i) => ({
      index: from + i,
      term: 2,
      type: 'normal' as const,
      data: withBaseOffset(encodeGroupBatch([commit(100 + from + i, (from + i) % 3)], 5), { baseOffset: BigInt(partition.state.highWatermark + i) }),
    }));
    partition.state.apply(entries);
    return entries;
  }

  it('is replaced by a snapshot of its groups once it holds compactBytesMin, and a replica restored from it has the same groups', async () => {
    const { partition, store, compactions } = offsetsReplica(1000);
    commits(partition, 2, 4);
    expect(partition.state.bytes).toBeLessThan(1000);
    await partition.enforceRetention(Date.now());
    expect(compactions).toHaveLength(0); // not enough held yet

    commits(partition, 6, 16); // entries 2..21, offsets 0..19
    expect(partition.state.bytes).toBeGreaterThanOrEqual(1000);
    expect(await partition.enforceRetention(Date.now())).toBe(20);
    expect(compactions).toHaveLength(1);
    const snapshot = compactions[0]!;
    expect(snapshot.metadata).toEqual({ index: 21, term: 2, confState });
    expect([partition.state.logStartOffset, partition.state.highWatermark, partition.state.bytes]).toEqual([20, 20, 0]);
    const data = decodePartitionSnapshot(snapshot.data);
    expect(data.nextOffset).toBe(20);
    expect(decodeGroupStoreSnapshot(data.recordState!)).toEqual(store.compacted());
    expect(store.committed('g').map(({ partition: p, offset }) => [p, offset])).toEqual([[0, 121], [1, 119], [2, 120]]);

    // A few more commits: below compactBytesMin again, so no compaction (the twice-the-snapshot rule: next test).
    const after = commits(partition, 22, 2);
    await partition.enforceRetention(Date.now());
    expect(compactions).toHaveLength(1);

    // A replica that installs the snapshot and applies what followed has the leader's groups.
    const follower = offsetsReplica(1000);
    follower.partition.state.restore(snapshot);
    follower.partition.state.apply(after);
    expect(follower.store.groups()).toEqual(['g']);
    expect(follower.store.committed('g')).toEqual(store.committed('g'));
    expect(follower.partition.state.highWatermark).toBe(22);
  });

  it('counts twice the snapshot it installed, not only the ones it wrote: a restarted or new replica does not compact at once', async () => {
    const leader = offsetsReplica(1000);
    commits(leader.partition, 2, 20);
    await leader.partition.enforceRetention(Date.now());
    const installed = leader.compactions[0]!;
    const twice = 2 * installed.data.length;

    const replica = offsetsReplica(1, installed); // compactBytesMin 1: only the snapshot's size holds it back
    replica.partition.state.restore(installed);
    commits(replica.partition, 22, 1);
    expect(replica.partition.state.bytes).toBeGreaterThanOrEqual(1);
    expect(replica.partition.state.bytes).toBeLessThan(twice);
    await replica.partition.enforceRetention(Date.now());
    expect(replica.compactions).toHaveLength(0);

    let next = 23;
    while (replica.partition.state.bytes < twice) commits(replica.partition, next++, 1);
    await replica.partition.enforceRetention(Date.now());
    expect(replica.compactions).toHaveLength(1);
    expect(replica.partition.state.bytes).toBe(0);
  });
});
