// MemoryDisk is the simulator's disk: the Disk interface in memory, deterministic, with faults.
//
// Model. Every file has a current content (what reads see) and a durable content (what survives a
// crash). write and truncate change the current content and join one global, ordered list of
// unsynced operations. fdatasync(file) captures the file's current content when called and makes
// it durable when it completes: at once (syncMode 'immediate') or when the simulator says so
// (syncMode 'manual': completeNextSync / completeAllSyncs). Directory operations (create, rename,
// unlink, mkdir) are durable at once, so syncDirectory resolves at once.
// crash() replaces every file's current content by its durable one; with tear: true it first lets
// a random prefix of the unsynced operations reach the disk, the last of them (if a write) torn to
// a random prefix of its bytes, as a disk that writes back in order and loses power mid-write.
// Handles opened before a crash are dead after it. Randomness comes only from the seeded
// `random` passed in; there are no timers.
import { basename, dirname } from 'node:path/posix';
import type { Disk, DiskFile } from '../../src/storage/disk.js';

/** MemoryDiskError is a failed file operation, with an errno-style code as node:fs gives. */
export class MemoryDiskError extends Error {
  override readonly name = 'MemoryDiskError';
  constructor(
    readonly code: 'ENOENT' | 'EBADF' | 'EISDIR',
    readonly path: string,
  ) {
    super(`${code}: ${path}`);
  }
}

class Inode {
  current: Uint8Array = new Uint8Array(64);
  length = 0;
  durable: Uint8Array = new Uint8Array(0);
  // opsIssued counts writes and truncates since the last crash; durableOps how many of them the
  // durable content reflects (syncs may complete out of order: never go back).
  opsIssued = 0;
  durableOps = 0;

  content(): Uint8Array {
    return this.current.subarray(0, this.length);
  }

  write(position: number, data: Uint8Array): void {
    const end = position + data.length;
    if (end > this.current.length) {
      const grown = new Uint8Array(Math.max(end, this.current.length * 2));
      grown.set(this.content());
      this.current = grown;
    }
    if (position > this.length) this.current.fill(0, this.length, position);
    this.current.set(data, position);
    this.length = Math.max(this.length, end);
  }

  truncate(length: number): void {
    if (length > this.length) this.write(this.length, new Uint8Array(length - this.length));
    this.length = length;
  }

  resetToDurable(): void {
    this.length = 0;
    this.write(0, this.durable);
  }
}

class MemoryFile implements DiskFile {
  closed = false;
  constructor(
    readonly path: string,
    readonly inode: Inode,
    readonly generation: number,
  ) {}
}

type UnsyncedOp = { inode: Inode } & ({ kind: 'write'; position: number; data: Uint8Array } | { kind: 'truncate'; length: number });

interface PendingSync {
  readonly inode: Inode;
  readonly content: Uint8Array;
  readonly opsCovered: number;
  readonly resolve: () => void;
}

/** MemoryDiskOptions: the seeded randomness used by crash({ tear }), and when fdatasync completes. */
export interface MemoryDiskOptions {
  readonly random?: () => number;
  readonly syncMode?: 'immediate' | 'manual';
  /** preallocateBytes: see Disk; small by default, so that logs in tests grow ahead of their data cheaply. */
  readonly preallocateBytes?: number;
}

/** MemoryDisk: see the file comment. */
export class MemoryDisk implements Disk {
  private readonly files = new Map<string, Inode>();
  private readonly directories = new Set<string>(['/']);
  private unsynced: UnsyncedOp[] = [];
  private pendingSyncs: PendingSync[] = [];
  private generation = 0;
  private readonly random: () => number;
  private readonly syncMode: 'immediate' | 'manual';
  readonly preallocateBytes: number;
  /** bytesRead counts the bytes read() returned from each path (as it was named when read). */
  readonly bytesRead = new Map<string, number>();

  constructor(options: MemoryDiskOptions = {}) {
    this.random = options.random ?? (() => 0);
    this.syncMode = options.syncMode ?? 'immediate';
    this.preallocateBytes = options.preallocateBytes ?? 256;
  }

  mkdirp(dir: string): void {
    for (let d = dir; !this.directories.has(d); d = dirname(d)) this.directories.add(d);
  }

