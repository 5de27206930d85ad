// Properties of the record-batch codec over random batches: encode then decode gives the records
// back, and validateBatch never throws, whatever bytes it is handed: random bytes, valid batches
// with a bit flipped (refused by the CRC or the length check, unless the bit lies in the two fields
// outside the CRC), cut or extended batches, and CRC-valid garbage in the records.
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecordBatch, readBatchHeader, validateBatch, withBaseOffset, type RecordBatchInput } from './record-batch.js';
import type { RecordInput } from './records.js';

const int64Max = (1n << 63n) - 1n;

const headerArbitrary = fc.record({
  key: fc.string({ unit: 'grapheme', maxLength: 12 }),
  value: fc.option(fc.uint8Array({ maxLength: 24 }), { nil: null }),
});

// Timestamps anywhere in ±2^62 with deltas under 2^62, so every delta fits an int64.
const recordsArbitrary = fc.bigInt({ min: -(1n << 61n), max: 1n << 61n }).chain((baseTimestamp) =>
  fc.array(
    fc.record<RecordInput>({
      timestamp: fc.oneof(
        fc.bigInt({ min: -(1n << 60n), max: 1n << 60n }).map((delta) => baseTimestamp + delta),
        fc.integer({ min: 0, max: 2 ** 45 }),
      ),
      key: fc.option(fc.uint8Array({ maxLength: 48 }), { nil: null }),
      value: fc.option(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(new Uint8Array(5000).fill(7))), { nil: null }),
      headers: fc.array(headerArbitrary, { maxLength: 5 }),
    }),
    { minLength: 1, maxLength: 16 },
  ),
);

const batchArbitrary: fc.Arbitrary<RecordBatchInput> = fc.record({
  baseOffset: fc.bigInt({ min: 0n, max: 1n << 62n }),
  partitionLeaderEpoch: fc.integer({ min: -1, max: 0x7fffffff }),
  producerId: fc.bigInt({ min: -1n, max: int64Max }),
  producerEpoch: fc.integer({ min: -1, max: 0x7fff }),
  baseSequence: fc.integer({ min: -1, max: 0x7fffffff }),
  compression: fc.constantFrom('none' as const, 'gzip' as const, 'lz4' as const),
  timestampType: fc.constantFrom('create' as const, 'logAppend' as const),
  records: recordsArbitrary,
});

const hex = (bytes: Uint8Array | null): string | null => (bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));

/** recordContent is a record's key, value and headers as hex (deep equality over big arrays is slow). */
function recordContent(record: Pick<RecordInput, 'key' | 'value' | 'headers'>): unknown {
  return [hex(record.key), hex(record.value), record.headers.map((header) => [header.key, hex(header.value)])];
}

/** expectedTimestamps is what a reader sees: each record's own, or maxTimestamp for LogAppendTime. */
function expectedTimestamps(batch: RecordBatchInput): bigint[] {
  const timestamps = batch.records.map((record) => BigInt(record.timestamp));
  const max = timestamps.reduce((a, b) => (b > a ? b : a));
  return batch.timestampType === 'logAppend' ? timestamps.map(() => max) : timestamps;
}

