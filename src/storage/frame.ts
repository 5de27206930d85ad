// The byte layout of segment files. All integers little-endian.
//
// Segment header (segmentHeaderBytes = 84): a fixed part, then two sync records.
//   0 u32 magic 'RBLG'   4 u16 version   6 u16 zero   8 u64 baseIndex   16 u64 startIndex
//   24 u32 prevCrc   28 u32 zero   32 u32 crc32c of bytes [0, 32)
//   36 sync record slot 0   60 sync record slot 1
// startIndex is the log's first index when the segment was created: a compactPrefix that no sync
// recorded yet still takes effect once a segment written after it reaches the disk.
// Sync record (syncRecordBytes = 24), written in place into the header of a segment:
//   0 u64 seq   8 u64 syncedIndex   16 u32 zero   20 u32 crc32c of bytes [0, 20)
// seq counts the log's records; record seq goes to slot seq % 2, so that one write damaged leaves
// the record before it in the other slot. A record is written after a completed sync that made
// new entries durable, by a truncation (lowered) and by recovery; syncedIndex names entries
// already durable when it is written, never more, so that a log found ending below it lost
// entries to damage, not to a crash, in whatever order the kernel wrote pages back (see
// SegmentedLog.writeSyncRecord and log-recovery.ts).
// Frame, one per entry (frameHeaderBytes = 28, then the payload):
//   0 u32 crc   4 u32 dataBytes   8 u64 index   16 u64 term   24 u8 type   25..27 zero   28 data
// A frame's crc is crc32c over bytes [4, 28 + dataBytes) seeded with the crc of the frame before it
// (the segment header's prevCrc for a segment's first frame). The chain makes a frame that was
// written after a different predecessor (a stale frame left by a truncation) fail its check.
import { crc32c } from '@node-rs/crc32';
import type { Entry, EntryType } from '../raft/types.js';
import { frameHeaderBytes, segmentFixedHeaderBytes, segmentHeaderBytes } from './limits.js';

const segmentMagic = 0x474c4252; // 'RBLG' read as little-endian u32
const segmentVersion = 2;
export const syncRecordBytes = 24;
const typeCodes = { normal: 0, confChange: 1 } as const satisfies Record<EntryType, number>;
const typesByCode: readonly EntryType[] = ['normal', 'confChange'];

function writeU64(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value % 0x1_0000_0000, offset);
  buffer.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

/** readU64 reads what writeU64 wrote. It takes a Buffer, not a view to wrap: it runs twice a frame on every open. */
function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** frameBytes is the size on disk of a frame carrying dataBytes of payload. */
export function frameBytes(dataBytes: number): number {
  return frameHeaderBytes + dataBytes;
}

/** encodeFrame writes entry's frame into target at offset and returns the frame's crc. */
export function encodeFrame(entry: Entry, prevCrc: number, target: Buffer, offset: number): number {
  target.writeUInt32LE(entry.data.length, offset + 4);
  writeU64(target, offset + 8, entry.index);
  writeU64(target, offset + 16, entry.term);
  target.writeUInt32LE(typeCodes[entry.type], offset + 24);
  target.set(entry.data, offset + frameHeaderBytes);
  const end = offset + frameHeaderBytes + entry.data.length;
  const crc = crc32c(target.subarray(offset + 4, end), prevCrc);
  target.writeUInt32LE(crc, offset);
  return crc;
}

/** ParsedFrame is a frame that passed its checks; data is a view into the buffer parsed. */
export interface ParsedFrame {
  readonly kind: 'frame';
  readonly entry: Entry;
  readonly crc: number;
  readonly bytes: number;
}

/** FrameProblem is why bytes at an offset are not a valid frame: too few of them, or bad ones. */
export type FrameProblem = { readonly kind: 'short' } | { readonly kind: 'bad'; readonly reason: string; readonly storedCrc: number };

/** CheckedFrame is a frame that passed its checks, its entry not built: what a scan needs of it. */
export interface CheckedFrame {
  readonly kind: 'frame';
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly crc: number;
  readonly bytes: number;
}

/**
 * parseFrame checks and decodes the frame at offset of bytes, given the crc it must chain from.
 * Returns 'short' when bytes end before the frame does, 'bad' when a field or the crc is wrong.
 */
export function parseFrame(
  bytes: Uint8Array,
  offset: number,
  options: { prevCrc: number; entryBytesMax: number },
): ParsedFrame | FrameProblem {
  const checked = checkFrame(bytes, offset, options);
  if (checked.kind !== 'frame') return checked;
  const buffer = asBuffer(bytes);
  const entry: Entry = {
    index: checked.index,
    term: checked.term,
    type: checked.type,
    data: buffer.subarray(offset + frameHeaderBytes, offset + checked.bytes),
  };
  return { kind: 'frame', entry, crc: checked.crc, bytes: checked.bytes };
}

/**
 * checkFrame makes parseFrame's checks and returns the frame's index, term, crc and size without
 * building its entry: every open checks every frame a log holds, and needs no more of them.
 */
