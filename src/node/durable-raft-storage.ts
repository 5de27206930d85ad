// DurableRaftStorage is the RaftStorage of one group on a real node: entries in a SegmentedLog,
// the latest snapshot and hard state in memory (persisted by the round loop through the snapshot
// and state stores before it relies on them).
import type { RaftStorage } from '../raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { CorruptLogError } from '../storage/errors.js';
import type { SegmentedLog } from '../storage/segmented-log.js';

export class DurableRaftStorage implements RaftStorage {
  constructor(
    readonly log: SegmentedLog,
    private snapshotValue: Snapshot,
    private hardStateValue: HardState,
  ) {
    // A crash can fall between making a snapshot durable and compacting the log.
    this.joinLogToSnapshot(snapshotValue);
    if (log.firstIndex() > snapshotValue.metadata.index + 1) {
      throw new CorruptLogError({
        path: 'log-start',
        offset: 0,
        reason: `the log starts at ${log.firstIndex()} but the snapshot ends at ${snapshotValue.metadata.index}: entries in between are missing`,
      });
    }
  }

  /**
   * joinLogToSnapshot makes the log continue right after the snapshot: entries after it are kept
   * only when the log holds the snapshot's last entry (same index and term); the rest go.
   */
  private joinLogToSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    const log = this.log;
    if (log.firstIndex() > index) return;
    const holdsEmpty = log.lastIndex() < log.firstIndex();
    if (!holdsEmpty && log.term(index) !== term) log.truncateSuffix(log.firstIndex());
    log.compactPrefix(index);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardStateValue, confState: this.snapshotValue.metadata.confState };
  }

  hardState(): HardState {
    return this.hardStateValue;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  term(index: number): number | undefined {
    if (index === this.snapshotValue.metadata.index) return this.snapshotValue.metadata.term;
    return this.log.term(index);
  }

  firstIndex(): number {
    return this.snapshotValue.metadata.index + 1;
  }

  lastIndex(): number {
    return Math.max(this.log.lastIndex(), this.snapshotValue.metadata.index);
  }

  snapshot(): Snapshot {
    return this.snapshotValue;
  }

  setHardState(hardState: HardState): void {
    this.hardStateValue = hardState;
  }

  append(entries: readonly Entry[]): void {
    this.log.append(entries);
  }

  /**
   * installSnapshot takes a snapshot from the leader (already durable in the snapshot store): the
   * log keeps what follows it only if it holds the snapshot's last entry.
   */
  installSnapshot(snapshot: Snapshot): void {
    this.joinLogToSnapshot(snapshot);
    this.snapshotValue = snapshot;
  }

  /** compact records a snapshot taken by this node's state machine and drops the log before it. */
  compact(snapshot: Snapshot): void {
    this.snapshotValue = snapshot;
    this.log.compactPrefix(snapshot.metadata.index);
  }
}
