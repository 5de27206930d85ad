// RecordBatch v2: a batch written out by hand from Kafka's "Message Format" page, then what
// validateBatch refuses and why, withBaseOffset, and decodeRecords.
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import { defaultRecordBatchLimits } from './limits.js';
import {
  decodeRecords,
  encodeRecordBatch,
  InvalidRecordBatchError,
  readBatchHeader,
  validateBatch,
  withBaseOffset,
  type RecordBatchInput,
} from './record-batch.js';

const utf8 = new TextEncoder();

/** crc32cBitwise is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) the slow, obvious way. */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const twoRecords: RecordBatchInput = {
  baseOffset: 5n,
  partitionLeaderEpoch: 3,
  producerId: 1000n,
  producerEpoch: 2,
  baseSequence: 10,
  compression: 'none',
  timestampType: 'create',
  records: [
    { timestamp: 1000, key: utf8.encode('k'), value: utf8.encode('v'), headers: [{ key: 'h', value: utf8.encode('x') }] },
    { timestamp: 999n, key: null, value: null, headers: [] },
  ],
};

// The same batch, field by field (big-endian; varints zigzag).
const twoRecordsHex = [
  '0000000000000005', // baseOffset 5
  '00000045', // batchLength 69 = 81 - 12
  '00000003', // partitionLeaderEpoch 3
  '02', // magic
  'CRC32C__', // crc, filled in below
  '0000', // attributes: no compression, CreateTime, not transactional, not control
  '00000001', // lastOffsetDelta
  '00000000000003e8', // baseTimestamp 1000: the first record's
  '00000000000003e8', // maxTimestamp 1000
  '00000000000003e8', // producerId 1000
  '0002', // producerEpoch
  '0000000a', // baseSequence 10
  '00000002', // recordsCount
  '18', // record 0: length 12
  '00', '00', '00', // attributes, timestampDelta 0, offsetDelta 0
  '02', '6b', '02', '76', // key "k", value "v"
  '02', '02', '68', '02', '78', // 1 header: key "h", value "x"
  '0c', // record 1: length 6
  '00', '01', '02', // attributes, timestampDelta -1, offsetDelta 1
  '01', '01', '00', // null key, null value, no headers
].join('');

function expectedTwoRecords(): Buffer {
  const bytes = Buffer.from(twoRecordsHex.replace('CRC32C__', '00000000'), 'hex');
  bytes.writeUInt32BE(crc32cBitwise(bytes.subarray(21)), 17);
  return bytes;
}

describe('encodeRecordBatch', () => {
  it('writes the batch Kafka defines, byte for byte', () => {
    expect(crc32cBitwise(utf8.encode('123456789'))).toBe(0xe3069283); // CRC-32C's check value
    const encoded = encodeRecordBatch(twoRecords);
    expect(Buffer.from(encoded).toString('hex')).toBe(expectedTwoRecords().toString('hex'));
    expect(crc32c(encoded.subarray(21))).toBe(crc32cBitwise(encoded.subarray(21)));
  });

  it('sets the attribute bits for codec, LogAppendTime and transactional', () => {
    const header = readBatchHeader(encodeRecordBatch({ ...twoRecords, compression: 'lz4', timestampType: 'logAppend', isTransactional: true }));
    expect(header.attributes).toBe(3 | 0x08 | 0x10);
    expect(header).toMatchObject({ compression: 'lz4', timestampType: 'logAppend', isTransactional: true, isControl: false });
    expect(readBatchHeader(encodeRecordBatch({ ...twoRecords, compression: 'gzip' })).attributes).toBe(1);
  });

  it('refuses an empty batch and fields that do not fit their wire types', () => {
    expect(() => encodeRecordBatch({ ...twoRecords, records: [] })).toThrow(RangeError);
    expect(() => encodeRecordBatch({ ...twoRecords, producerEpoch: 0x8000 })).toThrow(/producerEpoch/);
    expect(() => encodeRecordBatch({ ...twoRecords, partitionLeaderEpoch: 2 ** 31 })).toThrow(/partitionLeaderEpoch/);
    expect(() => encodeRecordBatch({ ...twoRecords, baseOffset: 1n << 63n })).toThrow(/baseOffset/);
    const far = [{ timestamp: -(1n << 62n) * 2n, key: null, value: null, headers: [] }, { timestamp: (1n << 62n) * 2n - 1n, key: null, value: null, headers: [] }];
    expect(() => encodeRecordBatch({ ...twoRecords, records: far })).toThrow(/too far/);
    expect(() => encodeRecordBatch({ ...twoRecords, records: [{ timestamp: 0.5, key: null, value: null, headers: [] }] })).toThrow(/safe integer/);
  });
});

