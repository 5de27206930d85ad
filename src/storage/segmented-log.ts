// SegmentedLog is the durable log of one Raft group in one directory: append-only segment files
// named by their first index, one CRC32C-checked frame per entry (see frame.ts), and an in-memory
// index of every entry (byte offset and crc in typed arrays, terms as runs, membership changes
// listed; entry-index.ts): term() is a search over a few term runs and entries() reads the frames
// it needs with one read per segment, checking each. (Offsets for every entry rather than a sparse
// index: 8 bytes an entry outside the JS heap, and no frame is read twice.) On open, each sealed
// segment's part of the index comes from the segment's index file, written when the log rolled
// past it and checked against the segment (segment-index-file.ts); the last segment, and any
// sealed one whose index file is missing or does not match, is scanned frame by frame. A read that
// finds a damaged frame removes its segment's index file, so that the next open scans and repairs.
//
// On-disk model. Writes go to the OS at once and become durable at sync(). The active segment's
// file is grown ahead of its data (Disk.preallocateBytes; zeros, which read as the end of the
// frames) and trimmed when the log rolls to a new one. truncateSuffix never
// unlinks: a segment it cuts off entirely is renamed to <name>.stale.<n> and unlinked by the next
// sync(), after the rewritten data is durable; compactPrefix records the new first index in
// log-start (and in the header of every segment created after it) and drops whole segments, both
// at the next sync(). So a crash before sync() leaves the state of the last completed sync, and a
// crash during one leaves a prefix of a state the log had since, never a mix: frames chain their
// CRCs (each is seeded with the previous frame's), so a frame or segment written after a different
// predecessor fails its check. Each completed sync() that made new entries durable also records,
// in the header of the newest segment whose header is durable, the index it synced through
// (frame.ts), so that open() can tell a torn write (entries past the last completed sync) from
// damage (entries it covered that are gone). The record is written after the sync, durable with
// the next one called after it: written before, the kernel could put it on disk ahead of the
// entries it names.
// Those records live in the segment's header, so a last segment cut inside its header takes them
// along; the file synced-segment names the newest segment a completed sync covered, and such a
// loss there is damage too (see lostSyncedSegment in log-recovery.ts). What lies past it, and past
// the newest record at or below it, is what no completed sync covered and what the last ones did
// whose records had not reached the disk yet: the kernel may have written any of it back before a
// crash, in any order, so damage there is a torn write (syncFrontier).
// open() (log-recovery.ts) cuts a torn tail of the last segment,
// restores stale segments the live log still chains into, and makes what it keeps durable before
// it resolves. Anything else is corruption: open() throws CorruptLogError, or, with onCorruption
// 'truncate', cuts the log back to the last valid entry before it and records a repair bound
// (repairThroughIndex) that the next sync() at or past it removes.
import { assert } from '../raft/assert.js';
import { entryHeaderBytes } from '../raft/storage.js';
import type { Entry } from '../raft/types.js';
import type { Disk, DiskFile } from './disk.js';
import { EntryIndex } from './entry-index.js';
import { CorruptLogError, EntryTooLargeError, LogClosedError } from './errors.js';
import { encodeFrame, encodeSegmentHeader, encodeSyncRecord, frameBytes, parseFrame, syncRecordOffset } from './frame.js';
import * as limits from './limits.js';
import type { CorruptionPolicy, RecoveredLog, RecoveryReport, StorageLogger } from './log-recovery.js';
import { recoverLog, writeRepairBound } from './log-recovery.js';
import { corruptGenerationNext, corruptPath, repairFileName, repairTermFileName, segmentPath, stalePath, stageSyncedSegment, writeStartFile } from './segment-files.js';
import { encodeSegmentIndex, segmentIndexPath } from './segment-index-file.js';
import type { ScannedSegment } from './segment-scan.js';

export type { CorruptionPolicy, LogRepair, RecoveryReport, StorageLogger } from './log-recovery.js';

/** SegmentedLogOptions configures a log; the limits default to those in limits.ts. */
export interface SegmentedLogOptions {
  readonly disk: Disk;
  readonly dir: string;
  readonly logger?: StorageLogger;
  readonly segmentBytesMax?: number;
  readonly entryBytesMax?: number;
  /** onCorruption: what open() does about corruption a crash cannot explain; default 'refuse'. */
  readonly onCorruption?: CorruptionPolicy;
  /** currentTerm: the term of the Raft group the log belongs to, recorded with a repair bound (see repairTerm()). */
  readonly currentTerm?: number | undefined;
}

/** IndexFile is a sealed segment's index file written since the last sync: made durable by the next one. */
interface IndexFile {
  readonly file: DiskFile;
  closed: boolean;
}

