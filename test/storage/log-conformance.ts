// runLogConformance is the one model-based suite every Disk implementation passes: random
// command sequences (append, truncateSuffix, compactPrefix, sync, reopen, crash, and damage: a bit
// flipped or a segment file cut short, then a reopen with onCorruption 'truncate'; a bit flipped in
// a segment's index file, which must only cost a scan; an index file the log once wrote put back,
// which must not be trusted unless it still holds) against a plain array model. Replay a failure
// with RAFTBUS_SEED=<seed> or RAFTBUS_SEED=<seed>:<path>; run longer with RAFTBUS_RUNS=<count>.
import fc from 'fast-check';
import { basename } from 'node:path';
import { it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import type { Disk } from '../../src/storage/disk.js';
import { CorruptLogError } from '../../src/storage/errors.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { listSegmentIndexFiles, segmentIndexPath } from '../../src/storage/segment-index-file.js';
import { frameHeaderBytes, indexMax, segmentFixedHeaderBytes, segmentHeaderBytes } from '../../src/storage/limits.js';
import type { LogState } from './log-model.js';
import { agreeThrough, agreesWith, entryKey, expectSameState, lastOf, readState } from './log-model.js';

/** LogTestEnv is a disk and a directory for one run. powerLoss is absent for a real disk. */
export interface LogTestEnv {
  readonly disk: Disk;
  readonly dir: string;
  readonly powerLoss: ((options: { tear: boolean }) => void) | undefined;
  /** completeNextSync, when given, completes one waiting fdatasync (a disk whose syncs wait). */
  readonly completeNextSync: (() => boolean) | undefined;
  /** damage changes a file's durable content behind the log's back (bit rot, a lost file tail). */
  readonly damage: { flipBit(path: string, byteOffset: number, bit: number): void; truncateFile(path: string, length: number): void };
  cleanup(): void;
}

export type Command =
  | { readonly kind: 'append'; readonly back: number; readonly count: number; readonly newTerm: boolean; readonly size: number; readonly salt: number }
  | { readonly kind: 'truncate'; readonly back: number }
  | { readonly kind: 'compact'; readonly percent: number }
  | { readonly kind: 'sync' }
  | { readonly kind: 'reopen' }
  | { readonly kind: 'crash'; readonly tear: boolean }
  | { readonly kind: 'crashDuringSync'; readonly completed: number; readonly tear: boolean }
  | { readonly kind: 'damage'; readonly how: 'flipBit' | 'truncateFile' | 'flipIndexBit'; readonly segment: number; readonly perMille: number; readonly bit: number }
  | { readonly kind: 'staleIndex'; readonly file: number; readonly version: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), back: fc.nat(6), count: fc.integer({ min: 1, max: 8 }), newTerm: fc.boolean(), size: fc.nat(300), salt: fc.nat(255) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), back: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), percent: fc.nat(110) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), tear: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crashDuringSync' as const), completed: fc.nat(4), tear: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('staleIndex' as const), file: fc.nat(20), version: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('damage' as const), how: fc.constantFrom('flipBit' as const, 'truncateFile' as const, 'flipIndexBit' as const), segment: fc.nat(20), perMille: fc.nat(999), bit: fc.nat(7) }),
  },
);

/** settle lets every promise chain that can make progress do so. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** logLimits are small, so that short runs roll many segments. */
export const logLimits = { segmentBytesMax: 1024, entryBytesMax: 400 } as const;

/** seedFromEnv reads RAFTBUS_SEED ("<seed>" or "<seed>:<path>") for fc.assert. */
export function seedFromEnv(): { seed?: number; path?: string } {
  const value = process.env['RAFTBUS_SEED'];
  if (value === undefined || value === '') return {};
  const [seed, ...path] = value.split(':');
  return path.length > 0 ? { seed: Number(seed), path: path.join(':') } : { seed: Number(seed) };
}

class Harness {
  log!: SegmentedLog;
  model: LogState = { first: 1, entries: [] };
  synced: LogState = this.model;
  seen: LogState[] = [this.model];
  readonly history = new Map<number, string>();
  committed = 0;
  term = 1;
  /** indexMax is the highest index ever appended: no repair bound may exceed it. */
  indexMax = 0;
  /** indexFileHistory holds every version of each index file seen after a sync, by name. */
  readonly indexFileHistory = new Map<string, Buffer[]>();

  constructor(readonly env: LogTestEnv) {}

  async start(): Promise<this> {
    this.log = await this.drive(this.open());
    return this;
  }