describe('readBatchHeader', () => {
  it('reads every fixed field', () => {
    expect(readBatchHeader(encodeRecordBatch(twoRecords))).toEqual({
      baseOffset: 5n,
      batchLength: 69,
      partitionLeaderEpoch: 3,
      magic: 2,
      crc: expectedTwoRecords().readUInt32BE(17),
      attributes: 0,
      compression: 'none',
      timestampType: 'create',
      isTransactional: false,
      isControl: false,
      lastOffsetDelta: 1,
      baseTimestamp: 1000n,
      maxTimestamp: 1000n,
      producerId: 1000n,
      producerEpoch: 2,
      baseSequence: 10,
      recordsCount: 2,
    });
  });

  it('throws InvalidRecordBatchError on fewer bytes than the header', () => {
    expect(() => readBatchHeader(new Uint8Array(60))).toThrow(InvalidRecordBatchError);
  });
});

/** patched returns a copy of batch changed by edit, with the CRC recomputed when fixCrc is set. */
function patched(batch: Uint8Array, edit: (bytes: Buffer) => void, fixCrc = true): Buffer {
  const bytes = Buffer.from(batch);
  edit(bytes);
  if (fixCrc) bytes.writeUInt32BE(crc32c(bytes.subarray(21)), 17);
  return bytes;
}

