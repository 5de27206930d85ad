// TypedColumns holds rows of numbers as parallel typed arrays: outside the JS heap, a few bytes a
// value, never walked by the garbage collector. Rows are appended at the end, cut from the end,
// and dropped from the front (which only moves a head); the arrays double when full, or move their
// rows to the front when at least half of them lies before the head.
//
// It backs the per-entry and per-batch indexes that grow with what a node holds (a log's frames, a
// partition's batches), where an object or a boxed number per row cost 45 to 90 bytes of heap.
import { assert } from './raft/assert.js';

/** ColumnType is how a column stores its values: u32 (0 to 2^32 - 1) or f64 (any safe integer). */
export type ColumnType = 'u32' | 'f64';

type Column = Uint32Array | Float64Array;

const capacityMin = 1024;
const u32Max = 0xffff_ffff;

function allocate(type: ColumnType, capacity: number): Column {
  return type === 'u32' ? new Uint32Array(capacity) : new Float64Array(capacity);
}

export class TypedColumns<Name extends string> {
  private readonly columns: Record<Name, Column>;
  private readonly names: readonly Name[];
  /** head is where row 0 sits in the arrays. */
  private head = 0;
  private rows = 0;

  constructor(private readonly types: Readonly<Record<Name, ColumnType>>) {
    this.names = Object.keys(types) as Name[];
    this.columns = {} as Record<Name, Column>;
    for (const name of this.names) this.columns[name] = allocate(types[name], capacityMin);
  }

  /** length is the number of rows held. */
  get length(): number {
    return this.rows;
  }

  /** append adds a row and returns its position; its values are unset until set() writes them. */
  append(): number {
    if (this.head + this.rows === this.columns[this.names[0]!].length) this.makeRoom(1);
    return this.rows++;
  }

  /**
   * appendRows appends `count` rows at once from one array a column, each of the column's own type
   * (so a u32 column gets values that fit it): a bulk copy, for an index loaded whole.
   */
  appendRows(values: Readonly<Record<Name, Column>>, count: number): void {
    for (const name of this.names) {
      const from = values[name];
      assert(from.length >= count && (from instanceof Uint32Array) === (this.types[name] === 'u32'), 'rows of the wrong type or length', { column: name, count, given: from.length });
    }
    if (this.head + this.rows + count > this.columns[this.names[0]!].length) this.makeRoom(count);
    for (const name of this.names) this.columns[name].set(values[name].subarray(0, count), this.head + this.rows);
    this.rows += count;
  }

  /** view returns a column's values of rows [from, to): a view, valid until the columns next change. */
  view(name: Name, from: number, to: number): Column {
    assert(from >= 0 && from <= to && to <= this.rows, 'rows out of range', { from, to, rows: this.rows });
    return this.columns[name].subarray(this.head + from, this.head + to);
  }

  /** set writes the value of a column in the row at position; a u32 column refuses what does not fit. */
  set(name: Name, position: number, value: number): void {
    if (this.types[name] === 'u32' && !(value >= 0 && value <= u32Max && Number.isInteger(value))) assert(false, 'value does not fit 32 bits', { column: name, value });
    this.columns[name][this.head + position] = value;
  }

  /** get returns the value of a column in the row at position (0 is the oldest row held). */
  get(name: Name, position: number): number {
    return this.columns[name][this.head + position]!;
  }

  /** keep keeps the first `count` rows and forgets the rest. */
  keep(count: number): void {
    this.rows = Math.max(0, Math.min(this.rows, count));
  }

  /** dropFirst forgets the first n rows (all of them when n is larger). */
  dropFirst(n: number): void {
    const dropped = Math.max(0, Math.min(n, this.rows));
    this.head += dropped;
    this.rows -= dropped;
    if (this.rows === 0) this.clear();
  }

  /** clear forgets every row and gives back the room the arrays grew to. */
  clear(): void {
    this.head = 0;
    this.rows = 0;
    if (this.columns[this.names[0]!].length > capacityMin) for (const name of this.names) this.columns[name] = allocate(this.types[name], capacityMin);
  }

  /**
   * makeRoom frees room for `extra` more rows at the end of the arrays: moves the rows to the front
   * when they fill less than half and that is enough, else doubles the arrays until the rows fit
   * (O(1) amortized a row).
   */
  private makeRoom(extra: number): void {
    const capacity = this.columns[this.names[0]!].length;
    const needed = this.rows + extra;
    let size = capacity;
    if (this.rows >= capacity / 2 || needed > capacity) {
      size = capacity * 2;
      while (size < needed) size *= 2;
    }
    for (const name of this.names) {
      const from = this.columns[name];
      if (size === capacity) {
        from.copyWithin(0, this.head, this.head + this.rows);
      } else {
        const to = allocate(this.types[name], size);
        to.set(from.subarray(this.head, this.head + this.rows), 0);
        this.columns[name] = to;
      }
    }
    this.head = 0;
  }
}