  open(): Promise<SegmentedLog> {
    return SegmentedLog.open({ disk: this.env.disk, dir: this.env.dir, ...logLimits });
  }

  setModel(state: LogState): void {
    this.model = state;
    this.seen.push(state);
  }

  async run(command: Command): Promise<void> {
    if (command.kind === 'append') this.append(command);
    if (command.kind === 'truncate') this.truncate(command.back);
    if (command.kind === 'compact') this.compact(command.percent);
    if (command.kind === 'sync') await this.sync();
    if (command.kind === 'reopen') await this.reopen({ tear: undefined });
    if (command.kind === 'crash') await this.reopen({ tear: this.env.powerLoss === undefined ? undefined : command.tear });
    if (command.kind === 'crashDuringSync') await this.crashDuringSync(command);
    if (command.kind === 'damage') await this.damage(command);
    if (command.kind === 'staleIndex') await this.staleIndexFile(command);
    expectSameState(readState(this.log), this.model);
  }

  lowestWritable(): number {
    return Math.max(this.model.first, this.committed + 1);
  }

  append(command: Extract<Command, { kind: 'append' }>): void {
    const last = lastOf(this.model);
    const from = Math.min(last + 1, Math.max(this.lowestWritable(), last + 1 - command.back));
    // A conflicting suffix is replaced by a newer leader's entries: of its new term, or (half the
    // time) of an older term it holds them from, lower than the suffix it replaces (Raft allows
    // that; the log's terms only never go down along its indexes).
    // (Only with the entry before it held: a compacted one's term is not in the model.)
    const before = this.model.entries[from - 1 - this.model.first];
    const olderTerm = from <= last && before !== undefined && command.salt % 2 === 0;
    if (!olderTerm && (command.newTerm || from <= last)) this.term++;
    const term = olderTerm && before !== undefined ? before.term : this.term;
    const entries: Entry[] = [];
    for (let i = 0; i < command.count; i++) {
      const size = (command.size + i * 37) % (logLimits.entryBytesMax + 1);
      const data = Uint8Array.from({ length: size }, (_, k) => (command.salt + k * 31 + i) & 255);
      entries.push({ index: from + i, term, type: (command.salt + i) % 5 === 0 ? 'confChange' : 'normal', data });
    }
    this.log.append(entries);
    this.indexMax = Math.max(this.indexMax, from + command.count - 1);
    this.setModel({ first: this.model.first, entries: [...this.model.entries.slice(0, from - this.model.first), ...entries] });
  }

  truncate(back: number): void {
    const from = Math.max(this.lowestWritable(), lastOf(this.model) + 1 - back);
    this.log.truncateSuffix(from);
    if (from <= lastOf(this.model)) this.setModel({ first: this.model.first, entries: this.model.entries.slice(0, from - this.model.first) });
  }

  compact(percent: number): void {
    const { first } = this.model;
    const through = first - 1 + Math.floor(((lastOf(this.model) - first + 4) * percent) / 100);
    this.log.compactPrefix(through);
    if (through < first) return;
    for (const entry of this.model.entries.slice(0, through + 1 - first)) this.history.set(entry.index, entryKey(entry));
    this.committed = Math.max(this.committed, through);
    this.setModel({ first: through + 1, entries: this.model.entries.slice(through + 1 - first) });
  }

  async sync(): Promise<void> {
    await this.drive(this.log.sync());
    this.rememberIndexFiles();
    this.synced = this.model;
    this.seen = [this.model];
    // A sync at or past the repair bound removes it.
    const bound = this.log.repairThroughIndex();
    if (bound !== undefined && bound <= lastOf(this.model)) throw new Error(`repair bound ${bound} kept by a sync through ${lastOf(this.model)}`);
  }

