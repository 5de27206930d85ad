// recoverLog brings a log directory back to a consistent state on open: it checks every segment
// (read-only; a sealed one against its index file when that still describes it, else, and the last
// one always, by a scan of its frames), then removes what a crash left unfinished and reports it.
// Corruption that a crash cannot explain either refuses the log (CorruptLogError, before anything
// is changed) or, when the caller opted in, is repaired by cutting the log back to the last valid
// entry before it (see planRepair for why that is safe in a Raft group). See SegmentedLog for the
// on-disk model.
import { join } from 'node:path';
import type { Disk } from './disk.js';
import { CorruptLogError } from './errors.js';
import { indexMax, segmentHeaderBytes } from './limits.js';
import { EntryIndex } from './entry-index.js';
import { checkFrame, encodeSyncRecord, parseSegmentHeader, parseSyncRecords, parseSyncSlots, syncRecordOffset } from './frame.js';
import type { SegmentIndex } from './segment-index-file.js';
import { decodeSegmentIndex, listSegmentIndexFiles, segmentIndexPath } from './segment-index-file.js';
import type { SyncRecord } from './frame.js';
import type { ChainPoint, ScannedSegment, TornTail } from './segment-scan.js';
import { allZero, lastIndexAfter, lastIndexOfSegment, scanSegment } from './segment-scan.js';
import type { StaleSegment } from './segment-files.js';
import {
  corruptGenerationNext,
  corruptPath,
  listSegments,
  readIndexFile,
  ReadBuffer,
  readStartFile,
  readWholeFile,
  repairFileName,
  repairTermFileName,
  segmentPath,
  stageSyncedSegment,
  startFileName,
  syncedSegmentFileName,
  tmpSuffix,
  writeIndexFile,
  writeStartFile,
} from './segment-files.js';

/** StorageLogger is the logger the storage layer writes warnings and errors to (pino-shaped). */
export interface StorageLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * CorruptionPolicy is what opening a log does about corruption a crash cannot explain (a bad
 * frame or header in the middle of the log, a segment cut short or missing): 'refuse' throws
 * CorruptLogError and changes nothing; 'truncate' cuts the log back to the last valid entry
 * before it, for a Raft group whose leader sends the rest again.
 */
export type CorruptionPolicy = 'refuse' | 'truncate';

/**
 * LogRepair is what a repair in truncate mode cut away: every entry from fromIndex on; the files
 * set aside showed entries up to throughIndex (>= fromIndex; only checked frames count).
 */
export interface LogRepair {
  readonly path: string;
  readonly offset: number;
  readonly reason: string;
  readonly fromIndex: number;
  readonly throughIndex: number;
  /** setAside lists the .corrupt-<n> files written: the damaged segment and every one after it. */
  readonly setAside: readonly string[];
}

/** RecoveryReport lists what recovery changed: torn tails cut, files removed, stale ones restored, a repair. */
export interface RecoveryReport {
  readonly truncated: readonly (TornTail & { readonly path: string })[];
  readonly removed: readonly { readonly path: string; readonly reason: string }[];
  readonly restored: readonly string[];
  readonly repaired: LogRepair | undefined;
  /** indexed lists the sealed segments taken from their index files, unread (the rest were scanned). */
  readonly indexed: readonly string[];
}

/** RecoveredLog is a consistent, durable log directory: its first index and its live segments. */
export interface RecoveredLog {
  readonly start: number;
  /** staleGenerationNext is above every stale generation ever seen in the directory. */
  readonly staleGenerationNext: number;
  /** syncSeqNext is above the seq of every sync record in the live segments. */
  readonly syncSeqNext: number;
  readonly segments: readonly ScannedSegment[];
  readonly report: RecoveryReport;
  /** repairThroughIndex is the repair bound recorded on disk (this open's repair or an earlier one's), if any. */
  readonly repairThroughIndex: number | undefined;
  /** repairTerm is the term recorded with the repair bound, if any (see SegmentedLog.repairTerm). */
  readonly repairTerm: number | undefined;
}

interface PlannedRepair {
  readonly report: Omit<LogRepair, 'setAside'>;
  /** copies: a segment kept in part is first copied whole to its .corrupt-<n> name, then cut. */
  readonly copies: { from: string; to: string }[];
  /** moves: segments set aside whole (renamed). */
  readonly moves: { from: string; to: string }[];
  readonly cut: { path: string; offset: number } | undefined;
}

interface Plan {
  segments: ScannedSegment[];
  truncated: (TornTail & { path: string })[];
  // removedAtOnce hold nothing a crash could bring back; discarded are unlinked once the rest is durable.
  removedAtOnce: { path: string; reason: string }[];
  discarded: { path: string; reason: string }[];
  restored: { from: string; to: string }[];
  repair: PlannedRepair | undefined;
  /** indexed: the segments taken from their index files, unread. */
  indexed: Set<string>;
}

interface RecoverOptions {
  readonly entryBytesMax: number;
  readonly logger: StorageLogger | undefined;
  readonly onCorruption: CorruptionPolicy;
  /** currentTerm: the term the caller's Raft group is in, recorded with a new repair bound. */
  readonly currentTerm: number | undefined;
}

/**
 * recoverLog checks the log in dir and repairs it. With onCorruption 'refuse' it throws
 * CorruptLogError, having changed nothing, when the log is corrupt. On success everything the log
 * holds is durable (the previous process may not have synced it): the segments are fdatasynced in
 * log order, then what recovery dropped is unlinked.
 */
