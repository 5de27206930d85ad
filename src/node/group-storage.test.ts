import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Raft } from '../raft/raft.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { frameHeaderBytes, segmentHeaderBytes } from '../storage/limits.js';
import { NodeDisk } from '../storage/node-disk.js';
import { StateStore } from '../storage/state-store.js';
import { openGroupStorage, type GroupStorage } from './group-storage.js';
import { createLogger } from './logger.js';

const group = 9;
const bootstrap = (): Snapshot => ({ metadata: { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array([1]) });

function entries(from: number, through: number, term: number): Entry[] {
  return Array.from({ length: through - from + 1 }, (_, i) => ({ index: from + i, term, type: 'normal' as const, data: Buffer.from(`entry ${from + i}`) }));
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, offset);
  byte[0]! ^= 0x40;
  writeSync(fd, byte, 0, 1, offset);
  closeSync(fd);
}

describe('openGroupStorage repairs instead of refusing', () => {
  let root: string;
  let stateStore: StateStore;
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger({ nodeId: 1, destination: { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) } });
  const open = (): Promise<GroupStorage> => openGroupStorage({ group, dir: join(root, 'group'), disk: new NodeDisk(), stateStore, logger, bootstrap });

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'raftbus-group-'));
    stateStore = await StateStore.open(join(root, 'state'));
    lines.length = 0;
  });
  afterEach(async () => {
    await stateStore.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** groupWith30 bootstraps the group, appends entries 2..30 (term 2) and persists commit 30; compacted through 20 when asked. */
  async function groupWith30(options: { compactThrough?: number }): Promise<void> {
    const { storage, snapshots, fresh } = await open();
    expect(fresh).toBe(true);
    storage.append(entries(2, 30, 2));
    await storage.log.sync();
    await stateStore.saveHardState(group, { term: 2, vote: 1, commit: 30 });
    if (options.compactThrough !== undefined) {
      const snapshot: Snapshot = { metadata: { index: options.compactThrough, term: 2, confState: bootstrap().metadata.confState }, data: new Uint8Array([2]) };
      await snapshots.save(snapshot);
      storage.compact(snapshot);
      await storage.log.sync();
    }
    storage.log.close();
  }

  it('a corrupt frame in the middle of the log: cut back, hard state kept, the Raft core abstains', async () => {
    await groupWith30({});
    const segment = join(root, 'group', 'log', '00000000000000000002.log');
    flipByte(segment, segmentHeaderBytes + frameHeaderBytes + 2); // the payload of entry 2, the first frame
    const { storage } = await open();
    expect([storage.log.firstIndex(), storage.log.lastIndex(), storage.log.repairThroughIndex(), storage.hardState()]).toEqual([2, 1, 30, { term: 2, vote: 1, commit: 30 }]);
    expect(lines.filter((line) => line.level === 50).map((line) => line.msg)).toEqual([
      'corrupt log: cut back to the last valid entry before the corruption; not voting until the leader has sent the rest again',
    ]);
    const warnings: string[] = [];
    const raft = new Raft({ id: 2, group, storage, random: () => 0, electionTicks: 10, heartbeatTicks: 2, abstainUntilIndex: storage.log.repairThroughIndex(), logger: { debug() {}, info() {}, warn: (_details, message) => warnings.push(message) } });
    expect(warnings).toEqual(['log ends before entries this node acknowledged; not voting or campaigning until caught up']);
    expect(raft.log.committed).toBe(1);
    storage.log.close();
  });

  it('a corrupt snapshot after compaction: back to the bootstrap snapshot, the log set aside, owing what it held', async () => {
    await groupWith30({ compactThrough: 20 });
    const snapshotDir = join(root, 'group', 'snapshots');
    const [snapshotName] = readdirSync(snapshotDir).filter((name) => name.endsWith('.snap'));
    flipByte(join(snapshotDir, snapshotName!), 30);
    const { storage, fresh } = await open();
    expect(fresh).toBe(false);
    expect(storage.snapshot()).toEqual(bootstrap());
    expect([storage.firstIndex(), storage.lastIndex(), storage.log.repairThroughIndex(), storage.hardState()]).toEqual([2, 1, 30, { term: 2, vote: 1, commit: 30 }]);
    expect(readdirSync(snapshotDir)).toEqual([`${snapshotName!}.corrupt-1`]);
    expect(lines.filter((line) => line.level === 50).map((line) => line.msg)).toEqual([
      'skipping a corrupt snapshot',
      'corrupt snapshot set aside',
      'no usable snapshot: restarting the group from its bootstrap snapshot; the leader will send the rest',
      'log set aside for repair; it restarts empty',
    ]);
    storage.log.close();
  });

  it('a corrupt bootstrap snapshot of a log never compacted: rebuilt from the bootstrap snapshot and the whole log', async () => {
    await groupWith30({});
    const snapshotDir = join(root, 'group', 'snapshots');
    flipByte(join(snapshotDir, readdirSync(snapshotDir)[0]!), 30);
    const { storage } = await open();
    expect([storage.firstIndex(), storage.lastIndex(), storage.log.repairThroughIndex()]).toEqual([2, 30, undefined]);
    storage.log.close();
  });
});