  /**
   * damage makes the log durable, damages one live segment as the command says, and reopens with
   * onCorruption 'truncate': the log must be the model's prefix before the first damaged entry,
   * and a repair must record a bound covering every entry the log held.
   */
  async damage(command: Extract<Command, { kind: 'damage' }>): Promise<void> {
    await this.sync();
    if (command.how === 'flipIndexBit') {
      await this.damageIndexFile(command);
      return;
    }
    const { disk, dir } = this.env;
    const live = disk.list(dir).filter((name) => /^\d{20}\.log$/.test(name));
    const name = live[command.segment % Math.max(1, live.length)];
    if (name === undefined) return;
    const path = `${dir}/${name}`;
    const frames = framesOf(readFile(disk, path), Number(name.slice(0, 20)));
    const at = Math.floor((command.perMille * frames.bytes) / 1000);
    // The first entry lost: the one whose frame holds the flipped byte or is cut short; a segment
    // whose header is cut or whose fixed header part is flipped loses them all; a flipped sync
    // record loses none (the other slot holds the sync before), nor does damage past the data
    // (in the zeros the log grew its file by).
    const hit = frames.list.find((frame) => (command.how === 'flipBit' ? frame.end > at && frame.offset <= at : frame.end > at));
    const inSyncRecords = command.how === 'flipBit' && at >= segmentFixedHeaderBytes && at < segmentHeaderBytes;
    const pastData = at >= frames.dataEnd && at >= segmentHeaderBytes;
    // A segment followed by one that starts at or before the first index holds only compacted
    // entries: open removes it unread, damage and all.
    const nextBase = live[live.indexOf(name) + 1];
    const removedUnread = nextBase !== undefined && Number(nextBase.slice(0, 20)) <= this.model.first;
    const lostFrom = inSyncRecords || pastData || removedUnread ? Number.POSITIVE_INFINITY : at < segmentHeaderBytes || hit === undefined ? frames.base : hit.index;
    // Everything was synced, so every loss is damage and repaired with a bound. A last segment cut
    // inside its header takes its sync records along: synced-segment tells, and the bound is unknown.
    const headerCut = name === live.at(-1) && command.how === 'truncateFile' && at < segmentHeaderBytes;
    const tornTail = lostFrom > lastOf(this.model);
    if (command.how === 'flipBit') this.env.damage.flipBit(path, at, command.bit);
    else this.env.damage.truncateFile(path, at);
    const before = this.model;
    // An unknown bound from an earlier header cut stays until an entry of a later term (this suite opens without terms).
    const owedUnknown = this.log.repairThroughIndex() === indexMax;
    this.log.close();
    this.log = await this.drive(this.openToRepair());
    const found = await this.readFindingDamage(path);
    if (found.unread && Number.isFinite(lostFrom)) {
      // Open trusted the segment's index file and every read passed, yet the damage hit frames: it
      // lies where no read goes, below the first index (compacted, never read again). Nothing is
      // lost. It is undone here: a later scan of that segment would cut the log back to it, safely (a repair
      // bound covers all it held), but the model does not foresee when such a scan comes.
      if (command.how !== 'flipBit' || !(lostFrom < before.first)) throw new Error(`${command.how} at byte ${at} of ${name} (first lost ${lostFrom}) met by no read under a trusted index file`);
      expectSameState(found.state, before);
      if (this.log.recovery.repaired !== undefined) throw new Error(`${name}: repaired ${JSON.stringify(this.log.recovery.repaired)} under a trusted index file`);
      this.env.damage.flipBit(path, at, command.bit);
      return;
    }
    const state = found.state;
    const keep = Math.max(0, Math.min(before.entries.length, lostFrom - before.first));
    expectSameState(state, { first: before.first, entries: before.entries.slice(0, keep) });
    const repaired = this.log.recovery.repaired;
    if (tornTail !== (repaired === undefined)) throw new Error(`${command.how} at byte ${at} of ${name}: repaired ${JSON.stringify(repaired)}, a torn tail expected: ${tornTail}`);
    const bound = this.log.repairThroughIndex();
    if ((headerCut || owedUnknown) && bound !== indexMax) throw new Error(`last segment ${name} cut at byte ${at} of its header: repair bound ${bound}, unknown (indexMax) expected`);
    if (repaired !== undefined && !headerCut && !owedUnknown && (bound === undefined || bound < lastOf(before) || bound > this.indexMax)) {
      throw new Error(`repair bound ${bound}: the log held [${before.first}..${lastOf(before)}], indexes ever appended reach ${this.indexMax}`);
    }
    this.synced = state;
    this.seen = [];
    this.setModel(state);
  }

  openToRepair(): Promise<SegmentedLog> {
    return SegmentedLog.open({ disk: this.env.disk, dir: this.env.dir, ...logLimits, onCorruption: 'truncate' });
  }

