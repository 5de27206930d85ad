// Disk is the narrow set of file operations the storage layer needs, so that the same segmented
// log runs on the real file system (NodeDisk) and on the simulator's in-memory disk.
//
// Durability model every implementation follows:
// - write and truncate change what reads see at once (the page cache) but are durable only after
//   a later fdatasync(file) of that file has resolved;
// - create, rename and unlink change the directory; they are durable after syncDirectory(dir)
//   has resolved, and they reach the disk in the order they were made: a crash leaves a prefix of
//   them (a journaling file system such as ext4 commits them in order; the log relies on it). The
//   memory disk treats them as durable at once, which is a stronger disk; the crash-point tests
//   (test/storage/ordered-crash-disk.ts) model the order alone.
// Reads, writes and directory operations are synchronous: page-cache I/O is fast, and the Raft core
// reads its log synchronously. Only making data durable is asynchronous.

/** DiskFile is an open file, read-write. Its identity survives rename; unlink leaves it usable. */
export interface DiskFile {
  readonly path: string;
}

export interface Disk {
  /**
   * preallocateBytes is how far past its data a log grows a file it appends to (0: never ahead).
   * A file system commits its journal on fdatasync when the file's length changed since the last
   * one (the new length is needed to read the data back); growing ahead by a chunk makes most
   * syncs of small appends skip that commit.
   */
  readonly preallocateBytes: number;
  /** mkdirp creates a directory and its parents; no-op when it exists. */
  mkdirp(dir: string): void;
  /** list returns the names (not paths) of the files in dir, sorted. Throws if dir is missing. */
  list(dir: string): string[];
  /** exists says whether path names a file or directory. */
  exists(path: string): boolean;
  /** open opens a file read-write; create: true creates it (empty) when missing, else it must exist. */
  open(path: string, options: { create: boolean }): DiskFile;
  /** size returns the file's current length in bytes. */
  size(file: DiskFile): number;
  /**
   * read returns up to length bytes from position (fewer only at end of file). With `into` (at
   * least length bytes long) it reads into it and returns a view of it: a caller that reads many
   * files one after another reuses one buffer, which a fresh allocation per read costs page faults.
   */
  read(file: DiskFile, position: number, length: number, into?: Uint8Array): Uint8Array;
  /** write writes all of data at position, growing the file when needed. */
  write(file: DiskFile, position: number, data: Uint8Array): void;
  /** truncate sets the file's length; growing it adds zeros (a hole, on a real file system). */
  truncate(file: DiskFile, length: number): void;
  /** close releases the handle; the file must not be used after. Unsynced data stays unsynced. */
  close(file: DiskFile): void;
  /** rename moves a file, replacing any file at `to`. */
  rename(from: string, to: string): void;
  /** unlink removes a file by path. */
  unlink(path: string): void;
  /** removeTree removes a directory and everything under it (no-op when missing); asynchronous, as a big tree takes a while. */
  removeTree(dir: string): Promise<void>;
  /**
   * fdatasync resolves once every write and truncate of file issued before the call is durable.
   * With inline, a real disk makes the call on the calling thread, which waits for the device,
   * instead of on a worker thread: see NodeDisk.fdatasync for when that is worth it. Either way an
   * I/O error arrives as the promise's rejection, not as a thrown error.
   */
  fdatasync(file: DiskFile, options?: { readonly inline?: boolean }): Promise<void>;
  /** syncDirectory resolves once every create, rename and unlink in dir so far is durable. */
  syncDirectory(dir: string): Promise<void>;
}