export async function recoverLog(disk: Disk, dir: string, options: RecoverOptions): Promise<RecoveredLog> {
  disk.mkdirp(dir);
  const { live, stale } = listSegments(disk, dir);
  const recordedStart = readStartFileOrDrop(disk, dir, options);
  const plan: Plan = { segments: [], truncated: [], removedAtOnce: [], discarded: [], restored: [], repair: undefined, indexed: new Set() };
  const recordedRepair = readRepairFile(disk, dir, options);
  const syncedSegment = readSyncedSegmentOrDrop(disk, dir, options);
  const { bases, incomplete } = withoutIncompleteTail(disk, dir, live);
  const lostSegment = lostSyncedSegment(dir, { syncedSegment, bases, incomplete, stale });
  if (lostSegment !== undefined && options.onCorruption === 'refuse') throw lostSegment;
  if (lostSegment === undefined) plan.removedAtOnce.push(...incomplete);
  // Each header read once: for the start index here, and to check a sealed segment's index file.
  const headers = new Map(bases.map((base) => [base, readHeaderBytes(disk, segmentPath(dir, base))]));
  const frontier = syncFrontier(syncedSegment, { headers, stale });
  // A compactPrefix no sync recorded still counts once a segment created after it is durable (at
  // or below the sync frontier's base, when known: above it, a header may be on disk by chance).
  // Headers that do not parse are ignored here: below the start they are dropped, else scanned.
  const durableBase = frontier?.base ?? Number.POSITIVE_INFINITY;
  const recorded = Math.max(recordedStart ?? 1, ...bases.filter((base) => base <= durableBase).map((base) => startIndexOf(headers.get(base)!)));
  const indexedBelow = indexFilesTrustedBelow(syncedSegment, stale);
  const leading = dropLeading(dir, bases, { start: recorded, durableBase }, plan);
  scanLive(disk, dir, leading, plan, { ...options, headers, frontier, indexedBelow });
  if (lostSegment !== undefined) planLostSegment(disk, dir, plan, { lostSegment, incomplete, start: recorded });
  if (plan.repair === undefined) {
    restoreStale(disk, dir, stale, plan, { entryBytesMax: options.entryBytesMax, recordedStart: recorded });
  } else {
    // Never restore after a repair: a stale segment could bring the log back to the repair bound
    // with entries this node did not acknowledge (see planRepair).
    for (const { path } of stale) plan.discarded.push({ path, reason: 'stale segment of a repaired log' });
  }
  // A torn segment a stale one is restored over goes with the rename, which replaces it.
  plan.discarded = plan.discarded.filter(({ path }) => !plan.restored.some((restore) => restore.to === path));
  const startAfterRestore = Math.max(recorded, ...plan.segments.map((segment) => segment.startIndex));
  dropBelowStart(plan, startAfterRestore);
  const start = Math.max(startAfterRestore, plan.segments[0]?.baseIndex ?? startAfterRestore);
  if (start !== recorded) options.logger?.warn({ dir, recordedStart: recorded, start }, 'log starts after its recorded start');
  // A new bound replaces a corrupt one by rename; without a new one, the corrupt one goes.
  if (recordedRepair.corruptPath !== undefined && plan.repair === undefined) plan.removedAtOnce.push({ path: recordedRepair.corruptPath, reason: 'corrupt repair bound' });
  const repairThroughIndex = plan.repair === undefined ? recordedRepair.index : Math.max(recordedRepair.index ?? 0, plan.repair.report.throughIndex);
  // A new repair records the current term; an earlier one's term stands while its bound does.
  let repairTerm = plan.repair !== undefined ? options.currentTerm : recordedRepair.index === undefined ? undefined : readRepairTerm(disk, dir, options);
  // A bound whose term is lost takes the term the group is in now: never lower than the lost one,
  // so that no entry of it ends an unknown bound early (SegmentedLog.sync); written back.
  const termLost = plan.repair === undefined && repairThroughIndex !== undefined && repairTerm === undefined && options.currentTerm !== undefined;
  if (termLost) repairTerm = options.currentTerm;
  if (repairThroughIndex === undefined && disk.exists(join(dir, repairTermFileName))) plan.removedAtOnce.push({ path: join(dir, repairTermFileName), reason: 'repair term without a repair bound' });
  // Recovery makes every entry it keeps durable, and the node may acknowledge them from then on:
  // the sync records must say so, or damage to them later would pass for a torn write. After a
  // repair they say less than before (the repair bound keeps what is owed): both slots are
  // written, so that the one left over cannot say more.
  let syncSeqNext = 1 + Math.max(0, ...plan.segments.map((segment) => segment.synced?.seq ?? 0));
  const lastSegment = plan.segments.at(-1);
  const lastIndex = lastSegment === undefined ? 0 : lastIndexOf(lastSegment);
  const syncedIndex = newestSyncRecord(plan.segments)?.syncedIndex ?? 0;
  const syncRecord = lastSegment === undefined || syncedIndex === lastIndex ? undefined : { path: lastSegment.path, records: [0, 1].map(() => ({ seq: syncSeqNext++, syncedIndex: lastIndex })) };
  if (termLost) await writeIndexFile(disk, dir, repairTermFileName, repairTerm!); // durable with the directory, in applyPlan
  await applyPlan(disk, dir, plan, { start, recordedStart, repairThroughIndex, repairTerm, syncRecord, syncedSegment, stale, logger: options.logger });
  const staleGenerationNext = Math.max(0, ...stale.map((segment) => segment.generation + 1));
  const repaired = plan.repair === undefined ? undefined : { ...plan.repair.report, setAside: [...plan.repair.copies, ...plan.repair.moves].map((file) => file.to) };
  const indexed = plan.segments.slice(0, -1).filter((segment) => plan.indexed.has(segment.path)).map((segment) => segment.path);
  const report = { truncated: plan.truncated, removed: [...plan.removedAtOnce, ...plan.discarded], restored: plan.restored.map((r) => r.to), repaired, indexed };
  return { start, staleGenerationNext, syncSeqNext, segments: plan.segments, report, repairThroughIndex, repairTerm };
}

