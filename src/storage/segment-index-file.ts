// A segment's index file (<segment>.index) lets open() take a sealed segment's frames without
// reading them: the offset and crc of every frame, the terms as runs, and the indexes of its
// membership changes: what a scan of the segment would find. It is a cache, never the only record of anything: it is written when a
// segment is sealed (the log rolls past it), made durable by the next sync(), and trusted on open
// only when it passes its own crc and still describes the segment: the segment's header names the
// same base and prevCrc, its length is the index's, and its last frame passes its check and ends
// with the crc the index records. Frames chain their crcs, so that last crc stands for the whole
// segment as it was written; a segment truncated, rewritten or cut short since fails one of these,
// and open() scans it instead. Damage inside a segment (a flipped bit in a middle frame) is not
// looked for at open: reads check every frame they return and refuse a bad one (see
// SegmentedLog.entries), and removing the index file makes the next open scan and repair.
//
// Layout, little-endian:
//   0 u32 magic 'RBIX'   4 u16 version   6 u16 zero   8 u64 baseIndex   16 u32 prevCrc
//   20 u32 count (frames, >= 1)   24 u64 validBytes (the segment's length)   32 u32 runCount
//   36 u32 confCount   40 u32 offsets[count]   then u32 crcs[count]
//   then (u64 start, u64 term)[runCount]   then u64 confChanges[confCount]   then u32 crc32c of
//   every byte before it.
import { crc32c } from '@node-rs/crc32';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { Disk } from './disk.js';
import type { IndexColumns } from './entry-index.js';
import { frameHeaderBytes, segmentHeaderBytes } from './limits.js';

const indexMagic = 0x58494252; // 'RBIX' read as little-endian u32
const indexVersion = 1;
const fixedBytes = 40;
const littleEndian = endianness() === 'LE';

const indexFilePattern = /^\d{20}\.log\.index$/;

/** segmentIndexPath is the path of the index file of the segment at segmentPath. */
export function segmentIndexPath(segmentPath: string): string {
  return `${segmentPath}.index`;
}

/** listSegmentIndexFiles returns the paths of the segment index files in dir. */
export function listSegmentIndexFiles(disk: Disk, dir: string): string[] {
  return disk.list(dir).filter((name) => indexFilePattern.test(name)).map((name) => join(dir, name));
}

/** SegmentIndex is what an index file says about its segment. */
export interface SegmentIndex {
  readonly baseIndex: number;
  readonly prevCrc: number;
  readonly validBytes: number;
  readonly columns: IndexColumns;
}

function writeU64(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value % 0x1_0000_0000, offset);
  buffer.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

/** writeU32s copies values into buffer at offset as little-endian u32s. */
function writeU32s(buffer: Buffer, offset: number, values: Uint32Array): void {
  if (littleEndian) buffer.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
  else values.forEach((value, k) => buffer.writeUInt32LE(value, offset + 4 * k));
}

/** readU32s returns count little-endian u32s of buffer from offset, copied into a new array. */
function readU32s(buffer: Buffer, offset: number, count: number): Uint32Array {
  const values = new Uint32Array(count);
  if (littleEndian) new Uint8Array(values.buffer).set(buffer.subarray(offset, offset + 4 * count));
  else for (let k = 0; k < count; k++) values[k] = buffer.readUInt32LE(offset + 4 * k);
  return values;
}