  /**
   * readFindingDamage reads the log opened after damage to the segment at path. Open trusts a
   * sealed segment's index file without reading its frames, so damage there is met by a read: it
   * throws CorruptLogError and removes the index file, and the next open scans and repairs; the
   * state returned is then the repaired log's. unread: the segment was trusted and every read
   * passed (the damage is where no read goes).
   */
  async readFindingDamage(path: string): Promise<{ state: LogState; unread: boolean }> {
    if (!this.log.recovery.indexed.includes(path)) return { state: readState(this.log), unread: false };
    try {
      return { state: readState(this.log), unread: true };
    } catch (error) {
      if (!(error instanceof CorruptLogError)) throw error;
      if (this.env.disk.exists(segmentIndexPath(path))) throw new Error(`a read met damage in ${path} and left its index file`);
    }
    this.log.close();
    this.log = await this.drive(this.openToRepair());
    if (this.log.recovery.indexed.includes(path)) throw new Error(`${path} was taken from its index file again`);
    return { state: readState(this.log), unread: false };
  }

  /** rememberIndexFiles keeps every version of every index file the log has made durable. */
  rememberIndexFiles(): void {
    const { disk, dir } = this.env;
    for (const path of listSegmentIndexFiles(disk, dir)) {
      const name = basename(path);
      const bytes = readFile(disk, path);
      const versions = this.indexFileHistory.get(name) ?? [];
      if (!versions.some((version) => version.equals(bytes))) versions.push(bytes);
      this.indexFileHistory.set(name, versions);
    }
  }

  /**
   * staleIndexFile puts back an index file the log once wrote (as a crash can, when an unlink or a
   * rewrite had not reached the disk), then reopens: the log must not trust it unless it still
   * describes its segment, and must come back exactly as it was, with nothing repaired.
   */
  async staleIndexFile(command: Extract<Command, { kind: 'staleIndex' }>): Promise<void> {
    await this.sync();
    const names = [...this.indexFileHistory.keys()].sort();
    const name = names[command.file % Math.max(1, names.length)];
    if (name === undefined) return;
    const versions = this.indexFileHistory.get(name)!;
    const file = this.env.disk.open(`${this.env.dir}/${name}`, { create: true });
    try {
      this.env.disk.truncate(file, 0);
      this.env.disk.write(file, 0, versions[command.version % versions.length]!);
      await this.drive(this.env.disk.fdatasync(file));
    } finally {
      this.env.disk.close(file);
    }
    this.log.close();
    this.log = await this.drive(this.open());
    if (this.log.recovery.repaired !== undefined) throw new Error(`a stale ${name} led to a repair: ${JSON.stringify(this.log.recovery.repaired)}`);
    const state = readState(this.log);
    expectSameState(state, this.model);
    this.synced = state;
    this.seen = [state];
  }

  /** damageIndexFile flips a bit of a segment's index file: open must scan that segment instead, and lose nothing. */
  async damageIndexFile(command: Extract<Command, { kind: 'damage' }>): Promise<void> {
    const { disk, dir } = this.env;
    const indexFiles = listSegmentIndexFiles(disk, dir);
    const path = indexFiles[command.segment % Math.max(1, indexFiles.length)];
    if (path === undefined) return;
    const name = basename(path);
    const at = Math.floor((command.perMille * readFile(disk, path).length) / 1000);
    this.env.damage.flipBit(path, at, command.bit);
    this.log.close();
    this.log = await this.drive(this.openToRepair());
    const segment = path.slice(0, -'.index'.length);
    if (this.log.recovery.indexed.includes(segment) || this.log.recovery.repaired !== undefined) {
      throw new Error(`index file ${name} flipped at byte ${at}: trusted ${this.log.recovery.indexed.includes(segment)}, repaired ${JSON.stringify(this.log.recovery.repaired)}`);
    }
    const state = readState(this.log);
    expectSameState(state, this.model);
    this.synced = state;
    this.seen = [state];
  }

  /** drive completes the disk's waiting syncs until work is done. */
  async drive<T>(work: Promise<T>): Promise<T> {
    const completeNextSync = this.env.completeNextSync;
    if (completeNextSync === undefined) return work;
    let done = false;
    const result = work.finally(() => (done = true));
    result.catch(() => undefined); // rejections are seen by the caller's await below
    while (!done) {
      await settle();
      completeNextSync();
    }
    return result;
  }

  /** crashDuringSync starts a sync, lets `completed` fdatasyncs finish, then loses power. */
  async crashDuringSync(command: Extract<Command, { kind: 'crashDuringSync' }>): Promise<void> {
    const completeNextSync = this.env.completeNextSync;
    if (completeNextSync === undefined || this.env.powerLoss === undefined) return;
    let done = false;
    this.log.sync().then(
      () => (done = true),
      () => undefined,
    );
    for (let i = 0; i < command.completed; i++) {
      await settle();
      completeNextSync();
    }
    await settle();
    if (done) {
      this.synced = this.model;
      this.seen = [this.model];
    } else {
      this.seen.push(this.model); // the sync may have made any state up to the current one durable
    }
    await this.reopen({ tear: command.tear, midSync: !done });
  }