/**
 * readStartFileOrDrop returns the recorded first index, if any. One that fails its check is
 * refused, or (truncate mode) reported and ignored: the segment headers still record the start
 * each was created with, and what they leave in below the lost start is committed and covered by
 * the group's snapshot (DurableRaftStorage compacts it away again). A new start file replaces it.
 */
function readStartFileOrDrop(disk: Disk, dir: string, options: RecoverOptions): number | undefined {
  try {
    return readStartFile(disk, dir);
  } catch (error) {
    if (!(error instanceof CorruptLogError) || options.onCorruption === 'refuse') throw error;
    options.logger?.error({ dir, err: error }, 'the start file of the log is corrupt; using the segment headers');
    return undefined;
  }
}

/**
 * readRepairFile returns the repair bound an earlier repair recorded, if any. A bound that fails
 * its check is a second fault on top of the first: refused, or (truncate mode) reported and
 * dropped, which leaves the persisted commit index as the only bound (see planRepair).
 */
function readRepairFile(disk: Disk, dir: string, options: RecoverOptions): { index: number | undefined; corruptPath: string | undefined } {
  try {
    return { index: readIndexFile(disk, dir, repairFileName), corruptPath: undefined };
  } catch (error) {
    if (!(error instanceof CorruptLogError) || options.onCorruption === 'refuse') throw error;
    options.logger?.error({ dir, err: error }, 'the repair bound of the log is corrupt; dropping it');
    return { index: undefined, corruptPath: error.path };
  }
}

/**
 * readRepairTerm returns the term recorded with the repair bound; undefined when missing or
 * corrupt (reported): recovery then takes the current term, which is never lower, when it has
 * one, and so does the Raft core.
 */
function readRepairTerm(disk: Disk, dir: string, options: RecoverOptions): number | undefined {
  try {
    return readIndexFile(disk, dir, repairTermFileName);
  } catch (error) {
    if (!(error instanceof CorruptLogError)) throw error;
    options.logger?.error({ dir, err: error }, 'the repair term of the log is corrupt; taking the current term, when known');
    return undefined;
  }
}

/**
 * readSyncedSegmentOrDrop returns the base synced-segment names (0: no segment), or undefined when
 * the log cannot tell: the file is missing (the log never removes it) or, in truncate mode, fails
 * its check (reported; refused otherwise). The log then cannot tell a lost last segment from a
 * torn roll this once, nor damage from a write the crash tore (syncFrontier), as before the file
 * existed. Open writes a new one.
 */
function readSyncedSegmentOrDrop(disk: Disk, dir: string, options: RecoverOptions): number | undefined {
  try {
    return readIndexFile(disk, dir, syncedSegmentFileName);
  } catch (error) {
    if (!(error instanceof CorruptLogError) || options.onCorruption === 'refuse') throw error;
    options.logger?.error({ dir, err: error }, 'the synced-segment file of the log is corrupt; ignoring it');
    return undefined;
  }
}

/**
 * SyncFrontier is how far the records on disk say completed syncs reached: the segment
 * synced-segment names (0: none) and the index the newest sync record at or below it gives.
 */
interface SyncFrontier {
  readonly base: number;
  readonly index: number;
}

/**
 * syncFrontier returns how far the records on disk say completed syncs reached, or undefined
 * when the log cannot tell (synced-segment missing or unreadable, a truncation retired the
 * segment it names, or that segment's sync records are damaged or gone).
 * A record names only entries a completed sync had made durable before it was written
 * (SegmentedLog.writeSyncRecord), so every entry at or below the index is on disk unless damage
 * took it, or a later truncation cut it (a Raft conflict: never committed). Past it lie the
 * entries of the last syncs whose records had not reached the disk yet (the next sync called
 * after a record makes it durable), and what no sync covered: a segment above the named base,
 * its header and records, and frames past the index, reached the disk before the crash only by
 * chance (the kernel writes dirty pages back on its own, in any order), and so may be torn
 * anywhere. See scanLive.
 */
function syncFrontier(base: number | undefined, options: { headers: ReadonlyMap<number, Uint8Array>; stale: readonly StaleSegment[] }): SyncFrontier | undefined {
  if (base === undefined) return undefined;
  // A truncation retired the named segment, and with it the records of the syncs that covered it.
  if (options.stale.some((segment) => segment.baseIndex === base)) return undefined;
  // Every record is written whole, and a new header holds two (seq 0): a slot of the named
  // segment that fails its check is damage (or a record write torn by the crash), and what the
  // other slot, or an older header, says may be far below what was synced.
  const named = options.headers.get(base);
  if (named !== undefined && parseSyncSlots(named).some((record) => record === undefined)) return undefined;
  const records = [...options.headers].flatMap(([headerBase, bytes]) => (headerBase <= base ? [parseSyncRecords(bytes)] : []));
  return { base, index: newestOf(records)?.syncedIndex ?? 0 };
}

function lastIndexOf(segment: ScannedSegment): number {
  return segment.baseIndex + segment.frames.length - 1;
}

function chainPointOf(segment: ScannedSegment | undefined): ChainPoint | undefined {
  if (segment === undefined) return undefined;
  const last = lastIndexOf(segment);
  const crc = segment.frames.lastCrc() ?? segment.prevCrc;
  return { nextIndex: last + 1, crc, term: segment.frames.length > 0 ? segment.frames.term(last) : 0 };
}

function noteTail(plan: Plan, scanned: ScannedSegment): void {
  if (scanned.tail !== undefined) plan.truncated.push({ path: scanned.path, ...scanned.tail });
}

