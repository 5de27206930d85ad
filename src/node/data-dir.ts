// A node's data directory and its identity: meta.json says which cluster and which node the
// directory belongs to, and a lock file keeps a second process from using it at the same time.
// meta.json also holds the directory's id, random and drawn once when the directory is created:
// peers remember it, and so tell this directory from a new, empty one given the same node id.
//
// The lock is a file created with O_EXCL holding the owner's pid and hostname. A lock whose pid is not
// alive on this host is stale (its owner crashed) and is taken over. A lock naming another host cannot
// be checked and is never taken over. A lock naming our own pid that this process does not hold is
// also stale: in a container a restarted node often gets the same pid as the one that crashed.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { directoryIdPattern } from '../rpc/peer-codec.js';

/** dataDirFormatVersion is the layout version this code writes and the only one it reads. */
export const dataDirFormatVersion = 2;
export const metaFileName = 'meta.json';
export const lockFileName = 'lock';
/** lockAttemptsMax bounds how often opening retries after taking over a stale lock. */
export const lockAttemptsMax = 3;
/** metaFileBytesMax bounds how much of meta.json or the lock file is read. */
export const metaFileBytesMax = 64 * 1024;

const metaTempFileName = `${metaFileName}.tmp`;
/** dataSubdirectories are what a node keeps in its data directory besides meta.json and the lock. */
export const dataSubdirectories = Object.freeze({ partitions: 'partitions', raft: 'raft', state: 'state' });
const nodeSubdirectories: ReadonlySet<string> = new Set(Object.values(dataSubdirectories));
const staleLockPrefix = `${lockFileName}.stale-`;

/** DataDirMeta is the content of meta.json. */
export interface DataDirMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  readonly nodeId: number;
  /** directoryId: 32 hex digits drawn when the directory was created (see the file comment). */
  readonly directoryId: string;
}

/** newDirectoryId draws a directory id. */
export function newDirectoryId(): string {
  return randomBytes(16).toString('hex');
}

/** LockOwner is the content of the lock file. */
export interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
}

export const dataDirErrorKinds = [
  'otherCluster', // meta.json names another clusterId
  'otherNode', // meta.json names another nodeId
  'unknownFormat', // meta.json has a formatVersion this code does not know
  'corruptMeta', // meta.json is not what this code writes
  'notEmpty', // the directory holds files but no meta.json: not a raftbus data directory
  'locked', // another live process holds the lock, or the lock cannot be judged stale
  'unusable', // the directory cannot be created or read
  'lost', // the directory, its meta.json or its lock was removed or replaced while the node ran
  'replaced', // a peer knows this node on another data directory: this one is not the node's data
] as const;
export type DataDirErrorKind = (typeof dataDirErrorKinds)[number];

/**
 * DataDirError says why a node may not use a data directory. expected is what this node would
 * write, found what the directory holds (both undefined where they do not apply). When it is
 * thrown for an identity mismatch, nothing in the directory has been changed.
 */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
  readonly kind: DataDirErrorKind;
  readonly dataDir: string;
  readonly expected: string | number | undefined;
  readonly found: string | number | undefined;
  /** lockOwner is who holds the lock, when kind is 'locked' and the lock file could be read. */
  readonly lockOwner: LockOwner | undefined;

  constructor(options: {
    kind: DataDirErrorKind;
    dataDir: string;
    message: string;
    expected?: string | number;
    found?: string | number;
    lockOwner?: LockOwner;
    cause?: unknown;
  }) {
    super(`Data directory ${options.dataDir}: ${options.message}`, { cause: options.cause });
    this.kind = options.kind;
    this.dataDir = options.dataDir;
    this.expected = options.expected;
    this.found = options.found;
    this.lockOwner = options.lockOwner;
  }
}

/** DataDir is an open data directory: its identity is checked and its lock is held until close(). */
export interface DataDir {
  readonly path: string;
  readonly meta: DataDirMeta;
  /** created is true when this open wrote meta.json, i.e. the node starts for the first time. */
  readonly created: boolean;
  /**
   * check looks whether the directory is still the one opened: the same directory, holding the
   * same lock file and a meta.json. It returns what changed (a node must stop: what it writes now
   * goes to deleted files, or into a directory another start may take), or undefined.
   */
  check(): Promise<string | undefined>;
  /** close releases the lock. Calling it again does nothing. */
  close(): Promise<void>;
}

// Lock files held by this process, so that opening the same directory twice in one process is refused.
const heldLocks = new Set<string>();

