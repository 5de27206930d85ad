// A sealed segment's index file (segment-index-file.ts) lets open() take the segment unread. These
// tests check when the log writes, trusts, distrusts and removes those files; the model-based suite
// (log-conformance.ts) crashes and damages logs that have them.
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import type { Disk } from '../../src/storage/disk.js';
import { frameHeaderBytes, segmentHeaderBytes } from '../../src/storage/limits.js';
import type { StorageLogger } from '../../src/storage/segmented-log.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { decodeSegmentIndex, encodeSegmentIndex } from '../../src/storage/segment-index-file.js';
import { MemoryDisk } from '../sim/memory-disk.js';

const dir = '/data/group-9';
const limits = { segmentBytesMax: 560, entryBytesMax: 200 } as const; // six frames of 78 bytes a segment
const dataBytes = 50;
const frame = frameHeaderBytes + dataBytes;
const segment = (base: number): string => `${dir}/${String(base).padStart(20, '0')}.log`;
const indexOf = (base: number): string => `${segment(base)}.index`;

function entriesFrom(index: number, count: number, term = 1, salt = 0): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: index + i,
    term,
    type: 'normal' as const,
    data: Uint8Array.from({ length: dataBytes }, (_, k) => (index + i + k + salt) & 255),
  }));
}

function warnings(): StorageLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_obj, msg) => lines.push(msg), error: (_obj, msg) => lines.push(`error: ${msg}`) };
}

async function logOf20(disk = new MemoryDisk()): Promise<MemoryDisk> {
  const log = await SegmentedLog.open({ disk, dir, ...limits });
  log.append(entriesFrom(1, 20));
  await log.sync();
  log.close();
  return disk;
}

function open(disk: Disk, logger?: StorageLogger): Promise<SegmentedLog> {
  return SegmentedLog.open({ disk, dir, ...limits, ...(logger === undefined ? {} : { logger }) });
}

/** plant makes path hold bytes durably, behind the log's back (what a crash or a forger leaves). */
async function plant(disk: MemoryDisk, path: string, bytes: Uint8Array): Promise<void> {
  const file = disk.open(path, { create: true });
  disk.truncate(file, 0);
  disk.write(file, 0, bytes);
  await disk.fdatasync(file);
  disk.close(file);
}

function indexFiles(disk: MemoryDisk): string[] {
  return disk.list(dir).filter((name) => name.endsWith('.index'));
}

