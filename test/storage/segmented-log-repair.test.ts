// Repair of a corrupt log (onCorruption: 'truncate'): the log is cut back to the last valid entry
// before the damage, the damaged segment and every later one are set aside as .corrupt-<n> files,
// and a repair bound (repair-through) records, durably and before anything is cut, the last index
// the log held, until a sync at or past it. The model-based suite (log-conformance.ts) damages
// random logs; these are the cases by name.
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { CorruptLogError } from '../../src/storage/errors.js';
import { frameHeaderBytes, indexMax, segmentHeaderBytes } from '../../src/storage/limits.js';
import { readIndexFile, syncedSegmentFileName } from '../../src/storage/segment-files.js';
import { syncRecordOffset } from '../../src/storage/frame.js';
import type { StorageLogger } from '../../src/storage/segmented-log.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { MemoryDisk } from '../sim/memory-disk.js';
import { dataEnd, readFile } from './log-conformance.js';
import { segmentIndexPath } from '../../src/storage/segment-index-file.js';

const dir = '/data/group-5';
const limits = { segmentBytesMax: 560, entryBytesMax: 200 } as const; // six frames of 78 bytes a segment
const dataBytes = 50;
const frame = frameHeaderBytes + dataBytes; // six frames a segment: segments start at 1, 7, 13, 19
const segment = (base: number): string => `${dir}/${String(base).padStart(20, '0')}.log`;

function entriesFrom(index: number, count: number, term = 1): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: index + i,
    term,
    type: 'normal' as const,
    data: Uint8Array.from({ length: dataBytes }, (_, k) => (index + i + k) & 255),
  }));
}

function recordingLogger(): StorageLogger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, warn: () => undefined, error: (_obj, msg) => errors.push(msg) };
}

/** drive completes a manual disk's fdatasyncs until work is done. */
async function drive<T>(disk: MemoryDisk, work: Promise<T>): Promise<T> {
  let done = false;
  const result = work.finally(() => (done = true));
  result.catch(() => undefined); // the caller sees a rejection through the promise returned
  while (!done) {
    await new Promise((resolve) => setImmediate(resolve));
    disk.completeNextSync();
  }
  return result;
}

/** crashAfter lets `completed` of a manual disk's fdatasyncs finish while work runs, then (after close) loses power. */
async function crashAfter(disk: MemoryDisk, work: Promise<unknown>, completed: number, close?: () => void): Promise<void> {
  work.catch(() => undefined); // cut short by the crash
  for (let i = 0; i < completed; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    disk.completeNextSync();
  }
  await new Promise((resolve) => setImmediate(resolve));
  close?.();
  disk.crash();
}

async function logOf20(disk = new MemoryDisk()): Promise<MemoryDisk> {
  const log = await drive(disk, SegmentedLog.open({ disk, dir, ...limits }));
  log.append(entriesFrom(1, 20));
  await drive(disk, log.sync());
  log.close();
  return disk;
}

function open(disk: MemoryDisk, options: { onCorruption: 'refuse' | 'truncate'; logger?: StorageLogger }): Promise<SegmentedLog> {
  return drive(disk, SegmentedLog.open({ disk, dir, ...limits, ...options }));
}

/**
 * meetDamage opens the log and reads all of it. Open takes sealed segments from their index files
 * without reading them, so damage in one is met by the read: it throws CorruptLogError and removes
 * the segment's index file, and the next open scans the segment and finds the damage.
 */
async function meetDamage(disk: MemoryDisk): Promise<void> {
  const log = await open(disk, { onCorruption: 'refuse' });
  expect(() => log.entries(log.firstIndex(), log.lastIndex() + 1, Number.POSITIVE_INFINITY)).toThrow(CorruptLogError);
  log.close();
}

/** readSyncedSegment returns the base synced-segment names (the newest segment a sync covered). */
function readSyncedSegment(disk: MemoryDisk): number | undefined {
  return readIndexFile(disk, dir, syncedSegmentFileName);
}

function names(disk: MemoryDisk): string[] {
  return disk.list(dir);
}

