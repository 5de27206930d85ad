import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { CorruptLogError, EntryTooLargeError } from '../../src/storage/errors.js';
import { frameHeaderBytes, segmentHeaderBytes } from '../../src/storage/limits.js';
import type { StorageLogger } from '../../src/storage/segmented-log.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { MemoryDisk } from '../sim/memory-disk.js';
import { dataEnd } from './log-conformance.js';

const dir = '/data/group-3';
const limits = { segmentBytesMax: 560, entryBytesMax: 200 } as const; // six frames of 78 bytes a segment
const dataBytes = 50;
const frame = frameHeaderBytes + dataBytes; // every test entry's frame size

function entriesFrom(index: number, count: number, term = 1): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: index + i,
    term,
    type: 'normal' as const,
    data: Uint8Array.from({ length: dataBytes }, (_, k) => (index + i + k) & 255),
  }));
}

function recordingLogger(): StorageLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_obj, msg) => lines.push(msg), error: (_obj, msg) => lines.push(`error: ${msg}`) };
}

async function logWith(count: number, disk = new MemoryDisk()): Promise<{ disk: MemoryDisk; log: SegmentedLog }> {
  const log = await SegmentedLog.open({ disk, dir, ...limits });
  log.append(entriesFrom(1, count));
  await log.sync();
  return { disk, log };
}

function segmentFiles(disk: MemoryDisk): string[] {
  return disk.list(dir).filter((name) => name.endsWith('.log'));
}

function snapshotFiles(disk: MemoryDisk): Map<string, string> {
  return new Map(disk.list(dir).map((name) => [name, Buffer.from(disk.durableContent(`${dir}/${name}`)).toString('hex')]));
}

function reopen(disk: MemoryDisk, logger?: StorageLogger): Promise<SegmentedLog> {
  return SegmentedLog.open({ disk, dir, ...limits, ...(logger ? { logger } : {}) });
}

describe('SegmentedLog sync on the calling thread (inline)', () => {
  /** InlineNotingDisk notes, for each fdatasync, its file's name and whether it was asked inline. */
  class InlineNotingDisk extends MemoryDisk {
    readonly syncs: string[] = [];
    override fdatasync(file: { path: string }, options: { readonly inline?: boolean } = {}): Promise<void> {
      this.syncs.push(`${file.path.slice(dir.length + 1)}${options.inline === true ? ' inline' : ''}`);
      return super.fdatasync(file);
    }
  }

  it('flushes a plain append inline, and a roll or a growth on the pool whatever the caller asked', async () => {
    const disk = new InlineNotingDisk({ preallocateBytes: 1024 }); // one growth makes a segment full size
    const log = await SegmentedLog.open({ disk, dir, ...limits });
    for (let index = 1; index <= 7; index++) {
      log.append(entriesFrom(index, 1));
      await log.sync({ inline: true });
    }
    const logSyncs = disk.syncs.filter((name) => name.endsWith('.log') || name.endsWith('inline'));
    // The first sync creates the segment file (the directory changes) and grows it: the pool. Six
    // frames fill it; the seventh entry rolls: the sealed segment (trimmed) and the new one change
    // size and the directory changes, so that sync goes to the pool too.
    expect(logSyncs).toEqual([
      '00000000000000000001.log',
      ...Array.from({ length: 5 }, () => '00000000000000000001.log inline'),
      '00000000000000000001.log',
      '00000000000000000007.log',
    ]);
    expect(disk.syncs).toContain('00000000000000000001.log.index'); // the sealed segment's index, on the pool
  });

  it('flushes a truncation within the segment on the pool: the file\'s length changed', async () => {
    const disk = new InlineNotingDisk({ preallocateBytes: 1024 });
    const log = await SegmentedLog.open({ disk, dir, ...limits });
    log.append(entriesFrom(1, 4));
    await log.sync();
    disk.syncs.splice(0);
    log.append(entriesFrom(3, 1, 2)); // a new leader's entry 3 replaces entries 3 and 4
    await log.sync({ inline: true });
    log.append(entriesFrom(4, 1, 2));
    await log.sync({ inline: true });
    expect(disk.syncs.filter((name) => name.endsWith('.log') || name.endsWith('inline'))).toEqual(['00000000000000000001.log', '00000000000000000001.log inline']);
  });
});

