// The encoding of group records (proto/groups.proto GroupRecord) as Kafka records of a
// __consumer_offsets partition: one RecordBatch v2 per write; each record's key names the group
// (so a Kafka tool reading the topic sees whose record it is), its value is the GroupRecord.
import type { GroupRecord } from '../groups/records.js';
import { decodeRecords, encodeRecordBatch, plainBatch } from '../partition/record-batch.js';
import { protoType } from './proto.js';

const conversion = { longs: Number, enums: String, defaults: true, arrays: true, oneofs: true } as const;
const oneofField = { offsetCommit: 'offsetCommit', groupMetadata: 'groupMetadata', groupDelete: 'groupDelete' } as const;
const encoder = new TextEncoder();

/** GroupDecodeError: a record of __consumer_offsets that is not a GroupRecord: corruption or a bug. */
export class GroupDecodeError extends Error {
  override readonly name = 'GroupDecodeError';
}

export function encodeGroupRecord(record: GroupRecord): Uint8Array {
  const type = protoType('raftbus.groups.v1.GroupRecord');
  return type.encode(type.fromObject(recordToObject(record))).finish();
}

/** recordToObject is a record as the plain object of its GroupRecord message (the type names the oneof field). */
function recordToObject(record: GroupRecord): Record<string, unknown> {
  const { type: kind, ...fields } = record;
  return { [oneofField[kind]]: fields };
}

export function decodeGroupRecord(bytes: Uint8Array): GroupRecord {
  const type = protoType('raftbus.groups.v1.GroupRecord');
  let message: Record<string, unknown>;
  try {
    message = type.toObject(type.decode(bytes), conversion);
  } catch (error) {
    throw new GroupDecodeError(`undecodable group record: ${(error as Error).message}`, { cause: error });
  }
  return recordFromObject(message);
}

function recordFromObject(message: Record<string, unknown>): GroupRecord {
  const field = message['record'] as keyof typeof oneofField | undefined;
  if (field === undefined || !(field in oneofField)) throw new GroupDecodeError(`a group record of no known type (${String(field)})`);
  return { type: field, ...(message[field] as object) } as GroupRecord;
}

/** encodeGroupStoreSnapshot writes a GroupStore's compacted records (GroupStore.compacted) as one GroupStoreSnapshot. */
export function encodeGroupStoreSnapshot(records: readonly GroupRecord[]): Uint8Array {
  const type = protoType('raftbus.groups.v1.GroupStoreSnapshot');
  return type.encode(type.fromObject({ records: records.map(recordToObject) })).finish();
}

/** decodeGroupStoreSnapshot reads what encodeGroupStoreSnapshot wrote; throws GroupDecodeError on anything else. */
export function decodeGroupStoreSnapshot(bytes: Uint8Array): GroupRecord[] {
  const type = protoType('raftbus.groups.v1.GroupStoreSnapshot');
  let message: { records?: Record<string, unknown>[] };
  try {
    message = type.toObject(type.decode(bytes), conversion) as typeof message;
  } catch (error) {
    throw new GroupDecodeError(`undecodable group store snapshot: ${(error as Error).message}`, { cause: error });
  }
  return (message.records ?? []).map(recordFromObject);
}

/** encodeGroupBatch writes records as one RecordBatch v2 (no producer id: the coordinator is the only writer). */
export function encodeGroupBatch(records: readonly GroupRecord[], nowMs: number): Uint8Array {
  return encodeRecordBatch({
    ...plainBatch,
    records: records.map((record) => ({ timestamp: nowMs, key: encoder.encode(`${record.type}:${record.group}`), value: encodeGroupRecord(record), headers: [] })),
  });
}

/** decodeGroupBatch returns the group records of one committed batch. */
export function decodeGroupBatch(batch: Uint8Array): GroupRecord[] {
  return decodeRecords(batch, { batchBytesMax: 8 * 1024 * 1024, recordsPerBatchMax: 100_000, headersPerRecordMax: 1024, decompressedBytesMax: 32 * 1024 * 1024 }).map((record) => {
    if (record.value === null) throw new GroupDecodeError('a group record without a value');
    return decodeGroupRecord(record.value);
  });
}