interface Segment {
  readonly baseIndex: number;
  readonly path: string;
  readonly prevCrc: number;
  readonly file: DiskFile;
  /** bytes: the end of the segment's data; allocated: the file's length, zeros from bytes on. */
  bytes: number;
  allocated: number;
  closed: boolean;
  /** headerDurable: a completed fdatasync covered the segment (its header and sync records are on disk). */
  headerDurable: boolean;
}

/** SegmentedLog: see the file comment. Invariant: entries are exactly [firstIndex(), lastIndex()]. */
export class SegmentedLog {
  private readonly disk: Disk;
  private readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly entryBytesMax: number;
  private readonly segments: Segment[] = [];
  // frames indexes every frame physically held, from frames.first() (which may be < start).
  private readonly frames: EntryIndex;
  private start: number;
  private last: number;
  // Work for the next sync().
  private dirty = new Set<Segment>();
  private stalePaths: string[] = [];
  private compacted: Segment[] = [];
  // compactedOpen: compacted segments whose files are still open (until the sync that unlinks them).
  private readonly compactedOpen = new Set<Segment>();
  private startDirty = false;
  private staleGenerationNext: number;
  private directoryDirty = false;
  /** resized: a segment's length changed since the last sync() (grown, trimmed, cut): its flush commits the file system's journal. */
  private resized = false;
  // Index files of sealed segments written since the last sync (segment-index-file.ts), and every
  // index file still open (a sync in progress holds some that indexFiles no longer lists).
  private indexFiles = new Map<Segment, IndexFile>();
  private readonly openIndexFiles = new Set<IndexFile>();
  // durableThrough: every entry through it is on disk (a completed sync covered it; no truncation
  // since). Sync records claim no more than it, so that none can reach the disk ahead of the entries
  // it names (see sync). syncSeq numbers the next record.
  private durableThrough: number;
  // pendingThrough: the index each sync not yet complete covers; a truncation lowers them.
  private readonly pendingThrough = new Set<{ through: number }>();
  private syncSeq: number;
  private syncTail: Promise<void> = Promise.resolve();
  private closed = false;
  // namedBase: the base synced-segment names on disk (0: none). Each sync names the
  // newest segment whose header is durable (see stageSyncedSegmentName).
  private namedBase: number;
  private repairThrough: number | undefined;
  private repairTermValue: number | undefined;
  private readonly logger: StorageLogger | undefined;
  /** recovery is what opening the log found and repaired. */
  readonly recovery: RecoveryReport;

  private constructor(options: SegmentedLogOptions, recovered: RecoveredLog) {
    this.disk = options.disk;
    this.dir = options.dir;
    this.segmentBytesMax = options.segmentBytesMax ?? limits.segmentBytesMax;
    this.entryBytesMax = options.entryBytesMax ?? limits.entryBytesMax;
    this.start = recovered.start;
    this.staleGenerationNext = recovered.staleGenerationNext;
    this.syncSeq = recovered.syncSeqNext;
    this.frames = new EntryIndex(recovered.segments[0]?.baseIndex ?? recovered.start);
    this.last = this.frames.first() - 1;
    this.recovery = recovered.report;
    this.repairThrough = recovered.repairThroughIndex;
    this.repairTermValue = recovered.repairTerm;
    this.logger = options.logger;
    for (const scanned of recovered.segments) this.adopt(scanned);
    const indexed = new Set(recovered.report.indexed);
    for (const segment of this.segments.slice(0, -1)) {
      // Zeros left past the data of a segment that is not the last: its trim at a roll never reached the disk.
      this.trim(segment);
      // A sealed segment recovery had to scan gets the index file that spares the next open the scan.
      if (!indexed.has(segment.path)) this.writeIndexFile(segment);
    }
    if (this.last < this.start - 1) this.last = this.start - 1;
    // Recovery made every entry it kept durable, and its records say so.
    this.durableThrough = this.last;
    this.namedBase = this.segments.at(-1)?.baseIndex ?? 0; // recovery named it
    this.checkInvariants();
  }

  /**
   * open recovers the log in options.dir (creating the directory when missing) and resolves to it,
   * everything it holds durable. When the log is corrupt it rejects with CorruptLogError, having
   * changed nothing on disk, or, with onCorruption 'truncate', repairs it (see recovery.repaired
   * and repairThroughIndex()).
   */
  static async open(options: SegmentedLogOptions): Promise<SegmentedLog> {
    const segmentBytesMax = options.segmentBytesMax ?? limits.segmentBytesMax;
    const entryBytesMax = options.entryBytesMax ?? limits.entryBytesMax;
    assert(frameBytes(entryBytesMax) + limits.segmentHeaderBytes <= segmentBytesMax, 'an entry must fit a segment', { segmentBytesMax, entryBytesMax });
    const recovered = await recoverLog(options.disk, options.dir, { entryBytesMax, logger: options.logger, onCorruption: options.onCorruption ?? 'refuse', currentTerm: options.currentTerm });
    return new SegmentedLog(options, recovered);
  }

