// Compression of records sections: round trips, the bounds that stop decompression bombs, and
// LZ4 frames written by the reference implementation (the lz4 command line), which Kafka's reader
// also accepts or refuses the same way.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compress, decompress, lz4FrameDecompressedBound } from './compression.js';
import { decodeRecords, encodeRecordBatch, validateBatch } from './record-batch.js';
import { encodeRecords, type RecordInput } from './records.js';
import { crc32c } from '@node-rs/crc32';

const utf8 = new TextEncoder();

describe('compress and decompress', () => {
  const plain = utf8.encode('raftbus '.repeat(10_000));

  it.each(['none', 'gzip', 'lz4'] as const)('%s round-trips', (codec) => {
    const compressed = compress(codec, plain);
    const result = decompress(codec, compressed, plain.length);
    expect(result).toEqual({ kind: 'ok', bytes: expect.anything() });
    if (result.kind === 'ok') expect(Buffer.from(result.bytes).equals(Buffer.from(plain))).toBe(true);
  });

  it('lz4 writes one frame with independent blocks and no dictionary, as Kafka reads', () => {
    const frame = compress('lz4', plain);
    expect(Buffer.from(frame.subarray(0, 4)).readUInt32LE(0)).toBe(0x184d2204);
    expect((frame[4] ?? 0) & 0xe3).toBe(0x60);
    expect(lz4FrameDecompressedBound(frame)).toMatchObject({ bound: expect.any(Number) });
  });

  it.each(['none', 'gzip', 'lz4'] as const)('%s refuses output one byte past decompressedBytesMax', (codec) => {
    const result = decompress(codec, compress(codec, plain), plain.length - 1);
    expect(result.kind).toBe('invalid');
    if (result.kind === 'invalid') expect(result.reason).toContain('decompressedBytesMax');
  });

  it('refuses a gzip bomb (1 GiB of zeros in about 1 MiB) without inflating it', () => {
    const zeros = new Uint8Array(64 * 1024 * 1024);
    const member = gzipSync(zeros, { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => member)); // 16 members, 1 GiB in all
    const result = decompress('gzip', bomb, 32 * 1024 * 1024);
    expect(result.kind).toBe('invalid');
  });

  it('refuses an lz4 bomb from its block headers alone', () => {
    const block = compress('lz4', new Uint8Array(4 * 1024 * 1024));
    // The frame claims blocks of up to 4 MiB: enough of them exceed the bound before any inflates.
    const frame = lz4FrameOfBlocks(block, 64);
    expect(lz4FrameDecompressedBound(frame)).toMatchObject({ bound: 64 * 4 * 1024 * 1024 });
    expect(decompress('lz4', frame, 32 * 1024 * 1024)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('decompressedBytesMax') });
  });

  it.each([
    ['empty', ''],
    ['wrong magic', '05224d1860408200000000'],
    ['version 00', '04224d1820408200000000'],
    ['dictionary id flag', '04224d1861408200000000'],
    ['block size id 3', '04224d1860308200000000'],
    ['no end mark', '04224d18604082'],
    ['block past the end', '04224d1860408210000080616263'],
    ['trailing bytes', '04224d186040820300008061626300000000ff'],
    ['second frame', '04224d18604082030000806162630000000004224d186040820300008061626300000000'],
  ])('lz4 refuses a malformed frame: %s', (_name, hex) => {
    const result = decompress('lz4', Buffer.from(hex, 'hex'), 1024);
    expect(result.kind).toBe('invalid');
  });

  it('lz4 refuses a frame whose header checksum is wrong', () => {
    expect(decompress('lz4', Buffer.from('04224d186040830300008061626300000000', 'hex'), 1024).kind).toBe('invalid');
    expect(decompress('lz4', Buffer.from('04224d186040820300008061626300000000', 'hex'), 1024)).toMatchObject({ kind: 'ok' });
  });

  it('gzip refuses corrupt data', () => {
    const member = gzipSync(plain);
    member[member.length - 6] = (member[member.length - 6] ?? 0) ^ 0xff; // the CRC32 of the member
    expect(decompress('gzip', member, plain.length).kind).toBe('invalid');
  });
});

/** lz4FrameOfBlocks repeats the blocks of a one-frame lz4 stream count times inside one frame. */
function lz4FrameOfBlocks(frame: Uint8Array, count: number): Uint8Array {
  const headerBytes = 7; // magic, FLG, BD, HC (no content size)
  const header = Buffer.from(frame.subarray(0, headerBytes));
  header[5] = 0x70; // 4 MiB blocks: the header checksum no longer matches, but the bound is checked first
  const blocks = frame.subarray(headerBytes, frame.length - 4);
  return Buffer.concat([header, ...Array.from({ length: count }, () => blocks), Buffer.alloc(4)]);
}

// Records whose section the reference frames below compress (see the note on the constants).
const lz4ReferenceBaseTimestamp = 1_700_000_000_000n;
const lz4ReferenceRecords: RecordInput[] = [
  { timestamp: 1_700_000_000_000n, key: utf8.encode('order-1'), value: utf8.encode('{"item":"apple","qty":3}'.repeat(20)), headers: [{ key: 'trace', value: utf8.encode('abc') }] },
  { timestamp: 1_700_000_000_005n, key: null, value: new Uint8Array(150_000).map((_, index) => (index * 7) % 251), headers: [] },
  { timestamp: 1_699_999_999_990n, key: utf8.encode('order-3'), value: null, headers: [{ key: 'h', value: null }] },
];