  list(dir: string): string[] {
    if (!this.directories.has(dir)) throw new MemoryDiskError('ENOENT', dir);
    const names = [...this.files.keys(), ...this.directories].filter((p) => p !== dir && dirname(p) === dir);
    return names.map((p) => basename(p)).sort();
  }

  exists(path: string): boolean {
    return this.files.has(path) || this.directories.has(path);
  }

  open(path: string, options: { create: boolean }): DiskFile {
    if (this.directories.has(path)) throw new MemoryDiskError('EISDIR', path);
    let inode = this.files.get(path);
    if (inode === undefined) {
      if (!options.create || !this.directories.has(dirname(path))) throw new MemoryDiskError('ENOENT', path);
      inode = new Inode();
      this.files.set(path, inode);
    }
    return new MemoryFile(path, inode, this.generation);
  }

  size(file: DiskFile): number {
    return this.live(file).inode.length;
  }

  read(file: DiskFile, position: number, length: number, into?: Uint8Array): Uint8Array {
    const inode = this.live(file).inode;
    if (into !== undefined && into.length < length) throw new RangeError(`read of ${length} bytes into a buffer of ${into.length}`);
    const end = Math.min(inode.length, position + length);
    this.bytesRead.set(file.path, (this.bytesRead.get(file.path) ?? 0) + Math.max(0, end - position));
    if (into === undefined) return end <= position ? new Uint8Array(0) : inode.current.slice(position, end);
    if (end <= position) return into.subarray(0, 0);
    into.set(inode.current.subarray(position, end), 0);
    return into.subarray(0, end - position);
  }

  write(file: DiskFile, position: number, data: Uint8Array): void {
    const inode = this.live(file).inode;
    inode.write(position, data);
    this.record({ inode, kind: 'write', position, data: data.slice() });
  }

  truncate(file: DiskFile, length: number): void {
    const inode = this.live(file).inode;
    inode.truncate(length);
    this.record({ inode, kind: 'truncate', length });
  }

  close(file: DiskFile): void {
    this.live(file).closed = true;
  }

  rename(from: string, to: string): void {
    const inode = this.files.get(from);
    if (inode === undefined) throw new MemoryDiskError('ENOENT', from);
    if (!this.directories.has(dirname(to))) throw new MemoryDiskError('ENOENT', to);
    this.files.delete(from);
    this.files.set(to, inode);
  }

  unlink(path: string): void {
    if (!this.files.delete(path)) throw new MemoryDiskError('ENOENT', path);
  }

  removeTree(dir: string): Promise<void> {
    const under = (path: string): boolean => path === dir || path.startsWith(`${dir}/`);
    for (const path of [...this.files.keys()]) if (under(path)) this.files.delete(path);
    for (const path of [...this.directories]) if (under(path) && path !== '/') this.directories.delete(path);
    return Promise.resolve();
  }

  fdatasync(file: DiskFile): Promise<void> {
    const inode = this.live(file).inode;
    return new Promise((resolve) => {
      const sync: PendingSync = { inode, content: inode.content().slice(), opsCovered: inode.opsIssued, resolve };
      if (this.syncMode === 'immediate') this.complete(sync);
      else this.pendingSyncs.push(sync);
    });
  }

  syncDirectory(dir: string): Promise<void> {
    if (!this.directories.has(dir)) return Promise.reject(new MemoryDiskError('ENOENT', dir));
    return Promise.resolve();
  }

  // ------------------------------------------------------------------------------------------
  // The simulator's controls.

  /** pendingSyncCount is how many fdatasync calls wait for completeNextSync (manual mode). */
  pendingSyncCount(): number {
    return this.pendingSyncs.length;
  }

  /** completeNextSync completes the oldest waiting fdatasync; returns false when none waits. */
  completeNextSync(): boolean {
    const sync = this.pendingSyncs.shift();
    if (sync === undefined) return false;
    this.complete(sync);
    return true;
  }

  /** completeAllSyncs completes every waiting fdatasync, oldest first; returns how many. */
  completeAllSyncs(): number {
    let count = 0;
    while (this.completeNextSync()) count++;
    return count;
  }