/**
 * withoutIncompleteTail splits off the trailing segments whose header is not on disk: shorter than
 * a header, or nothing but zeros. Such a file is a roll the crash interrupted (the second kind was
 * grown ahead, Disk.preallocateBytes, and a file system may make a new length durable before the
 * data written under it), unless a sync covered it: see lostSyncedSegment. A zeroed header with
 * frames after it is not this: it scans as corruption.
 */
function withoutIncompleteTail(disk: Disk, dir: string, live: readonly number[]): { bases: number[]; incomplete: { path: string; reason: string }[] } {
  const bases = [...live];
  const incomplete: { path: string; reason: string }[] = [];
  for (;;) {
    const path = bases.length === 0 ? undefined : segmentPath(dir, bases.at(-1)!);
    if (path === undefined) return { bases, incomplete };
    const header = readHeaderBytes(disk, path);
    // The header is read first: the whole file only when it is all zeros.
    if (header.length < segmentHeaderBytes) incomplete.push({ path, reason: 'segment header incomplete' });
    else if (allZero(header, 0) && allZero(readWholeFile(disk, path), 0)) incomplete.push({ path, reason: 'segment holds only zeros: its header never reached the disk' });
    else return { bases, incomplete };
    bases.pop();
  }
}

/**
 * lostSyncedSegment returns the damage when the log lost the segment synced-segment names: it is
 * cut inside its header, all zeros or gone, while a sync covered it (so its header was durable,
 * and its entries may have been acknowledged). Its own sync records went with its header, so only
 * this file tells that from a roll a crash interrupted. A sync moves the name off a segment the
 * log let go of before it unlinks that segment's file (SegmentedLog.sync); a stale segment at the
 * named base means a truncation retired it and the crash came first: no damage. (In that window a
 * lower segment's loss is excused too: a power loss there plus damage while the node is down.)
 */
function lostSyncedSegment(
  dir: string,
  options: { syncedSegment: number | undefined; bases: readonly number[]; incomplete: readonly { path: string; reason: string }[]; stale: readonly StaleSegment[] },
): CorruptLogError | undefined {
  const { syncedSegment } = options;
  if (syncedSegment === undefined || syncedSegment === 0 || (options.bases.at(-1) ?? 0) >= syncedSegment) return undefined;
  if (options.stale.some((segment) => segment.baseIndex === syncedSegment)) return undefined;
  const path = segmentPath(dir, syncedSegment);
  const how = options.incomplete.find((file) => file.path === path)?.reason ?? 'segment file missing';
  return new CorruptLogError({ path, offset: 0, reason: `a sync covered the segment starting at ${syncedSegment}, but it is lost (${how}): its entries may have been acknowledged` });
}

/**
 * planLostSegment plans the repair of a log that lost a segment a sync covered (lostSyncedSegment):
 * the incomplete files are set aside, and since nothing left on disk tells how far the lost
 * entries reached, the bound is unknown (indexMax). The Raft group then abstains until its log
 * holds an entry of a later term than the repair's, and the log drops the bound then (see
 * SegmentedLog.sync). Added to a repair scanLive planned, the bound becomes unknown too.
 */
function planLostSegment(disk: Disk, dir: string, plan: Plan, options: { lostSegment: CorruptLogError; incomplete: readonly { path: string }[]; start: number }): void {
  const last = plan.segments.at(-1);
  const generation = corruptGenerationNext(disk, dir); // the same as a repair scanLive planned: nothing is written yet
  const moves = options.incomplete.map(({ path }) => ({ from: path, to: corruptPath(path, generation) }));
  if (plan.repair !== undefined) {
    plan.repair = { ...plan.repair, moves: [...plan.repair.moves, ...moves], report: { ...plan.repair.report, throughIndex: indexMax } };
    return;
  }
  const { path, offset, reason } = options.lostSegment;
  const fromIndex = last === undefined ? options.start : lastIndexOf(last) + 1;
  plan.repair = { report: { path, offset, reason, fromIndex, throughIndex: indexMax }, copies: [], moves, cut: undefined };
}

/** readHeaderBytes returns the bytes of a segment's header, fewer when the file is shorter. */
function readHeaderBytes(disk: Disk, path: string): Uint8Array {
  const file = disk.open(path, { create: false });
  try {
    return disk.read(file, 0, segmentHeaderBytes);
  } finally {
    disk.close(file);
  }
}

/** startIndexOf returns the start index a segment's header records, 0 when it does not parse. */
function startIndexOf(headerBytes: Uint8Array): number {
  const header = parseSegmentHeader(headerBytes);
  return 'bad' in header ? 0 : header.startIndex;
}

/**
 * dropLeading drops segments wholly below start: those followed by a segment starting at or before
 * it whose header is durable (at or below durableBase: above it, the segment may be one a
 * truncation's rewrite left torn).
 */
function dropLeading(dir: string, bases: readonly number[], options: { start: number; durableBase: number }, plan: Plan): number[] {
  const { start } = options;
  let first = 0;
  while (first + 1 < bases.length && bases[first + 1]! <= start && bases[first + 1]! <= options.durableBase) {
    plan.discarded.push({ path: segmentPath(dir, bases[first]!), reason: `below log start ${start}` });
    first++;
  }
  return bases.slice(first);
}

/**
 * indexFilesTrustedBelow returns the base below which a sealed segment's index file may stand in
 * for a scan of the segment: a completed sync made both durable, the segment before its index
 * file. That holds for a segment before the one synced-segment names (the sync that covered that
 * one's header covered the index file written at the roll to it, or an earlier sync did), unless
 * a truncation since retired segments (stale ones) at or below it. Elsewhere the kernel may have
 * written the index file back whole and the segment in part, which the checks of an index file
 * (length, header, last frame) cannot see.
 */