/** encodeSegmentIndex returns the bytes of the index file of a segment holding at least one frame. */
export function encodeSegmentIndex(index: SegmentIndex): Buffer {
  const { columns } = index;
  const count = columns.offsets.length;
  const runCount = columns.runStarts.length;
  const confCount = columns.confChanges.length;
  const buffer = Buffer.alloc(fixedBytes + 8 * count + 16 * runCount + 8 * confCount + 4);
  buffer.writeUInt32LE(indexMagic, 0);
  buffer.writeUInt16LE(indexVersion, 4);
  writeU64(buffer, 8, index.baseIndex);
  buffer.writeUInt32LE(index.prevCrc, 16);
  buffer.writeUInt32LE(count, 20);
  writeU64(buffer, 24, index.validBytes);
  buffer.writeUInt32LE(runCount, 32);
  buffer.writeUInt32LE(confCount, 36);
  writeU32s(buffer, fixedBytes, columns.offsets);
  writeU32s(buffer, fixedBytes + 4 * count, columns.crcs);
  let at = fixedBytes + 8 * count;
  for (let i = 0; i < runCount; i++, at += 16) {
    writeU64(buffer, at, columns.runStarts[i]!);
    writeU64(buffer, at + 8, columns.runTerms[i]!);
  }
  for (const index of columns.confChanges) {
    writeU64(buffer, at, index);
    at += 8;
  }
  buffer.writeUInt32LE(crc32c(buffer.subarray(0, at)), at);
  return buffer;
}

/**
 * decodeSegmentIndex parses an index file, or returns why it is not a usable one: a bad crc or
 * layout, or fields that no segment could have (offsets not ascending inside the segment, runs
 * not ascending from baseIndex). It does not look at the segment (see the file comment).
 */
export function decodeSegmentIndex(bytes: Uint8Array): SegmentIndex | { readonly bad: string } {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < fixedBytes + 4) return { bad: 'index file too short' };
  const stored = buffer.readUInt32LE(buffer.length - 4);
  if (crc32c(buffer.subarray(0, buffer.length - 4)) !== stored) return { bad: 'index file crc mismatch' };
  if (buffer.readUInt32LE(0) !== indexMagic) return { bad: 'bad index file magic' };
  if (buffer.readUInt16LE(4) !== indexVersion) return { bad: `unknown index file version ${buffer.readUInt16LE(4)}` };
  const baseIndex = readU64(buffer, 8);
  const count = buffer.readUInt32LE(20);
  const validBytes = readU64(buffer, 24);
  const runCount = buffer.readUInt32LE(32);
  const confCount = buffer.readUInt32LE(36);
  if (count < 1 || runCount < 1 || runCount > count || confCount > count) return { bad: `index file counts ${count} frames in ${runCount} term runs, ${confCount} membership changes` };
  if (buffer.length !== fixedBytes + 8 * count + 16 * runCount + 8 * confCount + 4) return { bad: 'index file length does not match its counts' };
  const offsets = readU32s(buffer, fixedBytes, count);
  let previousEnd = segmentHeaderBytes;
  for (const offset of offsets) {
    if (offset < previousEnd) return { bad: `index file frame offset ${offset} before ${previousEnd}` };
    previousEnd = offset + frameHeaderBytes;
  }
  if (validBytes < previousEnd) return { bad: `index file length ${validBytes} inside its last frame` };
  const runStarts: number[] = [];
  const runTerms: number[] = [];
  for (let i = 0, at = fixedBytes + 8 * count; i < runCount; i++, at += 16) {
    const start = readU64(buffer, at);
    const term = readU64(buffer, at + 8);
    const expected = i === 0 ? start === baseIndex : start > runStarts.at(-1)! && start < baseIndex + count && term > runTerms.at(-1)!;
    if (!expected || term < 1) return { bad: `index file term run ${i} (start ${start}, term ${term}) out of order` };
    runStarts.push(start);
    runTerms.push(term);
  }
  const confChanges: number[] = [];
  for (let i = 0, at = fixedBytes + 8 * count + 16 * runCount; i < confCount; i++, at += 8) {
    const index = readU64(buffer, at);
    if (index < baseIndex || index >= baseIndex + count || index <= (confChanges.at(-1) ?? 0)) return { bad: `index file membership change ${i} (index ${index}) out of order` };
    confChanges.push(index);
  }
  const columns = { offsets, crcs: readU32s(buffer, fixedBytes + 4 * count, count), runStarts, runTerms, confChanges };
  return { baseIndex, prevCrc: buffer.readUInt32LE(16), validBytes, columns };
}
