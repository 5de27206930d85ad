// OrderedCrashDisk is a Disk for crash-point tests: data becomes durable only when an fdatasync of
// its file completes (what the file held when the call was made), and directory operations
// (create, rename, unlink) become durable in the order they were made, all of those so far when a
// syncDirectory completes. So a power loss leaves any prefix of the directory operations since the
// last completed syncDirectory, each file with its durable data: crashStates() lists them all. (The
// simulator's MemoryDisk makes directory operations durable at once, a stronger disk.) Syncs
// complete when the test says (completeNext), so that it can crash a log in the middle of one.
//
// With writeback (a random source), each crash state also comes with a variant in which the
// kernel wrote back, before the power loss, some of the writes and truncations no fdatasync has
// covered yet: any of a file's, in any order across files and within a file, except that the
// writes the caller names barriers (the log's sync records) reach the disk before the file's
// writes after them. That is the reordering the log takes for damage, knowingly: a truncation's
// rewrite ahead of the records it lowered first (see truncateSuffix in segmented-log.ts). A
// barrier may reach the disk ahead of the writes before it: a record names only entries a
// completed sync made durable.
import { basename, dirname } from 'node:path/posix';
import type { Disk, DiskFile } from '../../src/storage/disk.js';

type FileOperation = { kind: 'write'; position: number; data: Buffer; barrier: boolean } | { kind: 'truncate'; length: number };

class Inode {
  current: Buffer = Buffer.alloc(0);
  durable: Buffer = Buffer.alloc(0);
  /** operations since the inode was made; the first durableThrough of them are in durable. */
  readonly operations: FileOperation[] = [];
  durableThrough = 0;
}

/** WritebackOptions: the random source of the variants, and which writes are barriers. */
export interface WritebackOptions {
  readonly random: () => number;
  readonly isBarrier: (position: number, length: number) => boolean;
}

function applyOperation(bytes: Buffer, operation: FileOperation): Buffer {
  if (operation.kind === 'truncate') {
    const next = Buffer.alloc(operation.length);
    bytes.copy(next, 0, 0, Math.min(operation.length, bytes.length));
    return next;
  }
  const next = Buffer.alloc(Math.max(bytes.length, operation.position + operation.data.length));
  bytes.copy(next);
  next.set(operation.data, operation.position);
  return next;
}

/**
 * writtenBack returns an inode's durable data with a random choice of its pending operations
 * applied in order: every barrier up to a random one, and a random subset of the rest before the
 * next barrier.
 */
function writtenBack(inode: Inode, random: () => number): Buffer {
  const pending = inode.operations.slice(inode.durableThrough);
  const barriers = pending.flatMap((operation, at) => (operation.kind === 'write' && operation.barrier ? [at] : []));
  const through = Math.floor(random() * (barriers.length + 1));
  const until = barriers[through] ?? pending.length;
  let bytes = inode.durable;
  for (const [at, operation] of pending.entries()) {
    if (at >= until) break;
    const landed = operation.kind === 'write' && operation.barrier;
    if (landed || random() < 0.5) bytes = applyOperation(bytes, operation);
  }
  return bytes;
}

type DirectoryOperation = { kind: 'create'; path: string; inode: Inode } | { kind: 'rename'; from: string; to: string } | { kind: 'unlink'; path: string };

interface OpenFile extends DiskFile {
  readonly inode: Inode;
  closed: boolean;
}

/** CrashState is what a power loss can leave: every file with its durable data. */
export interface CrashState {
  readonly files: ReadonlyMap<string, Buffer>;
  readonly dirs: ReadonlySet<string>;
  /** at: the operation the crash follows, for the failure message. */
  readonly at: string;
  /** writtenBack: the state holds writes no fdatasync covered (a writeback variant, or made from one). */
  readonly writtenBack: boolean;
}

