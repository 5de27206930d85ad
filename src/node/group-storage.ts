// openGroupStorage opens what one Raft group keeps on this node (its log, its latest snapshot and
// its hard state) as the DurableRaftStorage the round loop runs it on. Every group of a node, the
// metadata quorum and each partition, opens through it, so they all recover alike: damage a crash
// cannot explain is repaired rather than refused. A log is cut back to its last valid entry before
// the corruption (SegmentedLog's onCorruption 'truncate'); a group left without a usable snapshot
// restarts from its bootstrap snapshot, the state every replica of it started from. Either way the
// hard state (term, vote, commit) is kept, so the Raft core neither votes nor campaigns until the
// leader has sent back what was lost (see planRepair in storage/log-recovery.ts for why that is safe).
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { GroupId, HardState, Snapshot } from '../raft/types.js';
import type { Disk } from '../storage/disk.js';
import { SegmentedLog } from '../storage/segmented-log.js';
import { SnapshotStore } from '../storage/snapshot-store.js';
import type { NodeStateStore } from '../storage/state-store.js';
import { DurableRaftStorage } from './durable-raft-storage.js';

export interface GroupStorageOptions {
  readonly group: GroupId;
  /** dir is the group's directory: its log in log/, its snapshots in snapshots/. */
  readonly dir: string;
  readonly disk: Disk;
  readonly stateStore: NodeStateStore;
  /** logger is the group's logger (its lines carry the group). */
  readonly logger: Logger;
  /** bootstrap returns where every replica of the group starts: a snapshot at index 1, term 1. */
  readonly bootstrap: () => Snapshot;
  readonly logLimits?: { readonly entryBytesMax?: number; readonly segmentBytesMax?: number };
}

/** GroupStorage is an opened group; fresh says it was just bootstrapped (nothing was on disk). */
export interface GroupStorage {
  readonly storage: DurableRaftStorage;
  readonly snapshots: SnapshotStore;
  readonly fresh: boolean;
}

/**
 * openGroupStorage opens (or bootstraps) a group's storage, repairing corruption as the file
 * comment says. Throws what the disk or the state store throws; the log is closed then.
 */
export async function openGroupStorage(options: GroupStorageOptions): Promise<GroupStorage> {
  const { group, dir, disk, stateStore, logger } = options;
  const snapshots = new SnapshotStore(disk, join(dir, 'snapshots'));
  const stored = await stateStore.loadHardState(group);
  // The term goes with a repair bound: the entries cut away are of it or earlier (see repairTerm).
  const currentTerm = stored.term === 0 ? undefined : stored.term;
  const log = await SegmentedLog.open({ disk, dir: join(dir, 'log'), logger, onCorruption: 'truncate', currentTerm, ...options.logLimits });
  try {
    const corrupt: string[] = [];
    let snapshot = snapshots.loadLatest((error) => {
      logger.error({ err: error, path: error.path }, 'skipping a corrupt snapshot');
      corrupt.push(error.path);
    });
    for (const path of corrupt) logger.error({ path, setAsideTo: snapshots.setAside(path) }, 'corrupt snapshot set aside');
    let hardState: HardState | undefined = stored.term === 0 ? undefined : stored;
    const fresh = snapshot === undefined && hardState === undefined && log.lastIndex() < log.firstIndex() && corrupt.length === 0;
    if (fresh) {
      snapshot = options.bootstrap();
      hardState = { term: 1, vote: 0, commit: 1 };
      await snapshots.save(snapshot);
      await stateStore.saveHardStates([{ group, hardState }], { sync: true });
    }
    if (snapshot === undefined) {
      snapshot = options.bootstrap();
      logger.error({ dir, hardState, logFirstIndex: log.firstIndex(), logLastIndex: log.lastIndex() }, 'no usable snapshot: restarting the group from its bootstrap snapshot; the leader will send the rest');
    }
    // The log must continue the snapshot: entries after a lost snapshot cannot be applied without it.
    if (log.firstIndex() > snapshot.metadata.index + 1) await log.discardForRepair({ nextIndex: snapshot.metadata.index + 1, term: currentTerm });
    const storage = new DurableRaftStorage(log, snapshot, hardState ?? { term: snapshot.metadata.term, vote: 0, commit: snapshot.metadata.index });
    return { storage, snapshots, fresh };
  } catch (error) {
    log.close();
    throw error;
  }
}
