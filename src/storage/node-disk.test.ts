import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeDisk } from './node-disk.js';

describe('NodeDisk', () => {
  let root: string;
  const disk = new NodeDisk();
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'raftbus-disk-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('writes, reads (short at end of file), truncates, syncs, renames and unlinks', async () => {
    const dir = join(root, 'a', 'b');
    disk.mkdirp(dir);
    const file = disk.open(join(dir, 'x'), { create: true });
    disk.write(file, 0, Uint8Array.from([1, 2, 3, 4]));
    expect([...disk.read(file, 2, 10)]).toEqual([3, 4]);
    disk.truncate(file, 3);
    expect(disk.size(file)).toBe(3);
    await disk.fdatasync(file);
    disk.close(file);
    disk.rename(join(dir, 'x'), join(dir, 'y'));
    await disk.syncDirectory(dir);
    expect(disk.list(dir)).toEqual(['y']);
    disk.unlink(join(dir, 'y'));
    expect(disk.exists(join(dir, 'y'))).toBe(false);
    expect(() => disk.open(join(dir, 'y'), { create: false })).toThrow(/ENOENT/);
  });

  it('fdatasync inline is done before the event loop turns; on the pool it is not', async () => {
    const file = disk.open(join(root, 'x'), { create: true });
    disk.write(file, 0, Uint8Array.from([5, 6, 7]));
    const settled = { inline: false, pool: false };
    const inline = disk.fdatasync(file, { inline: true }).then(() => (settled.inline = true));
    const pool = disk.fdatasync(file).then(() => (settled.pool = true));
    for (let i = 0; i < 5; i++) await Promise.resolve(); // microtasks only: no I/O callback can run
    expect(settled).toEqual({ inline: true, pool: false });
    await Promise.all([inline, pool]);
    expect([...readFileSync(join(root, 'x'))]).toEqual([5, 6, 7]);
  });

  it('a failing fdatasync rejects its promise, inline or on the pool, and never throws', async () => {
    const file = disk.open('/dev/null', { create: false }); // fdatasync of a character device: EINVAL
    for (const inline of [true, false]) {
      let sync: Promise<void> | undefined;
      expect(() => (sync = disk.fdatasync(file, { inline }))).not.toThrow();
      await expect(sync).rejects.toMatchObject({ code: 'EINVAL' });
    }
    disk.close(file);
  });
});
