// Zigzag varints as Kafka's ByteUtils writes them: known encodings, and round trips.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, FormatError, varintBytes, varlongBytes } from './wire.js';

function writeVarint(n: number): string {
  const writer = new ByteWriter(varintBytes(n));
  writer.varint(n);
  return Buffer.from(writer.bytes).toString('hex');
}

function writeVarlong(n: bigint): string {
  const writer = new ByteWriter(varlongBytes(n));
  writer.varlong(n);
  return Buffer.from(writer.bytes).toString('hex');
}

describe('zigzag varints', () => {
  it.each([
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [63, '7e'],
    [-64, '7f'],
    [64, '8001'],
    [300, 'd804'],
    [0x7fffffff, 'feffffff0f'],
    [-0x80000000, 'ffffffff0f'],
  ])('varint %d is %s', (n, hex) => {
    expect(writeVarint(n)).toBe(hex);
    expect(new ByteReader(Buffer.from(hex, 'hex')).varint('n')).toBe(n);
  });

  it.each([
    [0n, '00'],
    [-1n, '01'],
    [1_700_000_000_000n, '80a0abfef962'],
    [(1n << 63n) - 1n, 'feffffffffffffffff01'],
    [-(1n << 63n), 'ffffffffffffffffff01'],
  ])('varlong %d is %s', (n, hex) => {
    expect(writeVarlong(n)).toBe(hex);
    expect(new ByteReader(Buffer.from(hex, 'hex')).varlong('n')).toBe(n);
  });

  it.each([2n ** 48n - 1n, 2n ** 48n, 2n ** 52n - 1n, 2n ** 52n, -(2n ** 52n), -(2n ** 52n) - 1n, 2n ** 56n, -(2n ** 62n)])(
    'varlong %d is the same on either side of the number fast path',
    (n) => {
      let zigzag = ((n << 1n) ^ (n >> 63n)) & ((1n << 64n) - 1n);
      const expected: number[] = [];
      for (; zigzag > 0x7fn; zigzag >>= 7n) expected.push(Number(zigzag & 0x7fn) | 0x80);
      expected.push(Number(zigzag));
      expect(writeVarlong(n)).toBe(Buffer.from(expected).toString('hex'));
      expect(new ByteReader(Buffer.from(expected)).varlong('n')).toBe(n);
    },
  );

  it('round-trips every int32 and int64', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (n, m) => {
        const writer = new ByteWriter(varintBytes(n) + varlongBytes(m));
        writer.varint(n);
        writer.varlong(m);
        expect(writer.position).toBe(writer.bytes.length);
        const reader = new ByteReader(writer.bytes);
        expect(reader.varint('n')).toBe(n);
        expect(reader.varlong('m')).toBe(m);
        expect(reader.remaining).toBe(0);
      }),
    );
  });

  it.each([
    ['varint past 32 bits', 'ffffffff1f', 'varint'],
    ['varint of 6 bytes', 'ffffffffff01', 'varint'],
    ['varint cut short', 'ff', 'varint'],
    ['varlong past 64 bits', 'ffffffffffffffffff03', 'varlong'],
    ['varlong of 11 bytes', 'ffffffffffffffffffff01', 'varlong'],
  ] as const)('refuses a %s', (_name, hex, kind) => {
    const reader = new ByteReader(Buffer.from(hex, 'hex'));
    expect(() => (kind === 'varint' ? reader.varint('n') : reader.varlong('n'))).toThrow(FormatError);
  });

  it('never reads past the end, and views instead of copying', () => {
    const buffer = new Uint8Array([1, 2, 3]);
    const reader = new ByteReader(buffer.subarray(1));
    expect(() => reader.bytes(3, 'value')).toThrow(/needs 3 bytes but only 2 remain/);
    const view = reader.bytes(2, 'value');
    expect(view.buffer).toBe(buffer.buffer);
    expect([...view]).toEqual([2, 3]);
  });
});