export class OrderedCrashDisk implements Disk {
  readonly preallocateBytes = 0;
  private readonly names = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);
  // What the directory held when this disk was made from a crash state (durable), and since.
  private readonly initial = new Map<string, Inode>();
  private readonly operations: DirectoryOperation[] = [];
  private durableOperations = 0;
  private readonly waiting: (() => void)[] = [];
  /** onOperation, when set, hears of every operation that can change what a crash leaves, before it takes effect. */
  onOperation: ((what: string) => void) | undefined;

  private readonly writeback: WritebackOptions | undefined;
  private readonly madeWrittenBack: boolean;

  constructor(state?: CrashState, writeback?: WritebackOptions) {
    this.writeback = writeback;
    this.madeWrittenBack = state?.writtenBack ?? false;
    for (const dir of state?.dirs ?? []) this.dirs.add(dir);
    for (const [path, data] of state?.files ?? []) {
      const inode = new Inode();
      inode.current = Buffer.from(data);
      inode.durable = inode.current;
      this.names.set(path, inode);
      this.initial.set(path, inode);
    }
  }

  mkdirp(dir: string): void {
    for (let d = dir; !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
  }

  list(dir: string): string[] {
    if (!this.dirs.has(dir)) throw new Error(`ENOENT: ${dir}`);
    return [...this.names.keys(), ...this.dirs].filter((path) => path !== dir && dirname(path) === dir).map((path) => basename(path)).sort();
  }

  exists(path: string): boolean {
    return this.names.has(path) || this.dirs.has(path);
  }

  open(path: string, options: { create: boolean }): DiskFile {
    let inode = this.names.get(path);
    if (inode === undefined) {
      if (!options.create) throw new Error(`ENOENT: ${path}`);
      this.onOperation?.(`create ${basename(path)}`);
      inode = new Inode();
      this.names.set(path, inode);
      this.operations.push({ kind: 'create', path, inode });
    }
    const file: OpenFile = { path, inode, closed: false };
    return file;
  }

  private inodeOf(file: DiskFile): Inode {
    const open = file as OpenFile;
    if (open.closed) throw new Error(`EBADF: ${file.path}`);
    return open.inode;
  }

  size(file: DiskFile): number {
    return this.inodeOf(file).current.length;
  }

  read(file: DiskFile, position: number, length: number, into?: Uint8Array): Uint8Array {
    const current = this.inodeOf(file).current;
    const bytes = current.subarray(Math.min(position, current.length), Math.min(current.length, position + length));
    if (into === undefined) return Buffer.from(bytes);
    into.set(bytes, 0);
    return into.subarray(0, bytes.length);
  }

  write(file: DiskFile, position: number, data: Uint8Array): void {
    const barrier = this.writeback?.isBarrier(position, data.length) ?? false;
    this.change(file, { kind: 'write', position, data: Buffer.from(data), barrier });
  }

  truncate(file: DiskFile, length: number): void {
    this.change(file, { kind: 'truncate', length });
  }

  private change(file: DiskFile, operation: FileOperation): void {
    const inode = this.inodeOf(file);
    inode.current = applyOperation(inode.current, operation);
    inode.operations.push(operation);
  }

  close(file: DiskFile): void {
    this.inodeOf(file);
    (file as OpenFile).closed = true;
  }

  rename(from: string, to: string): void {
    const inode = this.names.get(from);
    if (inode === undefined) throw new Error(`ENOENT: ${from}`);
    this.onOperation?.(`rename ${basename(from)} ${basename(to)}`);
    this.names.delete(from);
    this.names.set(to, inode);
    this.operations.push({ kind: 'rename', from, to });
  }

  unlink(path: string): void {
    if (!this.names.has(path)) throw new Error(`ENOENT: ${path}`);
    this.onOperation?.(`unlink ${basename(path)}`);
    this.names.delete(path);
    this.operations.push({ kind: 'unlink', path });
  }

  removeTree(): Promise<void> {
    return Promise.reject(new Error('OrderedCrashDisk: removeTree is not modelled'));
  }

  fdatasync(file: DiskFile): Promise<void> {
    const inode = this.inodeOf(file);
    const content = inode.current;
    const through = inode.operations.length;
    this.onOperation?.(`fdatasync ${basename(file.path)}`);
    return new Promise((resolve) =>
      this.waiting.push(() => {
        if (through > inode.durableThrough) {
          inode.durable = content;
          inode.durableThrough = through;
        }
        this.onOperation?.(`fdatasync ${basename(file.path)} done`);
        resolve();
      }),
    );
  }

  syncDirectory(): Promise<void> {
    const through = this.operations.length;
    this.onOperation?.('syncDirectory');
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.durableOperations = Math.max(this.durableOperations, through);
        this.onOperation?.('syncDirectory done');
        resolve();
      }),
    );
  }

  /** completeNext completes the oldest sync waiting; false when none is. */
  completeNext(): boolean {
    const complete = this.waiting.shift();
    complete?.();
    return complete !== undefined;
  }

  /** crashStates lists every state a power loss now can leave (with writeback, a random variant of each too). */
  crashStates(at: string): CrashState[] {
    const states: CrashState[] = [];
    for (let kept = this.durableOperations; kept <= this.operations.length; kept++) {
      const names = new Map(this.initial);
      for (const operation of this.operations.slice(0, kept)) {
        if (operation.kind === 'create') names.set(operation.path, operation.inode);
        else if (operation.kind === 'unlink') names.delete(operation.path);
        else {
          const inode = names.get(operation.from);
          names.delete(operation.from);
          if (inode !== undefined) names.set(operation.to, inode);
        }
      }
      const files = new Map([...names].map(([path, inode]) => [path, inode.durable] as const));
      const where = `${at} (directory operations ${kept} of ${this.operations.length} durable`;
      states.push({ files, dirs: new Set(this.dirs), at: `${where})`, writtenBack: this.madeWrittenBack });
      const writeback = this.writeback;
      const pending = [...names].filter(([, inode]) => inode.operations.length > inode.durableThrough);
      if (writeback === undefined || pending.length === 0) continue;
      const variant = new Map(files);
      const written: string[] = [];
      for (const [path, inode] of pending) {
        if (writeback.random() < 0.5) continue;
        variant.set(path, writtenBack(inode, writeback.random));
        written.push(basename(path));
      }
      if (written.length > 0) states.push({ files: variant, dirs: new Set(this.dirs), at: `${where}, written back in part: ${written.join(' ')})`, writtenBack: true });
    }
    return states;
  }
}
