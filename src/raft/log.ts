// RaftLog is a group's log as the core sees it: what storage holds durably, followed by the
// unstable tail (entries and possibly a snapshot) that the caller has not persisted yet.
import { assert } from './assert.js';
import type { RaftStorage } from './storage.js';
import { entryBytes } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/** Unstable holds what is not yet persisted. Invariant: entries[i].index === offset + i. */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  term(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    return this.entries[index - this.offset]?.term;
  }

  /** truncateAndAppend appends entries, replacing everything from entries[0].index on. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    if (first === this.offset + this.entries.length) {
      this.entries.push(...entries);
    } else if (first <= this.offset) {
      this.offset = first;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, first - this.offset).concat(entries);
    }
  }

  /** stableTo drops entries up to index once persisted, unless they were replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }
}

export class RaftLog {
  private readonly unstable: Unstable;
  /** committed is the highest index known to be stored on a quorum. */
  committed: number;
  /** applied is the highest index handed to the caller for application. */
  applied: number;

  constructor(
    readonly storage: RaftStorage,
    applied: number,
  ) {
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = storage.firstIndex() - 1;
    this.applied = Math.max(applied, storage.firstIndex() - 1);
  }

  firstIndex(): number {
    const snapshot = this.unstable.snapshot;
    return snapshot !== undefined ? snapshot.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** lastStableIndex is the last index persisted by the caller (and reported via advance). */
  lastStableIndex(): number {
    return this.unstable.snapshot !== undefined ? this.firstIndex() - 1 : this.unstable.offset - 1;
  }

  /** term returns the term at index, or undefined when it is compacted or past the end. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    const unstableTerm = this.unstable.term(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (index >= this.unstable.offset) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'last term unknown', { lastIndex: this.lastIndex() });
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** isUpToDate: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? (§5.4.1) */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * maybeAppend appends entries after (prevIndex, prevTerm) if our log matches there, and
   * advances commit to min(commit, last new index). Returns the last new index and the suffix
   * actually written (empty when every entry was already there), or undefined on mismatch.
   */
  maybeAppend(options: { prevIndex: number; prevTerm: number; commit: number; entries: readonly Entry[] }):
    | { lastNewIndex: number; appended: readonly Entry[] }
    | undefined {
    const { prevIndex, prevTerm, commit, entries } = options;
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    let appended: readonly Entry[] = [];
    if (conflict !== undefined) {
      assert(conflict > this.committed, 'conflict with committed entry', { conflict, committed: this.committed });
      appended = entries.slice(conflict - prevIndex - 1);
      this.append(appended);
    }
    this.commitTo(Math.min(commit, lastNewIndex));
    return { lastNewIndex, appended };
  }

  /** findConflict returns the index of the first entry that is new or differs in term. */
  private findConflict(entries: readonly Entry[]): number | undefined {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return undefined;
  }

  /**
   * findConflictByTerm returns the highest index <= index whose term is <= term: the first
   * place where a log ending at (index, term) may match ours.
   */
  findConflictByTerm(index: number, term: number): number {
    let candidate = Math.min(index, this.lastIndex());
    while (candidate > 0) {
      const ourTerm = this.term(candidate);
      if (ourTerm === undefined || ourTerm <= term) break;
      candidate--;
    }
    return candidate;
  }

  /** append adds entries to the unstable tail. Invariant: never rewrites a committed entry. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, 'append below commit', { after, committed: this.committed });
    assert(after <= this.lastIndex(), 'append leaves a gap', { after, lastIndex: this.lastIndex() });
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** slice returns entries [lo, hi) up to maxBytes (at least one). Throws if compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, 'slice out of range', {
      lo,
      hi,
      first: this.firstIndex(),
      last: this.lastIndex(),
    });
    if (lo >= hi) return [];
    const result: Entry[] = [];
    if (lo < this.unstable.offset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxBytes);
      for (const entry of stored) result.push(entry); // not push(...stored): a spread of a long slice overflows the stack
      if (stored.length < Math.min(hi, this.unstable.offset) - lo) return result;
    }
    if (hi > this.unstable.offset) {
      let bytes = result.reduce((sum, entry) => sum + entryBytes(entry), 0);
      const from = Math.max(lo, this.unstable.offset);
      for (let index = from; index < hi; index++) {
        const entry = this.unstable.entries[index - this.unstable.offset]!;
        bytes += entryBytes(entry);
        if (result.length > 0 && bytes > maxBytes) break;
        result.push(entry);
      }
    }
    return result;
  }

  /** entriesFrom returns entries from index on, up to maxBytes; undefined when compacted. */
  entriesFrom(index: number, maxBytes: number): Entry[] | undefined {
    if (index < this.firstIndex()) return undefined;
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  /** commitTo raises the commit index. Invariant: committed <= lastIndex; never decreases. */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), 'commit past the end of the log', { index, lastIndex: this.lastIndex() });
    this.committed = index;
  }

  /** maybeCommit commits index if its entry is of `term` (only current-term entries are counted). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** hasEntriesToApply says committed entries wait to be handed out. */
  hasEntriesToApply(): boolean {
    return this.committed > this.applied && this.unstable.snapshot === undefined;
  }

  /** entriesToApply returns (applied, committed] up to maxBytes. */
  entriesToApply(maxBytes: number): Entry[] {
    if (!this.hasEntriesToApply()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed && index >= this.applied, 'applied out of range', {
      index,
      applied: this.applied,
      committed: this.committed,
    });
    this.applied = index;
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  unstableSnapshot(): Snapshot | undefined {
    return this.unstable.snapshot;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    if (this.unstable.snapshot?.metadata.index === index) this.unstable.snapshot = undefined;
  }

  /** restore replaces the log with a snapshot; commit and applied jump to its index. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.applied = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** snapshot returns the snapshot to send a follower that lags behind the log's start. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}
