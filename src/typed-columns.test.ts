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
});
