// StateStore keeps what a node must remember apart from its logs, in LevelDB: per Raft group the
// hard state (term, vote, commit) and the metadata of the latest snapshot, and the node's identity.
// Every write that Raft depends on is a synchronous LevelDB write (fsync before it resolves).
import { Level } from 'level';
import type { ConfState, GroupId, HardState, NodeId, SnapshotMetadata } from '../raft/types.js';
import { emptyHardState } from '../raft/types.js';

/** NodeIdentity is who this data directory belongs to; a node refuses a directory of another. */
export interface NodeIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
}

/** CorruptStateError says a stored value does not have the shape it was written with. */
export class CorruptStateError extends Error {
  override readonly name = 'CorruptStateError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`state store value at ${key} is corrupt: ${reason}`);
  }
}

/** StateStoreClosedError says the store was used after close(). */
export class StateStoreClosedError extends Error {
  override readonly name = 'StateStoreClosedError';
  constructor(readonly path: string) {
    super(`state store ${path} is closed`);
  }
}

const identityKey = 'node/identity';
const peerDirectoryPrefix = 'peer/';
const peerDirectoryKey = (nodeId: NodeId): string => `${peerDirectoryPrefix}${String(nodeId).padStart(10, '0')}/directory`;
const groupPrefix = 'group/';
const groupKey = (group: GroupId, what: 'hardState' | 'snapshot'): string => `${groupPrefix}${String(group).padStart(10, '0')}/${what}`;

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function asHardState(key: string, value: unknown): HardState {
  if (!isRecord(value) || !isCount(value['term']) || !isCount(value['vote']) || !isCount(value['commit'])) {
    throw new CorruptStateError(key, 'not a hard state');
  }
  return { term: value['term'], vote: value['vote'], commit: value['commit'] };
}

function asConfState(key: string, value: unknown): ConfState {
  const nodeIds = (list: unknown): list is NodeId[] => Array.isArray(list) && list.every(isCount);
  if (!isRecord(value) || !nodeIds(value['voters']) || !nodeIds(value['learners'])) throw new CorruptStateError(key, 'not a conf state');
  return { voters: value['voters'], learners: value['learners'] };
}

function asSnapshotMetadata(key: string, value: unknown): SnapshotMetadata {
  if (!isRecord(value) || !isCount(value['index']) || !isCount(value['term'])) throw new CorruptStateError(key, 'not snapshot metadata');
  return { index: value['index'], term: value['term'], confState: asConfState(key, value['confState']) };
}

function asIdentity(key: string, value: unknown): NodeIdentity {
  if (!isRecord(value) || typeof value['clusterId'] !== 'string' || !isCount(value['nodeId'])) throw new CorruptStateError(key, 'not a node identity');
  return { clusterId: value['clusterId'], nodeId: value['nodeId'] };
}

/**
 * NodeStateStore is what a node's Raft groups keep in the state store: hard states, written many
 * at once (synced, or not when only commit indexes moved), read back on open, forgotten with a
 * deleted group. StateStore is the LevelDB one; the simulator keeps one in memory.
 */
export interface NodeStateStore {
  saveHardStates(states: readonly { group: GroupId; hardState: HardState }[], options: { sync: boolean }): Promise<void>;
  loadHardState(group: GroupId): Promise<HardState>;
  deleteGroup(group: GroupId): Promise<void>;
}

/** StateStore: see the file comment. Open with StateStore.open(path); all methods are async. */
export class StateStore implements NodeStateStore {
  private closed = false;

  private constructor(
    private readonly db: Level<string, unknown>,
    readonly path: string,
  ) {}

  /** open opens (creating when missing) the store in directory path. */
  static async open(path: string): Promise<StateStore> {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await db.open();
    return new StateStore(db, path);
  }

  /** saveHardState durably records a group's hard state (resolves after fsync). */
  saveHardState(group: GroupId, hardState: HardState): Promise<void> {
    return this.saveHardStates([{ group, hardState }]);
  }