describe('LZ4 frames from the reference implementation', () => {
  const section = encodeRecords(lz4ReferenceRecords, lz4ReferenceBaseTimestamp);

  it.each([
    ['default', lz4ReferenceDefaultBase64],
    ['checksummed', lz4ReferenceChecksummedBase64],
  ])('decompresses the %s frame to the records section', (_name, base64) => {
    const result = decompress('lz4', Buffer.from(base64, 'base64'), 1024 * 1024);
    expect(result.kind).toBe('ok');
    if (result.kind === 'ok') expect(Buffer.from(result.bytes).equals(Buffer.from(section))).toBe(true);
  });

  it('refuses the frame with linked blocks, as Kafka does', () => {
    const result = decompress('lz4', Buffer.from(lz4ReferenceDependentBase64, 'base64'), 1024 * 1024);
    expect(result).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('independent') });
  });

  it('decodes a batch whose records section the reference compressed', () => {
    const ours = encodeRecordBatch({
      baseOffset: 7n,
      partitionLeaderEpoch: -1,
      producerId: -1n,
      producerEpoch: -1,
      baseSequence: -1,
      compression: 'lz4',
      timestampType: 'create',
      records: lz4ReferenceRecords,
    });
    const batch = withRecordsSection(ours, Buffer.from(lz4ReferenceChecksummedBase64, 'base64'));
    expect(validateBatch(batch)).toMatchObject({ kind: 'ok' });
    expect(decodeRecords(batch).map((record) => record.offset)).toEqual([7n, 8n, 9n]);
    expect(decodeRecords(batch)).toEqual(decodeRecords(ours));
  });
});

/** withRecordsSection returns batch with its records section replaced, batchLength and CRC redone. */
function withRecordsSection(batch: Uint8Array, section: Uint8Array): Uint8Array {
  const out = Buffer.concat([batch.subarray(0, 61), section]);
  out.writeInt32BE(out.length - 12, 8);
  out.writeUInt32BE(crc32c(out.subarray(21)), 17);
  return out;
}


export const lz4ReferenceDefaultBase64 =
    'BCJNGGRQCKIDAAD/GPAHAAAADm9yZGVyLTHAB3siaXRlbSI6ImFwcGxlIiwicXR5IjozfRgA/7b//wICCnRyYWNlBmFiY/CnEgAK' +
    'AgHgpxIABw4VHCMqMTg/Rk1UW2JpcHd+hYyTmqGor7a9xMvS2eDn7vUBCA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT2uHo' +
    '7/YCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp8PcDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fgE' +
    'CxIZICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vkFDBMaISgvNj1ES1JZYGdudXyDipGYn6attLvCydDX3uXs8/oGDRQb' +
    'IikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsA////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '//////////////////////////8t8AMAIAATBA5vcmRlci0zAQICaAEAAAAA6hf6hw==';

export const lz4ReferenceChecksummedBase64 =
    'BCJNGHxABkwCAAAAAABnRgIAAP8Y8AcAAAAOb3JkZXItMcAHeyJpdGVtIjoiYXBwbGUiLCJxdHkiOjN9GAD/tv//AgIKdHJhY2UG' +
    'YWJj8KcSAAoCAeCnEgAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9QEIDxYdJCsyOUBHTlVcY2pxeH+GjZSboqmw' +
    't77FzNPa4ejv9gIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuL/GzdTb4unw9wMKERgfJi00O0JJUFdeZWxzeoGIj5adpKuyucDH' +
    'ztXc4+rx+AQLEhkgJy41PENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QUMExohKC82PURLUllgZ251fIOKkZifpq20u8LJ0Nfe' +
    '5ezz+gYNFBsiKTA3PkVMU1phaG92fYSLkpmgp661vMPK0djf5u30+wD/////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////5lAqMTg/' +
    'RtTFxCoFAgAA/+xNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2AgkQ' +
    'Fx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Nvi6fD3AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4BAsSGSAn' +
    'LjU8Q0pRWF9mbXR7gomQl56lrLO6wcjP1t3k6/L5BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6Bg0UGyIpMDc+' +
    'RUxTWmFob3Z9hIuSmaCnrrW8w8rR2N/m7fQABw4VHCMqMTg/RvsA////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////7FDZ4Ofu' +
    '9bshnR9fAQAA/+wBCA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT2uHo7/YCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/' +
    'xs3U2+Lp8PcDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fgECxIZICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W' +
    '3eTr8vkFDBMaISgvNj1ES1JZYGdudXyDipGYn6attLvCydDX3uXs8/oGDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt' +
    '9AAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fsA////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////MfADACAAEwQOb3JkZXItMwECAmgBNWzlegAAAADqF/qH';

export const lz4ReferenceDependentBase64 =
    'BCJNGERAXkYCAAD/GPAHAAAADm9yZGVyLTHAB3siaXRlbSI6ImFwcGxlIiwicXR5IjozfRgA/7b//wICCnRyYWNlBmFiY/CnEgAK' +
    'AgHgpxIABw4VHCMqMTg/Rk1UW2JpcHd+hYyTmqGor7a9xMvS2eDn7vUBCA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT2uHo' +
    '7/YCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp8PcDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fgE' +
    'CxIZICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vkFDBMaISgvNj1ES1JZYGdudXyDipGYn6attLvCydDX3uXs8/oGDRQb' +
    'IikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsA////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '/////////////////////////////////////////////////////////////////////////////////+ZQKjE4P0YKAQAAD/H9' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////////' +
    '/////////////////////////////////////////+hQ2eDn7vVfAQAA/+wBCA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT' +
    '2uHo7/YCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp8PcDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq' +
    '8fgECxIZICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vkFDBMaISgvNj1ES1JZYGdudXyDipGYn6attLvCydDX3uXs8/oG' +
    'DRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9AAHDhUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3Ey9LZ4Ofu9fsA////' +
    '////////////////////////////////////////////////////////////////////////////////////////////////MfAD' +
    'ACAAEwQOb3JkZXItMwECAmgBAAAAAOoX+oc=';
