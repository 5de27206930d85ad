// EntryIndex is a log's in-memory index of the frames it holds: for every index from first() on,
// the byte offset of its frame in its segment and the crc the frame ends with (the seed of the
// next frame), and the term of every entry as runs of equal terms.
//
// Offsets and crcs live in typed arrays (TypedColumns): 8 bytes an entry, outside the JS heap,
// which the garbage collector never walks. Terms change only at elections, so a handful of runs
// hold them all. The indexes of the membership changes (confChange entries, as rare) are listed
// too: a Raft group rebuilds its membership from them at start without reading the log. Plain arrays of numbers (and one pointer an entry to its segment) took 47 bytes
// of heap an entry: 4.7 GB for a partition of 100 million single-record batches.
import { assert } from '../raft/assert.js';
import { TypedColumns } from '../typed-columns.js';

/**
 * IndexColumns are entries of an EntryIndex in bulk: offsets[k] and crcs[k] are of entry
 * runStarts[0] + k; confChanges lists the indexes of the confChange entries among them, ascending.
 */
export interface IndexColumns {
  readonly offsets: Uint32Array;
  readonly crcs: Uint32Array;
  readonly runStarts: readonly number[];
  readonly runTerms: readonly number[];
  readonly confChanges: readonly number[];
}

export class EntryIndex {
  /** frames: row k is the entry at first() + k. */
  private frames = new TypedColumns({ offset: 'u32', crc: 'u32' });
  private firstIndex: number;
  /** runStarts[i] is the first index of the i-th run of equal terms, runTerms[i] its term. Ascending. */
  private runStarts: number[] = [];
  private runTerms: number[] = [];
  /** confChanges lists the indexes of the confChange entries held, ascending. */
  private confChanges: number[] = [];

  constructor(first: number) {
    this.firstIndex = first;
  }

  /** first is the index of the first entry held (where the next push goes when none are). */
  first(): number {
    return this.firstIndex;
  }

  /** length is how many entries are held: [first(), first() + length - 1]. */
  get length(): number {
    return this.frames.length;
  }

  /** push adds the next entry: its term, its frame's offset in its segment, the crc it ends with, and whether it is a membership change. */
  push(term: number, offset: number, crc: number, confChange = false): void {
    if (!(offset >= 0 && offset <= 0xffff_ffff)) assert(false, 'frame offset does not fit 32 bits', { offset });
    const at = this.frames.append();
    this.frames.set('offset', at, offset);
    this.frames.set('crc', at, crc);
    if (this.runTerms.at(-1) !== term) {
      this.runStarts.push(this.firstIndex + at);
      this.runTerms.push(term);
    }
    if (confChange) this.confChanges.push(this.firstIndex + at);
  }

  /**
   * pushAll adds the entries that `columns` describe after those held: offsets and crcs one an entry,
   * terms as runs (ascending starts, the first at first() + length). A bulk copy, for an index read
   * from a segment's index file or taken over from a scan.
   */
  pushAll(columns: IndexColumns): void {
    const count = columns.offsets.length;
    const next = this.firstIndex + this.frames.length;
    const inRange = columns.confChanges.every((index) => index >= next && index < next + count);
    assert(columns.crcs.length === count && columns.runStarts.length === columns.runTerms.length && (count === 0 || columns.runStarts[0] === next) && inRange, 'index columns do not continue the index', { next, count, firstRun: columns.runStarts[0] });
    this.frames.appendRows({ offset: columns.offsets, crc: columns.crcs }, count);
    columns.runStarts.forEach((start, i) => {
      const term = columns.runTerms[i]!;
      if (this.runTerms.at(-1) === term) return;
      this.runStarts.push(start);
      this.runTerms.push(term);
    });
    for (const index of columns.confChanges) this.confChanges.push(index);
  }

  /** columns returns what pushAll takes for the held entries [lo, hi): its arrays are views, valid until the index next changes. */
  columns(lo: number, hi: number): IndexColumns {
    const runStarts: number[] = [];
    const runTerms: number[] = [];
    for (let i = 0; i < this.runStarts.length && lo < hi; i++) {
      const start = Math.max(lo, this.runStarts[i]!);
      const end = this.runStarts[i + 1] ?? Infinity;
      if (start >= hi || start >= end) continue;
      runStarts.push(start);
      runTerms.push(this.runTerms[i]!);
    }
    const from = lo - this.firstIndex;
    const to = hi - this.firstIndex;
    return { offsets: this.frames.view('offset', from, to) as Uint32Array, crcs: this.frames.view('crc', from, to) as Uint32Array, runStarts, runTerms, confChanges: this.confChangesBetween(lo, hi) };
  }

  /** confChangesBetween returns the indexes of the confChange entries held in [lo, hi), ascending. */
  confChangesBetween(lo: number, hi: number): number[] {
    return this.confChanges.filter((index) => index >= lo && index < hi);
  }

  /** term is the term of the held entry at index. */
  term(index: number): number {
    const runs = this.runStarts;
    let lo = 0;
    let hi = runs.length - 1;
    if (runs[hi]! <= index) return this.runTerms[hi]!; // most lookups are near the end
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (runs[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.runTerms[lo]!;
  }

  /** offset is where the frame of the held entry at index starts in its segment. */
  offset(index: number): number {
    return this.frames.get('offset', index - this.firstIndex);
  }

  /** crc is the crc the frame of the held entry at index ends with. */
  crc(index: number): number {
    return this.frames.get('crc', index - this.firstIndex);
  }

  /** lastCrc is the crc of the last entry held, undefined when none is. */
  lastCrc(): number | undefined {
    return this.frames.length === 0 ? undefined : this.frames.get('crc', this.frames.length - 1);
  }

  /** keep keeps the first `count` entries held and forgets the rest. */
  keep(count: number): void {
    this.frames.keep(count);
    const end = this.firstIndex + this.frames.length;
    while (this.runStarts.length > 0 && this.runStarts.at(-1)! >= end) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
    while (this.confChanges.length > 0 && this.confChanges.at(-1)! >= end) this.confChanges.pop();
  }

  /** dropFirst forgets the first n entries held (all of them when n is larger); first() moves up by n. */
  dropFirst(n: number): void {
    const drop = Math.max(0, n);
    if (drop >= this.frames.length) {
      this.reset(this.firstIndex + drop);
      return;
    }
    this.frames.dropFirst(drop);
    this.firstIndex += drop;
    while (this.runStarts.length > 1 && this.runStarts[1]! <= this.firstIndex) {
      this.runStarts.shift();
      this.runTerms.shift();
    }
    while (this.confChanges.length > 0 && this.confChanges[0]! < this.firstIndex) this.confChanges.shift();
  }

  /** reset forgets every entry; the next push is the entry at first. */
  reset(first: number): void {
    this.firstIndex = first;
    this.frames.clear();
    this.runStarts = [];
    this.runTerms = [];
    this.confChanges = [];
  }
}
