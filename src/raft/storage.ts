// RaftStorage is how the core reads what the caller has made durable; MemoryStorage is the
// in-memory implementation the simulator and the unit tests use, and the cache of a durable node.
import { assert } from './assert.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { emptyHardState, emptySnapshot } from './types.js';

/**
 * RaftStorage is the durable part of a Raft group, read synchronously by the core.
 * Invariant: the entries it holds are exactly (snapshot.metadata.index, lastIndex()].
 */
export interface RaftStorage {
  /** initialState returns the persisted hard state and the membership at the last snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** entries returns entries [lo, hi) up to maxBytes (always at least one). Throws if out of range. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * confChangeEntries returns the confChange entries in [lo, hi), in order: a group rebuilds its
   * membership from them at start, which must not read (or hold in memory) a whole log of data.
   */
  confChangeEntries(lo: number, hi: number): Entry[];
  /** term returns the term of the entry at index, or undefined when compacted or not present. */
  term(index: number): number | undefined;
  /** firstIndex is the index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** lastIndex is the index of the last entry held (the snapshot index when none are). */
  lastIndex(): number;
  /** snapshot returns the most recent snapshot. */
  snapshot(): Snapshot;
}

/** entryBytes is the size an entry counts for in byte limits: its payload plus a fixed header. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + entryHeaderBytes;
}
export const entryHeaderBytes = 24;

/**
 * MemoryStorage keeps a group's hard state, snapshot and log in memory.
 * Writers: append (truncating any conflicting suffix), setHardState, applySnapshot, compact.
 */
export class MemoryStorage implements RaftStorage {
  private hardStateValue: HardState = emptyHardState;
  private snapshotValue: Snapshot = emptySnapshot;
  // log[0] stands for the snapshot position; real entries start at log[1].
  private log: Entry[] = [];

  constructor(initial?: { snapshot?: Snapshot; hardState?: HardState; entries?: readonly Entry[] }) {
    if (initial?.snapshot) this.applySnapshot(initial.snapshot);
    if (initial?.hardState) this.setHardState(initial.hardState);
    if (initial?.entries) this.append(initial.entries);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardStateValue, confState: this.snapshotValue.metadata.confState };
  }

  hardState(): HardState {
    return this.hardStateValue;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, 'entries out of range', {
      lo,
      hi,
      first: this.firstIndex(),
      last: this.lastIndex(),
    });
    const offset = this.snapshotValue.metadata.index + 1;
    const result: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.log[i - offset]!;
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  confChangeEntries(lo: number, hi: number): Entry[] {
    return this.entries(lo, hi, Number.POSITIVE_INFINITY).filter((entry) => entry.type === 'confChange');
  }

  term(index: number): number | undefined {
    const snapshotIndex = this.snapshotValue.metadata.index;
    if (index === snapshotIndex) return this.snapshotValue.metadata.term;
    if (index < snapshotIndex || index > this.lastIndex()) return undefined;
    return this.log[index - snapshotIndex - 1]!.term;
  }

  firstIndex(): number {
    return this.snapshotValue.metadata.index + 1;
  }

  lastIndex(): number {
    return this.snapshotValue.metadata.index + this.log.length;
  }

  snapshot(): Snapshot {
    return this.snapshotValue;
  }

  setHardState(hardState: HardState): void {
    this.hardStateValue = hardState;
  }

  /**
   * append adds entries, replacing any existing suffix from entries[0].index on.
   * Entries wholly below the snapshot are ignored. Throws (a bug) on a gap.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let start = 0;
    while (start < entries.length && entries[start]!.index < first) start++;
    if (start === entries.length) return;
    const firstNew = entries[start]!.index;
    assert(firstNew <= this.lastIndex() + 1, 'gap in append', { firstNew, last: this.lastIndex() });
    this.log.length = firstNew - first;
    for (let i = start; i < entries.length; i++) this.log.push(entries[i]!);
  }

  /** applySnapshot replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snapshotValue.metadata.index && this.snapshotValue !== emptySnapshot) {
      return;
    }
    const term = this.term(snapshot.metadata.index);
    const keep = term === snapshot.metadata.term ? this.log.slice(snapshot.metadata.index - this.snapshotValue.metadata.index) : [];
    this.snapshotValue = snapshot;
    this.log = keep;
  }

  /**
   * createSnapshot records the state machine's snapshot at index (which must be held, and
   * applied by the caller) and drops every entry up to it.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const term = this.term(index);
    assert(term !== undefined, 'snapshot index not in log', { index, first: this.firstIndex(), last: this.lastIndex() });
    const snapshot: Snapshot = { metadata: { index, term, confState }, data };
    this.log = this.log.slice(index - this.snapshotValue.metadata.index);
    this.snapshotValue = snapshot;
    return snapshot;
  }

  /** allEntries returns every entry held, for checkers and tests. */
  allEntries(): readonly Entry[] {
    return this.log;
  }
}
