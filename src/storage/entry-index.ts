// EntryIndex is a log's in-memory index of the frames it holds: for every index from first() on,
// the byte offset of its frame in its segment and the crc the frame ends with (the seed of the
// next frame), and the term of every entry as runs of equal terms.
//
// Offsets and crcs live in typed arrays (TypedColumns): 8 bytes an entry, outside the JS heap,
// which the garbage collector never walks. Terms change only at elections, so a handful of runs
// hold them all. Plain arrays of numbers (and one pointer an entry to its segment) took 47 bytes
// of heap an entry: 4.7 GB for a partition of 100 million single-record batches.
import { assert } from '../raft/assert.js';
import { TypedColumns } from '../typed-columns.js';

export class EntryIndex {
  /** frames: row k is the entry at first() + k. */
  private frames = new TypedColumns({ offset: 'u32', crc: 'u32' });
  private firstIndex: number;
  /** runStarts[i] is the first index of the i-th run of equal terms, runTerms[i] its term. Ascending. */
  private runStarts: number[] = [];
  private runTerms: number[] = [];

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

  /** push adds the next entry: its term, its frame's offset in its segment, and the crc it ends with. */
  push(term: number, offset: number, crc: number): void {
    if (!(offset >= 0 && offset <= 0xffff_ffff)) assert(false, 'frame offset does not fit 32 bits', { offset });
    const at = this.frames.append();
    this.frames.set('offset', at, offset);
    this.frames.set('crc', at, crc);
    if (this.runTerms.at(-1) !== term) {
      this.runStarts.push(this.firstIndex + at);
      this.runTerms.push(term);
    }
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
  }

  /** reset forgets every entry; the next push is the entry at first. */
  reset(first: number): void {
    this.firstIndex = first;
    this.frames.clear();
    this.runStarts = [];
    this.runTerms = [];
  }
}