/**
 * openDataDir opens the data directory of node nodeId in cluster clusterId, creating it and its
 * meta.json on first start, and takes its lock for as long as the DataDir stays open.
 * Throws DataDirError when the directory belongs to another cluster or node, has an unknown format,
 * is not a raftbus directory, or is locked by a live process. An identity mismatch found before
 * locking leaves the directory exactly as it was.
 */
export async function openDataDir(options: { path: string; clusterId: string; nodeId: number }): Promise<DataDir> {
  const dataDir = path.resolve(options.path);
  const expected: DataDirMeta = { formatVersion: dataDirFormatVersion, clusterId: options.clusterId, nodeId: options.nodeId, directoryId: newDirectoryId() };
  const metaBefore = await readMeta(dataDir);
  if (metaBefore !== undefined) checkIdentity(dataDir, metaBefore, expected);
  await ensureDirectory(dataDir);
  const lockPath = await acquireLock(dataDir);
  try {
    // Read again under the lock: another process may have written meta.json in between.
    const found = await readMeta(dataDir);
    if (found !== undefined) checkIdentity(dataDir, found, expected);
    else await checkOnlyOurFiles(dataDir);
    // A directory written before directory ids existed gets one now, once: its peers learn it at
    // their next contact, and from then on it is this directory's for good.
    const meta = found === undefined ? expected : { ...found, directoryId: found.directoryId ?? expected.directoryId };
    if (found?.directoryId === undefined) await writeMetaDurably(dataDir, meta);
    return await openedDataDir(dataDir, meta, found === undefined, lockPath);
  } catch (error) {
    await releaseLock(lockPath);
    throw error;
  }
}

/**
 * FileIdentity tells a file from another one later created at the same path, as long as the first
 * is held open: an inode number is reused only once nothing holds the file.
 */
interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

