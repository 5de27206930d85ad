// DurableRaftStorage is the RaftStorage of one group on a real node: entries in a SegmentedLog,
// the latest snapshot and hard state in memory (persisted by the round loop through the snapshot
// and state stores before it relies on them).
import type { RaftStorage } from '../raft/storage.js';
import { entryBytes } from '../raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { CorruptLogError } from '../storage/errors.js';
import type { SegmentedLog } from '../storage/segmented-log.js';

/**
 * RecentEntries keeps the newest entries written in memory, so that replication and applying them
 * do not read back from the segment files. Bounded by count and bytes; older entries come from disk.
 * Invariant: entries[i].index === first + i.
 */
class RecentEntries {
  private entriesHeld: Entry[] = [];
  private first = 0;
  private bytes = 0;

  constructor(private readonly limits: { entries: number; bytes: number }) {}

  append(entries: readonly Entry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    if (this.entriesHeld.length > 0 && head.index >= this.first && head.index <= this.first + this.entriesHeld.length) {
      for (const dropped of this.entriesHeld.splice(head.index - this.first)) this.bytes -= dropped.data.length;
    } else {
      this.clear();
      this.first = head.index;
    }
    for (const entry of entries) {
      this.entriesHeld.push(entry);
      this.bytes += entry.data.length;
    }
    while (this.entriesHeld.length > this.limits.entries || (this.bytes > this.limits.bytes && this.entriesHeld.length > 1)) {
      this.bytes -= this.entriesHeld.shift()!.data.length;
      this.first++;
    }
  }

  /** entries returns [lo, hi) up to maxBytes when all of it is held, else undefined. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.first || hi > this.first + this.entriesHeld.length || lo >= hi) return undefined;
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.entriesHeld[index - this.first]!;
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  dropThrough(index: number): void {
    while (this.entriesHeld.length > 0 && this.first <= index) {
      this.bytes -= this.entriesHeld.shift()!.data.length;
      this.first++;
    }
  }

  clear(): void {
    this.entriesHeld = [];
    this.bytes = 0;
  }
}

/** recentEntriesLimits bound the in-memory tail of every group's log. */
export const recentEntriesLimits = Object.freeze({ entries: 4096, bytes: 16 * 1024 * 1024 });

export class DurableRaftStorage implements RaftStorage {
  private readonly tail = new RecentEntries(recentEntriesLimits);

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
    const cached = this.tail.entries(lo, hi, maxBytes);
    return cached ?? this.log.entries(lo, hi, maxBytes);
  }

  /** confChangeEntries reads the confChange entries in [lo, hi) one by one, found in the log's index without reading the rest. */
  confChangeEntries(lo: number, hi: number): Entry[] {
    return this.log.confChangeIndexes(lo, hi).map((index) => this.entries(index, index + 1, Number.POSITIVE_INFINITY)[0]!);
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
    this.tail.append(entries);
  }

  /**
   * installSnapshot takes a snapshot from the leader (already durable in the snapshot store): the
   * log keeps what follows it only if it holds the snapshot's last entry.
   */
  installSnapshot(snapshot: Snapshot): void {
    this.joinLogToSnapshot(snapshot);
    this.tail.clear();
    this.snapshotValue = snapshot;
  }

  /** compact records a snapshot taken by this node's state machine and drops the log before it. */
  compact(snapshot: Snapshot): void {
    this.tail.dropThrough(snapshot.metadata.index);
    this.snapshotValue = snapshot;
    this.log.compactPrefix(snapshot.metadata.index);
  }
}