describe('SegmentedLog segments', () => {
  it('rolls at segmentBytesMax and names segments by their first index, zero-padded', async () => {
    const { disk, log } = await logWith(20);
    const perSegment = Math.floor((limits.segmentBytesMax - segmentHeaderBytes) / frame); // 6
    expect(segmentFiles(disk)).toEqual(['00000000000000000001.log', '00000000000000000007.log', '00000000000000000013.log', '00000000000000000019.log']);
    expect(perSegment).toBe(6);
    for (const name of segmentFiles(disk)) expect(disk.durableContent(`${dir}/${name}`).length).toBeLessThanOrEqual(limits.segmentBytesMax);
    expect(log.entries(1, 21, Number.POSITIVE_INFINITY).map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('compactPrefix drops whole segments only, and firstIndex survives reopen', async () => {
    const { disk, log } = await logWith(20);
    log.compactPrefix(9);
    expect(log.firstIndex()).toBe(10);
    expect(log.term(9)).toBeUndefined();
    expect(log.term(10)).toBe(1);
    await log.sync();
    expect(segmentFiles(disk)).toEqual(['00000000000000000007.log', '00000000000000000013.log', '00000000000000000019.log']);
    log.close();
    const reopened = await reopen(disk);
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([10, 20]);
    expect(reopened.entries(10, 21, Number.POSITIVE_INFINITY)).toHaveLength(11);
  });

  it('compactPrefix past the end empties the log, which continues after it', async () => {
    const { disk, log } = await logWith(5);
    log.compactPrefix(30);
    expect([log.firstIndex(), log.lastIndex()]).toEqual([31, 30]);
    log.append(entriesFrom(31, 2, 2));
    await log.sync();
    expect(segmentFiles(disk)).toEqual(['00000000000000000031.log']);
    log.close();
    const reopened = await reopen(disk);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.term(32)]).toEqual([31, 32, 2]);
  });

  it('append over a conflicting suffix truncates it, across segments', async () => {
    const { disk, log } = await logWith(20);
    log.append(entriesFrom(5, 2, 2));
    expect([log.lastIndex(), log.term(4), log.term(5), log.term(6), log.term(7)]).toEqual([6, 1, 2, 2, undefined]);
    await log.sync();
    expect(segmentFiles(disk)).toEqual(['00000000000000000001.log']);
    disk.crash();
    const reopened = await reopen(disk);
    expect(reopened.lastIndex()).toBe(6);
  });

  it('entries of an empty range is empty, with no segment at all too (a fresh log, or one compacted past its end)', async () => {
    const log = await SegmentedLog.open({ disk: new MemoryDisk(), dir, ...limits });
    expect(log.entries(1, 1, 100)).toEqual([]);
    log.append(entriesFrom(1, 10));
    expect(log.entries(4, 4, 100)).toEqual([]);
    log.compactPrefix(20);
    expect(log.entries(21, 21, 100)).toEqual([]);
  });

  it('entries honours maxBytes but always returns one entry', async () => {
    const { log } = await logWith(10);
    expect(log.entries(1, 11, 0)).toHaveLength(1);
    expect(log.entries(1, 11, 3 * (dataBytes + 24))).toHaveLength(3);
    expect(log.entries(3, 3, 100)).toEqual([]);
  });

  it('rejects an entry over entryBytesMax before writing anything', async () => {
    const { log } = await logWith(3);
    const big: Entry = { index: 4, term: 1, type: 'normal', data: new Uint8Array(limits.entryBytesMax + 1) };
    expect(() => log.append([...entriesFrom(4, 0), big])).toThrow(EntryTooLargeError);
    expect(log.lastIndex()).toBe(3);
  });
});

describe('SegmentedLog growing files ahead of the data', () => {
  const preallocateBytes = 200;
  const first = `${dir}/00000000000000000001.log`;

  it('grows the active segment by preallocateBytes, up to segmentBytesMax, and trims it at a roll', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const log = await SegmentedLog.open({ disk, dir, ...limits });
    log.append(entriesFrom(1, 1));
    await log.sync();
    expect(disk.durableContent(first).length).toBe(segmentHeaderBytes + frame + preallocateBytes);
    log.append(entriesFrom(2, 2)); // the file holds them: no growth
    expect(disk.fileSize(first)).toBe(segmentHeaderBytes + frame + preallocateBytes);
    log.append(entriesFrom(4, 3)); // past it: grown, but never past segmentBytesMax
    expect(disk.fileSize(first)).toBe(limits.segmentBytesMax);
    log.append(entriesFrom(7, 1)); // a roll: the segment rolled from keeps its data only
    await log.sync();
    expect(disk.durableContent(first).length).toBe(segmentHeaderBytes + 6 * frame);
    expect(disk.fileSize(`${dir}/00000000000000000007.log`)).toBe(segmentHeaderBytes + frame + preallocateBytes);
  });

  it('reads the zeros past the data as the clean end: no torn tail, nothing cut', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const { log } = await logWith(3, disk);
    log.close();
    const logger = recordingLogger();
    const reopened = await reopen(disk, logger);
    expect([reopened.lastIndex(), reopened.recovery.truncated, logger.lines]).toEqual([3, [], []]);
    expect(disk.fileSize(first)).toBe(segmentHeaderBytes + 3 * frame + preallocateBytes);
    reopened.append(entriesFrom(4, 1)); // appends go into the zeros, which stay the end after them
    await reopened.sync();
    reopened.close();
    const held = (await reopen(disk)).entries(1, 5, Number.POSITIVE_INFINITY);
    expect(held.map((e) => [e.index, Buffer.from(e.data).toString('hex')])).toEqual(entriesFrom(1, 4).map((e) => [e.index, Buffer.from(e.data).toString('hex')]));
  });

  it('cuts a bit flipped in the zeros past the data as a torn tail: every entry stays', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const { log } = await logWith(3, disk);
    log.close();
    disk.flipBit(first, disk.fileSize(first) - 5, 2);
    const reopened = await reopen(disk);
    expect(reopened.lastIndex()).toBe(3);
    expect(reopened.recovery.repaired).toBeUndefined();
    expect(reopened.recovery.truncated).toEqual([expect.objectContaining({ path: first, offset: segmentHeaderBytes + 3 * frame })]);
  });

  it('accepts zeros past the data of a segment before the last (its trim never reached the disk) and trims them', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const log = await SegmentedLog.open({ disk, dir, ...limits });
    for (let index = 1; index <= 6; index++) {
      log.append(entriesFrom(index, 1));
      await log.sync();
    }
    log.append(entriesFrom(7, 1)); // the roll trims segment 1, and the sync makes the trim durable
    await log.sync();
    log.close();
    // Undo the trim on the durable media, as a log written before the roll synced its trim could be left.
    const file = disk.open(first, { create: false });
    disk.truncate(file, limits.segmentBytesMax);
    await disk.fdatasync(file);
    disk.close(file);
    disk.crash();
    expect(disk.fileSize(first)).toBe(limits.segmentBytesMax);
    const reopened = await reopen(disk);
    expect([reopened.lastIndex(), reopened.recovery.truncated, reopened.recovery.repaired]).toEqual([7, [], undefined]);
    expect(disk.fileSize(first)).toBe(segmentHeaderBytes + 6 * frame);
  });

  it('drops a last segment of nothing but zeros: a roll whose header write was lost after its file grew', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const { log } = await logWith(6, disk);
    log.append(entriesFrom(7, 1)); // rolls; no sync covers the new segment
    log.close();
    const rolled = disk.open(`${dir}/00000000000000000007.log`, { create: false });
    disk.truncate(rolled, 0);
    disk.truncate(rolled, 300); // grown ahead, the header never written
    await disk.fdatasync(rolled);
    disk.close(rolled);
    const logger = recordingLogger();
    const reopened = await reopen(disk, logger);
    expect([reopened.lastIndex(), reopened.recovery.repaired]).toEqual([6, undefined]);
    expect(reopened.recovery.removed).toEqual([{ path: `${dir}/00000000000000000007.log`, reason: 'segment holds only zeros: its header never reached the disk' }]);
  });

  it('refuses a last segment whose header is zeros but whose frames are there: damage, not a lost roll', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const { log } = await logWith(8, disk);
    log.close();
    const last = disk.open(`${dir}/00000000000000000007.log`, { create: false });
    disk.write(last, 0, new Uint8Array(segmentHeaderBytes));
    await disk.fdatasync(last);
    disk.close(last);
    await expect(reopen(disk)).rejects.toBeInstanceOf(CorruptLogError);
  });

  it('still finds entries lost to zeros in a segment before the last: the next one does not follow', async () => {
    const disk = new MemoryDisk({ preallocateBytes });
    const { log } = await logWith(8, disk);
    log.close();
    disk.truncateFile(first, segmentHeaderBytes + 4 * frame);
    disk.truncateFile(first, segmentHeaderBytes + 6 * frame); // frames 5 and 6 read as zeros
    const error = await reopen(disk).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptLogError);
    expect((error as CorruptLogError).message).toContain('does not follow index 4');
  });
});

