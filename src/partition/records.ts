// The records section of a RecordBatch v2: `recordsCount` records, each a varint length and then
//   attributes int8 (unused, written 0), timestampDelta varlong, offsetDelta varint,
//   keyLength varint (-1: null key), key, valueLength varint (-1: null value), value,
//   headerCount varint, then per header: keyLength varint (>= 0), key (UTF-8), valueLength varint
//   (-1: null), value.
// All varints are zigzag (Kafka's ByteUtils). Deltas are against the batch's baseOffset and
// baseTimestamp. Pure code.
import { assert } from '../raft/assert.js';
import type { RecordBatchLimits } from './limits.js';
import { ByteReader, ByteWriter, FormatError, isInt32, isInt64, varintBytes, varlongBytes } from './wire.js';

/** RecordHeader is one header of a record: a UTF-8 key and bytes (or null). */
export interface RecordHeader {
  readonly key: string;
  readonly value: Uint8Array | null;
}

/** RecordInput is one record as a producer hands it to encodeRecordBatch. */
export interface RecordInput {
  /** timestamp in milliseconds since the epoch (an int64; a number must be a safe integer). */
  readonly timestamp: bigint | number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly RecordHeader[];
}

/** BatchRecord is one record as decodeRecords returns it, with its absolute offset and timestamp. */
export interface BatchRecord {
  readonly offset: bigint;
  readonly timestamp: bigint;
  /** key and value (and header values) are views into the batch or its decompressed records. */
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: RecordHeader[];
}

