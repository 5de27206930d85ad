import { describe, expect, it } from 'vitest';
import { seededRandom as seeded } from '../storage/seeded-random.js';
import { MemoryDisk, MemoryDiskError } from './memory-disk.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

function readAll(disk: MemoryDisk, path: string): number[] {
  const file = disk.open(path, { create: false });
  const content = [...disk.read(file, 0, disk.size(file))];
  disk.close(file);
  return content;
}

describe('MemoryDisk', () => {
  it('reads what was written, and keeps only synced data across a crash', async () => {
    const disk = new MemoryDisk();
    disk.mkdirp('/d');
    const file = disk.open('/d/a', { create: true });
    disk.write(file, 0, bytes(1, 2, 3));
    await disk.fdatasync(file);
    disk.write(file, 3, bytes(4, 5));
    disk.truncate(file, 4);
    expect(readAll(disk, '/d/a')).toEqual([1, 2, 3, 4]);
    disk.crash();
    expect(readAll(disk, '/d/a')).toEqual([1, 2, 3]);
    expect(() => disk.size(file)).toThrow(MemoryDiskError);
  });

  it('keeps unsynced writes across a killed process until a crash, and a later fdatasync makes them durable', async () => {
    const disk = new MemoryDisk({ syncMode: 'manual' });
    disk.mkdirp('/d');
    const file = disk.open('/d/a', { create: true });
    disk.write(file, 0, bytes(1, 2));
    let answered = false;
    void disk.fdatasync(file).then(() => (answered = true));
    disk.killProcess();
    expect(disk.completeAllSyncs()).toBe(0);
    await Promise.resolve();
    expect(answered).toBe(false);
    expect(() => disk.size(file)).toThrow(MemoryDiskError);
    expect(readAll(disk, '/d/a')).toEqual([1, 2]);
    disk.crash();
    expect(readAll(disk, '/d/a')).toEqual([]);
    const again = disk.open('/d/a', { create: false });
    disk.write(again, 0, bytes(3));
    disk.killProcess();
    const third = disk.open('/d/a', { create: false });
    const synced = disk.fdatasync(third);
    disk.completeAllSyncs();
    await synced;
    disk.crash();
    expect(readAll(disk, '/d/a')).toEqual([3]);
  });

  it('treats directory operations as durable at once', () => {
    const disk = new MemoryDisk();
    disk.mkdirp('/d/e');
    disk.open('/d/e/x', { create: true });
    disk.open('/d/e/y', { create: true });
    disk.rename('/d/e/x', '/d/e/z');
    disk.unlink('/d/e/y');
    disk.crash();
    expect(disk.list('/d/e')).toEqual(['z']);
    expect(disk.list('/d')).toEqual(['e']);
    expect(() => disk.open('/d/e/y', { create: false })).toThrow(MemoryDiskError);
    expect(() => disk.open('/nope/x', { create: true })).toThrow(MemoryDiskError);
  });

  it('completes fdatasync only when told to in manual mode, capturing data as of the call', async () => {
    const disk = new MemoryDisk({ syncMode: 'manual' });
    disk.mkdirp('/d');
    const file = disk.open('/d/a', { create: true });
    disk.write(file, 0, bytes(1));
    let done = false;
    const sync = disk.fdatasync(file).then(() => (done = true));
    disk.write(file, 1, bytes(2));
    await Promise.resolve();
    expect(done).toBe(false);
    expect(disk.pendingSyncCount()).toBe(1);
    expect(disk.completeAllSyncs()).toBe(1);
    await sync;
    expect(done).toBe(true);
    expect([...disk.durableContent('/d/a')]).toEqual([1]);
    disk.crash();
    expect(readAll(disk, '/d/a')).toEqual([1]);
  });

  it('completes waiting syncs oldest first, each making its captured content durable', async () => {
    const disk = new MemoryDisk({ syncMode: 'manual' });
    disk.mkdirp('/d');
    const file = disk.open('/d/a', { create: true });
    disk.write(file, 0, bytes(1));
    void disk.fdatasync(file);
    disk.write(file, 1, bytes(2));
    void disk.fdatasync(file);
    disk.completeNextSync();
    expect([...disk.durableContent('/d/a')]).toEqual([1]);
    disk.completeNextSync();
    expect([...disk.durableContent('/d/a')]).toEqual([1, 2]);
  });

  it('tears deterministically: the same seed gives the same surviving prefix', () => {
    const run = (seed: number): number[] => {
      const disk = new MemoryDisk({ random: seeded(seed) });
      disk.mkdirp('/d');
      const file = disk.open('/d/a', { create: true });
      for (let i = 0; i < 5; i++) disk.write(file, i * 4, bytes(i, i, i, i));
      disk.crash({ tear: true });
      return readAll(disk, '/d/a');
    };
    for (let seed = 1; seed < 20; seed++) {
      const survived = run(seed);
      expect(run(seed)).toEqual(survived);
      const full = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4];
      expect(survived).toEqual(full.slice(0, survived.length));
    }
  });

  it('flips bits and truncates files on the media', async () => {
    const disk = new MemoryDisk();
    disk.mkdirp('/d');
    const file = disk.open('/d/a', { create: true });
    disk.write(file, 0, bytes(0, 0, 0, 0));
    await disk.fdatasync(file);
    disk.flipBit('/d/a', 2, 3);
    expect(readAll(disk, '/d/a')).toEqual([0, 0, 8, 0]);
    disk.truncateFile('/d/a', 3);
    disk.crash();
    expect(readAll(disk, '/d/a')).toEqual([0, 0, 8]);
  });
});
