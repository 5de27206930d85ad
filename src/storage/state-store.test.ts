import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyHardState } from '../raft/types.js';
import { Level } from 'level';
import { CorruptStateError, StateStore, StateStoreClosedError } from './state-store.js';

describe('StateStore', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'raftbus-state-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('returns empty state for a fresh directory', async () => {
    const store = await StateStore.open(join(root, 'state'));
    expect(await store.loadHardState(0)).toEqual(emptyHardState);
    expect(await store.loadSnapshotMetadata(0)).toBeUndefined();
    expect(await store.loadNodeIdentity()).toBeUndefined();
    expect(await store.groups()).toEqual([]);
    expect(await store.peerDirectories()).toEqual(new Map());
    await store.close();
  });

  it('keeps hard state, snapshot metadata and identity across reopen', async () => {
    const path = join(root, 'state');
    const store = await StateStore.open(path);
    await store.saveNodeIdentity({ clusterId: 'c-1', nodeId: 3 });
    await store.saveHardState(0, { term: 5, vote: 2, commit: 17 });
    await store.saveHardStates([
      { group: 12, hardState: { term: 1, vote: 0, commit: 0 } },
      { group: 7, hardState: { term: 9, vote: 3, commit: 4 } },
    ]);
    await store.saveSnapshotMetadata(7, { index: 4, term: 9, confState: { voters: [1, 2, 3], learners: [4] } });
    await store.saveHardState(0, { term: 6, vote: 0, commit: 17 });
    await store.savePeerDirectory(2, 'a'.repeat(32));
    await store.savePeerDirectory(11, 'b'.repeat(32));
    await store.close();

    const reopened = await StateStore.open(path);
    expect(await reopened.loadNodeIdentity()).toEqual({ clusterId: 'c-1', nodeId: 3 });
    expect(await reopened.loadHardState(0)).toEqual({ term: 6, vote: 0, commit: 17 });
    expect(await reopened.loadHardState(7)).toEqual({ term: 9, vote: 3, commit: 4 });
    expect(await reopened.loadSnapshotMetadata(7)).toEqual({ index: 4, term: 9, confState: { voters: [1, 2, 3], learners: [4] } });
    expect(await reopened.groups()).toEqual([0, 7, 12]);
    expect(await reopened.peerDirectories()).toEqual(new Map([[2, 'a'.repeat(32)], [11, 'b'.repeat(32)]]));
    await reopened.deleteGroup(7);
    expect(await reopened.groups()).toEqual([0, 12]);
    expect(await reopened.loadSnapshotMetadata(7)).toBeUndefined();
    await reopened.close();
  });

  it('refuses use after close', async () => {
    const store = await StateStore.open(join(root, 'state'));
    await store.close();
    await store.close();
    await expect(store.loadHardState(1)).rejects.toBeInstanceOf(StateStoreClosedError);
  });

  it('throws CorruptStateError for a value of the wrong shape', async () => {
    const path = join(root, 'state');
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await db.put('group/0000000004/hardState', { term: -1, vote: 'x' });
    await db.close();
    const store = await StateStore.open(path);
    await expect(store.loadHardState(4)).rejects.toBeInstanceOf(CorruptStateError);
    await store.close();
  });
});