  private adopt(scanned: ScannedSegment): void {
    const file = this.disk.open(scanned.path, { create: false });
    const allocated = this.disk.size(file);
    const segment: Segment = { baseIndex: scanned.baseIndex, path: scanned.path, prevCrc: scanned.prevCrc, file, bytes: scanned.validBytes, allocated, closed: false, headerDurable: true };
    assert(allocated >= scanned.validBytes, 'segment shrank during recovery', { path: scanned.path, allocated, validBytes: scanned.validBytes });
    this.segments.push(segment);
    const { frames } = scanned;
    this.frames.pushAll(frames.columns(frames.first(), frames.first() + frames.length));
    this.last = scanned.baseIndex + frames.length - 1;
  }

  /**
   * repairThroughIndex is the last index of entries a repair cut away (this open's or an earlier
   * one's) while the log does not hold that index again, else undefined: the entries this node may
   * have acknowledged and no longer holds. A Raft group must not vote or campaign before its log
   * reaches it. Durable (repair-through); the first sync() at or past it removes it.
   */
  repairThroughIndex(): number | undefined {
    return this.repairThrough;
  }

  /**
   * repairTerm is the Raft term recorded with the repair bound (SegmentedLogOptions.currentTerm
   * when the repair happened), if any: every entry the repair cut away is of that term or an
   * earlier one. Undefined without a bound, or when the repair did not know the term.
   */
  repairTerm(): number | undefined {
    return this.repairThrough === undefined ? undefined : this.repairTermValue;
  }

  /** segmentBaseIndexes lists the first index of every segment file, oldest first (retention deletes whole segments). */
  segmentBaseIndexes(): number[] {
    return this.segments.map((segment) => Math.max(segment.baseIndex, this.start));
  }

  /** firstIndex is the index of the first entry held (lastIndex() + 1 when none are). */
  firstIndex(): number {
    return this.start;
  }

  /** lastIndex is the index of the last entry held (firstIndex() - 1 when none are). */
  lastIndex(): number {
    return this.last;
  }

  /** term returns the term of the entry at index, or undefined when it is not held. */
  term(index: number): number | undefined {
    if (index < this.start || index > this.last) return undefined;
    return this.frames.term(index);
  }

  /** confChangeIndexes returns the indexes of the confChange entries held in [lo, hi), ascending, without reading them. */
  confChangeIndexes(lo: number, hi: number): number[] {
    return this.frames.confChangesBetween(Math.max(lo, this.start), Math.min(hi, this.last + 1));
  }

  /**
   * append writes entries to the OS (durable at the next sync()). Entries below firstIndex() are
   * ignored; the first other one must be <= lastIndex() + 1, and any held suffix from it on is
   * truncated first (MemoryStorage.append semantics). Throws EntryTooLargeError before writing
   * anything when an entry exceeds entryBytesMax.
   */
  append(entries: readonly Entry[]): void {
    this.assertOpen();
    let skip = 0;
    while (skip < entries.length && entries[skip]!.index < this.start) skip++;
    const fresh = entries.slice(skip);
    const first = fresh[0];
    if (first === undefined) return;
    assert(first.index <= this.last + 1, 'gap in append', { firstNew: first.index, last: this.last });
    fresh.forEach((entry, i) => {
      assert(entry.index === first.index + i && entry.term >= 1, 'entries not contiguous', { at: i, index: entry.index, term: entry.term });
      if (entry.data.length > this.entryBytesMax) throw new EntryTooLargeError(entry.index, entry.data.length, this.entryBytesMax);
    });
    if (first.index <= this.last) this.truncateSuffix(first.index);
    let done = 0;
    while (done < fresh.length) done += this.appendToActive(fresh, done);
    this.checkInvariants();
  }

  /** appendToActive writes as many of entries[from..] as fit the active segment; returns how many. */
  private appendToActive(entries: readonly Entry[], from: number): number {
    let segment = this.segments.at(-1);
    if (segment === undefined || !this.fits(segment, 0, entries[from]!)) segment = this.roll(entries[from]!.index);
    let bytes = 0;
    let count = 0;
    while (from + count < entries.length && this.fits(segment, bytes, entries[from + count]!)) {
      bytes += frameBytes(entries[from + count]!.data.length);
      count++;
    }
    assert(count > 0, 'entry does not fit an empty segment');
    const buffer = Buffer.allocUnsafe(bytes);
    let offset = 0;
    let prevCrc = this.lastCrc();
    for (let i = from; i < from + count; i++) {
      const entry = entries[i]!;
      prevCrc = encodeFrame(entry, prevCrc, buffer, offset);
      this.frames.push(entry.term, segment.bytes + offset, prevCrc, entry.type === 'confChange');
      offset += frameBytes(entry.data.length);
    }
    if (segment.bytes + bytes > segment.allocated) this.grow(segment, segment.bytes + bytes);
    this.disk.write(segment.file, segment.bytes, buffer);
    segment.bytes += bytes;
    this.last += count;
    this.dirty.add(segment);
    return count;
  }

