import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allZero } from './segment-scan.js';

const chunk = 64 * 1024; // allZero compares a chunk at a time

describe('allZero', () => {
  it('finds one set byte anywhere from `from` on, at and around the chunk boundaries', () => {
    const bytes = new Uint8Array(3 * chunk + 17);
    expect(allZero(bytes, 0)).toBe(true);
    expect(allZero(bytes, bytes.length)).toBe(true); // nothing left to look at
    for (const at of [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5, bytes.length - 1]) {
      bytes[at] = 0x80;
      expect(allZero(bytes, 0), `byte ${at} set`).toBe(false);
      expect(allZero(bytes, at), `byte ${at} set, from ${at}`).toBe(false);
      expect(allZero(bytes, at + 1), `byte ${at} set, from ${at + 1}`).toBe(true); // bytes before from do not count
      bytes[at] = 0;
    }
  });

  it('reads a view at an offset into a larger buffer as the view alone', () => {
    const backing = new Uint8Array(2 * chunk).fill(1);
    backing.fill(0, 100, 100 + chunk + 3);
    expect(allZero(backing.subarray(100, 100 + chunk + 3), 0)).toBe(true);
    expect(allZero(backing.subarray(99, 100 + chunk + 3), 0)).toBe(false);
    expect(allZero(backing.subarray(100, 100 + chunk + 4), 0)).toBe(false);
  });

  it('says what a byte-by-byte check says', () => {
    const input = fc
      .record({ length: fc.integer({ min: 0, max: 2 * chunk + 3 }), set: fc.array(fc.nat(), { maxLength: 3 }), from: fc.nat() })
      .map(({ length, set, from }) => ({ bytes: bytesWith(length, set), from: length === 0 ? 0 : from % (length + 1) }));
    fc.assert(
      fc.property(input, ({ bytes, from }) => {
        expect(allZero(bytes, from)).toBe(bytes.subarray(from).every((b) => b === 0));
      }),
      { numRuns: 200 },
    );
  });
});

/** bytesWith returns length zero bytes with a non-zero byte at each position of set (modulo length). */
function bytesWith(length: number, set: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(length);
  if (length > 0) for (const position of set) bytes[position % length] = 1 + (position % 255);
  return bytes;
}