async function fileIdentity(file: string | FileHandle): Promise<FileIdentity | undefined> {
  try {
    const stats = typeof file === 'string' ? await stat(file) : await file.stat();
    return { dev: stats.dev, ino: stats.ino };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function sameFile(a: FileIdentity | undefined, b: FileIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

async function openedDataDir(dataDir: string, meta: DataDirMeta, created: boolean, lockPath: string): Promise<DataDir> {
  // The directory and the lock stay open while the node runs, so that check() can tell them from
  // new ones at the same paths.
  const handles: FileHandle[] = [];
  let opened: { directory: FileIdentity | undefined; lock: FileIdentity | undefined };
  try {
    handles.push(await open(dataDir, 'r'));
    handles.push(await open(lockPath, 'r'));
    opened = { directory: await fileIdentity(handles[0]!), lock: await fileIdentity(handles[1]!) };
  } catch (error) {
    await Promise.all(handles.map((handle) => handle.close())).catch(() => undefined);
    throw error;
  }
  let closed = false;
  return {
    path: dataDir,
    meta,
    created,
    async check() {
      const directory = await fileIdentity(dataDir);
      if (directory === undefined) return `${dataDir} was removed`;
      if (!sameFile(directory, opened.directory)) return `${dataDir} was removed and created again`;
      const lock = await fileIdentity(lockPath);
      if (!sameFile(lock, opened.lock)) return `${lockPath}, this node's lock, was ${lock === undefined ? 'removed' : 'replaced'}`;
      if ((await fileIdentity(path.join(dataDir, metaFileName))) === undefined) return `${path.join(dataDir, metaFileName)} was removed`;
      return undefined;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(handles.map((handle) => handle.close())).catch(() => undefined);
      await releaseLock(lockPath);
    },
  };
}

function checkIdentity(dataDir: string, found: StoredMeta, expected: DataDirMeta): void {
  const metaPath = path.join(dataDir, metaFileName);
  if (found.formatVersion !== expected.formatVersion) {
    const message = `${metaPath} has format version ${found.formatVersion}, but this raftbus reads only version ${expected.formatVersion}; use a raftbus release that knows that format`;
    throw new DataDirError({ kind: 'unknownFormat', dataDir, message, expected: expected.formatVersion, found: found.formatVersion });
  }
  if (found.clusterId !== expected.clusterId) {
    const message = `belongs to cluster "${found.clusterId}" (per ${metaPath}), but the cluster file says "${expected.clusterId}"; point this node at its own dataDir or fix clusterId`;
    throw new DataDirError({ kind: 'otherCluster', dataDir, message, expected: expected.clusterId, found: found.clusterId });
  }
  if (found.nodeId !== expected.nodeId) {
    const message = `belongs to node ${found.nodeId} (per ${metaPath}), but this node's id is ${expected.nodeId}; each node needs its own dataDir`;
    throw new DataDirError({ kind: 'otherNode', dataDir, message, expected: expected.nodeId, found: found.nodeId });
  }
}

/** StoredMeta is meta.json as read: a directory created before directory ids has none. */
type StoredMeta = Omit<DataDirMeta, 'directoryId'> & { readonly directoryId: string | undefined };

/** readMeta returns the parsed meta.json, undefined when it (or the directory) does not exist. */
async function readMeta(dataDir: string): Promise<StoredMeta | undefined> {
  const metaPath = path.join(dataDir, metaFileName);
  const text = await readSmallFile(dataDir, metaPath);
  if (text === undefined) return undefined;
  const meta = parseMeta(text);
  if (meta !== undefined) return meta;
  const message = `${metaPath} is not a valid raftbus meta file (expected JSON with formatVersion, clusterId, nodeId and a directoryId of 32 hex digits); it was not written by raftbus or is damaged`;
  throw new DataDirError({ kind: 'corruptMeta', dataDir, message });
}

function parseMeta(text: string): StoredMeta | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { formatVersion, clusterId, nodeId, directoryId } = value as Record<string, unknown>;
  if (!Number.isInteger(formatVersion) || typeof clusterId !== 'string' || !Number.isInteger(nodeId)) return undefined;
  if (directoryId !== undefined && (typeof directoryId !== 'string' || !directoryIdPattern.test(directoryId))) return undefined;
  return { formatVersion: formatVersion as number, clusterId, nodeId: nodeId as number, directoryId };
}

/** readSmallFile returns a file's text, or undefined when it does not exist. */
async function readSmallFile(dataDir: string, filePath: string): Promise<string | undefined> {
  try {
    const bytes = await readFile(filePath);
    if (bytes.length > metaFileBytesMax) {
      throw new DataDirError({ kind: 'corruptMeta', dataDir, message: `${filePath} is larger than ${metaFileBytesMax} bytes` });
    }
    return bytes.toString('utf8');
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new DataDirError({ kind: 'unusable', dataDir, message: `cannot read ${filePath} (${code ?? String(error)})`, cause: error });
  }
}

/** ensureDirectory creates dataDir (and missing parents) and makes the new directory entries durable. */
async function ensureDirectory(dataDir: string): Promise<void> {
  let firstCreated: string | undefined;
  try {
    firstCreated = await mkdir(dataDir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataDirError({ kind: 'unusable', dataDir, message: `cannot create the directory (${code ?? String(error)})`, cause: error });
  }
  if (firstCreated === undefined) return;
  // Each created directory's entry lives in its parent: fsync from dataDir's parent up to firstCreated's.
  for (let dir = dataDir; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    await fsyncDirectory(path.dirname(dir));
    if (dir === firstCreated) return;
  }
}

/**
 * checkOnlyOurFiles refuses a directory without meta.json that holds anything besides what an
 * interrupted first start may leave (the lock and a meta temp file): it is someone else's directory.
 */
async function checkOnlyOurFiles(dataDir: string): Promise<void> {
  const ours = (name: string) => name === lockFileName || name === metaTempFileName || name.startsWith(staleLockPrefix);
  const foreign = (await readdir(dataDir)).filter((name) => !ours(name));
  if (foreign.length === 0) return;
  const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ', …' : '');
  const message = foreign.every((name) => nodeSubdirectories.has(name))
    ? `holds raftbus's own subdirectories (${shown}) but no ${metaFileName}: a node recreated them after its data directory was removed while it ran, and what they hold is not the node's state; put the directory back from a backup before this node starts again`
    : `is not empty (${shown}) and has no ${metaFileName}, so it is not a raftbus data directory; choose an empty or new directory`;
  throw new DataDirError({ kind: 'notEmpty', dataDir, message });
}

/** writeMetaDurably writes meta.json so that after a crash it is either absent or complete. */
async function writeMetaDurably(dataDir: string, meta: DataDirMeta): Promise<void> {
  const tempPath = path.join(dataDir, metaTempFileName);
  await writeFileSynced(tempPath, `${JSON.stringify(meta, null, 2)}\n`, 'w');
  await rename(tempPath, path.join(dataDir, metaFileName));
  await fsyncDirectory(dataDir);
}

async function writeFileSynced(filePath: string, text: string, flags: 'w' | 'wx'): Promise<void> {
  const handle = await open(filePath, flags, 0o644);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The lock.

/**
 * acquireLock takes dataDir's lock, taking over a stale one, and returns the lock file's path.
 * The claim in heldLocks is made before the first await, so two opens in one process cannot race.
 */
async function acquireLock(dataDir: string): Promise<string> {
  const lockPath = path.join(dataDir, lockFileName);
  const self: LockOwner = { pid: process.pid, hostname: hostname() };
  if (heldLocks.has(lockPath)) throw lockedError(dataDir, lockPath, self);
  heldLocks.add(lockPath);
  try {
    await takeLock(dataDir, lockPath, self);
    return lockPath;
  } catch (error) {
    heldLocks.delete(lockPath);
    throw error;
  }
}

async function takeLock(dataDir: string, lockPath: string, self: LockOwner): Promise<void> {
  for (let attempt = 1; attempt <= lockAttemptsMax; attempt++) {
    if (await tryCreateLock(lockPath, self)) return;
    const owner = await readLockOwner(dataDir, lockPath);
    if (owner === undefined) continue; // released between our attempt and the read: try again
    if (!isStale(owner, self)) throw lockedError(dataDir, lockPath, owner);
    await removeStaleLock(lockPath, owner);
  }
  const message = `could not take ${lockPath} in ${lockAttemptsMax} attempts; another process keeps taking it`;
  throw new DataDirError({ kind: 'locked', dataDir, message });
}

async function tryCreateLock(lockPath: string, self: LockOwner): Promise<boolean> {
  try {
    await writeFileSynced(lockPath, `${JSON.stringify(self)}\n`, 'wx');
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * readLockOwner returns the lock's owner, undefined if the lock is gone. A lock that cannot be parsed
 * (its owner may be writing it this very moment) is treated as held.
 */
async function readLockOwner(dataDir: string, lockPath: string): Promise<LockOwner | undefined> {
  const text = await readSmallFile(dataDir, lockPath);
  if (text === undefined) return undefined;
  const owner = parseLockOwner(text);
  if (owner !== undefined) return owner;
  const message = `${lockPath} exists but cannot be read as a lock; if no raftbus process uses this directory, delete that file`;
  throw new DataDirError({ kind: 'locked', dataDir, message });
}

function parseLockOwner(text: string): LockOwner | undefined {
  try {
    const { pid, hostname: host } = JSON.parse(text) as Record<string, unknown>;
    if (Number.isInteger(pid) && (pid as number) > 0 && typeof host === 'string') return { pid: pid as number, hostname: host };
  } catch {
    // Not JSON: fall through.
  }
  return undefined;
}

/**
 * isStale judges a lock found on disk while this process has claimed the path. A lock with our own pid
 * was therefore left by an earlier process that had the same pid.
 */
function isStale(owner: LockOwner, self: LockOwner): boolean {
  if (owner.hostname !== self.hostname) return false;
  return owner.pid === self.pid || !isProcessAlive(owner.pid);
}

/** isProcessAlive asks the kernel whether pid exists; EPERM means it exists but belongs to another user. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * removeStaleLock moves the lock aside under a name of its own, then checks that what it moved is the
 * stale lock it judged. Should another process have replaced the lock meanwhile, it puts that lock back
 * (link fails rather than overwrite if a third has taken the name) so that no live lock is lost.
 */
async function removeStaleLock(lockPath: string, stale: LockOwner): Promise<void> {
  const asidePath = `${path.join(path.dirname(lockPath), staleLockPrefix)}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, asidePath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = parseLockOwner((await readFile(asidePath)).toString('utf8'));
  if (moved?.pid !== stale.pid || moved.hostname !== stale.hostname) {
    await link(asidePath, lockPath).catch(() => undefined);
  }
  await unlink(asidePath);
}

function lockedError(dataDir: string, lockPath: string, owner: LockOwner): DataDirError {
  const who = owner.hostname === hostname() ? `process ${owner.pid}` : `process ${owner.pid} on host ${owner.hostname}`;
  const held = owner.pid === process.pid && owner.hostname === hostname() ? 'this process itself' : who;
  const message = `is in use: ${lockPath} is held by ${held}; stop that process, or delete the lock file if it no longer runs`;
  return new DataDirError({ kind: 'locked', dataDir, message, lockOwner: owner });
}

/** releaseLock deletes the lock file if it is still ours, then drops this process's claim. */
async function releaseLock(lockPath: string): Promise<void> {
  try {
    const owner = parseLockOwner((await readFile(lockPath).catch(() => Buffer.alloc(0))).toString('utf8'));
    if (owner?.pid === process.pid && owner.hostname === hostname()) await unlink(lockPath).catch(() => undefined);
  } finally {
    heldLocks.delete(lockPath);
  }
}