describe('SegmentedLog index files', () => {
  it('writes one for every sealed segment, durable with the next sync; the last segment has none', async () => {
    const disk = await logOf20();
    expect(indexFiles(disk)).toEqual(['00000000000000000001.log.index', '00000000000000000007.log.index', '00000000000000000013.log.index']);
    disk.crash(); // what no fdatasync covered is lost
    expect((await open(disk)).recovery.indexed).toEqual([segment(1), segment(7), segment(13)]);
  });

  it('a reopen takes sealed segments from them, reading only each header and last frame, and answers as a scan would', async () => {
    const disk = await logOf20();
    disk.bytesRead.clear();
    const log = await open(disk);
    const { bytesRead } = disk;
    expect(log.recovery.indexed).toEqual([segment(1), segment(7), segment(13)]);
    // Its header once (for the log's start index and the check against the index file) and its last frame.
    for (const base of [1, 7, 13]) expect(bytesRead.get(segment(base)), `bytes read of segment ${base}`).toBe(segmentHeaderBytes + frame);
    expect(bytesRead.get(segment(19))).toBeGreaterThanOrEqual(segmentHeaderBytes + 2 * frame); // the last segment is scanned whole
    expect([log.firstIndex(), log.lastIndex(), log.term(7), log.term(20)]).toEqual([1, 20, 1, 1]);
    expect(log.entries(1, 21, Number.POSITIVE_INFINITY)).toEqual(entriesFrom(1, 20).map((entry) => ({ ...entry, data: Buffer.from(entry.data) })));
  });

  it('keeps terms across segments: runs that span a segment boundary, and a term that starts one', async () => {
    const disk = new MemoryDisk();
    const log = await open(disk);
    log.append([...entriesFrom(1, 4, 1), ...entriesFrom(5, 5, 2), ...entriesFrom(10, 3, 3), ...entriesFrom(13, 4, 5)]);
    await log.sync();
    log.close();
    const reopened = await open(disk);
    expect(reopened.recovery.indexed).toEqual([segment(1), segment(7)]);
    expect(Array.from({ length: 16 }, (_, k) => reopened.term(k + 1))).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 5, 5, 5, 5]);
  });

  it('one missing, torn or for another length: the segment is scanned, and the log writes a new one', async () => {
    const disk = await logOf20();
    disk.unlink(indexOf(1));
    disk.truncateFile(indexOf(7), 30);
    disk.bytesRead.clear();
    const logger = warnings();
    const log = await open(disk, logger);
    const { bytesRead } = disk;
    expect(log.recovery.indexed).toEqual([segment(13)]);
    expect(bytesRead.get(segment(7))).toBeGreaterThanOrEqual(segmentHeaderBytes + 6 * frame);
    expect(logger.lines).toEqual(['segment index file does not describe its segment; scanning the segment']);
    expect(log.lastIndex()).toBe(20);
    await log.sync();
    log.close();
    disk.crash();
    expect((await open(disk)).recovery.indexed).toEqual([segment(1), segment(7), segment(13)]);
  });

  it('never hides a segment replaced behind its back: another of the same length fails the last-frame check', async () => {
    const disk = await logOf20();
    const other = await logOf20(new MemoryDisk());
    // The same indexes, terms and sizes, other payloads: only the frames' crcs tell them apart.
    const log = await SegmentedLog.open({ disk: other, dir, ...limits });
    log.truncateSuffix(7);
    log.append(entriesFrom(7, 14, 1, 9));
    await log.sync();
    log.close();
    const replacement = other.durableContent(segment(7));
    expect(replacement.length).toBe(disk.durableContent(segment(7)).length);
    await plant(disk, segment(7), replacement);
    // Neither index file is trusted: 7's last frame is not the one recorded, 13's does not follow the
    // scanned 7. Scanned, segment 13 does not follow the replacement: corruption, which no index file masked.
    const logger = warnings();
    await expect(open(disk, logger)).rejects.toMatchObject({ name: 'CorruptLogError', path: segment(13) });
    expect(logger.lines).toEqual(Array(2).fill('segment index file does not describe its segment; scanning the segment'));
  });

  it('never trusts one left from before a truncation: the segment it described has grown since', async () => {
    const disk = new MemoryDisk();
    const log = await open(disk);
    // Segment 7 rolls with room left: entry 12 is too big for it.
    log.append([...entriesFrom(1, 11), { index: 12, term: 1, type: 'normal', data: new Uint8Array(150) }]);
    await log.sync();
    const stale = disk.durableContent(indexOf(7));
    log.truncateSuffix(12); // segment 7 is the last again; its index file goes
    log.append(entriesFrom(12, 2, 2)); // 12 fits segment 7 now, 13 rolls
    await log.sync();
    log.close();
    // A crash can leave the old index file: its unlink, and the new one's creation, are durable only with the directory.
    await plant(disk, indexOf(7), stale);
    const reopened = await open(disk);
    expect(reopened.recovery.indexed).toEqual([segment(1)]);
    expect([reopened.lastIndex(), reopened.term(12), reopened.entries(12, 13, Number.POSITIVE_INFINITY)[0]!.data.length]).toEqual([13, 2, dataBytes]);
  });

  it('never trusts one whose segment was rewritten to the same length: the last frame ends with another crc', async () => {
    const disk = new MemoryDisk();
    const log = await open(disk);
    log.append(entriesFrom(1, 8));
    await log.sync();
    const stale = disk.durableContent(indexOf(1));
    log.truncateSuffix(6);
    log.append(entriesFrom(6, 3, 1, 99)); // the same indexes, term and sizes; other payloads
    await log.sync();
    log.close();
    await plant(disk, indexOf(1), stale);
    const reopened = await open(disk);
    expect(reopened.recovery.indexed).toEqual([]);
    expect(reopened.entries(6, 7, Number.POSITIVE_INFINITY)[0]!.data).toEqual(Buffer.from(entriesFrom(6, 1, 1, 99)[0]!.data));
  });

  it('a read checks every frame against the index: an index file wrong in the middle is refused there, and removed', async () => {
    const disk = new MemoryDisk();
    const log = await open(disk);
    log.append([...entriesFrom(1, 9, 1), ...entriesFrom(10, 11, 3)]);
    await log.sync();
    log.close();
    // Segment 7 holds 7..9 of term 1 and 10..12 of term 3. A forged index file (its crc made good)
    // moves the run boundary to 9: every open-time check still passes.
    const decoded = decodeSegmentIndex(disk.durableContent(indexOf(7)));
    if ('bad' in decoded) throw new Error(decoded.bad);
    const forged = encodeSegmentIndex({ ...decoded, columns: { ...decoded.columns, runStarts: [7, 9] } });
    await plant(disk, indexOf(7), forged);
    const reopened = await open(disk, warnings());
    expect([reopened.recovery.indexed, reopened.term(9)]).toEqual([[segment(1), segment(7), segment(13)], 3]);
    expect(() => reopened.entries(9, 10, Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ name: 'CorruptLogError', reason: 'frame of 9 has term 1, the index says 3' }));
    expect(indexFiles(disk)).not.toContain('00000000000000000007.log.index');
  });

  it('truncating into a sealed segment removes its index file; rolling past it again writes a new one', async () => {
    const disk = await logOf20();
    const log = await open(disk);
    log.truncateSuffix(10);
    expect(indexFiles(disk)).toEqual(['00000000000000000001.log.index']);
    log.append(entriesFrom(10, 6, 2));
    await log.sync();
    expect(indexFiles(disk)).toEqual(['00000000000000000001.log.index', '00000000000000000007.log.index']);
    log.truncateSuffix(13); // at a segment boundary: segment 13 goes whole, 7 is the last again
    expect(indexFiles(disk)).toEqual(['00000000000000000001.log.index']);
    await log.sync();
    log.close();
    const reopened = await open(disk);
    expect([reopened.recovery.indexed, reopened.lastIndex(), reopened.term(12)]).toEqual([[segment(1)], 12, 2]);
  });

  it('compaction and a repair that discards the log take the index files of the segments they drop', async () => {
    const disk = await logOf20();
    const log = await open(disk);
    log.compactPrefix(12);
    await log.sync();
    expect(indexFiles(disk)).toEqual(['00000000000000000013.log.index']);
    await log.discardForRepair({ nextIndex: 21 });
    expect(indexFiles(disk)).toEqual([]);
  });

  it('open removes index files that describe nothing it keeps: of no segment, or of the last one', async () => {
    const disk = await logOf20();
    for (const name of [indexOf(19), indexOf(25)]) {
      const file = disk.open(name, { create: true });
      disk.write(file, 0, Buffer.from('not an index'));
      disk.close(file);
    }
    const log = await open(disk);
    expect(log.recovery.indexed).toEqual([segment(1), segment(7), segment(13)]);
    expect(indexFiles(disk)).toEqual(['00000000000000000001.log.index', '00000000000000000007.log.index', '00000000000000000013.log.index']);
  });
});
