// A record batch in Kafka's RecordBatch v2 layout (magic 2), the unit of a partition's log. Clients
// encode batches; a broker validates them and appends the same bytes, only patching baseOffset and
// partitionLeaderEpoch, which lie before the CRC-covered range. Byte layout (big-endian):
//    0 baseOffset int64          8 batchLength int32 (bytes after this field)
//   12 partitionLeaderEpoch int32  16 magic int8 = 2   17 crc uint32 (CRC32C of bytes 21..end)
//   21 attributes int16: bits 0-2 compression, 3 timestampType (1: LogAppendTime),
//      4 isTransactional, 5 isControl, 6 hasDeleteHorizonMs, 7-15 unused
//   23 lastOffsetDelta int32     27 baseTimestamp int64   35 maxTimestamp int64
//   43 producerId int64          51 producerEpoch int16   53 baseSequence int32
//   57 recordsCount int32        61 records (records.ts), compressed as a whole when bits 0-2 say so
// Source: Kafka's documentation, "Message Format" (implementation/message-format), and
// DefaultRecordBatch / MemoryRecordsBuilder of apache/kafka for the choices the page leaves open
// (baseTimestamp is the first record's timestamp). Pure code.
import { crc32c } from '@node-rs/crc32';
import { InvalidRecordBatchError } from '../errors.js';

export { InvalidRecordBatchError } from '../errors.js';
import { assert } from '../raft/assert.js';
import {
  compress,
  compressionCodecIds,
  compressionCodecOf,
  decompress,
  isSupportedCompression,
  type CompressionCodec,
  type SupportedCompression,
} from './compression.js';
import { defaultRecordBatchLimits, type RecordBatchLimits } from './limits.js';
import { encodeRecords, parseRecords, toTimestamp, type BatchRecord, type RecordInput } from './records.js';
import { ByteWriter, FormatError, isInt16, isInt32, isInt64 } from './wire.js';

export type { BatchRecord, RecordHeader, RecordInput } from './records.js';

/** recordBatchMagic is the magic byte of the v2 format, the only one raftbus reads or writes. */
export const recordBatchMagic = 2;
/** batchHeaderBytes is the size of the fixed header, up to and including recordsCount. */
export const batchHeaderBytes = 61;
/** logOverheadBytes is what batchLength does not count: baseOffset and batchLength themselves. */
export const logOverheadBytes = 12;

const at = Object.freeze({
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordsCount: 57,
});
/** crcStart is where the CRC-covered bytes begin (attributes); everything before may be patched. */
const crcStart = at.attributes;

const timestampTypeBit = 0x08;
const transactionalBit = 0x10;
const controlBit = 0x20;
const deleteHorizonBit = 0x40;
const unusedAttributeBits = 0xff80;

/** TimestampType: 'create' (the producer's timestamps) or 'logAppend' (the broker's, in maxTimestamp). */
export type TimestampType = 'create' | 'logAppend';

/** BatchHeader is the fixed header of a batch, read as it is (nothing checked, nothing inflated). */
export interface BatchHeader {
  readonly baseOffset: bigint;
  readonly batchLength: number;
  readonly partitionLeaderEpoch: number;
  readonly magic: number;
  readonly crc: number;
  readonly attributes: number;
  /** compression is the codec attributes bits 0-2 name; undefined for the unused values 5-7. */
  readonly compression: CompressionCodec | undefined;
  readonly timestampType: TimestampType;
  readonly isTransactional: boolean;
  readonly isControl: boolean;
  readonly lastOffsetDelta: number;
  readonly baseTimestamp: bigint;
  readonly maxTimestamp: bigint;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly recordsCount: number;
}

/** RecordBatchInput is what a producer encodes. producerId, producerEpoch, baseSequence: -1 when not idempotent. */
export interface RecordBatchInput {
  readonly baseOffset: bigint;
  readonly partitionLeaderEpoch: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly compression: SupportedCompression;
  readonly timestampType: TimestampType;
  readonly isTransactional?: boolean;
  /** records: at least one (Kafka refuses empty batches from clients). */
  readonly records: readonly RecordInput[];
}