  /**
   * reopen closes the log without syncing (after a power loss when tear is given) and checks what
   * comes back. Whatever it is, open() has made it durable: it is the new synced state.
   */
  async reopen(options: { tear: boolean | undefined; midSync?: boolean }): Promise<void> {
    this.log.close();
    if (options.tear !== undefined) this.env.powerLoss!({ tear: options.tear });
    this.log = await this.drive(this.open());
    const state = readState(this.log);
    if (options.midSync === true) {
      this.expectValidAfterReopen(state, { prefixOnly: true });
    } else if (options.tear === false) {
      expectSameState(state, this.synced);
    } else {
      this.expectValidAfterReopen(state, { prefixOnly: options.tear === true });
    }
    this.synced = state;
    this.seen = [];
    this.setModel(state);
  }

  expectValidAfterReopen(state: LogState, options: { prefixOnly: boolean }): void {
    const candidates = this.seen.filter((seen) => agreesWith(state, seen, { history: this.history, prefixOnly: options.prefixOnly }));
    const floor = Math.min(...this.seen.map((seen) => agreeThrough(seen, this.synced)));
    const failures: string[] = [];
    // Without a start file the first index is the first segment's: it may be ahead of the synced one.
    const firstMax = Math.max(...this.seen.map((seen) => seen.first));
    if (state.first < this.synced.first || state.first > firstMax) failures.push(`first ${state.first}, synced first ${this.synced.first}`);
    if (candidates.length === 0) failures.push('log matches no state since the last sync');
    if (agreeThrough(state, this.synced) < Math.min(floor, lastOf(this.synced))) failures.push(`lost synced entries through ${floor}`);
    if (failures.length > 0) {
      throw new Error(`${failures.join('; ')}\nlog: ${describe(state)}\nsynced: ${describe(this.synced)}\nseen: ${this.seen.map(describe).join(' | ')}`);
    }
  }
}

export function readFile(disk: Disk, path: string): Buffer {
  const file = disk.open(path, { create: false });
  try {
    return Buffer.from(disk.read(file, 0, disk.size(file)));
  } finally {
    disk.close(file);
  }
}

/**
 * framesOf lists the frames of an undamaged segment: byte ranges and indexes (see frame.ts), and
 * where they end (dataEnd): the file may go on with zeros, room the log grew into ahead.
 */
export function framesOf(bytes: Buffer, base: number): { base: number; bytes: number; dataEnd: number; list: { offset: number; end: number; index: number }[] } {
  const list: { offset: number; end: number; index: number }[] = [];
  let offset = segmentHeaderBytes;
  while (offset + frameHeaderBytes <= bytes.length) {
    const index = bytes.readUInt32LE(offset + 8) + bytes.readUInt32LE(offset + 12) * 0x1_0000_0000;
    if (index === 0) break; // no frame has index 0: the zeros past the data
    const end = offset + frameHeaderBytes + bytes.readUInt32LE(offset + 4);
    list.push({ offset, end, index });
    offset = end;
  }
  return { base, bytes: bytes.length, dataEnd: Math.min(offset, bytes.length), list };
}

/** dataEnd returns where the frames of the undamaged segment at path end (see framesOf). */
export function dataEnd(disk: Disk, path: string): number {
  return framesOf(readFile(disk, path), 0).dataEnd;
}

function describe(state: LogState): string {
  return `[${state.first}..${lastOf(state)}] terms ${state.entries.map((e) => e.term).join(',')}`;
}

/** runLogConformance registers the model-based test for one Disk implementation. */
export function runLogConformance(name: string, options: { makeEnv: (seed: number) => LogTestEnv; numRuns: number }): void {
  it(`${name}: SegmentedLog matches the array model across sync, reopen and crash`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(commandArbitrary, { maxLength: 40 }), async (seed, commands) => {
        const env = options.makeEnv(seed);
        const harness = await new Harness(env).start();
        try {
          for (const command of commands) await harness.run(command);
        } finally {
          harness.log.close();
          env.cleanup();
        }
      }),
      { numRuns: Number(process.env['RAFTBUS_RUNS'] ?? options.numRuns), timeout: 5_000, ...seedFromEnv() },
    );
  });
}