  /**
   * grow lengthens the segment's file to hold `end` bytes and preallocateBytes more (never past
   * segmentBytesMax): the syncs of the appends that follow leave its length alone (see Disk).
   * The zeros past the data read as the clean end of the log (segment-scan.ts).
   */
  private grow(segment: Segment, end: number): void {
    segment.allocated = Math.max(end, Math.min(this.segmentBytesMax, end + this.disk.preallocateBytes));
    this.disk.truncate(segment.file, segment.allocated);
    this.resized = true;
  }

  /**
   * trim cuts the zeros past a segment's data, durably at the next sync() (harmless if lost, but a
   * sealed segment longer than its index file says is scanned on open).
   */
  private trim(segment: Segment): void {
    if (segment.allocated === segment.bytes) return;
    this.disk.truncate(segment.file, segment.bytes);
    segment.allocated = segment.bytes;
    this.dirty.add(segment);
    this.resized = true;
  }

  /**
   * writeIndexFile writes the index file of a sealed segment (see segment-index-file.ts), durable
   * at the next sync(). Not durable, or torn, it fails its checks on open and the segment is scanned.
   */
  private writeIndexFile(segment: Segment): void {
    const position = this.segments.indexOf(segment);
    const end = this.segments[position + 1]!.baseIndex;
    if (end === segment.baseIndex) return; // no frame to index
    const bytes = encodeSegmentIndex({ baseIndex: segment.baseIndex, prevCrc: segment.prevCrc, validBytes: segment.bytes, columns: this.frames.columns(segment.baseIndex, end) });
    this.forgetIndexFile(segment);
    const file = this.disk.open(segmentIndexPath(segment.path), { create: true });
    this.disk.truncate(file, 0);
    this.disk.write(file, 0, bytes);
    const index: IndexFile = { file, closed: false };
    this.indexFiles.set(segment, index);
    this.openIndexFiles.add(index);
    this.directoryDirty = true;
  }

  private closeIndexFile(index: IndexFile): void {
    if (index.closed) return;
    index.closed = true;
    this.disk.close(index.file);
    this.openIndexFiles.delete(index);
  }

  /** dropIndexFile removes a segment's index file, if any: the segment is about to change or go. */
  private dropIndexFile(segment: Segment): void {
    this.forgetIndexFile(segment);
    const path = segmentIndexPath(segment.path);
    if (!this.disk.exists(path)) return;
    this.disk.unlink(path);
    this.directoryDirty = true;
  }

  private fits(segment: Segment, pendingBytes: number, entry: Entry): boolean {
    const empty = segment.bytes === limits.segmentHeaderBytes && pendingBytes === 0;
    return empty || segment.bytes + pendingBytes + frameBytes(entry.data.length) <= this.segmentBytesMax;
  }

  /** lastCrc is the crc the next frame chains from. */
  private lastCrc(): number {
    return this.frames.lastCrc() ?? this.segments.at(-1)?.prevCrc ?? 0;
  }

  /** roll starts a new segment whose first entry will be baseIndex. */
  private roll(baseIndex: number): Segment {
    assert(baseIndex === this.last + 1, 'roll not at the end of the log', { baseIndex, last: this.last });
    const path = segmentPath(this.dir, baseIndex);
    const prevCrc = this.lastCrc();
    // The segment rolled from is done growing: give back the room it did not use.
    const sealed = this.segments.at(-1);
    if (sealed !== undefined) this.trim(sealed);
    const file = this.disk.open(path, { create: true });
    this.disk.truncate(file, 0);
    this.disk.write(file, 0, encodeSegmentHeader({ baseIndex, startIndex: this.start, prevCrc }));
    const segment: Segment = { baseIndex, path, prevCrc, file, bytes: limits.segmentHeaderBytes, allocated: limits.segmentHeaderBytes, closed: false, headerDurable: false };
    if (this.segments.length === 0) this.frames.reset(baseIndex);
    this.segments.push(segment);
    if (sealed !== undefined) this.writeIndexFile(sealed);
    this.dirty.add(segment);
    this.directoryDirty = true;
    return segment;
  }

