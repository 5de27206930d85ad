import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryIdPattern } from '../rpc/peer-codec.js';
import { DataDirError, dataDirFormatVersion, isProcessAlive, lockFileName, metaFileName, openDataDir } from './data-dir.js';
import type { DataDir } from './data-dir.js';

let root = '';
const opened: DataDir[] = [];

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'raftbus-data-dir-'));
});

afterEach(async () => {
  for (const dataDir of opened.splice(0)) await dataDir.close();
  await rm(root, { recursive: true, force: true });
});

async function open(dir: string, clusterId = 'cluster-a', nodeId = 1): Promise<DataDir> {
  const dataDir = await openDataDir({ path: dir, clusterId, nodeId });
  opened.push(dataDir);
  return dataDir;
}

async function openError(dir: string, clusterId = 'cluster-a', nodeId = 1): Promise<DataDirError> {
  const error = await open(dir, clusterId, nodeId).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DataDirError);
  return error as DataDirError;
}

/** snapshot returns every file of dir with its content and modification time, to show nothing changed. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name);
    result[name] = `${(await stat(file)).mtimeMs} ${await readFile(file, 'utf8')}`;
  }
  return result;
}

async function writeMeta(dir: string, meta: object): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, metaFileName), JSON.stringify(meta));
}

async function writeLock(dir: string, owner: { pid: number; hostname: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, lockFileName), JSON.stringify(owner));
}

/** deadPid returns the pid of a process that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.pid === undefined || isProcessAlive(child.pid)) throw new Error('could not get the pid of an exited process');
  return child.pid;
}

describe('openDataDir: identity', () => {
  it('creates a fresh directory, with parents, and writes meta.json', async () => {
    const dir = path.join(root, 'a', 'b', 'node-1');
    const dataDir = await open(dir);
    expect(dataDir.created).toBe(true);
    expect(dataDir.path).toBe(dir);
    expect(dataDir.meta).toEqual({ formatVersion: dataDirFormatVersion, clusterId: 'cluster-a', nodeId: 1, directoryId: expect.stringMatching(directoryIdPattern) });
    const meta = JSON.parse(await readFile(path.join(dir, metaFileName), 'utf8')) as unknown;
    expect(meta).toEqual(dataDir.meta);
    expect((await readdir(dir)).sort()).toEqual([lockFileName, metaFileName]);
  });

  it('draws a new directory id for every directory it creates', async () => {
    const ids = new Set<string>();
    for (const name of ['x', 'y', 'z']) ids.add((await open(path.join(root, name))).meta.directoryId);
    expect(ids.size).toBe(3);
  });

  it('gives a directory written before directory ids one, once, and keeps it', async () => {
    const dir = path.join(root, 'node-1');
    await writeMeta(dir, { formatVersion: dataDirFormatVersion, clusterId: 'cluster-a', nodeId: 1 });
    const first = await open(dir);
    expect(first.created).toBe(false);
    expect(first.meta.directoryId).toMatch(directoryIdPattern);
    const written = JSON.parse(await readFile(path.join(dir, metaFileName), 'utf8')) as { directoryId: string };
    expect(written.directoryId).toBe(first.meta.directoryId);
    await first.close();
    expect((await open(dir)).meta.directoryId).toBe(first.meta.directoryId);
  });

  it('refuses a meta.json whose directory id is not 32 hex digits', async () => {
    const dir = path.join(root, 'node-1');
    await writeMeta(dir, { formatVersion: dataDirFormatVersion, clusterId: 'cluster-a', nodeId: 1, directoryId: 'ABC' });
    const error = await openError(dir);
    expect(error.kind).toBe('corruptMeta');
    expect(error.message).toContain('directoryId of 32 hex digits');
  });

  it('opens again with the same identity, without rewriting meta.json', async () => {
    const dir = path.join(root, 'node-1');
    const first = await open(dir);
    const firstId = first.meta.directoryId;
    await first.close();
    const before = await stat(path.join(dir, metaFileName));
    const dataDir = await open(dir);
    expect(dataDir.created).toBe(false);
    expect(dataDir.meta).toEqual({ formatVersion: dataDirFormatVersion, clusterId: 'cluster-a', nodeId: 1, directoryId: firstId });
    expect((await stat(path.join(dir, metaFileName))).mtimeMs).toBe(before.mtimeMs);
  });

  it('accepts an existing empty directory', async () => {
    const dir = path.join(root, 'empty');
    await mkdir(dir);
    expect((await open(dir)).created).toBe(true);
  });

  it('refuses a directory of another cluster, naming both ids and the path, and touches nothing', async () => {
    const dir = path.join(root, 'node-1');
    await (await open(dir, 'cluster-a', 1)).close();
    const before = await snapshot(dir);
    const error = await openError(dir, 'cluster-b', 1);
    expect(error).toMatchObject({ name: 'DataDirError', kind: 'otherCluster', dataDir: dir, expected: 'cluster-b', found: 'cluster-a' });
    expect(error.message).toContain(dir);
    expect(error.message).toContain('"cluster-a"');
    expect(error.message).toContain('"cluster-b"');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a directory of another node, naming both ids, and touches nothing', async () => {
    const dir = path.join(root, 'node-1');
    await (await open(dir, 'cluster-a', 1)).close();
    const before = await snapshot(dir);
    const error = await openError(dir, 'cluster-a', 2);
    expect(error).toMatchObject({ kind: 'otherNode', expected: 2, found: 1 });
    expect(error.message).toContain('node 1');
    expect(error.message).toContain('is 2');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses an unknown format version and touches nothing', async () => {
    const dir = path.join(root, 'node-1');
    await writeMeta(dir, { formatVersion: 99, clusterId: 'cluster-a', nodeId: 1 });
    const before = await snapshot(dir);
    const error = await openError(dir);
    expect(error).toMatchObject({ kind: 'unknownFormat', expected: dataDirFormatVersion, found: 99 });
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a damaged meta.json', async () => {
    const dir = path.join(root, 'node-1');
    await mkdir(dir);
    await writeFile(path.join(dir, metaFileName), '{"clusterId": "cluster-a"');
    expect((await openError(dir)).kind).toBe('corruptMeta');
  });

  it('refuses a non-empty directory without meta.json and touches nothing', async () => {
    const dir = path.join(root, 'home');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    const before = await snapshot(dir);
    const error = await openError(dir);
    expect(error.kind).toBe('notEmpty');
    expect(error.message).toContain('notes.txt');
    expect(error.message).toContain('not a raftbus data directory');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses the subdirectories a node recreated after losing its directory, saying so, and touches nothing', async () => {
    const dir = path.join(root, 'node-1');
    await mkdir(path.join(dir, 'partitions', 't-0-g1'), { recursive: true });
    await mkdir(path.join(dir, 'raft'));
    const listing = async (): Promise<string[]> => (await readdir(dir, { recursive: true })).sort();
    const before = await listing();
    const error = await openError(dir);
    expect(error.kind).toBe('notEmpty');
    expect(error.message).toContain('was removed while it ran');
    expect(error.message).toContain('from a backup');
    expect(await listing()).toEqual(before);
  });

  it('refuses a path that is a file', async () => {
    const file = path.join(root, 'file');
    await writeFile(file, 'x');
    expect((await openError(file)).kind).toBe('unusable');
  });
});

describe('openDataDir: the lock', () => {
  it('holds the lock while open and releases it on close', async () => {
    const dir = path.join(root, 'node-1');
    const dataDir = await open(dir);
    const owner = JSON.parse(await readFile(path.join(dir, lockFileName), 'utf8')) as unknown;
    expect(owner).toEqual({ pid: process.pid, hostname: hostname() });
    await dataDir.close();
    await dataDir.close();
    expect(await readdir(dir)).toEqual([metaFileName]);
  });

  it('refuses a second open in the same process', async () => {
    const dir = path.join(root, 'node-1');
    await open(dir);
    const error = await openError(dir);
    expect(error.kind).toBe('locked');
    expect(error.message).toContain('this process itself');
  });

  it('lets exactly one of two concurrent opens win', async () => {
    const dir = path.join(root, 'node-1');
    const results = await Promise.allSettled([open(dir), open(dir)]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((result) => result.status === 'rejected');
    expect((rejected as PromiseRejectedResult).reason).toMatchObject({ kind: 'locked' });
  });

  it('refuses a lock held by another live process, and leaves the lock alone', async () => {
    const dir = path.join(root, 'node-1');
    await (await open(dir)).close();
    const owner = { pid: process.ppid, hostname: hostname() };
    expect(isProcessAlive(owner.pid)).toBe(true);
    await writeLock(dir, owner);
    const before = await snapshot(dir);
    const error = await openError(dir);
    expect(error).toMatchObject({ kind: 'locked', lockOwner: owner });
    expect(error.message).toContain(`process ${owner.pid}`);
    expect(error.message).toContain(path.join(dir, lockFileName));
    expect(await snapshot(dir)).toEqual(before);
  });

  it('takes over a stale lock whose process has exited', async () => {
    const dir = path.join(root, 'node-1');
    await (await open(dir)).close();
    await writeLock(dir, { pid: deadPid(), hostname: hostname() });
    const dataDir = await open(dir);
    expect(dataDir.created).toBe(false);
    const owner = JSON.parse(await readFile(path.join(dir, lockFileName), 'utf8')) as unknown;
    expect(owner).toEqual({ pid: process.pid, hostname: hostname() });
    expect((await readdir(dir)).sort()).toEqual([lockFileName, metaFileName]);
  });

  it('takes over a lock left with our own pid by an earlier process (a restarted container)', async () => {
    const dir = path.join(root, 'node-1');
    await writeLock(dir, { pid: process.pid, hostname: hostname() });
    expect((await open(dir)).created).toBe(true);
  });

  it('refuses a lock from another host, which it cannot check', async () => {
    const dir = path.join(root, 'node-1');
    await writeLock(dir, { pid: deadPid(), hostname: `not-${hostname()}` });
    const error = await openError(dir);
    expect(error.kind).toBe('locked');
    expect(error.message).toContain(`on host not-${hostname()}`);
  });

  it('refuses a lock file it cannot parse, saying what to do', async () => {
    const dir = path.join(root, 'node-1');
    await mkdir(dir);
    await writeFile(path.join(dir, lockFileName), '');
    const error = await openError(dir);
    expect(error.kind).toBe('locked');
    expect(error.message).toContain('delete that file');
  });

  it('releases the lock when the identity check under the lock fails', async () => {
    const dir = path.join(root, 'node-1');
    await mkdir(dir);
    await writeFile(path.join(dir, 'foreign.bin'), 'x');
    await openError(dir);
    expect(await readdir(dir)).toEqual(['foreign.bin']);
  });
});

describe('DataDir.check: the directory under a running node', () => {
  it('finds nothing changed while the directory stays as opened, also after restarting on it', async () => {
    const dir = path.join(root, 'node-1');
    const first = await open(dir);
    expect(await first.check()).toBeUndefined();
    await writeFile(path.join(dir, 'other-file'), 'x');
    expect(await first.check()).toBeUndefined();
    await first.close();
    const second = await open(dir);
    expect(await second.check()).toBeUndefined();
  });

  it('tells a removed directory', async () => {
    const dir = path.join(root, 'node-1');
    const dataDir = await open(dir);
    await rm(dir, { recursive: true });
    expect(await dataDir.check()).toBe(`${dir} was removed`);
  });

  it('tells a directory removed and created again, even with a copy of meta.json and the lock in it', async () => {
    const dir = path.join(root, 'node-1');
    const dataDir = await open(dir);
    const meta = await readFile(path.join(dir, metaFileName));
    const lock = await readFile(path.join(dir, lockFileName));
    await rm(dir, { recursive: true });
    await mkdir(dir);
    await writeFile(path.join(dir, metaFileName), meta);
    await writeFile(path.join(dir, lockFileName), lock);
    expect(await dataDir.check()).toBe(`${dir} was removed and created again`);
  });

  it('tells a lock removed or replaced, and a meta.json removed', async () => {
    const dir = path.join(root, 'node-1');
    const dataDir = await open(dir);
    const lockPath = path.join(dir, lockFileName);
    const lock = await readFile(lockPath);
    await rm(lockPath);
    expect(await dataDir.check()).toBe(`${lockPath}, this node's lock, was removed`);
    await writeFile(lockPath, lock);
    expect(await dataDir.check()).toBe(`${lockPath}, this node's lock, was replaced`);

    const other = await open(path.join(root, 'node-2'), 'cluster-a', 2);
    await rm(path.join(root, 'node-2', metaFileName));
    expect(await other.check()).toBe(`${path.join(root, 'node-2', metaFileName)} was removed`);
  });
});