export function checkFrame(
  bytes: Uint8Array,
  offset: number,
  options: { prevCrc: number; entryBytesMax: number },
): CheckedFrame | FrameProblem {
  if (bytes.length - offset < frameHeaderBytes) return { kind: 'short' };
  const buffer = asBuffer(bytes);
  const storedCrc = buffer.readUInt32LE(offset);
  const dataBytes = buffer.readUInt32LE(offset + 4);
  if (dataBytes > options.entryBytesMax) return { kind: 'bad', reason: `dataBytes ${dataBytes} over limit`, storedCrc };
  const end = offset + frameHeaderBytes + dataBytes;
  if (end > bytes.length) return { kind: 'short' };
  const crc = crc32c(buffer.subarray(offset + 4, end), options.prevCrc);
  if (crc !== storedCrc) return { kind: 'bad', reason: 'crc mismatch', storedCrc };
  const typeCode = buffer.readUInt32LE(offset + 24);
  const type = typesByCode[typeCode];
  if (type === undefined) return { kind: 'bad', reason: `unknown entry type ${typeCode}`, storedCrc };
  return { kind: 'frame', index: readU64(buffer, offset + 8), term: readU64(buffer, offset + 16), type, crc, bytes: end - offset };
}

/** SegmentHeader is what a segment file says about itself. */
export interface SegmentHeader {
  readonly baseIndex: number;
  readonly startIndex: number;
  readonly prevCrc: number;
}

/** SyncRecord is one record of a header: its sequence number, and the index through which the log was durable when it was written. */
export interface SyncRecord {
  readonly seq: number;
  readonly syncedIndex: number;
}

/** syncRecordOffset is where, in its segment, the sync record numbered seq is written. */
export function syncRecordOffset(seq: number): number {
  return segmentFixedHeaderBytes + (seq % 2) * syncRecordBytes;
}

/** encodeSyncRecord returns the bytes of a sync record. */
export function encodeSyncRecord(record: SyncRecord): Buffer {
  const buffer = Buffer.alloc(syncRecordBytes);
  writeU64(buffer, 0, record.seq);
  writeU64(buffer, 8, record.syncedIndex);
  buffer.writeUInt32LE(crc32c(buffer.subarray(0, 20)), 20);
  return buffer;
}

/** parseSyncRecords returns the newest valid sync record of a segment's header, if any. */
export function parseSyncRecords(bytes: Uint8Array): SyncRecord | undefined {
  let newest: SyncRecord | undefined;
  for (const record of parseSyncSlots(bytes)) {
    if (record !== undefined && (newest === undefined || record.seq > newest.seq)) newest = record;
  }
  return newest;
}

/** parseSyncSlots returns both sync record slots of a segment's header, undefined where one fails its check. */
export function parseSyncSlots(bytes: Uint8Array): readonly [SyncRecord | undefined, SyncRecord | undefined] {
  const slot = (offset: number): SyncRecord | undefined => {
    if (bytes.length < offset + syncRecordBytes) return undefined;
    const buffer = asBuffer(bytes).subarray(offset, offset + syncRecordBytes);
    if (crc32c(buffer.subarray(0, 20)) !== buffer.readUInt32LE(20)) return undefined;
    return { seq: readU64(buffer, 0), syncedIndex: readU64(buffer, 8) };
  };
  return [slot(syncRecordOffset(0)), slot(syncRecordOffset(1))];
}

/**
 * encodeSegmentHeader returns the header bytes of a segment starting at baseIndex, both sync
 * records zero (seq 0, below every real record's: the log's newest record stays in the segment before).
 */
export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const buffer = Buffer.alloc(segmentHeaderBytes);
  buffer.writeUInt32LE(segmentMagic, 0);
  buffer.writeUInt16LE(segmentVersion, 4);
  writeU64(buffer, 8, header.baseIndex);
  writeU64(buffer, 16, header.startIndex);
  buffer.writeUInt32LE(header.prevCrc, 24);
  buffer.writeUInt32LE(crc32c(buffer.subarray(0, 32)), 32);
  for (const slot of [0, 1]) buffer.set(encodeSyncRecord({ seq: 0, syncedIndex: 0 }), syncRecordOffset(slot));
  return buffer;
}

/** parseSegmentHeader decodes a segment header, or returns why it is not one. */
export function parseSegmentHeader(bytes: Uint8Array): SegmentHeader | { readonly bad: string } {
  if (bytes.length < segmentHeaderBytes) return { bad: 'short segment header' };
  const buffer = asBuffer(bytes);
  if (crc32c(buffer.subarray(0, 32)) !== buffer.readUInt32LE(32)) return { bad: 'segment header crc mismatch' };
  if (buffer.readUInt32LE(0) !== segmentMagic) return { bad: 'bad segment magic' };
  if (buffer.readUInt16LE(4) !== segmentVersion) return { bad: `unknown segment version ${buffer.readUInt16LE(4)}` };
  return { baseIndex: readU64(buffer, 8), startIndex: readU64(buffer, 16), prevCrc: buffer.readUInt32LE(24) };
}