  /**
   * truncateSuffix removes the entries from fromIndex on (no-op past lastIndex()). fromIndex must be
   * >= firstIndex(): compacted entries are committed and never truncated.
   */
  truncateSuffix(fromIndex: number): void {
    this.assertOpen();
    assert(fromIndex >= this.start, 'truncating compacted entries', { fromIndex, first: this.start });
    if (fromIndex > this.last) return;
    const owner = this.segments[this.segmentPosition(fromIndex)];
    while (this.segments.length > 0 && this.segments.at(-1)!.baseIndex >= fromIndex) {
      this.retire(this.segments.pop()!);
    }
    const keep = fromIndex - this.frames.first();
    const segment = this.segments.at(-1);
    // A sealed segment the log appends to again: its index file would no longer describe it.
    if (segment !== undefined) this.dropIndexFile(segment);
    // Entries from fromIndex on are no longer durable, nor are those a sync in flight covers.
    this.forgetDurableAfter(fromIndex - 1);
    // Sync records may name entries about to go: lower both of the new last segment's first, so
    // that the disk never holds fewer entries than a record says were synced (its writes reach it
    // in order around the records), even with one record damaged later; and so that the newest
    // record says so when the truncation retired the segment that held the newest (recovery's
    // sync frontier).
    if (segment !== undefined) {
      this.writeSyncRecord(segment, this.durableThrough);
      this.writeSyncRecord(segment, this.durableThrough);
    }
    if (segment !== undefined && owner === segment) {
      segment.bytes = this.frames.offset(fromIndex);
      segment.allocated = segment.bytes;
      this.disk.truncate(segment.file, segment.bytes);
      this.dirty.add(segment);
      this.resized = true;
    }
    if (segment === undefined) this.frames.reset(fromIndex);
    else this.frames.keep(keep);
    this.last = fromIndex - 1;
    this.checkInvariants();
  }

  /**
   * compactPrefix makes throughIndex + 1 the first index and drops every segment whose entries are
   * all <= throughIndex, durably at the next sync(). throughIndex may be past lastIndex() (a
   * snapshot installed from the leader): the log is then empty and continues at throughIndex + 1.
   */
  compactPrefix(throughIndex: number): void {
    this.assertOpen();
    if (throughIndex < this.start) return;
    while (this.segments.length > 0 && this.segmentLastIndex(0) <= throughIndex) {
      const segment = this.segments.shift()!;
      // Open until the sync that unlinks it: a sync in flight may still have to make it durable
      // (segments become durable in log order), else a crash could leave it torn before durable ones.
      this.dirty.delete(segment);
      this.compacted.push(segment);
      this.compactedOpen.add(segment);
      this.forgetIndexFile(segment);
    }
    const nextPhysicalFirst = this.segments[0]?.baseIndex ?? throughIndex + 1;
    this.frames.dropFirst(nextPhysicalFirst - this.frames.first());
    this.start = throughIndex + 1;
    this.last = Math.max(this.last, throughIndex);
    this.startDirty = true;
    this.checkInvariants();
  }

  /**
   * retire takes a segment cut off by truncateSuffix out of the log: renamed to a new .stale.<n>
   * name, to be unlinked by the next sync() (recovery restores it if the truncation never reached
   * the disk).
   */
  private retire(segment: Segment): void {
    this.dropIndexFile(segment);
    this.release(segment);
    const stale = stalePath(segment.path, this.staleGenerationNext++);
    this.disk.rename(segment.path, stale);
    this.stalePaths.push(stale);
    this.directoryDirty = true;
  }

  private segmentLastIndex(position: number): number {
    const next = this.segments[position + 1];
    return next === undefined ? this.last : next.baseIndex - 1;
  }

  private release(segment: Segment): void {
    this.dirty.delete(segment);
    this.compactedOpen.delete(segment);
    if (segment.closed) return;
    segment.closed = true;
    this.disk.close(segment.file);
  }

  /** forgetIndexFile stops syncing a segment's new index file (its segment goes; the file with it, at the next sync). */
  private forgetIndexFile(segment: Segment): void {
    const pending = this.indexFiles.get(segment);
    if (pending === undefined) return;
    this.closeIndexFile(pending);
    this.indexFiles.delete(segment);
  }