function indexFilesTrustedBelow(named: number | undefined, stale: readonly StaleSegment[]): number {
  if (named === undefined) return 0;
  return Math.min(named, ...stale.map((segment) => segment.baseIndex));
}

/**
 * scanLive scans the live segments in log order into plan. Damage a crash can explain ends the log
 * there: a torn tail of the last segment, as always, and, when the sync frontier is known, damage
 * past the index it gives, unless a header at or below its base fails its check (see
 * tornPastFrontier: written back by the kernel in part before the crash). The rest, and entries
 * missing up to the frontier, is corruption.
 */
function scanLive(disk: Disk, dir: string, bases: readonly number[], plan: Plan, options: RecoverOptions & { headers: ReadonlyMap<number, Uint8Array>; frontier: SyncFrontier | undefined; indexedBelow: number }): void {
  // One segment in memory at a time, all in one buffer: nothing of a scan keeps a view of its bytes.
  const buffer = new ReadBuffer();
  for (const [i, base] of bases.entries()) {
    const path = segmentPath(dir, base);
    const after = chainPointOf(plan.segments.at(-1));
    const tailAllowed = i === bases.length - 1;
    // A sealed segment whose index file still describes it is taken unread (below indexedBelow); the last one is always scanned.
    const indexed = tailAllowed || base >= options.indexedBelow ? undefined : openIndexed(disk, path, { baseIndex: base, headerBytes: options.headers.get(base)!, after, entryBytesMax: options.entryBytesMax, buffer, logger: options.logger });
    if (indexed !== undefined) {
      plan.segments.push(indexed);
      plan.indexed.add(path);
      continue;
    }
    const bytes = readWholeFile(disk, path, buffer);
    const scanned = scanSegment(bytes, { path, baseIndex: base, after, tailAllowed, entryBytesMax: options.entryBytesMax });
    if (scanned.corruption !== undefined) {
      const rest = bases.slice(i + 1);
      const soundHeader = (at: number): boolean => isSoundHeader(options.headers.get(at)!, at);
      if (tornPastFrontier(scanned, { after, rest, soundHeader, frontier: options.frontier })) {
        planTornCut(dir, plan, { scanned, bytes, rest });
        break;
      }
      if (options.onCorruption === 'refuse') throw scanned.corruption;
      planRepair(disk, dir, { scanned, bytes, after, rest, plan, entryBytesMax: options.entryBytesMax });
      break;
    }
    plan.segments.push(scanned);
  }
  const last = plan.segments.at(-1);
  if (plan.repair === undefined && last !== undefined) {
    const syncedIndex = options.frontier?.index ?? newestSyncRecord(plan.segments)?.syncedIndex ?? 0;
    if (syncedIndex > lastIndexOf(last)) {
      if (options.onCorruption === 'refuse') throw lostSyncedEntries(last, syncedIndex);
      planLostSyncedEntries(disk, dir, { last, syncedIndex, plan });
      return;
    }
  }
  if (last !== undefined && last.frames.length === 0) {
    plan.segments.pop();
    plan.discarded.push({ path: last.path, reason: 'segment holds no valid frame' });
  } else if (last !== undefined) {
    noteTail(plan, last);
  }
}

/**
 * tornPastFrontier says whether the corruption scanned found is a write the crash tore: it starts
 * past the index the sync frontier gives, and every header at or below the frontier's base, from
 * this segment's on, is sound. Such a header was durable, and its records count in the frontier:
 * if it fails its check, that is damage, whatever the index (its records may be the newest). A
 * sound one may still not follow the segment before it: a truncation rewrote that one, and the
 * crash came before this one was retired.
 */
function tornPastFrontier(
  scanned: ScannedSegment,
  options: { after: ChainPoint | undefined; rest: readonly number[]; soundHeader: (base: number) => boolean; frontier: SyncFrontier | undefined },
): boolean {
  const { frontier, soundHeader } = options;
  if (frontier === undefined) return false;
  const headerKept = scanned.validBytes >= segmentHeaderBytes;
  const fromIndex = headerKept ? scanned.baseIndex + scanned.frames.length : (options.after?.nextIndex ?? scanned.baseIndex);
  if (fromIndex <= frontier.index) return false;
  return [scanned.baseIndex, ...options.rest].every((base) => base > frontier.base || soundHeader(base));
}

/** isSoundHeader: the bytes parse as a segment header (its crc checks) naming base. */
function isSoundHeader(headerBytes: Uint8Array, base: number): boolean {
  const header = parseSegmentHeader(headerBytes);
  return !('bad' in header) && header.baseIndex === base;
}

/**
 * planTornCut ends the log at a torn write found past the sync frontier: the segment keeps its
 * valid frames (its tail is cut, as a last segment's would be) or goes when its header is not
 * usable, and every later segment goes. No record on disk says a completed sync covered any of
 * it. They go once the rest is durable and synced-segment no longer names them (applyPlan).
 */
function planTornCut(dir: string, plan: Plan, options: { scanned: ScannedSegment; bytes: Uint8Array; rest: readonly number[] }): void {
  const { scanned, bytes } = options;
  const reason = `${scanned.corruption!.reason}, past what the sync records cover: a torn write`;
  if (scanned.validBytes >= segmentHeaderBytes) {
    plan.segments.push({ ...scanned, corruption: undefined, tail: { offset: scanned.validBytes, droppedBytes: bytes.length - scanned.validBytes, reason } });
  } else {
    plan.discarded.push({ path: scanned.path, reason });
  }
  for (const base of options.rest) plan.discarded.push({ path: segmentPath(dir, base), reason: 'segment after a torn write' });
}

/**
 * openIndexed returns a sealed segment as its index file describes it, when the file is there and
 * still describes the segment (see segment-index-file.ts for the checks and why they suffice),
 * else undefined: the caller scans the segment. A file that fails a check is reported; the log
 * writes a new one once it has scanned the segment.
 */
