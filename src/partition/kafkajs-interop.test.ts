// Interop with kafkajs, a Kafka client that encodes RecordBatch v2 in plain JavaScript: its encoder's
// batches validate and decode here, ours decode with its decoder, and for codecs where both
// encoders are deterministic (none, and gzip through the same zlib) the bytes are identical.
// kafkajs's record-batch modules are internal; this test reaches into them by path.
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress, decompress } from './compression.js';
import { decodeRecords, encodeRecordBatch, validateBatch, type RecordBatchInput } from './record-batch.js';
import type { RecordInput } from './records.js';

interface KafkajsEncoder {
  readonly buffer: Buffer;
}
interface KafkajsRecordBatchArgs {
  compression: number;
  firstOffset: bigint;
  firstTimestamp: bigint;
  maxTimestamp: bigint;
  partitionLeaderEpoch: number;
  lastOffsetDelta: number;
  transactional: boolean;
  producerId: bigint;
  producerEpoch: number;
  firstSequence: number;
  records: KafkajsEncoder[];
}
interface KafkajsDecodedRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null | (Buffer | null)[]>;
}
interface KafkajsDecodedBatch {
  firstOffset: string;
  partitionLeaderEpoch: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  maxTimestamp: string;
  records: KafkajsDecodedRecord[];
}
interface KafkajsCodec {
  compress(encoder: KafkajsEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const require = createRequire(import.meta.url);
const kafkajs = {
  RecordBatch: (require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (args: KafkajsRecordBatchArgs) => Promise<KafkajsEncoder> }).RecordBatch,
  Record: require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (args: object) => KafkajsEncoder,
  decodeBatch: require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<KafkajsDecodedBatch>,
  Decoder: require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown,
  Codecs: (require('kafkajs/src/protocol/message/compression/index.js') as { Codecs: Record<number, () => KafkajsCodec> }).Codecs,
};

// kafkajs ships no lz4 codec; plug ours in so its batch framing can be checked with codec 3 too.
kafkajs.Codecs[3] = () => ({
  compress: async (encoder) => Buffer.from(compress('lz4', encoder.buffer)),
  decompress: async (buffer) => {
    const result = decompress('lz4', buffer, 64 * 1024 * 1024);
    if (result.kind === 'invalid') throw new Error(result.reason);
    return Buffer.from(result.bytes);
  },
});

const codecIds = { none: 0, gzip: 1, lz4: 3 } as const;

/** encodeWithKafkajs encodes batch with kafkajs's RecordBatch and Record encoders. */
async function encodeWithKafkajs(batch: RecordBatchInput): Promise<Uint8Array> {
  const timestamps = batch.records.map((record) => BigInt(record.timestamp));
  const firstTimestamp = timestamps[0] ?? 0n;
  const records = batch.records.map((record, index) =>
    kafkajs.Record({
      offsetDelta: index,
      timestampDelta: (timestamps[index] ?? 0n) - firstTimestamp,
      key: record.key === null ? null : Buffer.from(record.key),
      value: record.value === null ? null : Buffer.from(record.value),
      headers: Object.fromEntries(record.headers.map((header) => [header.key, header.value === null ? null : Buffer.from(header.value)])),
    }),
  );
  const encoder = await kafkajs.RecordBatch({
    compression: codecIds[batch.compression],
    firstOffset: batch.baseOffset,
    firstTimestamp,
    maxTimestamp: timestamps.reduce((max, timestamp) => (timestamp > max ? timestamp : max), firstTimestamp),
    partitionLeaderEpoch: batch.partitionLeaderEpoch,
    lastOffsetDelta: batch.records.length - 1,
    transactional: batch.isTransactional === true,
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    firstSequence: batch.baseSequence,
    records,
  });
  return encoder.buffer;
}

async function decodeWithKafkajs(bytes: Uint8Array): Promise<KafkajsDecodedBatch> {
  return kafkajs.decodeBatch(new kafkajs.Decoder(Buffer.from(bytes)));
}

const utf8 = new TextEncoder();

// What both encoders can say alike: kafkajs takes headers as an object (so keys are distinct and
// not integer-like, which objects would reorder) and cannot size a null header value.
const recordArbitrary = (baseTimestamp: bigint): fc.Arbitrary<RecordInput> =>
  fc.record({
    timestamp: fc.bigInt({ min: -(1n << 40n), max: 1n << 40n }).map((delta) => baseTimestamp + delta),
    key: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    headers: fc.uniqueArray(fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 8 }).map((key) => `h-${key}`), value: fc.uint8Array({ maxLength: 20 }) }), {
      maxLength: 4,
      selector: (header) => header.key,
    }),
  });