  /**
   * sync makes everything appended, truncated and compacted so far durable, and resolves then.
   * Calls are serialized; one call covers all earlier operations. Order: log-start, then the dirty
   * segments one by one in log order (so a later segment is never durable before an earlier one),
   * then unlinks, then the directory. inline: flush on the calling thread (Disk.fdatasync) when
   * the sync is a plain append's, into one segment whose length stayed the same; a roll, a
   * truncation, growing a segment, a compaction or a repair changes files' lengths or the directory
   * (journal commits, a megabyte index file) and goes to the pool whatever the caller asked.
   */
  sync(options: { readonly inline?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const covers = { through: this.last };
    this.pendingThrough.add(covers);
    const repaired = this.repairThrough !== undefined && this.holdsWhatRepairOwes(this.repairThrough) ? this.repairThrough : undefined;
    const unlink = [...this.stalePaths, ...this.compacted.flatMap((s) => [s.path, segmentIndexPath(s.path)])];
    const plainAppend = this.dirty.size === 1 && !this.resized && !this.startDirty && !this.directoryDirty && this.indexFiles.size === 0 && unlink.length === 0 && this.compacted.length === 0 && repaired === undefined;
    const work = { covers, start: this.startDirty ? this.start : undefined, dirty: [...this.dirty], indexFiles: [...this.indexFiles.values()], unlink, compacted: this.compacted, retired: this.stalePaths.length > 0, directory: this.directoryDirty, repaired, inline: options.inline === true && plainAppend };
    this.dirty = new Set();
    this.indexFiles = new Map();
    this.stalePaths = [];
    this.compacted = [];
    this.startDirty = false;
    this.directoryDirty = false;
    this.resized = false;
    const run = this.syncTail.then(() => this.syncOnce(work)).finally(() => this.pendingThrough.delete(covers));
    this.syncTail = run.catch(() => undefined);
    return run;
  }

  /**
   * writeSyncRecord writes the next sync record into segment's header, durable at the next
   * sync() called after it (which covers the segment), or whenever the kernel writes it back:
   * every entry through syncedIndex must be on disk already (durableThrough), so that in no order
   * of writeback does a record reach the disk ahead of an entry it names.
   */
  private writeSyncRecord(segment: Segment, syncedIndex: number): void {
    assert(syncedIndex <= this.durableThrough, 'sync record ahead of the durable log', { syncedIndex, durableThrough: this.durableThrough });
    const seq = this.syncSeq++;
    this.disk.write(segment.file, syncRecordOffset(seq), encodeSyncRecord({ seq, syncedIndex }));
    this.dirty.add(segment);
  }

  /**
   * recordSynced is the end of a sync that covered entries through `through`: they are durable now,
   * and a record in the newest segment whose header is durable says so. That record is written
   * after the fdatasync, not before it: written before, the kernel could put it on disk ahead of
   * the entries it names, and a crash then would read as entries lost. It becomes durable with the
   * next sync() called after it (or the kernel's writeback), so the entries of the last sync before
   * a crash may have no record (of the last few, when a caller starts syncs before earlier ones
   * complete, as the Raft host does not): damage to them would pass for a torn write, the price of
   * never a false alarm.
   */
  private recordSynced(through: number): void {
    if (through <= this.durableThrough) return; // nothing new: the records already say as much
    this.durableThrough = through;
    const segment = this.newestDurableSegment();
    if (segment !== undefined && !segment.closed) this.writeSyncRecord(segment, through);
  }

  /** forgetDurableAfter: entries past index are going (a truncation), and with them what syncs in flight cover. */
  private forgetDurableAfter(index: number): void {
    this.durableThrough = Math.min(this.durableThrough, index);
    for (const pending of this.pendingThrough) pending.through = Math.min(pending.through, index);
  }

  /** newestDurableSegment is the last segment whose header a completed fdatasync covered (from the end: it is the last or close to it). */
  private newestDurableSegment(): Segment | undefined {
    let position = this.segments.length - 1;
    while (position >= 0 && !this.segments[position]!.headerDurable) position--;
    return this.segments[position];
  }

  /**
   * holdsWhatRepairOwes says whether the log, once synced, holds every entry the repair bound
   * through may stand for: it reaches the bound, or (a bound the repair could not know, indexMax)
   * holds an entry of a later term than the repair's, which came from a leader of that term and
   * follows every entry committed before it (the Raft core's endAbstainingWhenCaughtUp). Entries
   * this node acknowledged before the repair were committed, if at all, in its term or earlier.
   */
  private holdsWhatRepairOwes(through: number): boolean {
    if (this.last >= through) return true;
    if (through !== limits.indexMax || this.repairTermValue === undefined || this.last < this.frames.first()) return false;
    return this.frames.term(this.last) > this.repairTermValue;
  }

  private async syncOnce(work: {
    covers: { through: number };
    start: number | undefined;
    dirty: Segment[];
    indexFiles: IndexFile[];
    unlink: string[];
    compacted: Segment[];
    retired: boolean;
    directory: boolean;
    repaired: number | undefined;
    inline: boolean;
  }): Promise<void> {
    this.assertOpen();
    if (work.start !== undefined) await writeStartFile(this.disk, this.dir, work.start);
    // The directory before the data: segments retired to .stale names are out of the live log
    // before the one cut before them is rewritten on disk, and a new first index is in place before
    // segments past it are durable. Else a crash could bring back an old segment beside new data
    // that no longer chains into it, or segments below the first index never synced, and recovery
    // would read damage.
    if (work.retired || work.start !== undefined) await this.disk.syncDirectory(this.dir);
    work.dirty.sort((a, b) => a.baseIndex - b.baseIndex);
    for (const segment of work.dirty) {
      if (segment.closed) continue;
      await this.disk.fdatasync(segment.file, { inline: work.inline });
      segment.headerDurable = true;
    }
    if (!this.closed) this.recordSynced(work.covers.through);
    for (const index of work.indexFiles) {
      if (index.closed) continue;
      await this.disk.fdatasync(index.file);
      this.closeIndexFile(index);
    }
    const naming = await this.stageSyncedSegmentName();
    this.assertOpen(); // closed meanwhile: leave the unlinks to recovery
    // The name moves before any file goes, so that it never names a base whose file is gone.
    naming?.put();
    for (const path of work.unlink) if (this.disk.exists(path)) this.disk.unlink(path);
    for (const segment of work.compacted) this.release(segment);
    // Every entry through the repair bound is durable now: the bound can go.
    for (const name of work.repaired === undefined ? [] : [repairFileName, repairTermFileName]) {
      const path = `${this.dir}/${name}`;
      if (this.disk.exists(path)) this.disk.unlink(path);
    }
    if (work.directory || work.unlink.length > 0 || work.start !== undefined || work.repaired !== undefined || naming !== undefined) await this.disk.syncDirectory(this.dir);
    if (work.repaired !== undefined && this.repairThrough === work.repaired) {
      this.repairThrough = undefined;
      this.logger?.warn({ dir: this.dir, repairThroughIndex: work.repaired }, 'repaired log holds every entry it had lost again');
    }
  }

  /**
   * stageSyncedSegmentName prepares synced-segment to name the newest segment whose header is
   * durable (or none), when it names another: the new file written and fdatasynced, its rename
   * (put) left to the caller, which makes it before the sync's unlinks and durable with them.
   * Every entry the sync covers then lies in the named segment or below it; a segment the log let
   * go of (truncated, compacted) stops being named at the sync that unlinks its file, no later.
   */
  private async stageSyncedSegmentName(): Promise<{ put: () => void } | undefined> {
    const base = this.newestDurableSegment()?.baseIndex ?? 0;
    if (base === this.namedBase) return undefined;
    const rename = await stageSyncedSegment(this.disk, this.dir, base);
    return {
      put: () => {
        rename();
        this.namedBase = base;
      },
    };
  }

  /**
   * discardForRepair sets every segment aside (as .corrupt-<n> files) and leaves the log empty,
   * continuing at nextIndex, which may be below firstIndex(): for a Raft group that lost its
   * snapshot and restarts from an earlier one, its leader to send the rest. It first records the
   * repair bound (the last index held, see repairThroughIndex), so that a crash midway leaves it.
   * Resolves once all of it is durable.
   */
  async discardForRepair(options: { nextIndex: number; term?: number | undefined }): Promise<void> {
    this.assertOpen();
    assert(options.nextIndex >= 1, 'log indexes start at 1', { nextIndex: options.nextIndex });
    await this.sync();
    const owed = Math.max(this.repairThrough ?? 0, this.last);
    if (owed >= options.nextIndex) {
      await writeRepairBound(this.disk, this.dir, { throughIndex: owed, term: options.term });
      await this.disk.syncDirectory(this.dir);
      this.repairThrough = owed;
      this.repairTermValue = options.term;
    }
    // Before the segments go (the bound is durable): the log restarts below them, and a later roll may reuse a base.
    (await stageSyncedSegment(this.disk, this.dir, 0))();
    this.namedBase = 0;
    const generation = corruptGenerationNext(this.disk, this.dir);
    const setAside = this.segments.map((segment) => {
      this.dropIndexFile(segment);
      this.release(segment);
      const to = corruptPath(segment.path, generation);
      this.disk.rename(segment.path, to);
      return to;
    });
    await writeStartFile(this.disk, this.dir, options.nextIndex);
    await this.disk.syncDirectory(this.dir);
    this.segments.length = 0;
    this.frames.reset(options.nextIndex);
    const droppedFromIndex = this.start;
    this.start = options.nextIndex;
    this.last = options.nextIndex - 1;
    // The log restarts empty: no record may claim an entry it does not hold.
    this.forgetDurableAfter(this.last);
    this.logger?.error({ dir: this.dir, droppedFromIndex, droppedThroughIndex: owed, nextIndex: options.nextIndex, setAside }, 'log set aside for repair; it restarts empty');
    this.checkInvariants();
  }

  /**
   * entries returns entries [lo, hi) up to maxBytes (counted as raft's entryBytes; always at least
   * one). Throws (a bug) when out of range, CorruptLogError when a frame fails its check.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.assertOpen();
    assert(lo >= this.start && hi <= this.last + 1 && lo <= hi, 'entries out of range', { lo, hi, first: this.start, last: this.last });
    const result: Entry[] = [];
    if (lo === hi) return result; // no segment need hold lo: the log may have none
    let bytes = 0;
    let end = lo;
    let position = this.segmentPosition(lo);
    while (end < hi) {
      while ((this.segments[position + 1]?.baseIndex ?? Infinity) <= end) position++;
      bytes += this.frameEnd(end, position) - this.frames.offset(end) - limits.frameHeaderBytes + entryHeaderBytes;
      if (end > lo && bytes > maxBytes) break;
      end++;
    }
    let next = lo;
    while (next < end) next = this.readRun(next, end, result);
    return result;
  }

  /** segmentPosition is the position in segments of the segment holding the frame of index. */
  private segmentPosition(index: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    assert(hi >= 0 && this.segments[0]!.baseIndex <= index, 'no segment holds the index', { index });
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid]!.baseIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** frameEnd is the byte offset where the frame of index ends in its segment, the one at position. */
  private frameEnd(index: number, position: number): number {
    const next = index + 1;
    const nextInSegment = next < this.frames.first() + this.frames.length && next < (this.segments[position + 1]?.baseIndex ?? Infinity);
    return nextInSegment ? this.frames.offset(next) : this.segments[position]!.bytes;
  }

  /** readRun reads entries [from, end) of one segment (at most readBytesMax) into result. */
  private readRun(from: number, end: number, result: Entry[]): number {
    const segmentAt = this.segmentPosition(from);
    const owner = this.segments[segmentAt]!;
    const runEnd = Math.min(end, this.segments[segmentAt + 1]?.baseIndex ?? Infinity);
    const position = this.frames.offset(from);
    let stop = from + 1;
    while (stop < runEnd && this.frameEnd(stop, segmentAt) - position <= limits.readBytesMax) stop++;
    const bytes = this.disk.read(owner.file, position, this.frameEnd(stop - 1, segmentAt) - position);
    let offset = 0;
    for (let index = from; index < stop; index++) {
      const prevCrc = index === owner.baseIndex ? owner.prevCrc : this.frames.crc(index - 1);
      const frame = parseFrame(bytes, offset, { prevCrc, entryBytesMax: this.entryBytesMax });
      // The term too: a sealed segment's terms come from its index file, unread at open.
      if (frame.kind !== 'frame' || frame.entry.index !== index || frame.entry.term !== this.frames.term(index)) {
        this.distrustSegment(owner);
        let reason = `frame of ${index} unreadable`;
        if (frame.kind === 'bad') reason = frame.reason;
        else if (frame.kind === 'frame' && frame.entry.index === index) reason = `frame of ${index} has term ${frame.entry.term}, the index says ${this.frames.term(index)}`;
        throw new CorruptLogError({ path: owner.path, offset: position + offset, reason });
      }
      result.push(frame.entry);
      offset += frame.bytes;
    }
    return stop;
  }

  /**
   * distrustSegment removes the index file of a segment a read found damaged, so that the next
   * open scans it and finds the damage (and repairs it, in 'truncate' mode), rather than trust the
   * index file and meet it again on a read.
   */
  private distrustSegment(segment: Segment): void {
    const path = segmentIndexPath(segment.path);
    if (!this.disk.exists(path)) return;
    this.dropIndexFile(segment);
    this.logger?.error({ path: segment.path, removed: path }, 'damaged frame in a sealed segment: removed its index file, so that the next open scans and repairs it');
    void this.disk.syncDirectory(this.dir).catch(() => undefined);
  }

  /** close releases every file; nothing is synced (what sync() has not covered may be lost). */
  close(): void {
    if (this.closed) return;
    for (const segment of [...this.segments, ...this.compactedOpen]) this.release(segment);
    for (const index of [...this.openIndexFiles]) this.closeIndexFile(index);
    this.indexFiles.clear();
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new LogClosedError(this.dir);
  }

  private checkInvariants(): void {
    assert(this.start >= 1 && this.last >= this.start - 1, 'log bounds', { start: this.start, last: this.last });
    assert(this.frames.first() + this.frames.length - 1 === this.last || (this.frames.length === 0 && this.segments.length === 0), 'index covers the log', {
      physicalFirst: this.frames.first(),
      held: this.frames.length,
      last: this.last,
    });
  }
}