function openIndexed(
  disk: Disk,
  path: string,
  options: { baseIndex: number; headerBytes: Uint8Array; after: ChainPoint | undefined; entryBytesMax: number; buffer: ReadBuffer; logger: StorageLogger | undefined },
): ScannedSegment | undefined {
  const indexPath = segmentIndexPath(path);
  if (!disk.exists(indexPath)) return undefined;
  const index = decodeSegmentIndex(readWholeFile(disk, indexPath, options.buffer));
  const checked = 'bad' in index ? index.bad : checkAgainstSegment(disk, path, index, options);
  if (typeof checked === 'string') {
    options.logger?.warn({ path: indexPath, reason: checked }, 'segment index file does not describe its segment; scanning the segment');
    return undefined;
  }
  const frames = new EntryIndex(options.baseIndex);
  frames.pushAll(checked.index.columns);
  return { ...checked.header, path, baseIndex: options.baseIndex, frames, validBytes: checked.index.validBytes, tail: undefined, corruption: undefined };
}

/**
 * checkAgainstSegment checks an index file against its segment: the header's base and prevCrc
 * (headerBytes, read already), the chain from the segment before, the length, and the last frame.
 * Returns what is wrong, or the index with what a scan would have taken from the header.
 */
function checkAgainstSegment(
  disk: Disk,
  path: string,
  index: SegmentIndex,
  options: { baseIndex: number; headerBytes: Uint8Array; after: ChainPoint | undefined; entryBytesMax: number },
): string | { index: SegmentIndex; header: Pick<ScannedSegment, 'startIndex' | 'prevCrc' | 'synced'> } {
  const { columns } = index;
  const count = columns.offsets.length;
  if (index.baseIndex !== options.baseIndex) return `index file names base ${index.baseIndex}`;
  const after = options.after;
  if (after !== undefined && (after.nextIndex !== index.baseIndex || after.crc !== index.prevCrc || after.term > columns.runTerms[0]!)) return `segment does not follow index ${after.nextIndex - 1}`;
  const file = disk.open(path, { create: false });
  try {
    if (disk.size(file) !== index.validBytes) return `segment is ${disk.size(file)} bytes, its index file says ${index.validBytes}`;
    const { headerBytes } = options;
    const header = parseSegmentHeader(headerBytes);
    if ('bad' in header || header.baseIndex !== index.baseIndex || header.prevCrc !== index.prevCrc) return 'segment header does not match its index file';
    const lastOffset = columns.offsets[count - 1]!;
    const prevCrc = count > 1 ? columns.crcs[count - 2]! : index.prevCrc;
    const last = checkFrame(disk.read(file, lastOffset, index.validBytes - lastOffset), 0, { prevCrc, entryBytesMax: options.entryBytesMax });
    const lastIndex = index.baseIndex + count - 1;
    if (last.kind !== 'frame' || last.index !== lastIndex || last.term !== columns.runTerms.at(-1) || last.crc !== columns.crcs[count - 1] || last.bytes !== index.validBytes - lastOffset) {
      return `the segment's last frame is not the one its index file records (index ${lastIndex})`;
    }
    return { index, header: { startIndex: header.startIndex, prevCrc: header.prevCrc, synced: parseSyncRecords(headerBytes) } };
  } finally {
    disk.close(file);
  }
}

function newestSyncRecord(segments: readonly ScannedSegment[]): SyncRecord | undefined {
  return newestOf(segments.map((segment) => segment.synced));
}

function newestOf(records: readonly (SyncRecord | undefined)[]): SyncRecord | undefined {
  let newest: SyncRecord | undefined;
  for (const record of records) if (record !== undefined && (newest === undefined || record.seq > newest.seq)) newest = record;
  return newest;
}

function lostSyncedEntries(last: ScannedSegment, syncedIndex: number): CorruptLogError {
  const reason = `the log ends at index ${lastIndexOf(last)}, but a sync record says index ${syncedIndex} was synced: synced entries are missing (the segment was cut short or damaged at its end)`;
  return new CorruptLogError({ path: last.path, offset: last.validBytes, reason });
}

/**
 * planLostSyncedEntries plans the repair of a log whose last segment ends (after any torn tail)
 * below what a completed sync recorded: the entries from there on were durable and may have been
 * acknowledged, so what a crash would explain as a torn write is damage. The segment is kept up to
 * its last valid frame (copied whole to its .corrupt-<n> name first) or set aside whole when it
 * holds none; the bound is the synced index.
 */
function planLostSyncedEntries(disk: Disk, dir: string, options: { last: ScannedSegment; syncedIndex: number; plan: Plan }): void {
  const { last, syncedIndex, plan } = options;
  const corruption = lostSyncedEntries(last, syncedIndex);
  const to = corruptPath(last.path, corruptGenerationNext(disk, dir));
  const keepsFrames = last.frames.length > 0;
  if (!keepsFrames) plan.segments.pop();
  plan.repair = {
    report: { path: last.path, offset: last.validBytes, reason: corruption.reason, fromIndex: lastIndexOf(last) + 1, throughIndex: syncedIndex },
    copies: keepsFrames ? [{ from: last.path, to }] : [],
    moves: keepsFrames ? [] : [{ from: last.path, to }],
    cut: keepsFrames ? { path: last.path, offset: last.validBytes } : undefined,
  };
}