/** PreparedRecord is a record whose sizes are known and whose header keys are UTF-8 already. */
interface PreparedRecord {
  readonly timestampDelta: bigint;
  readonly offsetDelta: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly { key: Uint8Array; value: Uint8Array | null }[];
  readonly bodyBytes: number;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** toTimestamp returns timestamp as a bigint; throws RangeError unless it is an integer an int64 holds. */
export function toTimestamp(timestamp: bigint | number, field: string): bigint {
  if (typeof timestamp === 'number' && !Number.isSafeInteger(timestamp)) throw new RangeError(`${field} ${timestamp} is not a safe integer`);
  const value = BigInt(timestamp);
  if (!isInt64(value)) throw new RangeError(`${field} ${value} does not fit an int64`);
  return value;
}

function nullableBytesSize(bytes: Uint8Array | null): number {
  return bytes === null ? 1 : varintBytes(bytes.length) + bytes.length;
}

/**
 * encodeRecords returns the uncompressed records section for records whose timestamps are taken
 * relative to baseTimestamp and whose offsetDeltas are their indexes. Throws RangeError when a
 * timestamp delta does not fit an int64 or a length does not fit an int32.
 */
export function encodeRecords(records: readonly RecordInput[], baseTimestamp: bigint): Uint8Array {
  const prepared = records.map((record, index) => prepareRecord(record, index, baseTimestamp));
  let size = 0;
  for (const record of prepared) size += varintBytes(record.bodyBytes) + record.bodyBytes;
  const writer = new ByteWriter(size);
  for (const record of prepared) writeRecord(writer, record);
  return writer.bytes;
}

function prepareRecord(record: RecordInput, offsetDelta: number, baseTimestamp: bigint): PreparedRecord {
  const timestampDelta = toTimestamp(record.timestamp, `records[${offsetDelta}].timestamp`) - baseTimestamp;
  if (!isInt64(timestampDelta)) throw new RangeError(`records[${offsetDelta}].timestamp is too far from the first record's to encode as a delta`);
  const headers = record.headers.map((header) => ({ key: utf8Encoder.encode(header.key), value: header.value }));
  let bodyBytes = 1 + varlongBytes(timestampDelta) + varintBytes(offsetDelta);
  bodyBytes += nullableBytesSize(record.key) + nullableBytesSize(record.value) + varintBytes(headers.length);
  for (const header of headers) bodyBytes += varintBytes(header.key.length) + header.key.length + nullableBytesSize(header.value);
  if (!isInt32(bodyBytes)) throw new RangeError(`records[${offsetDelta}] is larger than an int32 length can say`);
  return { timestampDelta, offsetDelta, key: record.key, value: record.value, headers, bodyBytes };
}

function writeNullableBytes(writer: ByteWriter, bytes: Uint8Array | null): void {
  if (bytes === null) {
    writer.varint(-1);
    return;
  }
  writer.varint(bytes.length);
  writer.raw(bytes);
}

function writeRecord(writer: ByteWriter, record: PreparedRecord): void {
  writer.varint(record.bodyBytes);
  const bodyStart = writer.position;
  writer.int8(0);
  writer.varlong(record.timestampDelta);
  writer.varint(record.offsetDelta);
  writeNullableBytes(writer, record.key);
  writeNullableBytes(writer, record.value);
  writer.varint(record.headers.length);
  for (const header of record.headers) {
    writer.varint(header.key.length);
    writer.raw(header.key);
    writeNullableBytes(writer, header.value);
  }
  assert(writer.position - bodyStart === record.bodyBytes, 'a record wrote other than the size it was given', { wrote: writer.position - bodyStart, sized: record.bodyBytes });
}

/** RecordsContext is what parsing the records section needs from the batch header. */
export interface RecordsContext {
  readonly recordsCount: number;
  readonly baseOffset: bigint;
  readonly baseTimestamp: bigint;
  /** logAppendTime: when set, every record's timestamp is this (Kafka: maxTimestamp of a LogAppendTime batch). */
  readonly logAppendTime: bigint | null;
  readonly limits: RecordBatchLimits;
}

/** RecordsSummary is what validation needs from a records section: the largest record timestamp. */
export interface RecordsSummary {
  readonly maxTimestamp: bigint;
}

/**
 * parseRecords walks a records section of exactly context.recordsCount records and returns the
 * largest timestamp; when `into` is given, it also appends each record to it. Throws FormatError
 * when a record is malformed, its length disagrees with its fields, its offsetDelta is not its
 * index, it has more than headersPerRecordMax headers, or bytes remain after the last record.
 * Every length is checked against the bytes left before it is used.
 */
export function parseRecords(bytes: Uint8Array, context: RecordsContext, into?: BatchRecord[]): RecordsSummary {
  const reader = new ByteReader(bytes);
  let maxTimestamp: bigint | null = null;
  for (let index = 0; index < context.recordsCount; index++) {
    const field = `records[${index}]`;
    const bodyBytes = reader.varint(`${field}.length`);
    if (bodyBytes < 0) throw new FormatError(`${field}.length`, `is negative (${bodyBytes})`);
    const body = new ByteReader(reader.bytes(bodyBytes, `${field}.length`));
    const record = parseRecord(body, index, context);
    if (body.remaining !== 0) throw new FormatError(`${field}.length`, `says ${bodyBytes} bytes but the record's fields take ${body.position}`);
    if (maxTimestamp === null || record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
    into?.push(record);
  }
  if (reader.remaining !== 0) throw new FormatError('records', `${reader.remaining} bytes follow the last of ${context.recordsCount} records`);
  return { maxTimestamp: maxTimestamp ?? context.baseTimestamp };
}

function parseRecord(body: ByteReader, index: number, context: RecordsContext): BatchRecord {
  const field = `records[${index}]`;
  body.int8(`${field}.attributes`);
  const timestampDelta = body.varlong(`${field}.timestampDelta`);
  const offsetDelta = body.varint(`${field}.offsetDelta`);
  if (offsetDelta !== index) throw new FormatError(`${field}.offsetDelta`, `is ${offsetDelta}, not the record's index ${index}`);
  const timestamp = context.baseTimestamp + timestampDelta;
  if (!isInt64(timestamp)) throw new FormatError(`${field}.timestampDelta`, 'takes the timestamp out of the int64 range');
  const key = readNullableBytes(body, `${field}.key`);
  const value = readNullableBytes(body, `${field}.value`);
  const headerCount = body.varint(`${field}.headers`);
  if (headerCount < 0) throw new FormatError(`${field}.headers`, `count is negative (${headerCount})`);
  if (headerCount > context.limits.headersPerRecordMax) {
    throw new FormatError(`${field}.headers`, `count ${headerCount} exceeds headersPerRecordMax (${context.limits.headersPerRecordMax})`);
  }
  const headers: RecordHeader[] = [];
  for (let headerIndex = 0; headerIndex < headerCount; headerIndex++) {
    const headerField = `${field}.headers[${headerIndex}]`;
    const keyLength = body.varint(`${headerField}.key`);
    if (keyLength < 0) throw new FormatError(`${headerField}.key`, `length is negative (${keyLength}); header keys cannot be null`);
    const headerKey = utf8Decoder.decode(body.bytes(keyLength, `${headerField}.key`));
    headers.push({ key: headerKey, value: readNullableBytes(body, `${headerField}.value`) });
  }
  return { offset: context.baseOffset + BigInt(offsetDelta), timestamp: context.logAppendTime ?? timestamp, key, value, headers };
}

function readNullableBytes(reader: ByteReader, field: string): Uint8Array | null {
  const length = reader.varint(field);
  if (length === -1) return null;
  if (length < -1) throw new FormatError(field, `length ${length} is invalid (-1 means null)`);
  return reader.bytes(length, field);
}