const batchArbitrary = (compression: 'none' | 'gzip' | 'lz4'): fc.Arbitrary<RecordBatchInput> =>
  fc.bigInt({ min: 0n, max: 1n << 50n }).chain((baseTimestamp) =>
    fc.record({
      baseOffset: fc.bigInt({ min: 0n, max: 1n << 62n }),
      partitionLeaderEpoch: fc.integer({ min: -1, max: 0x7fffffff }),
      producerId: fc.bigInt({ min: -1n, max: (1n << 63n) - 1n }),
      producerEpoch: fc.integer({ min: -1, max: 0x7fff }),
      baseSequence: fc.integer({ min: -1, max: 0x7fffffff }),
      compression: fc.constant(compression),
      timestampType: fc.constant('create' as const),
      records: fc.array(recordArbitrary(baseTimestamp), { minLength: 1, maxLength: 12 }),
    }),
  );

describe('kafkajs interop', () => {
  it.each(['none', 'gzip'] as const)('kafkajs and raftbus encode %s batches to the same bytes', async (compression) => {
    await fc.assert(
      fc.asyncProperty(batchArbitrary(compression), async (batch) => {
        const theirs = await encodeWithKafkajs(batch);
        const ours = encodeRecordBatch(batch);
        expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(theirs).toString('hex'));
      }),
      { numRuns: 100 },
    );
  });

  it.each(['none', 'gzip', 'lz4'] as const)('kafkajs %s batches validate and decode here', async (compression) => {
    await fc.assert(
      fc.asyncProperty(batchArbitrary(compression), async (batch) => {
        const theirs = await encodeWithKafkajs(batch);
        expect(validateBatch(theirs)).toMatchObject({ kind: 'ok', header: { compression, recordsCount: batch.records.length } });
        const records = decodeRecords(new Uint8Array(theirs)); // plain views, to compare with the inputs
        expect(records.map((record) => record.offset)).toEqual(batch.records.map((_, index) => batch.baseOffset + BigInt(index)));
        expect(records.map((record) => record.timestamp)).toEqual(batch.records.map((record) => BigInt(record.timestamp)));
        expect(records.map((record) => [record.key, record.value, record.headers])).toEqual(batch.records.map((record) => [record.key, record.value, record.headers]));
      }),
      { numRuns: 50 },
    );
  });

  it.each(['none', 'gzip', 'lz4'] as const)('raftbus %s batches decode with kafkajs', async (compression) => {
    await fc.assert(
      fc.asyncProperty(batchArbitrary(compression), async (batch) => {
        const decoded = await decodeWithKafkajs(encodeRecordBatch(batch));
        expect(decoded).toMatchObject({
          firstOffset: String(batch.baseOffset),
          partitionLeaderEpoch: batch.partitionLeaderEpoch,
          producerId: String(batch.producerId),
          producerEpoch: batch.producerEpoch,
          firstSequence: batch.baseSequence,
        });
        expect(decoded.records.map((record) => [record.offset, record.timestamp])).toEqual(
          batch.records.map((record, index) => [String(batch.baseOffset + BigInt(index)), String(record.timestamp)]),
        );
        const asBytes = (buffer: Buffer | null): Uint8Array | null => (buffer === null ? null : new Uint8Array(buffer));
        expect(decoded.records.map((record) => [asBytes(record.key), asBytes(record.value)])).toEqual(batch.records.map((record) => [record.key, record.value]));
        const headers = decoded.records.map((record) => Object.entries(record.headers).map(([key, value]) => ({ key, value: asBytes(value as Buffer) })));
        expect(headers).toEqual(batch.records.map((record) => record.headers));
      }),
      { numRuns: 50 },
    );
  });

  it('a null header value, which kafkajs cannot encode, decodes with kafkajs', async () => {
    const batch = encodeRecordBatch({
      baseOffset: 0n,
      partitionLeaderEpoch: 0,
      producerId: -1n,
      producerEpoch: -1,
      baseSequence: -1,
      compression: 'none',
      timestampType: 'create',
      records: [{ timestamp: 1n, key: utf8.encode('k'), value: null, headers: [{ key: 'h', value: null }] }],
    });
    const decoded = await decodeWithKafkajs(batch);
    expect(decoded.records[0]).toMatchObject({ key: Buffer.from('k'), value: null, headers: { h: null } });
  });
});
