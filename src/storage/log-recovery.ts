// recoverLog brings a log directory back to a consistent state on open: it checks every segment
// (read-only, throwing CorruptLogError before anything is changed), then removes what a crash left
// unfinished and reports it. See SegmentedLog for the on-disk model this relies on.
import { join } from 'node:path';
import type { Disk } from './disk.js';
import { CorruptLogError } from './errors.js';
import { segmentHeaderBytes } from './limits.js';
import { parseSegmentHeader } from './frame.js';
import type { ChainPoint, ScannedSegment, TornTail } from './segment-scan.js';
import { scanSegment } from './segment-scan.js';
import type { StaleSegment } from './segment-files.js';
import { fileSize, listSegments, readStartFile, readWholeFile, segmentPath, startTmpFileName, writeStartFile } from './segment-files.js';

/** StorageLogger is the logger the storage layer writes warnings to (pino-shaped). */
export interface StorageLogger {
  warn(obj: object, msg: string): void;
}

/** RecoveryReport lists what recovery changed: torn tails cut, files removed, stale ones restored. */
export interface RecoveryReport {
  readonly truncated: readonly (TornTail & { readonly path: string })[];
  readonly removed: readonly { readonly path: string; readonly reason: string }[];
  readonly restored: readonly string[];
}

/** RecoveredLog is a consistent, durable log directory: its first index and its live segments. */
export interface RecoveredLog {
  readonly start: number;
  /** staleGenerationNext is above every stale generation ever seen in the directory. */
  readonly staleGenerationNext: number;
  readonly segments: readonly ScannedSegment[];
  readonly report: RecoveryReport;
}

interface Plan {
  segments: ScannedSegment[];
  truncated: (TornTail & { path: string })[];
  // removedAtOnce hold nothing a crash could bring back; discarded are unlinked once the rest is durable.
  removedAtOnce: { path: string; reason: string }[];
  discarded: { path: string; reason: string }[];
  restored: { from: string; to: string }[];
}

/**
 * recoverLog checks the log in dir and repairs it. Throws CorruptLogError, having changed nothing.
 * On success everything the log holds is durable (the previous process may not have synced it):
 * the segments are fdatasynced in log order, then what recovery dropped is unlinked.
 */
export async function recoverLog(disk: Disk, dir: string, options: { entryBytesMax: number; logger: StorageLogger | undefined }): Promise<RecoveredLog> {
  disk.mkdirp(dir);
  const { live, stale } = listSegments(disk, dir);
  const recordedStart = readStartFile(disk, dir);
  const plan: Plan = { segments: [], truncated: [], removedAtOnce: [], discarded: [], restored: [] };
  const bases = withoutIncompleteTail(disk, dir, live, plan);
  // A compactPrefix no sync recorded still counts once a segment created after it is on disk.
  // Headers that do not parse are ignored here: below the start they are dropped, else scanned (and thrown on).
  const recorded = Math.max(recordedStart ?? 1, ...bases.map((base) => readStartIndex(disk, segmentPath(dir, base))));
  scanLive(disk, dir, dropLeading(dir, bases, recorded, plan), plan, options.entryBytesMax);
  restoreStale(disk, dir, stale, plan, { entryBytesMax: options.entryBytesMax, recordedStart: recorded });
  const startAfterRestore = Math.max(recorded, ...plan.segments.map((segment) => segment.startIndex));
  dropBelowStart(plan, startAfterRestore);
  const start = Math.max(startAfterRestore, plan.segments[0]?.baseIndex ?? startAfterRestore);
  if (start !== recorded) options.logger?.warn({ dir, recordedStart: recorded, start }, 'log starts after its recorded start');
  await applyPlan(disk, dir, plan, { start, recordedStart, logger: options.logger });
  const staleGenerationNext = Math.max(0, ...stale.map((segment) => segment.generation + 1));
  const report = { truncated: plan.truncated, removed: [...plan.removedAtOnce, ...plan.discarded], restored: plan.restored.map((r) => r.to) };
  return { start, staleGenerationNext, segments: plan.segments, report };
}

function lastIndexOf(segment: ScannedSegment): number {
  return segment.baseIndex + segment.terms.length - 1;
}

function chainPointOf(segment: ScannedSegment | undefined): ChainPoint | undefined {
  if (segment === undefined) return undefined;
  const crc = segment.crcs.at(-1) ?? segment.prevCrc;
  return { nextIndex: lastIndexOf(segment) + 1, crc, term: segment.terms.at(-1) ?? 0 };
}

function noteTail(plan: Plan, scanned: ScannedSegment): void {
  if (scanned.tail !== undefined) plan.truncated.push({ path: scanned.path, ...scanned.tail });
}

/** withoutIncompleteTail drops trailing segments whose header never reached the disk (a roll the crash interrupted). */
function withoutIncompleteTail(disk: Disk, dir: string, live: readonly number[], plan: Plan): number[] {
  const bases = [...live];
  while (bases.length > 0 && fileSize(disk, segmentPath(dir, bases.at(-1)!)) < segmentHeaderBytes) {
    plan.removedAtOnce.push({ path: segmentPath(dir, bases.pop()!), reason: 'segment header incomplete' });
  }
  return bases;
}