  /**
   * saveHardStates records many groups' hard states in one batch (one Ready round). With sync (the
   * default) it resolves after fsync; without, when only commit indexes moved (they can be
   * re-learned), it resolves once written to the OS.
   */
  async saveHardStates(states: readonly { group: GroupId; hardState: HardState }[], options: { sync: boolean } = { sync: true }): Promise<void> {
    this.assertOpen();
    if (states.length === 0) return;
    const operations = states.map(({ group, hardState }) => ({
      type: 'put' as const,
      key: groupKey(group, 'hardState'),
      value: { term: hardState.term, vote: hardState.vote, commit: hardState.commit },
    }));
    await this.db.batch(operations, { sync: options.sync });
  }

  /** loadHardState returns a group's hard state, emptyHardState when none was saved. */
  async loadHardState(group: GroupId): Promise<HardState> {
    const key = groupKey(group, 'hardState');
    const value = await this.get(key);
    return value === undefined ? emptyHardState : asHardState(key, value);
  }

  /** saveSnapshotMetadata durably records the metadata of a group's latest snapshot. */
  async saveSnapshotMetadata(group: GroupId, metadata: SnapshotMetadata): Promise<void> {
    this.assertOpen();
    const { index, term, confState } = metadata;
    const value = { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } };
    await this.db.put(groupKey(group, 'snapshot'), value, { sync: true });
  }

  /** loadSnapshotMetadata returns a group's latest snapshot metadata, undefined when none. */
  async loadSnapshotMetadata(group: GroupId): Promise<SnapshotMetadata | undefined> {
    const key = groupKey(group, 'snapshot');
    const value = await this.get(key);
    return value === undefined ? undefined : asSnapshotMetadata(key, value);
  }

  /** groups returns the ids of every group with saved state, ascending. */
  async groups(): Promise<GroupId[]> {
    this.assertOpen();
    const groups = new Set<GroupId>();
    for await (const key of this.db.keys({ gte: groupPrefix, lt: `${groupPrefix}~` })) {
      groups.add(Number(key.slice(groupPrefix.length, groupPrefix.length + 10)));
    }
    return [...groups].sort((a, b) => a - b);
  }

  /** deleteGroup durably forgets a group's hard state and snapshot metadata. */
  async deleteGroup(group: GroupId): Promise<void> {
    this.assertOpen();
    const operations = (['hardState', 'snapshot'] as const).map((what) => ({ type: 'del' as const, key: groupKey(group, what) }));
    await this.db.batch(operations, { sync: true });
  }

  /** saveNodeIdentity durably records who this data directory belongs to. */
  async saveNodeIdentity(identity: NodeIdentity): Promise<void> {
    this.assertOpen();
    await this.db.put(identityKey, { clusterId: identity.clusterId, nodeId: identity.nodeId }, { sync: true });
  }

  /** loadNodeIdentity returns the recorded identity, undefined for a fresh directory. */
  async loadNodeIdentity(): Promise<NodeIdentity | undefined> {
    const value = await this.get(identityKey);
    return value === undefined ? undefined : asIdentity(identityKey, value);
  }

  /** savePeerDirectory durably records the data directory id a peer node showed. */
  async savePeerDirectory(nodeId: NodeId, directoryId: string): Promise<void> {
    this.assertOpen();
    await this.db.put(peerDirectoryKey(nodeId), directoryId, { sync: true });
  }

  /** peerDirectories returns every recorded peer's data directory id. */
  async peerDirectories(): Promise<Map<NodeId, string>> {
    this.assertOpen();
    const found = new Map<NodeId, string>();
    for await (const [key, value] of this.db.iterator({ gte: peerDirectoryPrefix, lt: `${peerDirectoryPrefix}~` })) {
      if (typeof value !== 'string') throw new CorruptStateError(key, 'not a directory id');
      found.set(Number(key.slice(peerDirectoryPrefix.length, peerDirectoryPrefix.length + 10)), value);
    }
    return found;
  }

  /** close closes the database; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  private async get(key: string): Promise<unknown> {
    this.assertOpen();
    // abstract-level 3 resolves undefined for a missing key (the typings of level say otherwise).
    return (await this.db.get(key)) as unknown;
  }

  private assertOpen(): void {
    if (this.closed) throw new StateStoreClosedError(this.path);
  }
}