describe('validateBatch', () => {
  const batch = encodeRecordBatch(twoRecords);

  it.each(['none', 'gzip', 'lz4'] as const)('accepts a %s batch and returns its header', (compression) => {
    const encoded = encodeRecordBatch({ ...twoRecords, compression });
    expect(validateBatch(encoded)).toEqual({ kind: 'ok', header: readBatchHeader(encoded) });
  });

  const refusals: [string, Buffer | Uint8Array, string, RegExp][] = [
    ['a header cut short', batch.subarray(0, 60), 'batchLength', /shorter than the 61-byte header/],
    ['a batch cut short', batch.subarray(0, batch.length - 1), 'batchLength', /is 69 but 68 bytes follow/],
    ['a byte past the batch', Buffer.concat([batch, Buffer.alloc(1)]), 'batchLength', /is 69 but 70 bytes follow/],
    ['magic 1', patched(batch, (b) => b.writeInt8(1, 16), false), 'magic', /only magic 2/],
    ['a flipped record bit', patched(batch, (b) => b.writeUInt8((b[70] ?? 0) ^ 1, 70), false), 'crc', /the bytes it covers give/],
    ['snappy', patched(batch, (b) => b.writeInt16BE(2, 21)), 'attributes', /codec 2 \(snappy\) is not supported/],
    ['zstd', patched(batch, (b) => b.writeInt16BE(4, 21)), 'attributes', /codec 4 \(zstd\)/],
    ['codec 7', patched(batch, (b) => b.writeInt16BE(7, 21)), 'attributes', /codec 7 \(unused\)/],
    ['an unused attribute bit', patched(batch, (b) => b.writeInt16BE(0x0100, 21)), 'attributes', /unused bits/],
    ['the delete-horizon bit', patched(batch, (b) => b.writeInt16BE(0x40, 21)), 'attributes', /delete-horizon/],
    ['a control batch', patched(batch, (b) => b.writeInt16BE(0x20, 21)), 'attributes', /control batch/],
    ['a transactional batch', patched(batch, (b) => b.writeInt16BE(0x10, 21)), 'attributes', /transactional/],
    ['no records', patched(batch, (b) => b.writeInt32BE(0, 57)), 'recordsCount', /is 0/],
    ['a negative count', patched(batch, (b) => b.writeInt32BE(-1, 57)), 'recordsCount', /is -1/],
    ['a count past the limit', patched(batch, (b) => b.writeInt32BE(2 ** 31 - 1, 57)), 'recordsCount', /recordsPerBatchMax/],
    ['a count larger than the records', patched(batch, (b) => { b.writeInt32BE(3, 57); b.writeInt32BE(2, 23); }), 'records[2].length', /needs 1 bytes but only 0 remain/],
    ['a count smaller than the records', patched(batch, (b) => { b.writeInt32BE(1, 57); b.writeInt32BE(0, 23); }), 'records', /7 bytes follow the last of 1 records/],
    ['lastOffsetDelta off by one', patched(batch, (b) => b.writeInt32BE(2, 23)), 'lastOffsetDelta', /is 2 but 2 records need 1/],
    ['a record length past the end', patched(batch, (b) => b.writeUInt8(0x7e, 61)), 'records[0].length', /needs 63 bytes/],
    ['a record length shorter than its fields', patched(batch, (b) => { b.writeUInt8(0x16, 61); }), 'records[0].headers[0].value', /needs 1 bytes but only 0 remain/],
    ['an offsetDelta out of order', patched(batch, (b) => b.writeUInt8(0x04, 77)), 'records[1].offsetDelta', /is 2, not the record's index 1/],
    ['a key length below -1', patched(batch, (b) => b.writeUInt8(0x03, 65)), 'records[0].key', /length -2 is invalid/],
    ['a null header key', patched(batch, (b) => b.writeUInt8(0x01, 70)), 'records[0].headers[0].key', /cannot be null/],
    ['a wrong maxTimestamp', patched(batch, (b) => b.writeBigInt64BE(1001n, 35)), 'maxTimestamp', /largest record timestamp is 1000/],
  ];

  it.each(refusals)('refuses %s', (_name, bytes, field, reason) => {
    const result = validateBatch(bytes);
    expect(result).toMatchObject({ kind: 'invalid', field });
    if (result.kind === 'invalid') expect(result.reason).toMatch(reason);
  });

  it('applies each limit it is given', () => {
    const limits = { ...defaultRecordBatchLimits };
    expect(validateBatch(batch, { ...limits, batchBytesMax: batch.length - 1 })).toMatchObject({ field: 'batchLength', reason: expect.stringContaining('batchBytesMax') });
    expect(validateBatch(batch, { ...limits, recordsPerBatchMax: 1 })).toMatchObject({ field: 'recordsCount' });
    expect(validateBatch(batch, { ...limits, headersPerRecordMax: 0 })).toMatchObject({ field: 'records[0].headers', reason: expect.stringContaining('headersPerRecordMax') });
    const gzip = encodeRecordBatch({ ...twoRecords, compression: 'gzip' });
    expect(validateBatch(gzip, { ...limits, decompressedBytesMax: 19 })).toMatchObject({ field: 'records', reason: expect.stringContaining('decompressedBytesMax') });
    expect(validateBatch(gzip, { ...limits, decompressedBytesMax: 20 })).toMatchObject({ kind: 'ok' });
  });

  it('does not check maxTimestamp of a LogAppendTime batch: the broker time goes there', () => {
    const logAppend = encodeRecordBatch({ ...twoRecords, timestampType: 'logAppend' });
    expect(validateBatch(patched(logAppend, (b) => b.writeBigInt64BE(123_456n, 35)))).toMatchObject({ kind: 'ok' });
  });
});

describe('withBaseOffset', () => {
  const batch = encodeRecordBatch(twoRecords);

  it('patches baseOffset and partitionLeaderEpoch in a copy, and the CRC still holds', () => {
    const appended = withBaseOffset(batch, { baseOffset: 1_000_000n, partitionLeaderEpoch: 7 });
    expect(readBatchHeader(appended)).toMatchObject({ baseOffset: 1_000_000n, partitionLeaderEpoch: 7, crc: readBatchHeader(batch).crc });
    expect(validateBatch(appended)).toMatchObject({ kind: 'ok' });
    expect(Buffer.from(appended.subarray(16)).equals(Buffer.from(batch.subarray(16)))).toBe(true);
    expect(readBatchHeader(batch).baseOffset).toBe(5n); // the input is untouched
    expect(decodeRecords(appended).map((record) => record.offset)).toEqual([1_000_000n, 1_000_001n]);
  });

  it('leaves partitionLeaderEpoch alone when none is given', () => {
    expect(readBatchHeader(withBaseOffset(batch, { baseOffset: 0n })).partitionLeaderEpoch).toBe(3);
  });

  it('asserts on what a caller must never pass', () => {
    expect(() => withBaseOffset(batch.subarray(0, 10), { baseOffset: 0n })).toThrow(AssertionError);
    expect(() => withBaseOffset(batch, { baseOffset: -1n })).toThrow(AssertionError);
    expect(() => withBaseOffset(batch, { baseOffset: (1n << 63n) - 1n })).toThrow(AssertionError); // last offset overflows
    expect(() => withBaseOffset(patched(batch, (b) => b.writeUInt8(0, 70), false), { baseOffset: 0n })).toThrow(AssertionError);
  });
});

describe('decodeRecords', () => {
  it.each(['none', 'gzip', 'lz4'] as const)('returns the records of a %s batch with absolute offsets and timestamps', (compression) => {
    const records = decodeRecords(encodeRecordBatch({ ...twoRecords, compression }));
    expect(records).toEqual([
      { offset: 5n, timestamp: 1000n, key: utf8.encode('k'), value: utf8.encode('v'), headers: [{ key: 'h', value: utf8.encode('x') }] },
      { offset: 6n, timestamp: 999n, key: null, value: null, headers: [] },
    ]);
  });

  it('gives every record of a LogAppendTime batch the batch maxTimestamp, as Kafka reads it', () => {
    const records = decodeRecords(encodeRecordBatch({ ...twoRecords, timestampType: 'logAppend' }));
    expect(records.map((record) => record.timestamp)).toEqual([1000n, 1000n]);
  });

  it('decodes transactional batches that validateBatch would not append', () => {
    const batch = encodeRecordBatch({ ...twoRecords, isTransactional: true });
    expect(validateBatch(batch)).toMatchObject({ kind: 'invalid', field: 'attributes' });
    expect(decodeRecords(batch)).toHaveLength(2);
  });

  it('throws InvalidRecordBatchError naming the field', () => {
    const batch = patched(encodeRecordBatch(twoRecords), (b) => b.writeUInt8(0x04, 77));
    expect(() => decodeRecords(batch)).toThrow(InvalidRecordBatchError);
    expect(() => decodeRecords(batch)).toThrow(/records\[1\]\.offsetDelta/);
  });
});
