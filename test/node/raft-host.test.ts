// The round loop of RaftHost, driven by hand: a clock whose soon() queues its callbacks until the
// test runs them, a MemoryDisk that notes its writes, and a send() that notes what leaves.
import { describe, expect, it } from 'vitest';
import { DurableRaftStorage } from '../../src/node/durable-raft-storage.js';
import { RaftHost, type StateMachine } from '../../src/node/raft-host.js';
import type { Clock } from '../../src/node/runtime.js';
import { seededRandom } from '../../src/raft/prng.js';
import type { Message, Snapshot } from '../../src/raft/types.js';
import type { DiskFile } from '../../src/storage/disk.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { SnapshotStore } from '../../src/storage/snapshot-store.js';
import { MemoryDisk } from '../sim/memory-disk.js';
import { latencyBucketBoundsMicros } from '../../src/node/latency-histogram.js';

/** ManualClock runs soon() callbacks only when the test says so; timers never fire. */
class ManualClock implements Clock {
  private readonly queued: (() => void)[] = [];
  now = (): number => 0;
  /** elapsed is what elapsedMs() answers; tests move it by hand. */
  elapsed = 0;
  elapsedMs = (): number => this.elapsed;
  after = (): { cancel(): void } => ({ cancel: () => undefined });
  every = (): { cancel(): void } => ({ cancel: () => undefined });
  soon = (fn: () => void): void => void this.queued.push(fn);
  sleep = (): Promise<void> => Promise.resolve();

  /** turn runs what is queued now, then lets the microtasks it started settle. */
  async turn(): Promise<void> {
    for (const fn of this.queued.splice(0)) fn();
    for (let i = 0; i < 20; i++) await Promise.resolve();
  }
}

/**
 * NotingDisk is a MemoryDisk that notes every write to a segment file in `events`, and how each
 * fdatasync of one was asked for (inline or on the thread pool) in `syncs`; while `holding`, its
 * fdatasyncs wait for release().
 */
class NotingDisk extends MemoryDisk {
  holding = false;
  readonly syncs: { path: string; inline: boolean }[] = [];
  private readonly held: (() => void)[] = [];
  constructor(private readonly events: string[]) {
    super({ preallocateBytes: 1 << 20 }); // as a real node's: appends rarely change a segment's length
  }
  override write(file: DiskFile, position: number, data: Uint8Array): void {
    if (file.path.endsWith('.log')) this.events.push('log write');
    super.write(file, position, data);
  }
  override async fdatasync(file: DiskFile, options: { readonly inline?: boolean } = {}): Promise<void> {
    if (file.path.endsWith('.log')) this.syncs.push({ path: file.path, inline: options.inline === true });
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.fdatasync(file);
  }
  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

const machine: StateMachine = { apply: () => undefined, snapshotData: () => new Uint8Array(0), restore: () => undefined };
const bootstrap: Snapshot = { metadata: { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) };
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** leaderOfThree hosts the groups on node 1 of three, and makes it the leader of each. */
async function leaderOfThree(groups: readonly number[] = [0]): Promise<{ host: RaftHost; clock: ManualClock; disk: NotingDisk; events: string[]; sent: Message[] }> {
  const events: string[] = [];
  const sent: Message[] = [];
  const disk = new NotingDisk(events);
  const clock = new ManualClock();
  const host = new RaftHost({
    nodeId: 1,
    timing: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 },
    random: seededRandom(7),
    clock,
    hardStates: { saveHardStates: () => Promise.resolve() },
    send: (messages) => {
      for (const message of messages) events.push(`send ${message.type} to ${message.to}`);
      sent.push(...messages);
    },
    logger: silent,
    onFailure: (error) => {
      throw error;
    },
  });
  for (const group of groups) {
    const log = await SegmentedLog.open({ disk, dir: `/g/${group}/log` });
    host.addGroup({ group, storage: new DurableRaftStorage(log, bootstrap, { term: 1, vote: 0, commit: 1 }), snapshots: new SnapshotStore(disk, `/g/${group}/snapshots`), machine, snapshotEveryEntries: 1_000_000, logger: silent });
    host.campaign(group);
  }
  // Nodes 2 and 3 grant every vote and take every append, until the leader's first entry is theirs.
  for (let i = 0; i < 20; i++) {
    await clock.turn();
    for (const message of sent.splice(0)) {
      if (message.type === 'requestVote') {
        host.receive([{ type: 'requestVoteResponse', group: message.group, from: message.to, to: 1, term: message.term, preVote: message.preVote, granted: true }]);
      } else if (message.type === 'appendEntries') {
        const index = message.prevIndex + message.entries.length;
        host.receive([{ type: 'appendEntriesResponse', group: message.group, from: message.to, to: 1, term: message.term, index, reject: false, hintIndex: 0, hintTerm: 0 }]);
      }
    }
  }
  for (const group of groups) expect(host.status(group)?.role).toBe('leader');
  events.splice(0);
  sent.splice(0);
  disk.syncs.splice(0);
  return { host, clock, disk, events, sent };
}

