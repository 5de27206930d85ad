import { describe, expect, it } from 'vitest';
import type { GroupRecord } from '../groups/records.js';
import { GroupDecodeError, decodeGroupBatch, decodeGroupRecord, decodeGroupStoreSnapshot, encodeGroupBatch, encodeGroupRecord, encodeGroupStoreSnapshot } from './group-codec.js';
import { validateBatch } from '../partition/record-batch.js';

const records: GroupRecord[] = [
  { type: 'offsetCommit', group: 'g', topic: 'orders', partition: 5, offset: 2 ** 40, metadata: 'ünïcode', commitTimestampMs: 1_795_000_000_000 },
  {
    type: 'groupMetadata',
    group: 'g',
    generation: 7,
    assignor: 'cooperative-sticky',
    leaderId: 'm-1',
    members: [{ memberId: 'm-1', instanceId: 'host-a', clientId: 'c', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 30_000, topics: ['orders', 'audit'], assignment: [{ topic: 'orders', partition: 0 }] }],
    stateTimestampMs: 1_795_000_000_123,
  },
  { type: 'groupMetadata', group: 'empty', generation: 3, assignor: 'range', leaderId: '', members: [], stateTimestampMs: 0 },
  { type: 'groupDelete', group: 'gone' },
];

describe('group records as Kafka records', () => {
  it('round-trip one by one and as one valid RecordBatch v2 whose keys name the group', () => {
    for (const record of records) expect(decodeGroupRecord(encodeGroupRecord(record))).toEqual(record);
    const batch = encodeGroupBatch(records, 123);
    expect(validateBatch(batch).kind).toBe('ok');
    expect(decodeGroupBatch(batch)).toEqual(records);
  });

  it('refuses bytes that are not a group record', () => {
    expect(() => decodeGroupRecord(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(GroupDecodeError);
    expect(() => decodeGroupRecord(new Uint8Array())).toThrow(/no known type/);
  });

  it('round-trip as a group store snapshot, empty or not, and refuse bytes that are not one', () => {
    expect(decodeGroupStoreSnapshot(encodeGroupStoreSnapshot(records))).toEqual(records);
    expect(decodeGroupStoreSnapshot(encodeGroupStoreSnapshot([]))).toEqual([]);
    expect(() => decodeGroupStoreSnapshot(new Uint8Array([0x0a, 0x05, 0x01]))).toThrow(GroupDecodeError);
    expect(() => decodeGroupStoreSnapshot(new Uint8Array([0x0a, 0x00]))).toThrow(/no known type/);
  });
});
