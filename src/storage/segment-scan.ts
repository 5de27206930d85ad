// scanSegment reads one segment file and checks it frame by frame, without changing anything on
// disk. It is the read-only half of recovery: SegmentedLog.open decides what to do with the result.
import { EntryIndex } from './entry-index.js';
import { CorruptLogError } from './errors.js';
import type { SyncRecord } from './frame.js';
import { checkFrame, frameBytes, parseSegmentHeader, parseSyncRecords } from './frame.js';
import { frameHeaderBytes, segmentHeaderBytes } from './limits.js';

/** ChainPoint is where a segment must continue from: the next index, the crc and term before it. */
export interface ChainPoint {
  readonly nextIndex: number;
  readonly crc: number;
  readonly term: number;
}

/** TornTail is the part of a last segment that a crash left unfinished: from offset to the end. */
export interface TornTail {
  readonly offset: number;
  readonly droppedBytes: number;
  readonly reason: string;
}

/**
 * ScannedSegment is a segment's valid frames (indexed from baseIndex), its torn tail, if any, and the
 * corruption that stopped the scan, if any: damage a crash cannot explain (see scanSegment).
 * With corruption, the frames listed are the valid ones before it, and validBytes is where it
 * starts; validBytes is 0 when nothing of the segment can be kept (its header is bad or does
 * not continue the log).
 */
export interface ScannedSegment {
  readonly path: string;
  readonly baseIndex: number;
  readonly startIndex: number;
  readonly prevCrc: number;
  readonly frames: EntryIndex;
  readonly validBytes: number;
  /** synced is the newest valid sync record of the header (undefined when the header is unusable). */
  readonly synced: SyncRecord | undefined;
  readonly tail: TornTail | undefined;
  readonly corruption: CorruptLogError | undefined;
}

/**
 * scanSegment checks bytes, the whole content of the segment at path. The header must name
 * baseIndex and, when `after` is given, chain from it. A bad or short frame is a torn tail when
 * tailAllowed and no valid-looking frame follows it; anything else is reported as corruption.
 * Zeros from a frame boundary to the end of the file end the frames cleanly, in any segment: a log
 * grows its files ahead of its data (Disk.preallocateBytes). Frames lost to zeros are still found
 * out: in the last segment by its sync records, in an earlier one by the next segment's header.
 * Never throws for bad bytes: the caller decides whether corruption refuses the log or cuts it.
 */
export function scanSegment(
  bytes: Uint8Array,
  options: { path: string; baseIndex: number; after: ChainPoint | undefined; tailAllowed: boolean; entryBytesMax: number },
): ScannedSegment {
  const { path } = options;
  const header = parseSegmentHeader(bytes);
  const unusable = (offset: number, reason: string): ScannedSegment => ({
    path,
    baseIndex: options.baseIndex,
    startIndex: 'bad' in header ? 0 : header.startIndex,
    prevCrc: 'bad' in header ? 0 : header.prevCrc,
    frames: new EntryIndex(options.baseIndex),
    validBytes: 0,
    synced: undefined,
    tail: undefined,
    corruption: new CorruptLogError({ path, offset, reason }),
  });
  if ('bad' in header) return unusable(0, header.bad);
  if (header.baseIndex !== options.baseIndex) return unusable(8, `header says base ${header.baseIndex}`);
  const after = options.after;
  if (after !== undefined && (header.baseIndex !== after.nextIndex || header.prevCrc !== after.crc)) {
    return unusable(0, `segment does not follow index ${after.nextIndex - 1}`);
  }
  const scanned: ScannedSegment = {
    path,
    baseIndex: header.baseIndex,
    startIndex: header.startIndex,
    prevCrc: header.prevCrc,
    frames: new EntryIndex(options.baseIndex),
    validBytes: segmentHeaderBytes,
    synced: parseSyncRecords(bytes),
    tail: undefined,
    corruption: undefined,
  };
  return walkFrames(bytes, scanned, { lastTerm: after?.term ?? 0, ...options });
}

function walkFrames(
  bytes: Uint8Array,
  scanned: ScannedSegment,
  options: { path: string; lastTerm: number; tailAllowed: boolean; entryBytesMax: number },
): ScannedSegment {
  let offset = segmentHeaderBytes;
  let prevCrc = scanned.prevCrc;
  let lastTerm = options.lastTerm;
  while (offset < bytes.length) {
    const expectedIndex = scanned.baseIndex + scanned.frames.length;
    const frame = checkFrame(bytes, offset, { prevCrc, entryBytesMax: options.entryBytesMax });
    let problem: string | undefined;
    if (frame.kind === 'short') problem = 'frame runs past end of file';
    else if (frame.kind === 'bad') problem = frame.reason;
    else if (frame.index !== expectedIndex) problem = `index ${frame.index}, expected ${expectedIndex}`;
    else if (frame.term < lastTerm || frame.term < 1) problem = `term ${frame.term} after ${lastTerm}`;
    if (problem !== undefined || frame.kind !== 'frame') {
      // Zeros to the end are room the log grew into ahead of its data (Disk.preallocateBytes),
      // in any segment: the clean end of its frames, not a torn write.
      if (allZero(bytes, offset)) return { ...scanned, validBytes: offset };
      return withTail(bytes, scanned, { offset, expectedIndex, reason: problem ?? 'bad frame', ...options });
    }
    scanned.frames.push(frame.term, offset, frame.crc, frame.type === 'confChange');
    prevCrc = frame.crc;
    lastTerm = frame.term;
    offset += frame.bytes;
  }
  return { ...scanned, validBytes: offset };
}