describe('RaftHost rounds', () => {
  it("a leader hands its appends to the transport a turn before its own log write, so they are on the wire first", async () => {
    const { host, clock, events } = await leaderOfThree();
    void host.propose(0, new Uint8Array([1, 2, 3])).catch(() => undefined);
    await clock.turn(); // the round: appends handed to the transport, the leader's write waits a turn
    expect(events).toEqual(['send appendEntries to 2', 'send appendEntries to 3']);
    await clock.turn(); // then the leader writes (and syncs) its own copy
    expect(events.slice(2)).toContain('log write');
  });

  it('times how long a round waits for its fsyncs, into the bucket of that duration', async () => {
    const { host, clock, disk } = await leaderOfThree();
    const before = host.syncWaits.counts();
    const totalBefore = host.syncWaits.totalMicros;
    disk.holding = true;
    void host.propose(0, new Uint8Array([1, 2, 3])).catch(() => undefined);
    await clock.turn(); // appends handed to the transport
    await clock.turn(); // the leader's own write; its fdatasync is held
    clock.elapsed += 5; // the disk takes 5 ms
    disk.release();
    await clock.turn();
    const added = host.syncWaits.counts().map((count, i) => count - before[i]!);
    const bucket = latencyBucketBoundsMicros.findIndex((bound) => 5000 < bound); // 4096 <= 5000 < 8192
    expect(added).toEqual(added.map((_, i) => (i === bucket ? 1 : 0)));
    expect(host.syncWaits.totalMicros - totalBefore).toBe(5000);
  });
});