describe('record batch properties', () => {
  it('encode then decode gives back every record, field and header', () => {
    fc.assert(
      fc.property(batchArbitrary, (batch) => {
        const bytes = encodeRecordBatch(batch);
        const validation = validateBatch(bytes);
        expect(validation.kind).toBe('ok');
        const header = readBatchHeader(bytes);
        expect(header).toMatchObject({
          baseOffset: batch.baseOffset,
          partitionLeaderEpoch: batch.partitionLeaderEpoch,
          producerId: batch.producerId,
          producerEpoch: batch.producerEpoch,
          baseSequence: batch.baseSequence,
          compression: batch.compression,
          timestampType: batch.timestampType,
          recordsCount: batch.records.length,
          lastOffsetDelta: batch.records.length - 1,
          baseTimestamp: BigInt(batch.records[0]?.timestamp ?? 0),
        });
        const records = decodeRecords(bytes);
        expect(records.map((record) => record.offset)).toEqual(batch.records.map((_, index) => batch.baseOffset + BigInt(index)));
        expect(records.map((record) => record.timestamp)).toEqual(expectedTimestamps(batch));
        expect(records.map(recordContent)).toEqual(batch.records.map(recordContent));
      }),
      { numRuns: 300 },
    );
  });

  it('withBaseOffset keeps the CRC and every byte from the magic on', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.bigInt({ min: 0n, max: 1n << 62n }), fc.integer({ min: -1, max: 0x7fffffff }), (batch, baseOffset, partitionLeaderEpoch) => {
        const bytes = encodeRecordBatch(batch);
        const appended = withBaseOffset(bytes, { baseOffset, partitionLeaderEpoch });
        expect(validateBatch(appended).kind).toBe('ok');
        expect(readBatchHeader(appended)).toMatchObject({ baseOffset, partitionLeaderEpoch });
        expect(Buffer.from(appended.subarray(16)).equals(Buffer.from(bytes.subarray(16)))).toBe(true);
        expect(decodeRecords(appended)[0]?.offset).toBe(baseOffset);
      }),
      { numRuns: 100 },
    );
  });

  it('validateBatch never throws on arbitrary bytes, and refuses them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(validateBatch(bytes).kind).toBe('invalid');
      }),
      { numRuns: 2000 },
    );
  });

  it('a flipped bit fails the length, magic or CRC check, unless it is in baseOffset or partitionLeaderEpoch', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.nat(), fc.integer({ min: 0, max: 7 }), (batch, position, bit) => {
        const bytes = Buffer.from(encodeRecordBatch(batch));
        const index = position % bytes.length;
        bytes[index] = (bytes[index] ?? 0) ^ (1 << bit);
        const result = validateBatch(bytes);
        if (index < 8 || (index >= 12 && index < 16)) {
          expect(result.kind).toBe('ok'); // outside the CRC by design: the broker patches these
        } else {
          const field = index < 12 ? 'batchLength' : index === 16 ? 'magic' : 'crc';
          expect(result).toMatchObject({ kind: 'invalid', field });
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('a batch cut short or extended is refused by the length check', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (batch, cut, extra) => {
        const bytes = encodeRecordBatch(batch);
        expect(validateBatch(bytes.subarray(0, cut % bytes.length))).toMatchObject({ kind: 'invalid', field: 'batchLength' });
        expect(validateBatch(Buffer.concat([bytes, extra]))).toMatchObject({ kind: 'invalid', field: 'batchLength' });
      }),
      { numRuns: 300 },
    );
  });

  it('validateBatch never throws on CRC-valid garbage in the header or records', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (batch, edits) => {
        const bytes = Buffer.from(encodeRecordBatch(batch));
        for (const [position, value] of edits) bytes[21 + (position % (bytes.length - 21))] = value;
        bytes.writeUInt32BE(crc32c(bytes.subarray(21)), 17);
        const result = validateBatch(bytes);
        expect(['ok', 'invalid']).toContain(result.kind);
        // Control and transactional batches are refused for appending by policy, yet a consumer
        // must read them: for those, only the format decides whether decoding succeeds.
        const header = readBatchHeader(bytes);
        const policyOnly = header.isControl || header.isTransactional;
        if (result.kind === 'ok') expect(() => decodeRecords(bytes)).not.toThrow();
        else if (!policyOnly) expect(() => decodeRecords(bytes)).toThrow();
        if (policyOnly && result.kind === 'invalid' && result.field === 'attributes') {
          const unflagged = Buffer.from(bytes);
          unflagged.writeUInt16BE(unflagged.readUInt16BE(21) & ~0x30, 21);
          unflagged.writeUInt32BE(crc32c(unflagged.subarray(21)), 17);
          const plain = validateBatch(unflagged);
          if (plain.kind === 'ok') expect(() => decodeRecords(bytes)).not.toThrow();
          else expect(() => decodeRecords(bytes)).toThrow();
        }
      }),
      { numRuns: 1000 },
    );
  });
});