describe('SegmentedLog recovery', () => {
  /** tornLast leaves entries 1..7 synced and entry 8 written but not synced, the log closed. */
  async function tornLast(): Promise<{ disk: MemoryDisk; last: string; size: number }> {
    const { disk, log } = await logWith(7);
    log.append(entriesFrom(8, 1));
    log.close();
    const last = `${dir}/00000000000000000007.log`;
    return { disk, last, size: dataEnd(disk, last) };
  }

  it('cuts a torn tail (an unsynced frame cut mid-way) and reports it', async () => {
    const { disk, last, size } = await tornLast();
    disk.truncateFile(last, size - 10);
    const logger = recordingLogger();
    const reopened = await reopen(disk, logger);
    expect(reopened.lastIndex()).toBe(7);
    expect(reopened.recovery.truncated).toEqual([{ path: last, offset: size - frame, droppedBytes: frame - 10, reason: 'frame runs past end of file' }]);
    expect(reopened.recovery.repaired).toBeUndefined();
    expect(logger.lines).toContain('truncated torn tail of log');
    expect(disk.durableContent(last).length).toBe(size - frame);
  });

  it('cuts an unsynced last frame whose bit flipped to the last valid frame', async () => {
    const { disk, last, size } = await tornLast();
    disk.flipBit(last, size - 3, 5);
    const reopened = await reopen(disk);
    expect(reopened.lastIndex()).toBe(7);
    expect(reopened.recovery.truncated[0]).toMatchObject({ path: last, offset: size - frame, reason: 'crc mismatch' });
    expect(reopened.entries(1, 8, Number.POSITIVE_INFINITY)).toEqual(entriesFrom(1, 7).map((e) => ({ ...e, data: expect.anything() })));
  });

  it.each([
    ['cut short', (disk: MemoryDisk, path: string, size: number) => disk.truncateFile(path, size - 10)],
    ['with a flipped bit', (disk: MemoryDisk, path: string, size: number) => disk.flipBit(path, size - 3, 5)],
  ])('throws CorruptLogError for a synced last frame %s, changing nothing: a crash cannot explain it', async (_what, damage) => {
    const { disk, log } = await logWith(8);
    log.close();
    const last = `${dir}/00000000000000000007.log`;
    damage(disk, last, dataEnd(disk, last));
    const before = snapshotFiles(disk);
    const error = await reopen(disk).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptLogError);
    expect(error).toMatchObject({ path: last, offset: segmentHeaderBytes + frame });
    expect((error as CorruptLogError).message).toContain('index 8 was synced');
    expect(snapshotFiles(disk)).toEqual(before);
  });

  it.each([
    ['a payload byte', frameHeaderBytes + 7],
    ['the length field', 5],
    ['the index field', 9],
  ])('throws CorruptLogError for a flipped bit in %s of a middle frame, changing nothing', async (_what, offsetInFrame) => {
    const { disk, log } = await logWith(10);
    log.close();
    const last = `${dir}/00000000000000000007.log`;
    disk.flipBit(last, segmentHeaderBytes + frame + offsetInFrame, 2); // frame of entry 8, followed by 9 and 10
    const before = snapshotFiles(disk);
    const error = await reopen(disk).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptLogError);
    expect(error).toMatchObject({ path: last, offset: segmentHeaderBytes + frame });
    expect(snapshotFiles(disk)).toEqual(before);
  });

  it('throws CorruptLogError for a flipped bit in the last frame of a segment that is not the last', async () => {
    const { disk, log } = await logWith(10);
    log.close();
    const first = `${dir}/00000000000000000001.log`;
    disk.flipBit(first, disk.durableContent(first).length - 1, 0);
    const before = snapshotFiles(disk);
    await expect(reopen(disk)).rejects.toMatchObject({ name: 'CorruptLogError', path: first, offset: segmentHeaderBytes + 5 * frame });
    expect(snapshotFiles(disk)).toEqual(before);
  });

  it('throws CorruptLogError for a damaged segment header', async () => {
    const { disk, log } = await logWith(10);
    log.close();
    disk.flipBit(`${dir}/00000000000000000001.log`, 10, 1);
    await expect(reopen(disk)).rejects.toBeInstanceOf(CorruptLogError);
  });

  it('detects bit rot on read after open', async () => {
    const { disk, log } = await logWith(10);
    disk.flipBit(`${dir}/00000000000000000001.log`, segmentHeaderBytes + frame + frameHeaderBytes, 0);
    expect(() => log.entries(1, 11, Number.POSITIVE_INFINITY)).toThrow(CorruptLogError);
    expect(log.entries(3, 11, Number.POSITIVE_INFINITY)).toHaveLength(8);
  });

  it('restores segments a truncation cut off when the crash came before sync', async () => {
    const { disk, log } = await logWith(20);
    log.truncateSuffix(7);
    expect(segmentFiles(disk)).toEqual(['00000000000000000001.log']);
    disk.crash();
    const reopened = await reopen(disk);
    expect([reopened.lastIndex(), reopened.recovery.restored.length]).toEqual([20, 3]);
  });

  it('drops segments a truncation cut off once the rewrite is synced', async () => {
    const { disk, log } = await logWith(20);
    log.append(entriesFrom(7, 1, 2));
    await log.sync();
    expect(segmentFiles(disk)).toEqual(['00000000000000000001.log', '00000000000000000007.log']);
    expect(disk.list(dir).filter((name) => name.includes('.stale'))).toEqual([]);
    disk.crash();
    const reopened = await reopen(disk);
    expect([reopened.lastIndex(), reopened.term(7)]).toEqual([7, 2]);
  });
});