/** plainBatch is the header of a batch from a producer without idempotence, uncompressed, at offset 0: spread it and add records. */
export const plainBatch = Object.freeze({
  baseOffset: 0n,
  partitionLeaderEpoch: -1,
  producerId: -1n,
  producerEpoch: -1,
  baseSequence: -1,
  compression: 'none',
  timestampType: 'create',
} as const satisfies Omit<RecordBatchInput, 'records'>);

/** BatchValidation is the outcome of validateBatch: the header, or the field at fault and why. */
export type BatchValidation = { kind: 'ok'; header: BatchHeader } | { kind: 'invalid'; field: string; reason: string };

/**
 * encodeRecordBatch returns the batch a client sends: header, CRC32C and the records section,
 * compressed with batch.compression. baseTimestamp is the first record's timestamp and maxTimestamp
 * the largest, offsetDeltas are 0..n-1 (as Kafka's MemoryRecordsBuilder writes them). Throws
 * RangeError when there are no records or a field does not fit its wire type. It does not apply
 * RecordBatchLimits: the producer sizes its batches, the broker checks them.
 */
export function encodeRecordBatch(batch: RecordBatchInput): Uint8Array {
  checkInput(batch);
  const first = batch.records[0];
  if (first === undefined) throw new RangeError('a record batch needs at least one record');
  const baseTimestamp = toTimestamp(first.timestamp, 'records[0].timestamp');
  let maxTimestamp = baseTimestamp;
  for (const [index, record] of batch.records.entries()) {
    const timestamp = toTimestamp(record.timestamp, `records[${index}].timestamp`);
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
  }
  const records = compress(batch.compression, encodeRecords(batch.records, baseTimestamp));
  const batchBytes = batchHeaderBytes + records.length;
  if (!isInt32(batchBytes - logOverheadBytes)) throw new RangeError(`a batch of ${batchBytes} bytes is too large for batchLength`);
  let attributes = compressionCodecIds[batch.compression];
  if (batch.timestampType === 'logAppend') attributes |= timestampTypeBit;
  if (batch.isTransactional === true) attributes |= transactionalBit;
  const writer = new ByteWriter(batchBytes);
  writer.int64(batch.baseOffset);
  writer.int32(batchBytes - logOverheadBytes);
  writer.int32(batch.partitionLeaderEpoch);
  writer.int8(recordBatchMagic);
  writer.uint32(0); // the CRC, written once the bytes it covers are
  writer.int16(attributes);
  writer.int32(batch.records.length - 1);
  writer.int64(baseTimestamp);
  writer.int64(maxTimestamp);
  writer.int64(batch.producerId);
  writer.int16(batch.producerEpoch);
  writer.int32(batch.baseSequence);
  writer.int32(batch.records.length);
  writer.raw(records);
  assert(writer.position === batchBytes, 'a batch wrote other than the size it was given', { wrote: writer.position, batchBytes });
  new DataView(writer.bytes.buffer).setUint32(at.crc, crc32c(writer.bytes.subarray(crcStart)));
  return writer.bytes;
}

function checkInput(batch: RecordBatchInput): void {
  if (!isInt64(batch.baseOffset)) throw new RangeError(`baseOffset ${batch.baseOffset} does not fit an int64`);
  if (!isInt32(batch.partitionLeaderEpoch)) throw new RangeError(`partitionLeaderEpoch ${batch.partitionLeaderEpoch} does not fit an int32`);
  if (!isInt64(batch.producerId)) throw new RangeError(`producerId ${batch.producerId} does not fit an int64`);
  if (!isInt16(batch.producerEpoch)) throw new RangeError(`producerEpoch ${batch.producerEpoch} does not fit an int16`);
  if (!isInt32(batch.baseSequence)) throw new RangeError(`baseSequence ${batch.baseSequence} does not fit an int32`);
  if (!isInt32(batch.records.length)) throw new RangeError(`${batch.records.length} records do not fit an int32 count`);
}

