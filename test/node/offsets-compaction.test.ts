// Compaction of an offsets partition on real parts: a one-replica partition of __consumer_offsets
// on real files, LevelDB and a RaftHost, its groups written through produce (as the coordinator
// writes them). Once it holds enough, retention's run compacts it: a snapshot carrying the groups
// replaces the batches, and the log gives back its segments. A restart then restores the groups from
// that snapshot and replays what came after it, and the groups are as they were.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { pollUntil } from '../../src/cluster/poll.js';
import { defaultTopicConfigs } from '../../src/controller/topic-validation.js';
import { GroupStore, type GroupRecord } from '../../src/groups/records.js';
import { groupStoreListener } from '../../src/node/group-coordinators.js';
import { openGroupStorage } from '../../src/node/group-storage.js';
import { HostedPartition } from '../../src/node/hosted-partition.js';
import { bootstrapPartitionSnapshot } from '../../src/node/partition-replicas.js';
import { RaftHost } from '../../src/node/raft-host.js';
import { systemClock } from '../../src/node/runtime.js';
import { seededRandom } from '../../src/raft/prng.js';
import { encodeGroupBatch } from '../../src/rpc/group-codec.js';
import { NodeDisk } from '../../src/storage/node-disk.js';
import { StateStore } from '../../src/storage/state-store.js';

const group = 9;
const logger = pino({ level: 'silent' });
/** segmentBytes: small segments, so that a compaction has whole segments to give back. */
const segmentBytes = 16 * 1024;
const compactBytesMin = 32 * 1024;
/** offsetsConfigs: as the offsets topic is created, with no retention: only compaction drops anything. */
const offsetsConfigs = { ...defaultTopicConfigs, retentionMs: -1, retentionBytes: -1 };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Replica {
  readonly partition: HostedPartition;
  readonly store: GroupStore;
  close(): Promise<void>;
}

/** openReplica opens (or reopens) the replica in dir and waits until it leads its one-voter group and has applied its log. */
async function openReplica(dir: string): Promise<Replica> {
  const stateStore = await StateStore.open(join(dir, 'state'));
  const { storage, snapshots } = await openGroupStorage({
    group,
    dir: join(dir, 'group'),
    disk: new NodeDisk(),
    stateStore,
    logger,
    bootstrap: () => bootstrapPartitionSnapshot([1]),
    logLimits: { segmentBytesMax: segmentBytes, entryBytesMax: 4096 },
  });
  const host = new RaftHost({
    nodeId: 1,
    timing: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 },
    random: seededRandom(3),
    clock: systemClock,
    hardStates: stateStore,
    send: () => undefined,
    logger,
    onFailure: (error) => {
      throw error;
    },
  });
  const partition = new HostedPartition({ topic: '__consumer_offsets', topicId: 'offsets-id', partition: 0, groupId: group, dir }, storage, snapshots, host, () => offsetsConfigs, systemClock);
  const store = new GroupStore();
  partition.replayInto(groupStoreListener(store), { compactBytesMin });
  host.addGroup({ group, storage, snapshots, machine: partition.state, snapshotEveryEntries: Number.MAX_SAFE_INTEGER, logger });
  host.start();
  host.campaign(group);
  await pollUntil(() => host.status(group)?.role === 'leader' && host.appliedTerm(group) === host.status(group)?.term, { what: 'the replica leads and has applied its log', timeoutMs: 10_000, everyMs: 5 });
  return {
    partition,
    store,
    close: async () => {
      await host.close();
      storage.log.close();
      await stateStore.close();
    },
  };
}

/** commitAll writes one batch per round: a commit of every partition of topic t for groups a and b, offsets `round`, and each group's metadata. */
async function commitAll(partition: HostedPartition, rounds: readonly number[]): Promise<void> {
  for (const round of rounds) {
    const records: GroupRecord[] = [];
    for (const name of ['a', 'b']) {
      records.push({ type: 'groupMetadata', group: name, generation: round, assignor: 'range', leaderId: '', members: [], stateTimestampMs: round });
      for (let p = 0; p < 4; p++) records.push({ type: 'offsetCommit', group: name, topic: 't', partition: p, offset: round * 10 + p, metadata: '', commitTimestampMs: round });
    }
    await partition.produce({ acks: -1, batch: encodeGroupBatch(records, Date.now()), timeoutMs: 10_000 });
  }
}

/** groupsOf is what a store answers, for comparing two stores. */
function groupsOf(store: GroupStore): unknown {
  return store.groups().map((name) => ({ name, metadata: store.metadata.get(name), committed: store.committed(name) }));
}

describe('an offsets partition on disk', () => {
  it('is compacted once it holds enough, gives back its segments, and a restart restores its groups from the snapshot', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftbus-offsets-'));
    dirs.push(dir);
    let replica = await openReplica(dir);
    const rounds = Array.from({ length: 200 }, (_, i) => i + 1);
    await commitAll(replica.partition, rounds);
    const before = groupsOf(replica.store);
    const segmentsBefore = readdirSync(join(dir, 'group', 'log')).filter((name) => name.endsWith('.log')).length;
    expect(replica.partition.state.bytes).toBeGreaterThanOrEqual(compactBytesMin);
    expect(segmentsBefore).toBeGreaterThan(2);

    const logStart = await replica.partition.enforceRetention(Date.now());
    expect(logStart).toBe(replica.partition.state.highWatermark);
    expect(replica.partition.state.bytes).toBe(0);
    expect(groupsOf(replica.store)).toEqual(before);
    const segmentsAfter = readdirSync(join(dir, 'group', 'log')).filter((name) => name.endsWith('.log')).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);

    // One more commit after the compaction, of one offset, then a restart: the other offsets and
    // the metadata come from the snapshot alone.
    const one: GroupRecord = { type: 'offsetCommit', group: 'a', topic: 't', partition: 0, offset: 5000, metadata: '', commitTimestampMs: 201 };
    await replica.partition.produce({ acks: -1, batch: encodeGroupBatch([one], Date.now()), timeoutMs: 10_000 });
    const expected = groupsOf(replica.store);
    const highWatermark = replica.partition.state.highWatermark;
    await replica.close();
    replica = await openReplica(dir);
    try {
      expect(replica.partition.state.logStartOffset).toBe(logStart);
      expect(replica.partition.state.highWatermark).toBe(highWatermark);
      expect(groupsOf(replica.store)).toEqual(expected);
      expect(replica.store.committed('a').map(({ offset }) => offset)).toEqual([5000, 2001, 2002, 2003]);
      expect(replica.store.committed('b').map(({ offset }) => offset)).toEqual([2000, 2001, 2002, 2003]);
      expect(replica.store.metadata.get('b')?.generation).toBe(200);
    } finally {
      await replica.close();
    }
  });
});