/** zeroChunk is what allZero compares against, a chunk at a time. */
const zeroChunk = new Uint8Array(64 * 1024);

/**
 * allZero says whether every byte of bytes from `from` on is zero. It compares whole chunks
 * (memcmp in Buffer.compare): every open reads the hole grown ahead of each active segment, a
 * MiB per log, and a loop over bytes in JS took 2 ms a MiB.
 */
export function allZero(bytes: Uint8Array, from: number): boolean {
  for (let at = from; at < bytes.length; at += zeroChunk.length) {
    const end = Math.min(bytes.length, at + zeroChunk.length);
    if (Buffer.compare(bytes.subarray(at, end), zeroChunk.subarray(0, end - at)) !== 0) return false;
  }
  return true;
}

function withTail(
  bytes: Uint8Array,
  scanned: ScannedSegment,
  options: { path: string; offset: number; expectedIndex: number; reason: string; tailAllowed: boolean; entryBytesMax: number },
): ScannedSegment {
  const { path, offset, reason } = options;
  if (!options.tailAllowed) {
    return { ...scanned, validBytes: offset, corruption: new CorruptLogError({ path, offset, reason: `${reason} (not the last segment)` }) };
  }
  const follower = findFrameAfter(bytes, options);
  if (follower !== undefined) {
    return { ...scanned, validBytes: offset, corruption: new CorruptLogError({ path, offset, reason: `${reason}, followed by a valid frame at byte ${follower}` }) };
  }
  return { ...scanned, validBytes: offset, tail: { offset, droppedBytes: bytes.length - offset, reason } };
}

/**
 * findFrameAfter looks, byte by byte after a bad frame, for a frame that is well formed and either
 * ends the file or is followed by a frame that chains from it. Returns its offset, or undefined.
 * Only recovery calls it: on a segment's first bad frame, and on what a repair cuts away.
 */
function findFrameAfter(bytes: Uint8Array, options: { offset: number; expectedIndex: number; entryBytesMax: number }): number | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const indexMaxHere = options.expectedIndex + Math.floor(bytes.length / frameHeaderBytes);
  for (let q = options.offset + 1; q + frameHeaderBytes <= bytes.length; q++) {
    const dataBytes = buffer.readUInt32LE(q + 4);
    if (dataBytes > options.entryBytesMax || q + frameBytes(dataBytes) > bytes.length) continue;
    if (buffer.readUInt32LE(q + 24) > 1 || buffer.readUInt32LE(q + 12) > 0x1f_ffff) continue; // type, index < 2^53
    const index = buffer.readUInt32LE(q + 8) + buffer.readUInt32LE(q + 12) * 0x1_0000_0000;
    if (index < options.expectedIndex || index > indexMaxHere) continue;
    const next = q + frameBytes(dataBytes);
    if (next === bytes.length) return q;
    const storedCrc = buffer.readUInt32LE(q);
    const following = checkFrame(bytes, next, { prevCrc: storedCrc, entryBytesMax: options.entryBytesMax });
    if (following.kind === 'frame') return q;
  }
  return undefined;
}

/**
 * lastIndexAfter returns the highest index shown by frames of bytes after offset (where a bad
 * frame of expectedIndex starts), or undefined when none is found: it resynchronizes with
 * findFrameAfter, then follows the crc chain from the frame found, as often as the damage
 * requires. Only checked values count: the index of a frame found is bounded by findFrameAfter,
 * every later one passed its chained crc, so a flipped bit cannot make the result huge.
 */
export function lastIndexAfter(bytes: Uint8Array, options: { offset: number; expectedIndex: number; entryBytesMax: number }): number | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let last: number | undefined;
  let { offset, expectedIndex } = options;
  for (;;) {
    const found = findFrameAfter(bytes, { offset, expectedIndex, entryBytesMax: options.entryBytesMax });
    if (found === undefined) return last;
    let index = buffer.readUInt32LE(found + 8) + buffer.readUInt32LE(found + 12) * 0x1_0000_0000;
    let prevCrc = buffer.readUInt32LE(found);
    let next = found + frameBytes(buffer.readUInt32LE(found + 4));
    for (;;) {
      const frame = checkFrame(bytes, next, { prevCrc, entryBytesMax: options.entryBytesMax });
      if (frame.kind !== 'frame' || frame.index !== index + 1) break;
      index = frame.index;
      prevCrc = frame.crc;
      next += frame.bytes;
    }
    last = Math.max(last ?? 0, index);
    if (next >= bytes.length) return last;
    offset = next;
    expectedIndex = index + 1;
  }
}

/**
 * lastIndexOfSegment returns the highest checked index (see lastIndexAfter) that the frames of a
 * whole segment show when read on its own, not chained to the segments before it; undefined when
 * none is found. Recovery uses it to bound what a repair cut away.
 */
export function lastIndexOfSegment(bytes: Uint8Array, options: { path: string; baseIndex: number; entryBytesMax: number }): number | undefined {
  const alone = scanSegment(bytes, { ...options, after: undefined, tailAllowed: true });
  const held = alone.frames.length > 0 ? alone.baseIndex + alone.frames.length - 1 : undefined;
  if (alone.corruption === undefined) return held;
  const offset = Math.max(alone.corruption.offset, segmentHeaderBytes - 1);
  const after = lastIndexAfter(bytes, { offset, expectedIndex: options.baseIndex + alone.frames.length, entryBytesMax: options.entryBytesMax });
  return after === undefined ? held : Math.max(held ?? 0, after);
}