describe('SegmentedLog repair (onCorruption: truncate)', () => {
  it('a flipped bit in a middle frame: cut back to the entry before it, the rest set aside, the bound recorded', async () => {
    const disk = await logOf20();
    disk.flipBit(segment(7), segmentHeaderBytes + frame + frameHeaderBytes + 7, 3); // the payload of entry 8
    const damaged = disk.durableContent(segment(7));
    // Segment 7 is sealed: open takes it from its index file unread, and the read meets the damage.
    const trusting = await open(disk, { onCorruption: 'refuse', logger: recordingLogger() });
    expect(trusting.recovery.indexed).toEqual([segment(1), segment(7), segment(13)]);
    expect(trusting.entries(1, 8, Number.POSITIVE_INFINITY)).toHaveLength(7);
    expect(() => trusting.entries(8, 9, Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ name: 'CorruptLogError', path: segment(7), reason: 'crc mismatch' }));
    expect(names(disk)).not.toContain('00000000000000000007.log.index');
    trusting.close();
    await expect(open(disk, { onCorruption: 'refuse' })).rejects.toMatchObject({ name: 'CorruptLogError' });
    const logger = recordingLogger();
    const log = await open(disk, { onCorruption: 'truncate', logger });
    expect([log.firstIndex(), log.lastIndex(), log.repairThroughIndex()]).toEqual([1, 7, 20]);
    expect(log.recovery.repaired).toEqual({
      path: segment(7),
      offset: segmentHeaderBytes + frame,
      reason: 'crc mismatch (not the last segment)',
      fromIndex: 8,
      throughIndex: 20,
      setAside: [`${segment(7)}.corrupt-1`, `${segment(13)}.corrupt-1`, `${segment(19)}.corrupt-1`],
    });
    expect(log.entries(1, 8, Number.POSITIVE_INFINITY)).toEqual(entriesFrom(1, 7).map((entry) => ({ ...entry, data: expect.anything() })));
    expect(names(disk)).toEqual([
      '00000000000000000001.log',
      '00000000000000000001.log.index',
      '00000000000000000007.log',
      '00000000000000000007.log.corrupt-1',
      '00000000000000000013.log.corrupt-1',
      '00000000000000000019.log.corrupt-1',
      'log-start',
      'repair-through',
      'synced-segment',
    ]);
    expect(disk.durableContent(`${segment(7)}.corrupt-1`)).toEqual(damaged);
    expect(disk.durableContent(segment(7)).length).toBe(segmentHeaderBytes + frame);
    expect(logger.errors).toEqual(['corrupt log: cut back to the last valid entry before the corruption; not voting until the leader has sent the rest again']);
  });

  it('a segment file cut short in the middle of the log: cut after its last whole frame', async () => {
    const disk = await logOf20();
    disk.truncateFile(segment(7), segmentHeaderBytes + 2 * frame + 30);
    const log = await open(disk, { onCorruption: 'truncate' });
    expect([log.lastIndex(), log.repairThroughIndex()]).toEqual([8, 20]);
    expect(log.recovery.repaired).toMatchObject({ fromIndex: 9, throughIndex: 20, reason: 'frame runs past end of file (not the last segment)' });
  });

  it('the synced last segment cut short: cut after its last whole frame, owing what was synced', async () => {
    const disk = await logOf20();
    disk.truncateFile(segment(19), segmentHeaderBytes + frame + 30);
    const logger = recordingLogger();
    const log = await open(disk, { onCorruption: 'truncate', logger });
    expect([log.lastIndex(), log.repairThroughIndex()]).toEqual([19, 20]);
    expect(log.recovery.repaired).toMatchObject({ path: segment(19), offset: segmentHeaderBytes + frame, fromIndex: 20, throughIndex: 20 });
    expect(log.recovery.repaired?.reason).toContain('index 20 was synced');
    expect(log.recovery.truncated).toEqual([]);
    expect(names(disk)).toContain('00000000000000000019.log.corrupt-1');
    expect(logger.errors).toHaveLength(1);
  });

  it('records the Raft term with the bound: later opens keep it, whatever term they are in, and it goes with the bound', async () => {
    const disk = await logOf20();
    disk.truncateFile(segment(19), segmentHeaderBytes + frame + 30);
    const repaired = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 4 }));
    expect([repaired.repairThroughIndex(), repaired.repairTerm()]).toEqual([20, 4]);
    repaired.close();
    const later = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 9 }));
    expect([later.repairThroughIndex(), later.repairTerm()]).toEqual([20, 4]);
    later.append(entriesFrom(20, 1, 9));
    await drive(disk, later.sync());
    expect([later.repairThroughIndex(), later.repairTerm()]).toEqual([undefined, undefined]);
    expect(names(disk).filter((name) => name.startsWith('repair'))).toEqual([]);
  });

  it('the synced last segment cut to its header: set aside whole, owing what was synced', async () => {
    const disk = await logOf20();
    disk.truncateFile(segment(19), segmentHeaderBytes + 5);
    const log = await open(disk, { onCorruption: 'truncate' });
    expect([log.lastIndex(), log.repairThroughIndex()]).toEqual([18, 20]);
    expect(names(disk).filter((name) => name.startsWith('00000000000000000019'))).toEqual(['00000000000000000019.log.corrupt-1']);
    log.append(entriesFrom(19, 2, 2));
    await drive(disk, log.sync());
    expect(log.repairThroughIndex()).toBeUndefined();
  });

  it('the synced last segment cut inside its header: refused, or set aside owing an unknown bound until an entry of a later term is synced', async () => {
    const disk = await logOf20();
    expect(readSyncedSegment(disk)).toBe(19);
    disk.truncateFile(segment(19), 40); // its sync records go with the header
    await expect(open(disk, { onCorruption: 'refuse' })).rejects.toMatchObject({ name: 'CorruptLogError', path: segment(19) });
    expect(names(disk)).toContain('00000000000000000019.log'); // refused: nothing changed
    const logger = recordingLogger();
    const log = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 3, logger }));
    expect([log.lastIndex(), log.repairThroughIndex(), log.repairTerm()]).toEqual([18, indexMax, 3]);
    expect(log.recovery.repaired).toMatchObject({ path: segment(19), fromIndex: 19, throughIndex: indexMax, setAside: [`${segment(19)}.corrupt-1`] });
    expect(log.recovery.repaired?.reason).toContain('segment header incomplete');
    expect(log.recovery.removed).toEqual([]);
    expect(logger.errors).toHaveLength(1);
    expect(readSyncedSegment(disk)).toBe(13);
    // Entries of the repair's term or earlier may be what was lost: the bound stays.
    log.append(entriesFrom(19, 4, 3));
    await drive(disk, log.sync());
    expect(log.repairThroughIndex()).toBe(indexMax);
    log.close();
    const reopened = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 5 }));
    expect([reopened.repairThroughIndex(), reopened.repairTerm(), reopened.recovery.repaired]).toEqual([indexMax, 3, undefined]);
    // An entry of a later term came from a leader that holds everything committed before it.
    reopened.append(entriesFrom(23, 1, 4));
    await drive(disk, reopened.sync());
    expect(reopened.repairThroughIndex()).toBeUndefined();
    expect(names(disk).filter((name) => name.startsWith('repair'))).toEqual([]);
  });

  it('the synced last segment gone, or all zeros: damage too', async () => {
    for (const damage of ['unlink', 'zeros'] as const) {
      const disk = await logOf20();
      if (damage === 'unlink') disk.unlink(segment(19));
      else {
        const file = disk.open(segment(19), { create: false });
        disk.write(file, 0, new Uint8Array(dataEnd(disk, segment(19))));
        disk.close(file);
      }
      const log = await open(disk, { onCorruption: 'truncate' });
      expect([damage, log.lastIndex(), log.repairThroughIndex()]).toEqual([damage, 18, indexMax]);
      expect(log.recovery.repaired?.reason).toContain(damage === 'unlink' ? 'segment file missing' : 'holds only zeros');
    }
  });

  it('a crash at any point of the repair of a lost synced segment: the next open still owes the unknown bound', async () => {
    for (let completed = 0; completed <= 6; completed++) {
      const disk = await logOf20(new MemoryDisk({ syncMode: 'manual' }));
      disk.truncateFile(segment(19), 40);
      await crashAfter(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 3 }), completed);
      // synced-segment comes down only once the bound is durable: never a torn roll in between.
      const log = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 3 }));
      expect([completed, log.lastIndex(), log.repairThroughIndex()]).toEqual([completed, 18, indexMax]);
      log.close();
    }
  });

  it('an unknown bound whose term file is lost takes the current term, writes it back, and still goes with an entry of a later term', async () => {
    const disk = await logOf20();
    disk.truncateFile(segment(19), 40);
    (await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 3 }))).close();
    disk.flipBit(`${dir}/repair-term`, 0, 0);
    const log = await drive(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate', currentTerm: 5, logger: recordingLogger() }));
    expect([log.repairThroughIndex(), log.repairTerm()]).toEqual([indexMax, 5]);
    expect(readIndexFile(disk, dir, 'repair-term')).toBe(5);
    log.append(entriesFrom(19, 2, 5));
    await drive(disk, log.sync());
    expect(log.repairThroughIndex()).toBe(indexMax);
    log.append(entriesFrom(21, 1, 6));
    await drive(disk, log.sync());
    expect(log.repairThroughIndex()).toBeUndefined();
  });

  it('a sync in flight while a truncation retires the segment it covers names the segment kept, before it resolves', async () => {
    const disk = new MemoryDisk({ syncMode: 'manual' });
    const log = await drive(disk, SegmentedLog.open({ disk, dir, ...limits }));
    log.append(entriesFrom(1, 12));
    await drive(disk, log.sync());
    expect(readSyncedSegment(disk)).toBe(7);
    log.append(entriesFrom(13, 8)); // rolls at 13 and 19
    const syncing = log.sync();
    log.truncateSuffix(19); // retires 19 while the sync runs; it acknowledges 13..18, in segment 13
    await drive(disk, syncing);
    expect(readSyncedSegment(disk)).toBe(13);
    log.append(entriesFrom(19, 2, 2)); // rolls at 19 again
    await drive(disk, log.sync());
    expect(readSyncedSegment(disk)).toBe(19);
  });

  it('a roll no sync covered, cut inside its header, is a torn write: also at the base of a segment a truncation retired', async () => {
    for (const syncTruncation of [false, true]) {
      const disk = await logOf20();
      const log = await open(disk, { onCorruption: 'refuse' });
      log.truncateSuffix(19); // retires segment 19, which synced-segment names
      if (syncTruncation) await drive(disk, log.sync());
      log.append(entriesFrom(19, 3, 2)); // rolls at 19 again
      log.close();
      disk.truncateFile(segment(19), 40);
      const reopened = await open(disk, { onCorruption: 'refuse' });
      // Unsynced, the truncation may be undone: the retired segment is restored.
      const expected = syncTruncation ? { lastIndex: 18, term: 1 } : { lastIndex: 20, term: 1 };
      expect([syncTruncation, reopened.lastIndex(), reopened.term(reopened.lastIndex()), reopened.recovery.repaired]).toEqual([syncTruncation, expected.lastIndex, expected.term, undefined]);
      expect(readSyncedSegment(disk)).toBe(reopened.segmentBaseIndexes().at(-1));
    }
  });

  it('a crash at any point of the sync after a truncation retired the segment synced-segment names: no damage', async () => {
    for (let completed = 0; completed <= 6; completed++) {
      const disk = await logOf20(new MemoryDisk({ syncMode: 'manual' }));
      const log = await open(disk, { onCorruption: 'refuse' });
      log.truncateSuffix(17); // retires segment 19, cuts segment 13
      await crashAfter(disk, log.sync(), completed, () => log.close());
      // Between the unlink of the retired segment and the renaming, synced-segment must not name it.
      const reopened = await open(disk, { onCorruption: 'refuse' });
      expect([completed, reopened.recovery.repaired]).toEqual([completed, undefined]);
      expect([16, 20]).toContain(reopened.lastIndex());
    }
  });

  it('an unsynced last frame cut short is a torn write, not damage: no bound', async () => {
    const disk = await logOf20();
    const log = await open(disk, { onCorruption: 'truncate' });
    log.append(entriesFrom(21, 1));
    log.close();
    disk.truncateFile(segment(19), dataEnd(disk, segment(19)) - 10);
    const reopened = await open(disk, { onCorruption: 'truncate' });
    expect([reopened.lastIndex(), reopened.repairThroughIndex(), reopened.recovery.repaired]).toEqual([20, undefined, undefined]);
    expect(reopened.recovery.truncated).toHaveLength(1);
  });

  it('a damaged header of the first segment: the log is empty, still owing all it held', async () => {
    const disk = await logOf20();
    disk.flipBit(segment(1), 10, 1);
    const log = await open(disk, { onCorruption: 'truncate' });
    expect([log.firstIndex(), log.lastIndex(), log.repairThroughIndex()]).toEqual([1, 0, 20]);
    expect(names(disk).filter((name) => name.endsWith('.log'))).toEqual([]);
    log.append(entriesFrom(1, 3, 2));
    await log.sync();
    expect(log.term(3)).toBe(2);
  });

  it('the bound survives reopens and goes with the first sync that reaches it', async () => {
    const disk = await logOf20();
    disk.flipBit(segment(13), segmentHeaderBytes + 2 * frame + 30, 0); // entry 15
    await meetDamage(disk);
    (await open(disk, { onCorruption: 'truncate' })).close();
    const log = await open(disk, { onCorruption: 'refuse' });
    expect([log.lastIndex(), log.repairThroughIndex(), log.recovery.repaired]).toEqual([14, 20, undefined]);
    log.append(entriesFrom(15, 5, 2));
    await log.sync();
    expect(log.repairThroughIndex()).toBe(20);
    log.append(entriesFrom(20, 1, 2));
    await log.sync();
    expect(log.repairThroughIndex()).toBeUndefined();
    expect(names(disk)).not.toContain('repair-through');
    log.close();
    expect((await open(disk, { onCorruption: 'refuse' })).repairThroughIndex()).toBeUndefined();
  });

  it('a crash at any point of a repair: the next open finishes it, and the bound was on disk before anything was cut', async () => {
    for (let completed = 0; completed <= 8; completed++) {
      const disk = await logOf20(new MemoryDisk({ syncMode: 'manual' }));
      disk.flipBit(segment(7), segmentHeaderBytes + 3 * frame + 40, 6); // entry 10
      await meetDamage(disk);
      await crashAfter(disk, SegmentedLog.open({ disk, dir, ...limits, onCorruption: 'truncate' }), completed);
      const log = await open(disk, { onCorruption: 'truncate' });
      expect([completed, log.lastIndex(), log.repairThroughIndex()]).toEqual([completed, 9, 20]);
    }
  });

  it('discardForRepair empties the log at an earlier index (a lost snapshot), owing what it held', async () => {
    const disk = await logOf20();
    const log = await open(disk, { onCorruption: 'refuse' });
    log.compactPrefix(9);
    await log.sync();
    await log.discardForRepair({ nextIndex: 2 });
    expect([log.firstIndex(), log.lastIndex(), log.repairThroughIndex()]).toEqual([2, 1, 20]);
    expect(names(disk)).toEqual(['00000000000000000007.log.corrupt-1', '00000000000000000013.log.corrupt-1', '00000000000000000019.log.corrupt-1', 'log-start', 'repair-through', 'synced-segment']);
    expect(readSyncedSegment(disk)).toBe(0); // no segment, said so: a missing file would mean the log cannot tell
    log.close();
    const reopened = await open(disk, { onCorruption: 'refuse' });
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.repairThroughIndex()]).toEqual([2, 1, 20]);
    reopened.append(entriesFrom(2, 19, 3));
    await reopened.sync();
    expect([reopened.lastIndex(), reopened.repairThroughIndex()]).toEqual([20, undefined]);
  });

  it('a corrupt start file: the segment headers give the start back; a corrupt repair bound is dropped', async () => {
    const disk = await logOf20();
    const log = await open(disk, { onCorruption: 'refuse' });
    log.compactPrefix(9);
    await log.sync();
    log.close();
    disk.flipBit(`${dir}/log-start`, 2, 0);
    await expect(open(disk, { onCorruption: 'refuse' })).rejects.toMatchObject({ name: 'CorruptLogError', reason: 'bad log-start file' });
    const reopened = await open(disk, { onCorruption: 'truncate' });
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([7, 20]); // 7..9 were compacted but are still on disk, intact
    reopened.close();
    disk.flipBit(segment(13), segmentHeaderBytes + frame + 30, 0);
    await meetDamage(disk);
    (await open(disk, { onCorruption: 'truncate' })).close();
    disk.flipBit(`${dir}/repair-through`, 1, 0);
    await expect(open(disk, { onCorruption: 'refuse' })).rejects.toMatchObject({ name: 'CorruptLogError', reason: 'bad repair-through file' });
    const withoutBound = await open(disk, { onCorruption: 'truncate' });
    expect([withoutBound.lastIndex(), withoutBound.repairThroughIndex()]).toEqual([13, undefined]);
    expect(names(disk)).not.toContain('repair-through');
  });

  describe('writes the kernel wrote back before a crash, no sync covering them', () => {
    /** afterWriteback reopens logOf20 + entries 21..35 (no sync; segments 25 and 31 rolled) after a crash that kept `kept` of what was written. */
    async function afterWriteback(kept: (path: string, bytes: Buffer) => Buffer | undefined): Promise<MemoryDisk> {
      const disk = await logOf20();
      const log = await open(disk, { onCorruption: 'refuse' });
      log.append(entriesFrom(21, 15));
      log.close();
      const written = new Map(disk.list(dir).map((name) => [`${dir}/${name}`, readFile(disk, `${dir}/${name}`)] as const));
      disk.crash();
      for (const [path, bytes] of written) {
        const back = kept(path, bytes);
        if (back === undefined) continue;
        const file = disk.open(path, { create: true });
        disk.write(file, 0, back);
        disk.close(file);
      }
      return disk;
    }

    it('a later segment on disk, an earlier one not: a torn write, cut where the synced log ends', async () => {
      const disk = await afterWriteback((path, bytes) => (path === segment(31) ? bytes : undefined));
      const log = await open(disk, { onCorruption: 'refuse' });
      expect([log.lastIndex(), log.repairThroughIndex(), log.recovery.repaired]).toEqual([20, undefined, undefined]);
      expect(log.recovery.removed.map((file) => file.path)).toEqual(expect.arrayContaining([segment(25), segment(31)]));
      expect(log.entries(1, 21, Number.POSITIVE_INFINITY).map((entry) => entry.index)).toEqual(entriesFrom(1, 20).map((entry) => entry.index));
    });

    it('a sync cut short by a power loss, its segment header written back and its new frames not: no damage', async () => {
      const disk = await logOf20(new MemoryDisk({ syncMode: 'manual' }));
      const log = await open(disk, { onCorruption: 'refuse' });
      log.append(entriesFrom(21, 2)); // into segment 19, after 19 and 20
      const sync = log.sync();
      const header = readFile(disk, segment(19)).subarray(0, segmentHeaderBytes);
      await crashAfter(disk, sync, 0, () => log.close());
      const file = disk.open(segment(19), { create: false });
      disk.write(file, 0, header);
      disk.close(file);
      // A record written before the sync's fdatasync would be in that header, naming 22.
      const reopened = await open(disk, { onCorruption: 'refuse' });
      expect([reopened.lastIndex(), reopened.repairThroughIndex(), reopened.recovery.repaired]).toEqual([20, undefined, undefined]);
    });

    it('the records an open writes for the entries it kept are durable before it resolves: damage to them after a power loss is damage', async () => {
      const disk = await logOf20(new MemoryDisk({ syncMode: 'manual' }));
      const log = await open(disk, { onCorruption: 'refuse' });
      log.append(entriesFrom(21, 2)); // never synced: a kill -9 leaves them in the page cache
      log.close();
      (await open(disk, { onCorruption: 'refuse' })).close(); // makes 21 and 22 durable, and says so
      disk.crash();
      disk.flipBit(segment(19), segmentHeaderBytes + 2 * frame + 40, 1); // entry 21
      await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
    });

    it('a sealed segment whose index file reached the disk whole but its frames in part: scanned, and cut at the gap', async () => {
      // Segment 19's index file (written at the roll to 25) and its last frame are on disk, frame 21 is not:
      // the index file's checks (length, header, last frame) pass.
      const frame21 = segmentHeaderBytes + 2 * frame;
      const disk = await afterWriteback((path, bytes) => {
        if (path === segmentIndexPath(segment(19)) || path === segment(25)) return bytes;
        if (path === segment(19)) return Buffer.concat([bytes.subarray(0, frame21), Buffer.alloc(frame), bytes.subarray(frame21 + frame)]);
        return undefined;
      });
      const log = await open(disk, { onCorruption: 'refuse' });
      expect([log.lastIndex(), log.recovery.indexed, log.recovery.repaired]).toEqual([20, [segment(1), segment(7), segment(13)], undefined]);
      expect(log.entries(15, 21, Number.POSITIVE_INFINITY)).toHaveLength(6);
    });

    it('damage to what a completed sync covered is still damage, whatever follows it', async () => {
      const disk = await afterWriteback((path, bytes) => (path === segment(25) || path === segment(31) ? bytes : undefined));
      disk.flipBit(segment(19), segmentHeaderBytes + frame + 40, 1); // entry 20, synced
      await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
      const repaired = await open(disk, { onCorruption: 'truncate' });
      expect([repaired.lastIndex(), repaired.repairThroughIndex()! >= 20]).toEqual([19, true]);
    });

    it('the header of the segment synced-segment names zeroed, its sync records with it: damage, though a later segment is torn', async () => {
      const disk = await afterWriteback((path, bytes) => (path === segment(31) ? bytes : undefined));
      const file = disk.open(segment(19), { create: false });
      disk.write(file, 0, new Uint8Array(segmentHeaderBytes));
      disk.close(file);
      await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
    });

    it('the sync records of the segment synced-segment names zeroed with its first frame: damage, not a cut past an older record', async () => {
      for (const from of [syncRecordOffset(0), syncRecordOffset(1)]) {
        // One sync of 22 entries: the only record with a seq is in segment 19's header (slot 1).
        const disk = new MemoryDisk();
        const log = await open(disk, { onCorruption: 'refuse' });
        log.append(entriesFrom(1, 22));
        await drive(disk, log.sync());
        log.close();
        const file = disk.open(segment(19), { create: false });
        disk.write(file, from, new Uint8Array(segmentHeaderBytes + 10 - from));
        disk.close(file);
        await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
        const repaired = await open(disk, { onCorruption: 'truncate' });
        expect([from, Math.max(repaired.lastIndex(), repaired.repairThroughIndex() ?? 0) >= 22]).toEqual([from, true]);
      }
    });

    it('synced-segment missing (the log never removes it): damage is damage, as before the file existed', async () => {
      const disk = await afterWriteback(() => undefined);
      disk.unlink(`${dir}/${syncedSegmentFileName}`);
      disk.flipBit(segment(7), segmentHeaderBytes + frame + 40, 1); // entry 8, synced
      await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
      const fresh = new MemoryDisk();
      (await open(fresh, { onCorruption: 'refuse' })).close();
      expect(readSyncedSegment(fresh)).toBe(0); // a new log says it names no segment
    });

    it('a damaged header below the one synced-segment names is damage, though a later segment is torn', async () => {
      const disk = await afterWriteback((path, bytes) => (path === segment(31) ? bytes : undefined));
      disk.flipBit(segment(13), 10, 1);
      await expect(open(disk, { onCorruption: 'refuse' })).rejects.toThrow(CorruptLogError);
    });
  });
});
