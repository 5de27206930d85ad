// The encoding of metadata records (proto/metadata.proto) <-> MetadataRecord values.
import type { MetadataRecord, MetadataRecordType } from '../metadata/records.js';
import { protoType } from './proto.js';

/** The proto oneof field of each record type. */
const oneofField = {
  registerBroker: 'registerBroker',
  fenceBroker: 'fenceBroker',
  unfenceBroker: 'unfenceBroker',
  brokerShutdown: 'brokerShutdown',
  topic: 'topic',
  partition: 'partition',
  partitionChange: 'partitionChange',
  removeTopic: 'removeTopic',
  config: 'config',
  completedRequest: 'completedRequest',
  noOp: 'noOp',
  groupIds: 'groupIds',
  producerIds: 'producerIds',
} as const satisfies Record<MetadataRecordType, string>;

const conversion = { longs: Number, enums: String, defaults: true, arrays: true, oneofs: true, bytes: Uint8Array } as const;

/** MetadataDecodeError: bytes in the metadata log that are not a record batch: corruption or a bug. */
export class MetadataDecodeError extends Error {
  override readonly name = 'MetadataDecodeError';
}

function toProto(record: MetadataRecord): Record<string, unknown> {
  const { type, ...fields } = record;
  return { [oneofField[type]]: fields };
}

function fromProto(message: Record<string, unknown>): MetadataRecord {
  const field = message['record'];
  const type = (Object.keys(oneofField) as MetadataRecordType[]).find((key) => oneofField[key] === field);
  if (type === undefined) throw new MetadataDecodeError(`a metadata record of no known type (${String(field)})`);
  const record = { type, ...(message[field as string] as object) } as MetadataRecord;
  // protobufjs hands out bytes as views of the whole entry: copy them, so a record owns its payload.
  return record.type === 'noOp' ? { ...record, payload: new Uint8Array(record.payload) } : record;
}

/** encodeRecordBatch encodes records as one MetadataRecordBatch (one Raft entry). */
export function encodeRecordBatch(records: readonly MetadataRecord[]): Uint8Array {
  const type = protoType('raftbus.metadata.v1.MetadataRecordBatch');
  return type.encode(type.fromObject({ records: records.map(toProto) })).finish();
}

/** decodeRecordBatch decodes a Raft entry of the metadata log; throws MetadataDecodeError. */
export function decodeRecordBatch(bytes: Uint8Array): MetadataRecord[] {
  const type = protoType('raftbus.metadata.v1.MetadataRecordBatch');
  let message: { records: Record<string, unknown>[] };
  try {
    message = type.toObject(type.decode(bytes), conversion) as typeof message;
  } catch (error) {
    throw new MetadataDecodeError(`undecodable metadata record batch: ${(error as Error).message}`, { cause: error });
  }
  return message.records.map(fromProto);
}

/** encodeSnapshot writes an image's records and the applied-log digest. */
export function encodeMetadataSnapshot(snapshot: { records: readonly MetadataRecord[]; digest: number }): Uint8Array {
  const type = protoType('raftbus.metadata.v1.MetadataSnapshot');
  return type.encode(type.fromObject({ records: snapshot.records.map(toProto), digest: snapshot.digest })).finish();
}

export function decodeMetadataSnapshot(bytes: Uint8Array): { records: MetadataRecord[]; digest: number } {
  const type = protoType('raftbus.metadata.v1.MetadataSnapshot');
  let message: { records: Record<string, unknown>[]; digest: number };
  try {
    message = type.toObject(type.decode(bytes), conversion) as typeof message;
  } catch (error) {
    throw new MetadataDecodeError(`undecodable metadata snapshot: ${(error as Error).message}`, { cause: error });
  }
  return { records: message.records.map(fromProto), digest: message.digest };
}
