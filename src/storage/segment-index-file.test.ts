import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSegmentIndex, encodeSegmentIndex } from './segment-index-file.js';
import type { SegmentIndex } from './segment-index-file.js';

const index: SegmentIndex = {
  baseIndex: 2 ** 40 + 7,
  prevCrc: 0xdead_beef,
  validBytes: 84 + 5 * 60,
  columns: {
    offsets: Uint32Array.from([84, 144, 204, 264, 324]),
    crcs: Uint32Array.from([1, 0xffff_ffff, 3, 4, 5]),
    runStarts: [2 ** 40 + 7, 2 ** 40 + 10],
    runTerms: [3, 2 ** 33],
    confChanges: [2 ** 40 + 7, 2 ** 40 + 11],
  },
};

function plain(decoded: ReturnType<typeof decodeSegmentIndex>): unknown {
  if ('bad' in decoded) return decoded;
  return { ...decoded, columns: { ...decoded.columns, offsets: [...decoded.columns.offsets], crcs: [...decoded.columns.crcs] } };
}

describe('segment index file', () => {
  it('decodes what it encodes: 64-bit indexes and terms, every u32 crc, membership changes', () => {
    expect(plain(decodeSegmentIndex(encodeSegmentIndex(index)))).toEqual(plain({ ...index }));
  });

  it('refuses every single flipped bit and every cut, never throwing', () => {
    const bytes = encodeSegmentIndex(index);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeSegmentIndex(flipped), `bit ${bit}`).toHaveProperty('bad');
    }
    for (let length = 0; length < bytes.length; length++) expect(decodeSegmentIndex(bytes.subarray(0, length)), `cut at ${length}`).toHaveProperty('bad');
  });

  it('refuses fields no segment could have, even under a good crc', () => {
    const cases: [string, SegmentIndex][] = [
      ['offsets not ascending', { ...index, columns: { ...index.columns, offsets: Uint32Array.from([84, 144, 150, 264, 324]) } }],
      ['first offset inside the header', { ...index, columns: { ...index.columns, offsets: Uint32Array.from([10, 144, 204, 264, 324]) } }],
      ['length inside the last frame', { ...index, validBytes: 330 }],
      ['first run not at the base', { ...index, columns: { ...index.columns, runStarts: [2 ** 40 + 8, 2 ** 40 + 10] } }],
      ['terms going down', { ...index, columns: { ...index.columns, runTerms: [3, 2] } }],
      ['a run past the last frame', { ...index, columns: { ...index.columns, runStarts: [2 ** 40 + 7, 2 ** 40 + 12] } }],
      ['a membership change past the last frame', { ...index, columns: { ...index.columns, confChanges: [2 ** 40 + 12] } }],
      ['membership changes out of order', { ...index, columns: { ...index.columns, confChanges: [2 ** 40 + 9, 2 ** 40 + 8] } }],
      ['no frame', { ...index, columns: { offsets: new Uint32Array(0), crcs: new Uint32Array(0), runStarts: [], runTerms: [], confChanges: [] } }],
    ];
    for (const [what, bad] of cases) expect(decodeSegmentIndex(encodeSegmentIndex(bad)), what).toHaveProperty('bad');
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(() => decodeSegmentIndex(bytes)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });
});