/**
 * planRepair plans the cut of a log at corruption found in `scanned`: the valid frames before it
 * stay; the damaged segment (copied whole, then cut, when it keeps frames) and every later segment
 * are set aside as .corrupt-<n> files, kept for forensics rather than deleted: the operator can
 * see what was damaged and how, and nothing in them is read again (the group's leader sends the
 * entries back). They cost disk space until removed by hand. The bound (throughIndex) is the last
 * index the set-aside files show, counting only frames that pass a check, so that a flipped bit
 * cannot make it huge.
 *
 * Why the cut cannot lose a committed entry when at most a minority of a group's voters is damaged:
 * - Raft's election restriction counts on every voter keeping what it acknowledged: an entry is
 *   committed once a majority holds it, and any majority of votes then includes one of its holders,
 *   which votes only for a candidate whose log is at least as up to date. A cut log breaks that
 *   promise for the entries cut: this node may have acknowledged them, and its vote no longer
 *   protects them.
 * - So the node keeps its term and vote (they live in the state store, untouched here: it never
 *   votes twice in a term), and it neither votes nor campaigns until its log holds again every
 *   index it may have acknowledged: up to the persisted commit index, and up to the bound recorded
 *   here, durably, before anything is cut (repair-through, the Raft core's abstainUntilIndex), or
 *   until it holds a committed entry of a later term than its own (which follows every entry
 *   committed before it; see endAbstainingWhenCaughtUp). It still follows a leader, whose appends
 *   (or snapshot) bring the missing entries back.
 * - Every voter that votes therefore holds every entry it acknowledged: intact ones never lost them,
 *   and a repaired one votes again only once a leader has refilled its log up to the bound. A
 *   leader elected by such votes holds every committed entry, so the entries that refill the
 *   repaired log are the committed ones. With at most a minority damaged, the intact voters are a
 *   majority: they can elect that leader, and every committed entry is held by one of them.
 * - Applied state is rebuilt from the snapshot by re-applying the log up to the commit index it
 *   still supports (the persisted commit, capped at the last index), so it never runs ahead of the
 *   log, and reads (which stop at what was applied) never serve a lost entry.
 * - Damage at the end of the log is told from a torn write by the segment header's sync records
 *   (frame.ts): a log that ends below what a completed sync recorded lost synced entries, which is
 *   damage, and gets the same repair with the recorded index as its bound.
 * - A last segment cut inside its header takes its sync records along: synced-segment tells that
 *   it was synced (lostSyncedSegment), and the repair's bound is unknown (planLostSegment).
 * Not covered: damage to the entries of the last sync before a crash (the last few, with syncs
 * started back to back) when its record had not reached the disk (records are written after
 * their sync, so that none is ever on disk ahead of the frames it names): cut as a torn write.
 * A truncation's rewrite of a segment on disk but not the lowered records before it, or any
 * writeback while a truncation's retired segments are still on disk (syncFrontier), is taken
 * for damage: safe, but the node abstains until refilled; damage below the log's first index
 * (compacted frames still in its first segment) cuts the whole log (safe, but the leader must
 * resend it all); and damage to a majority of a group's voters can lose entries (no intact
 * replica may hold them; the group then waits, abstaining, rather than elect).
 */
