import { describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import { encodeFrame, encodeSegmentHeader, encodeSyncRecord, frameBytes, parseFrame, parseSegmentHeader, parseSyncRecords, syncRecordOffset } from './frame.js';

const entry: Entry = { index: 2 ** 40 + 3, term: 2 ** 33 + 1, type: 'confChange', data: Uint8Array.from([1, 2, 3]) };
const limits = { entryBytesMax: 100 };

function encoded(prevCrc: number): { buffer: Buffer; crc: number } {
  const buffer = Buffer.alloc(frameBytes(entry.data.length));
  return { buffer, crc: encodeFrame(entry, prevCrc, buffer, 0) };
}

describe('frame', () => {
  it('round-trips an entry with large index and term', () => {
    const { buffer, crc } = encoded(7);
    const parsed = parseFrame(buffer, 0, { prevCrc: 7, ...limits });
    expect(parsed).toMatchObject({ kind: 'frame', crc, bytes: buffer.length });
    if (parsed.kind === 'frame') expect({ ...parsed.entry, data: [...parsed.entry.data] }).toEqual({ ...entry, data: [1, 2, 3] });
  });

  it('fails a frame read with the wrong predecessor crc (the chain)', () => {
    const { buffer } = encoded(7);
    expect(parseFrame(buffer, 0, { prevCrc: 8, ...limits })).toMatchObject({ kind: 'bad', reason: 'crc mismatch' });
  });

  it('says short when the bytes end inside a frame, bad when a field is out of bounds', () => {
    const { buffer } = encoded(0);
    expect(parseFrame(buffer.subarray(0, buffer.length - 1), 0, { prevCrc: 0, ...limits })).toEqual({ kind: 'short' });
    expect(parseFrame(buffer, 0, { prevCrc: 0, entryBytesMax: 2 })).toMatchObject({ kind: 'bad' });
  });

  it('round-trips a segment header and rejects a damaged one', () => {
    const header = encodeSegmentHeader({ baseIndex: 42, startIndex: 40, prevCrc: 0xdeadbeef });
    expect(parseSegmentHeader(header)).toEqual({ baseIndex: 42, startIndex: 40, prevCrc: 0xdeadbeef });
    header[9]! ^= 1;
    expect(parseSegmentHeader(header)).toEqual({ bad: 'segment header crc mismatch' });
  });

  it('keeps two sync records in a header: the newest valid one counts, a torn one leaves the other', () => {
    const header = encodeSegmentHeader({ baseIndex: 1, startIndex: 1, prevCrc: 0 });
    expect(parseSyncRecords(header)).toEqual({ seq: 0, syncedIndex: 0 });
    header.set(encodeSyncRecord({ seq: 7, syncedIndex: 2 ** 40 }), syncRecordOffset(7));
    header.set(encodeSyncRecord({ seq: 8, syncedIndex: 2 ** 40 + 5 }), syncRecordOffset(8));
    expect(syncRecordOffset(8)).not.toBe(syncRecordOffset(7));
    expect(parseSyncRecords(header)).toEqual({ seq: 8, syncedIndex: 2 ** 40 + 5 });
    header[syncRecordOffset(8) + 3]! ^= 4; // record 8 torn or flipped: record 7 is what the disk says
    expect(parseSyncRecords(header)).toEqual({ seq: 7, syncedIndex: 2 ** 40 });
    expect(parseSegmentHeader(header)).toEqual({ baseIndex: 1, startIndex: 1, prevCrc: 0 });
  });
});
