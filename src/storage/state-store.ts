// StateStore keeps a node's small durable state in LevelDB (through `level`): the hard state
// (term, vote, commit) of every Raft group it hosts. One batch covers every group of a round,
// written with sync when a term or vote changed (they must be durable before a message that
// depends on them leaves) and without when only commit indexes moved (they can be re-learned).
import { Level } from 'level';
import type { GroupId, HardState } from '../raft/types.js';

const hardStatePrefix = 'hardState/';

function hardStateKey(group: GroupId): string {
  return `${hardStatePrefix}${String(group).padStart(10, '0')}`;
}

function isHardState(value: unknown): value is HardState {
  const state = value as HardState;
  return Number.isSafeInteger(state?.term) && Number.isSafeInteger(state?.vote) && Number.isSafeInteger(state?.commit);
}

/** StateStoreCorruptError: a stored value is not what was written; the node must not start on it. */
export class StateStoreCorruptError extends Error {
  override readonly name = 'StateStoreCorruptError';
  constructor(
    readonly key: string,
    readonly path: string,
  ) {
    super(`state store ${path} holds an unreadable value at ${key}; the data directory is damaged`);
  }
}

export class StateStore {
  private constructor(
    private readonly db: Level<string, unknown>,
    readonly path: string,
  ) {}

  /** open opens (creating when missing) the store in the directory path. */
  static async open(path: string): Promise<StateStore> {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await db.open();
    return new StateStore(db, path);
  }

  /** loadHardState returns the group's hard state, or undefined when none was ever saved. */
  async loadHardState(group: GroupId): Promise<HardState | undefined> {
    const key = hardStateKey(group);
    const value = await this.db.get(key);
    if (value === undefined) return undefined;
    if (!isHardState(value)) throw new StateStoreCorruptError(key, this.path);
    return { term: value.term, vote: value.vote, commit: value.commit };
  }

  /** saveHardStates writes the hard states of many groups in one atomic batch. */
  async saveHardStates(states: readonly { group: GroupId; hardState: HardState }[], options: { sync: boolean }): Promise<void> {
    if (states.length === 0) return;
    const operations = states.map(({ group, hardState }) => ({
      type: 'put' as const,
      key: hardStateKey(group),
      value: { term: hardState.term, vote: hardState.vote, commit: hardState.commit },
    }));
    await this.db.batch(operations, { sync: options.sync });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