  /**
   * crash loses power: only durable content survives (see the file comment for tear). Waiting
   * fdatasync calls never complete, and handles opened before are dead.
   */
  crash(options: { tear?: boolean } = {}): void {
    if (options.tear === true) this.persistRandomPrefix();
    for (const inode of this.files.values()) inode.resetToDurable();
    for (const op of this.unsynced) {
      op.inode.opsIssued = 0;
      op.inode.durableOps = 0;
    }
    this.unsynced = [];
    this.pendingSyncs = [];
    this.generation++;
  }

  /**
   * killProcess is kill -9 of the process that had the disk open, the machine staying up: its
   * handles die and its waiting fdatasync calls never answer, but what it wrote stays in the page
   * cache, readable at once, durable after a later fdatasync of the file, lost by a later crash().
   */
  killProcess(): void {
    this.pendingSyncs = [];
    this.generation++;
  }

  /** flipBit flips one bit of a file, both as read and on the durable media (bit rot). */
  flipBit(path: string, byteOffset: number, bit = 0): void {
    const inode = this.inodeAt(path);
    const mask = 1 << (bit & 7);
    if (byteOffset < inode.length) inode.current[byteOffset]! ^= mask;
    if (byteOffset < inode.durable.length) inode.durable[byteOffset]! ^= mask;
  }

  /** truncateFile cuts a file to length bytes, both as read and on the durable media. */
  truncateFile(path: string, length: number): void {
    const inode = this.inodeAt(path);
    inode.truncate(Math.min(length, inode.length));
    inode.durable = inode.durable.slice(0, length);
  }

  /** totalBytesRead is the sum of bytesRead over every path. */
  totalBytesRead(): number {
    let total = 0;
    for (const bytes of this.bytesRead.values()) total += bytes;
    return total;
  }

  /** paths lists every file, sorted (the simulator picks files to corrupt). */
  paths(): string[] {
    return [...this.files.keys()].sort();
  }

  /** fileSize is a file's current length (the simulator picks where to corrupt). */
  fileSize(path: string): number {
    return this.inodeAt(path).length;
  }

  /** contentBytes is a file's current length without its trailing zeros (room a log grew ahead, nothing to damage). */
  contentBytes(path: string): number {
    const inode = this.inodeAt(path);
    let end = inode.length;
    while (end > 0 && inode.current[end - 1] === 0) end--;
    return end;
  }

  /** durableContent returns what of path would survive a crash now (for checkers). */
  durableContent(path: string): Uint8Array {
    return this.inodeAt(path).durable.slice();
  }

  private inodeAt(path: string): Inode {
    const inode = this.files.get(path);
    if (inode === undefined) throw new MemoryDiskError('ENOENT', path);
    return inode;
  }

  private live(file: DiskFile): MemoryFile {
    if (!(file instanceof MemoryFile) || file.closed || file.generation !== this.generation) {
      throw new MemoryDiskError('EBADF', file.path);
    }
    return file;
  }

  private record(op: UnsyncedOp): void {
    this.unsynced.push(op);
    op.inode.opsIssued++;
  }

  /** complete makes a sync's captured content durable and forgets the operations it covered. */
  private complete(sync: PendingSync): void {
    const inode = sync.inode;
    if (sync.opsCovered >= inode.durableOps) {
      let toForget = sync.opsCovered - inode.durableOps;
      inode.durable = sync.content;
      inode.durableOps = sync.opsCovered;
      this.unsynced = this.unsynced.filter((op) => op.inode !== inode || toForget-- <= 0);
    }
    sync.resolve();
  }

  private persistRandomPrefix(): void {
    const count = Math.floor(this.random() * (this.unsynced.length + 1));
    for (const [i, op] of this.unsynced.entries()) {
      if (i > count) break;
      const durable = new Inode();
      durable.write(0, op.inode.durable);
      if (op.kind === 'truncate' && i < count) durable.truncate(op.length);
      if (op.kind === 'write') {
        const kept = i < count ? op.data.length : Math.floor(this.random() * (op.data.length + 1));
        durable.write(op.position, op.data.subarray(0, kept));
      }
      op.inode.durable = durable.content().slice();
    }
  }
}