describe('RaftHost rounds and the thread pool', () => {
  /** proposeAndPersist proposes `count` entries of `bytes` in each group, in one round, and runs the round through its syncs. */
  async function proposeAndPersist(groups: readonly number[], bytes: number, count = 1): Promise<{ group: string; inline: boolean }[]> {
    const { host, clock, disk } = await leaderOfThree(groups);
    for (const group of groups) for (let i = 0; i < count; i++) void host.propose(group, new Uint8Array(bytes)).catch(() => undefined);
    await clock.turn(); // the round: appends handed to the transport
    await clock.turn(); // the leader's own writes and their syncs
    return disk.syncs.map(({ path, inline }) => ({ group: path.split('/')[2]!, inline }));
  }

  it('a round whose one barrier is a log sync of one small entry flushes on the event loop', async () => {
    expect(await proposeAndPersist([0], 100)).toEqual([{ group: '0', inline: true }]);
  });

  it('an entry of exactly 64 KiB still flushes on the event loop', async () => {
    expect(await proposeAndPersist([0], 64 * 1024)).toEqual([{ group: '0', inline: true }]);
  });

  it('a round with a bigger entry flushes on the thread pool', async () => {
    expect(await proposeAndPersist([0], 64 * 1024 + 1)).toEqual([{ group: '0', inline: false }]);
  });

  it('a round of several entries (requests queue behind the flush) flushes on the thread pool', async () => {
    expect(await proposeAndPersist([0], 100, 2)).toEqual([{ group: '0', inline: false }]);
  });

  it('a round that also makes a new term durable flushes on the thread pool', async () => {
    const { host, clock, disk } = await leaderOfThree([0]);
    const { term, lastIndex } = host.status(0)!;
    // Node 2 leads a later term and sends one entry after this node's last: term and entry in one round.
    host.receive([{ type: 'appendEntries', group: 0, from: 2, to: 1, term: term + 1, prevIndex: lastIndex, prevTerm: term, commit: 0, entries: [{ index: lastIndex + 1, term: term + 1, type: 'normal', data: new Uint8Array(10) }] }]);
    await clock.turn();
    expect(host.status(0)).toMatchObject({ role: 'follower', term: term + 1, lastIndex: lastIndex + 1 });
    expect(disk.syncs.map(({ inline }) => inline)).toEqual([false]);
  });

  it('after a flush on the event loop that was slow, flushes go to the thread pool for a minute', async () => {
    const { host, clock, disk } = await leaderOfThree([0]);
    const proposeOne = async (): Promise<void> => {
      void host.propose(0, new Uint8Array(10)).catch(() => undefined);
      await clock.turn();
      await clock.turn();
    };
    disk.holding = true;
    await proposeOne(); // inline, and the disk holds it
    clock.elapsed += 51;
    disk.release();
    await clock.turn();
    await proposeOne();
    clock.elapsed += 59_000;
    await proposeOne();
    clock.elapsed += 2_000;
    await proposeOne();
    expect(disk.syncs.map(({ inline }) => inline)).toEqual([true, false, false, true]);
  });

  it('a round that syncs several logs flushes them all on the thread pool, where they overlap', async () => {
    const syncs = await proposeAndPersist([0, 1], 100);
    expect(syncs).toHaveLength(2);
    expect(syncs).toEqual(expect.arrayContaining([{ group: '0', inline: false }, { group: '1', inline: false }]));
  });
});

describe('RaftHost and a damaged log', () => {
  it('a damaged frame met outside a round (the entries a new partition leader reads) stops the host; the segment loses its index file', async () => {
    const disk = new MemoryDisk();
    const limits = { segmentBytesMax: 1024, entryBytesMax: 200 };
    const log = await SegmentedLog.open({ disk, dir: '/g/log', ...limits });
    log.compactPrefix(1); // the bootstrap snapshot's index
    log.append(Array.from({ length: 40 }, (_, i) => ({ index: i + 2, term: 1, type: 'normal' as const, data: new Uint8Array(50).fill(i) })));
    await log.sync();
    log.close();
    const sealed = '/g/log/00000000000000000002.log';
    disk.flipBit(sealed, 84 + 78 + 40, 1); // the payload of entry 3
    const reopened = await SegmentedLog.open({ disk, dir: '/g/log', ...limits, onCorruption: 'truncate' });
    expect(reopened.recovery.indexed).toContain(sealed);
    const failures: Error[] = [];
    const host = new RaftHost({
      nodeId: 1,
      timing: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 },
      random: seededRandom(7),
      clock: new ManualClock(),
      hardStates: { saveHardStates: () => Promise.resolve() },
      send: () => undefined,
      logger: silent,
      onFailure: (error) => failures.push(error),
    });
    host.addGroup({ group: 0, storage: new DurableRaftStorage(reopened, bootstrap, { term: 1, vote: 0, commit: 1 }), snapshots: new SnapshotStore(disk, '/g/snapshots'), machine, snapshotEveryEntries: 1_000_000, logger: silent });
    expect(() => host.pendingEntries(0)).toThrow(expect.objectContaining({ name: 'CorruptLogError', path: sealed }));
    expect(host.failed()).toMatchObject({ name: 'CorruptLogError' });
    expect(disk.exists(`${sealed}.index`)).toBe(false);
    await host.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(failures).toHaveLength(1);
  });
});