/** readStartIndex returns the start index a segment's header records, 0 when it does not parse. */
function readStartIndex(disk: Disk, path: string): number {
  const file = disk.open(path, { create: false });
  const header = parseSegmentHeader(disk.read(file, 0, segmentHeaderBytes));
  disk.close(file);
  return 'bad' in header ? 0 : header.startIndex;
}

/** dropLeading drops segments wholly below start: those followed by a segment starting at or before it. */
function dropLeading(dir: string, bases: readonly number[], start: number, plan: Plan): number[] {
  let first = 0;
  while (first + 1 < bases.length && bases[first + 1]! <= start) {
    plan.discarded.push({ path: segmentPath(dir, bases[first]!), reason: `below log start ${start}` });
    first++;
  }
  return bases.slice(first);
}

function scanLive(disk: Disk, dir: string, bases: readonly number[], plan: Plan, entryBytesMax: number): void {
  bases.forEach((base, i) => {
    const path = segmentPath(dir, base);
    const bytes = readWholeFile(disk, path); // one segment in memory at a time
    const after = chainPointOf(plan.segments.at(-1));
    const tailAllowed = i === bases.length - 1;
    plan.segments.push(scanSegment(bytes, { path, baseIndex: base, after, tailAllowed, entryBytesMax }));
  });
  const last = plan.segments.at(-1);
  if (last !== undefined && last.terms.length === 0) {
    plan.segments.pop();
    plan.removedAtOnce.push({ path: last.path, reason: 'segment holds no valid frame' });
  } else if (last !== undefined) {
    noteTail(plan, last);
  }
}

/**
 * restoreStale brings back segments that truncateSuffix renamed away when the live log (as found
 * after the crash) still ends exactly where one begins and chains into it: the truncation never
 * reached the disk (the newest such generation wins). Every other stale segment is discarded.
 */
function restoreStale(disk: Disk, dir: string, stale: readonly StaleSegment[], plan: Plan, options: { entryBytesMax: number; recordedStart: number }): void {
  const waiting = new Set(stale);
  for (;;) {
    const lastSegment = plan.segments.at(-1);
    const base = lastSegment === undefined ? options.recordedStart : lastIndexOf(lastSegment) + 1;
    const restorable = [...waiting]
      .filter((candidate) => candidate.baseIndex === base)
      .map((candidate) => ({ candidate, scanned: tryScan(disk, candidate.path, base, chainPointOf(lastSegment), options.entryBytesMax) }))
      .find(({ scanned }) => scanned !== undefined && scanned.terms.length > 0);
    if (restorable?.scanned === undefined) break;
    waiting.delete(restorable.candidate);
    const livePath = segmentPath(dir, base);
    plan.restored.push({ from: restorable.candidate.path, to: livePath });
    const restored = { ...restorable.scanned, path: livePath };
    noteTail(plan, restored);
    plan.segments.push(restored);
  }
  for (const { path } of waiting) plan.discarded.push({ path, reason: 'stale segment the log does not chain into' });
}

function tryScan(disk: Disk, path: string, base: number, after: ChainPoint | undefined, entryBytesMax: number): ScannedSegment | undefined {
  const bytes = readWholeFile(disk, path);
  if (bytes.length < segmentHeaderBytes) return undefined;
  try {
    return scanSegment(bytes, { path, baseIndex: base, after, tailAllowed: true, entryBytesMax });
  } catch (error) {
    if (error instanceof CorruptLogError) return undefined;
    throw error;
  }
}

function dropBelowStart(plan: Plan, start: number): void {
  while (plan.segments.length > 0 && lastIndexOf(plan.segments[0]!) < start) {
    const segment = plan.segments.shift()!;
    const restore = plan.restored.find((r) => r.to === segment.path);
    plan.restored = plan.restored.filter((r) => r !== restore);
    plan.discarded.push({ path: restore?.from ?? segment.path, reason: `below log start ${start}` });
    plan.truncated = plan.truncated.filter((cut) => cut.path !== segment.path);
  }
}

async function applyPlan(disk: Disk, dir: string, plan: Plan, options: { start: number; recordedStart: number | undefined; logger: StorageLogger | undefined }): Promise<void> {
  const { logger } = options;
  for (const { path, reason } of plan.removedAtOnce) {
    disk.unlink(path);
    logger?.warn({ path, reason }, 'removed log segment');
  }
  // In log order, so that a later segment is never durable before an earlier one is.
  for (const segment of plan.segments) {
    const restore = plan.restored.find((r) => r.to === segment.path);
    if (restore !== undefined) {
      disk.rename(restore.from, restore.to);
      logger?.warn({ path: restore.to }, 'restored segment whose truncation did not reach the disk');
    }
    const file = disk.open(segment.path, { create: false });
    const cut = plan.truncated.find((t) => t.path === segment.path);
    if (cut !== undefined) {
      disk.truncate(file, cut.offset);
      logger?.warn({ ...cut }, 'truncated torn tail of log');
    }
    await disk.fdatasync(file);
    disk.close(file);
  }
  if (options.start !== options.recordedStart) await writeStartFile(disk, dir, options.start);
  for (const { path, reason } of plan.discarded) {
    disk.unlink(path);
    logger?.warn({ path, reason }, 'removed log segment');
  }
  const tmpPath = join(dir, startTmpFileName);
  if (disk.exists(tmpPath)) disk.unlink(tmpPath);
  await disk.syncDirectory(dir);
}