/**
 * readBatchHeader returns the fixed header fields of bytes as they are, checking nothing but that
 * the header is there. Throws InvalidRecordBatchError when bytes are shorter than the header.
 */
export function readBatchHeader(bytes: Uint8Array): BatchHeader {
  if (bytes.length < batchHeaderBytes) {
    throw new InvalidRecordBatchError('batchLength', `batch is ${bytes.length} bytes, shorter than the ${batchHeaderBytes}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const attributes = view.getInt16(at.attributes);
  return {
    baseOffset: view.getBigInt64(at.baseOffset),
    batchLength: view.getInt32(at.batchLength),
    partitionLeaderEpoch: view.getInt32(at.partitionLeaderEpoch),
    magic: view.getInt8(at.magic),
    crc: view.getUint32(at.crc),
    attributes,
    compression: compressionCodecOf(attributes),
    timestampType: attributes & timestampTypeBit ? 'logAppend' : 'create',
    isTransactional: (attributes & transactionalBit) !== 0,
    isControl: (attributes & controlBit) !== 0,
    lastOffsetDelta: view.getInt32(at.lastOffsetDelta),
    baseTimestamp: view.getBigInt64(at.baseTimestamp),
    maxTimestamp: view.getBigInt64(at.maxTimestamp),
    producerId: view.getBigInt64(at.producerId),
    producerEpoch: view.getInt16(at.producerEpoch),
    baseSequence: view.getInt32(at.baseSequence),
    recordsCount: view.getInt32(at.recordsCount),
  };
}

/**
 * validateBatch checks a batch a client sent, as a broker must before it appends the bytes
 * unchanged: the size within limits.batchBytesMax and equal to batchLength + 12, magic 2, the CRC,
 * a supported codec and no control, transactional or unknown attribute bits, 1 to
 * recordsPerBatchMax records with lastOffsetDelta = count - 1, and every record well formed
 * (decompressed within decompressedBytesMax, offsetDeltas 0..n-1, headers within
 * headersPerRecordMax, no bytes left over) with maxTimestamp the largest CreateTime timestamp.
 * Never throws on any bytes; checks every claimed length against the bytes present before use.
 */
export function validateBatch(bytes: Uint8Array, limits: RecordBatchLimits = defaultRecordBatchLimits): BatchValidation {
  try {
    const header = checkBatch(bytes, limits);
    if (header.isControl) return { kind: 'invalid', field: 'attributes', reason: 'marks a control batch; only the broker writes those' };
    if (header.isTransactional) return { kind: 'invalid', field: 'attributes', reason: 'marks a transactional batch; transactions are not supported yet' };
    return { kind: 'ok', header };
  } catch (error) {
    if (error instanceof FormatError) return { kind: 'invalid', field: error.field, reason: error.reason };
    throw error;
  }
}

/**
 * decodeRecords returns the records of a batch (decompressed), with absolute offsets (baseOffset +
 * offsetDelta) and timestamps (baseTimestamp + timestampDelta; maxTimestamp for every record of a
 * LogAppendTime batch, as Kafka reads them). It checks what validateBatch checks except the
 * append policy (control and transactional batches decode). Throws InvalidRecordBatchError.
 */
export function decodeRecords(bytes: Uint8Array, limits: RecordBatchLimits = defaultRecordBatchLimits): BatchRecord[] {
  const records: BatchRecord[] = [];
  try {
    checkBatch(bytes, limits, records);
  } catch (error) {
    if (error instanceof FormatError) throw new InvalidRecordBatchError(error.field, error.reason);
    throw error;
  }
  return records;
}

/** checkBatch checks the format of bytes and returns their header; throws FormatError. */
function checkBatch(bytes: Uint8Array, limits: RecordBatchLimits, into?: BatchRecord[]): BatchHeader {
  if (bytes.length < batchHeaderBytes) throw new FormatError('batchLength', `batch is ${bytes.length} bytes, shorter than the ${batchHeaderBytes}-byte header`);
  if (bytes.length > limits.batchBytesMax) throw new FormatError('batchLength', `batch is ${bytes.length} bytes, more than batchBytesMax (${limits.batchBytesMax})`);
  const header = readBatchHeader(bytes);
  if (header.batchLength !== bytes.length - logOverheadBytes) {
    throw new FormatError('batchLength', `is ${header.batchLength} but ${bytes.length - logOverheadBytes} bytes follow it`);
  }
  if (header.magic !== recordBatchMagic) throw new FormatError('magic', `is ${header.magic}; only magic 2 (RecordBatch v2) is supported`);
  const crc = crc32c(bytes.subarray(crcStart));
  if (crc !== header.crc) throw new FormatError('crc', `is 0x${hex32(header.crc)} but the bytes it covers give 0x${hex32(crc)}`);
  const codec = header.compression;
  if (codec === undefined || !isSupportedCompression(codec)) throw new FormatError('attributes', `compression codec ${header.attributes & 0x07} (${codec ?? 'unused'}) is not supported`);
  if (header.attributes & (unusedAttributeBits | deleteHorizonBit)) {
    throw new FormatError('attributes', `0x${(header.attributes & 0xffff).toString(16)} sets the delete-horizon or unused bits`);
  }
  if (header.recordsCount < 1 || header.recordsCount > limits.recordsPerBatchMax) {
    throw new FormatError('recordsCount', `is ${header.recordsCount}; must be 1 to recordsPerBatchMax (${limits.recordsPerBatchMax})`);
  }
  if (header.lastOffsetDelta !== header.recordsCount - 1) {
    throw new FormatError('lastOffsetDelta', `is ${header.lastOffsetDelta} but ${header.recordsCount} records need ${header.recordsCount - 1}`);
  }
  const section = decompress(codec, bytes.subarray(batchHeaderBytes), limits.decompressedBytesMax);
  if (section.kind === 'invalid') throw new FormatError('records', section.reason);
  const logAppendTime = header.timestampType === 'logAppend' ? header.maxTimestamp : null;
  const context = { recordsCount: header.recordsCount, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, logAppendTime, limits };
  const summary = parseRecords(section.bytes, context, into);
  if (logAppendTime === null && summary.maxTimestamp !== header.maxTimestamp) {
    throw new FormatError('maxTimestamp', `is ${header.maxTimestamp} but the largest record timestamp is ${summary.maxTimestamp}`);
  }
  return header;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * withBaseOffset returns a copy of a valid batch with baseOffset (and partitionLeaderEpoch, when
 * given) set, as the leader does when it assigns offsets. Both fields lie before the CRC-covered
 * range, so the CRC stays valid. Invariant (asserted): the copy's CRC matches its bytes. A batch that
 * has not passed validateBatch, or an offset range past the int64 maximum, is a bug of the caller.
 */
export function withBaseOffset(bytes: Uint8Array, options: { baseOffset: bigint; partitionLeaderEpoch?: number }): Uint8Array {
  const { baseOffset, partitionLeaderEpoch } = options;
  assert(bytes.length >= batchHeaderBytes && bytes[at.magic] === recordBatchMagic, 'withBaseOffset needs a validated batch', { bytes: bytes.length });
  const copy = bytes.slice();
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  assert(baseOffset >= 0n && isInt64(baseOffset + BigInt(view.getInt32(at.lastOffsetDelta))), 'baseOffset out of range', { baseOffset: String(baseOffset) });
  assert(at.baseOffset + 8 <= crcStart && at.partitionLeaderEpoch + 4 <= crcStart, 'patched fields must lie before the CRC-covered range');
  view.setBigInt64(at.baseOffset, baseOffset);
  if (partitionLeaderEpoch !== undefined) {
    assert(isInt32(partitionLeaderEpoch), 'partitionLeaderEpoch must be an int32', { partitionLeaderEpoch });
    view.setInt32(at.partitionLeaderEpoch, partitionLeaderEpoch);
  }
  assert(crc32c(copy.subarray(crcStart)) === view.getUint32(at.crc), 'a batch with a new baseOffset no longer matches its CRC');
  return copy;
}