function planRepair(
  disk: Disk,
  dir: string,
  options: { scanned: ScannedSegment; bytes: Uint8Array; after: ChainPoint | undefined; rest: readonly number[]; plan: Plan; entryBytesMax: number },
): void {
  const { scanned, bytes, plan, entryBytesMax } = options;
  const corruption = scanned.corruption!;
  const generation = corruptGenerationNext(disk, dir);
  const keepsFrames = scanned.validBytes >= segmentHeaderBytes && scanned.frames.length > 0;
  const fromIndex = keepsFrames ? scanned.baseIndex + scanned.frames.length : (options.after?.nextIndex ?? scanned.baseIndex);
  const seen = [fromIndex];
  const damagedHere = scanned.validBytes >= segmentHeaderBytes
    ? lastIndexAfter(bytes, { offset: scanned.validBytes, expectedIndex: scanned.baseIndex + scanned.frames.length, entryBytesMax })
    : lastIndexOfSegment(bytes, { path: scanned.path, baseIndex: scanned.baseIndex, entryBytesMax });
  if (damagedHere !== undefined) seen.push(damagedHere);
  const repair: PlannedRepair = {
    report: { path: corruption.path, offset: corruption.offset, reason: corruption.reason, fromIndex, throughIndex: 0 },
    copies: [],
    moves: [],
    cut: keepsFrames ? { path: scanned.path, offset: scanned.validBytes } : undefined,
  };
  if (keepsFrames) {
    plan.segments.push(scanned);
    repair.copies.push({ from: scanned.path, to: corruptPath(scanned.path, generation) });
  } else {
    repair.moves.push({ from: scanned.path, to: corruptPath(scanned.path, generation) });
  }
  for (const base of options.rest) {
    const path = segmentPath(dir, base);
    seen.push(base - 1, lastIndexOfSegment(readWholeFile(disk, path), { path, baseIndex: base, entryBytesMax }) ?? 0);
    repair.moves.push({ from: path, to: corruptPath(path, generation) });
  }
  plan.repair = { ...repair, report: { ...repair.report, throughIndex: Math.max(...seen) } };
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
      .find(({ scanned }) => scanned !== undefined && scanned.frames.length > 0);
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
  const scanned = scanSegment(bytes, { path, baseIndex: base, after, tailAllowed: true, entryBytesMax });
  return scanned.corruption === undefined ? scanned : undefined;
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

async function applyPlan(
  disk: Disk,
  dir: string,
  plan: Plan,
  options: {
    start: number;
    recordedStart: number | undefined;
    repairThroughIndex: number | undefined;
    repairTerm: number | undefined;
    syncRecord: { path: string; records: readonly SyncRecord[] } | undefined;
    syncedSegment: number | undefined;
    stale: readonly StaleSegment[];
    logger: StorageLogger | undefined;
  },
): Promise<void> {
  const { logger } = options;
  // The directory as found first: the last process's renames and creates may not be durable yet,
  // and data made durable below would otherwise stand beside the files they replaced.
  await disk.syncDirectory(dir);
  const top = plan.segments.at(-1)?.baseIndex;
  let named = options.syncedSegment;
  if (plan.repair !== undefined) {
    // The segment synced-segment names may be set aside: once the bound is durable, the name comes
    // down to the last segment kept (its header is durable: it is below the one named).
    const lowerName = named !== undefined && (top ?? 0) < named ? { to: top ?? 0 } : undefined;
    await setAside(disk, dir, plan.repair, { throughIndex: options.repairThroughIndex!, term: options.repairTerm, logger, lowerName });
    if (lowerName !== undefined) named = lowerName.to;
  }
  for (const { path, reason } of plan.removedAtOnce) {
    disk.unlink(path);
    logger?.warn({ path, reason }, 'removed log segment');
  }
  // The first index before the data past it (it only rises, and what it leaves out is committed):
  // else a crash could leave segments below it, never synced, beside durable ones.
  if (options.start !== options.recordedStart) {
    await writeStartFile(disk, dir, options.start);
    await disk.syncDirectory(dir);
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
    if (plan.repair?.cut?.path === segment.path) disk.truncate(file, plan.repair.cut.offset);
    await disk.fdatasync(file);
    // The records after the entries they name are durable, never with them (SegmentedLog.writeSyncRecord).
    const { syncRecord } = options;
    if (syncRecord?.path === segment.path) {
      for (const record of syncRecord.records) disk.write(file, syncRecordOffset(record.seq), encodeSyncRecord(record));
      await disk.fdatasync(file);
    }
    disk.close(file);
  }
  // Everything kept is durable now: synced-segment names the last segment kept (none when none
  // is), before any other file goes, so that it never names a base whose file is gone, and a
  // stale segment at the base it named still excuses that base's loss (lostSyncedSegment). Stale
  // segments at the base it is to name go first, durably: one left there would read as a
  // truncation that retired the segment named (syncFrontier).
  const removeDiscarded = (files: readonly { path: string; reason: string }[]): void => {
    for (const { path, reason } of files) {
      disk.unlink(path);
      logger?.warn({ path, reason }, 'removed log segment');
    }
  };
  if ((top ?? 0) !== named) {
    const staleAtTop = new Set(options.stale.filter((segment) => segment.baseIndex === top).map((segment) => segment.path));
    const first = plan.discarded.filter(({ path }) => staleAtTop.has(path));
    removeDiscarded(first);
    if (first.length > 0) await disk.syncDirectory(dir);
    plan.discarded = plan.discarded.filter(({ path }) => !staleAtTop.has(path));
    (await stageSyncedSegment(disk, dir, top ?? 0))();
  }
  removeDiscarded(plan.discarded);
  for (const name of [startFileName, repairFileName, repairTermFileName, syncedSegmentFileName]) {
    const tmpPath = join(dir, name + tmpSuffix);
    if (disk.exists(tmpPath)) disk.unlink(tmpPath);
  }
  // Index files of segments gone, set aside or last (the log appends to it) describe nothing kept.
  const sealed = new Set(plan.segments.slice(0, -1).map((segment) => segmentIndexPath(segment.path)));
  for (const path of listSegmentIndexFiles(disk, dir)) if (!sealed.has(path)) disk.unlink(path);
  await disk.syncDirectory(dir);
}

/**
 * setAside does the first half of a repair, before anything of the log is cut: it durably records
 * the repair bound (the log must never be shorter than what it owes without the bound on disk),
 * copies the segment to be cut, and renames the segments set aside whole. A crash anywhere in it
 * leaves a log that the next open repairs again, the bound already recorded.
 */
async function setAside(
  disk: Disk,
  dir: string,
  repair: PlannedRepair,
  options: { throughIndex: number; term: number | undefined; logger: StorageLogger | undefined; lowerName: { to: number } | undefined },
): Promise<void> {
  await writeRepairBound(disk, dir, { throughIndex: options.throughIndex, term: options.term });
  await disk.syncDirectory(dir);
  // Before anything is set aside, after the bound: a crash between must not make the lost segment read as a torn roll.
  if (options.lowerName !== undefined) (await stageSyncedSegment(disk, dir, options.lowerName.to))();
  for (const { from, to } of repair.copies) {
    const copy = disk.open(to, { create: true });
    try {
      disk.truncate(copy, 0);
      disk.write(copy, 0, readWholeFile(disk, from));
      await disk.fdatasync(copy);
    } finally {
      disk.close(copy);
    }
  }
  for (const { from, to } of repair.moves) disk.rename(from, to);
  await disk.syncDirectory(dir);
  const { fromIndex, throughIndex, ...where } = repair.report;
  options.logger?.error(
    { dir, ...where, droppedFromIndex: fromIndex, droppedThroughIndex: throughIndex, repairThroughIndex: options.throughIndex, setAside: [...repair.copies, ...repair.moves].map((file) => file.to) },
    'corrupt log: cut back to the last valid entry before the corruption; not voting until the leader has sent the rest again',
  );
}

/**
 * writeRepairBound durably records a repair bound and, when known, the term the group was in:
 * the term first, so that a bound on disk never has a term from another repair. Durable once
 * the caller syncs the directory.
 */
export async function writeRepairBound(disk: Disk, dir: string, bound: { throughIndex: number; term: number | undefined }): Promise<void> {
  if (bound.term !== undefined) await writeIndexFile(disk, dir, repairTermFileName, bound.term);
  else if (disk.exists(join(dir, repairTermFileName))) disk.unlink(join(dir, repairTermFileName));
  await writeIndexFile(disk, dir, repairFileName, bound.throughIndex);
}
