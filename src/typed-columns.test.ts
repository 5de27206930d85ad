import { describe, expect, it } from 'vitest';
import { TypedColumns } from './typed-columns.js';

describe('TypedColumns', () => {
  it('keeps rows of u32 and f64 columns through growth, drops from the front and cuts from the end', () => {
    const columns = new TypedColumns({ small: 'u32', big: 'f64' });
    const row = (k: number): [number, number] => [k % 0x1_0000_0000, 2 ** 52 + k * 3 - 7];
    for (let k = 0; k < 5000; k++) {
      const at = columns.append();
      columns.set('small', at, row(k)[0]);
      columns.set('big', at, row(k)[1]);
    }
    columns.dropFirst(4200); // 800 left: the next appends move them to the front of the arrays
    for (let k = 5000; k < 5300; k++) {
      const at = columns.append();
      columns.set('small', at, row(k)[0]);
      columns.set('big', at, row(k)[1]);
    }
    columns.keep(1000);
    const held = Array.from({ length: columns.length }, (_, position) => [columns.get('small', position), columns.get('big', position)]);
    expect(held).toEqual(Array.from({ length: 1000 }, (_, position) => row(4200 + position)));
  });

  it('refuses a value a u32 column cannot hold, rather than wrap or round it', () => {
    const columns = new TypedColumns({ small: 'u32', big: 'f64' });
    const at = columns.append();
    for (const value of [-1, 2 ** 32, 1.5, Number.NaN]) expect(() => columns.set('small', at, value)).toThrow(/32 bits/);
    columns.set('big', at, -1.5);
    expect(columns.get('big', at)).toBe(-1.5);
  });

  it('forgets everything on clear and on dropping more rows than it holds', () => {
    const columns = new TypedColumns({ value: 'f64' });
    for (let k = 0; k < 3000; k++) columns.set('value', columns.append(), k);
    columns.dropFirst(5000);
    expect(columns.length).toBe(0);
    columns.set('value', columns.append(), 42);
    expect([columns.length, columns.get('value', 0)]).toEqual([1, 42]);
    columns.clear();
    expect(columns.length).toBe(0);
  });

  it('appends rows in bulk through growth and after drops, and views a column\'s rows', () => {
    const columns = new TypedColumns({ small: 'u32', big: 'f64' });
    const rows = (from: number, count: number): { small: Uint32Array; big: Float64Array } => ({
      small: Uint32Array.from({ length: count }, (_, k) => from + k),
      big: Float64Array.from({ length: count }, (_, k) => (from + k) * 1.5),
    });
    columns.appendRows(rows(0, 700), 700);
    columns.dropFirst(600); // 100 held near the end of 1,024: 900 more fit after a move to the front
    columns.appendRows(rows(700, 900), 900);
    columns.appendRows(rows(1600, 5000), 3000); // only the first 3,000 given rows; the arrays double twice
    expect(columns.length).toBe(4000);
    expect([...columns.view('small', 0, 3)]).toEqual([600, 601, 602]);
    expect([...columns.view('big', 3998, 4000)]).toEqual([4598 * 1.5, 4599 * 1.5]);
    expect(Array.from({ length: columns.length }, (_, k) => columns.get('small', k)).every((value, k) => value === 600 + k)).toBe(true);
    expect(() => columns.appendRows({ small: new Uint32Array(2), big: new Float64Array(1) }, 2)).toThrow(/wrong type or length/);
    expect(() => columns.appendRows({ small: new Float64Array(1) as unknown as Uint32Array, big: new Float64Array(1) }, 1)).toThrow(/wrong type or length/);
    expect(() => columns.view('small', 3990, 4001)).toThrow(/out of range/);
  });
});
