// EntryIndex is a log's in-memory index of the frames it holds: for every index from first() on,
// the byte offset of its frame in its segment and the crc the frame ends with (the seed of the
// next frame), and the term of every entry as runs of equal terms.
//
// Offsets and crcs live in typed arrays: 8 bytes an entry, outside the JS heap, which the garbage
// collector never walks. Terms change only at elections, so a handful of runs hold them all. Plain
// arrays of numbers (and one pointer an entry to its segment) took 47 bytes of heap an entry: 4.7
// GB for a partition of 100 million single-record batches.
import { assert } from '../raft/assert.js';

const capacityMin = 1024;

export class EntryIndex {
  private offsets: Uint32Array = new Uint32Array(capacityMin);
  private crcs: Uint32Array = new Uint32Array(capacityMin);
  /** head is where first() sits in the arrays: dropping from the front only moves it. */
  private head = 0;
  private count = 0;
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
    return this.count;
  }

  /** push adds the next entry: its term, its frame's offset in its segment, and the crc it ends with. */
  push(term: number, offset: number, crc: number): void {
    if (!(offset >= 0 && offset <= 0xffff_ffff)) assert(false, 'frame offset does not fit 32 bits', { offset });
    if (this.head + this.count === this.offsets.length) this.makeRoom();
    const at = this.head + this.count;
    this.offsets[at] = offset;
    this.crcs[at] = crc;
    if (this.runTerms.at(-1) !== term) {
      this.runStarts.push(this.firstIndex + this.count);
      this.runTerms.push(term);
    }
    this.count++;
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
    return this.offsets[this.head + index - this.firstIndex]!;
  }

  /** crc is the crc the frame of the held entry at index ends with. */
  crc(index: number): number {
    return this.crcs[this.head + index - this.firstIndex]!;
  }

  /** lastCrc is the crc of the last entry held, undefined when none is. */
  lastCrc(): number | undefined {
    return this.count === 0 ? undefined : this.crcs[this.head + this.count - 1]!;
  }

  /** keep keeps the first `count` entries held and forgets the rest. */
  keep(count: number): void {
    this.count = Math.max(0, Math.min(this.count, count));
    const end = this.firstIndex + this.count;
    while (this.runStarts.length > 0 && this.runStarts.at(-1)! >= end) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
  }

  /** dropFirst forgets the first n entries held (all of them when n is larger); first() moves up by n. */
  dropFirst(n: number): void {
    const drop = Math.max(0, n);
    const dropped = Math.min(drop, this.count);
    this.head += dropped;
    this.count -= dropped;
    this.firstIndex += drop;
    if (this.count === 0) {
      this.reset(this.firstIndex);
      return;
    }
    while (this.runStarts.length > 1 && this.runStarts[1]! <= this.firstIndex) {
      this.runStarts.shift();
      this.runTerms.shift();
    }
  }

  /** reset forgets every entry; the next push is the entry at first. */
  reset(first: number): void {
    this.firstIndex = first;
    this.head = 0;
    this.count = 0;
    this.runStarts = [];
    this.runTerms = [];
    if (this.offsets.length > capacityMin) {
      this.offsets = new Uint32Array(capacityMin);
      this.crcs = new Uint32Array(capacityMin);
    }
  }

  /**
   * makeRoom frees the end of the arrays: moves the entries held to the front when at least half
   * of the arrays lies before them, else doubles the arrays (so every push costs O(1) amortized).
   */
  private makeRoom(): void {
    const capacity = this.offsets.length;
    const size = this.count < capacity / 2 ? capacity : capacity * 2;
    const move = (from: Uint32Array): Uint32Array => {
      if (size === capacity) return from.copyWithin(0, this.head, this.head + this.count);
      const to = new Uint32Array(size);
      to.set(from.subarray(this.head, this.head + this.count), 0);
      return to;
    };
    this.offsets = move(this.offsets);
    this.crcs = move(this.crcs);
    this.head = 0;
  }
}
