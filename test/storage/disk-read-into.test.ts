// Disk.read with `into` (one buffer reused by a run of reads, as recovery's scan does) on both disks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Disk } from '../../src/storage/disk.js';
import { NodeDisk } from '../../src/storage/node-disk.js';
import { ReadBuffer, readWholeFile } from '../../src/storage/segment-files.js';
import { MemoryDisk } from '../sim/memory-disk.js';

const root = mkdtempSync(join(tmpdir(), 'raftbus-read-into-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const disks: [string, Disk, string][] = [
  ['NodeDisk', new NodeDisk(), root],
  ['MemoryDisk', new MemoryDisk({ preallocateBytes: 0 }), '/data'],
];

describe.each(disks)('%s read into a buffer', (_name, disk, dir) => {
  it('reads into the buffer given and returns a view of it, short at the end of the file', () => {
    disk.mkdirp(dir);
    const file = disk.open(join(dir, 'a'), { create: true });
    disk.write(file, 0, Uint8Array.from([1, 2, 3, 4, 5]));
    const into = new Uint8Array(8).fill(9);
    const read = disk.read(file, 1, 3, into);
    expect([...read]).toEqual([2, 3, 4]);
    expect(read.buffer).toBe(into.buffer);
    expect([...into]).toEqual([2, 3, 4, 9, 9, 9, 9, 9]);
    expect([...disk.read(file, 3, 5, into)]).toEqual([4, 5]);
    expect(disk.read(file, 7, 1, into)).toHaveLength(0);
    expect(() => disk.read(file, 0, 9, into)).toThrow(RangeError);
    disk.close(file);
  });

  it('reads whole files one after another through one ReadBuffer, which grows to the largest', () => {
    disk.mkdirp(dir);
    const sizes = [300, 1000, 20];
    sizes.forEach((size, i) => {
      const file = disk.open(join(dir, `f${i}`), { create: true });
      disk.write(file, 0, Uint8Array.from({ length: size }, (_, k) => (k + i) & 255));
      disk.close(file);
    });
    const buffer = new ReadBuffer();
    const views = sizes.map((size, i) => {
      const bytes = readWholeFile(disk, join(dir, `f${i}`), buffer);
      expect(bytes.every((b, k) => b === ((k + i) & 255)) && bytes.length === size).toBe(true);
      return bytes;
    });
    expect(views[2]!.buffer).toBe(views[1]!.buffer); // the 1000-byte buffer served the last read
  });
});
