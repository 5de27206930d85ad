import { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { NodeDisk } from '../../src/storage/node-disk.js';
import { MemoryDisk } from '../sim/memory-disk.js';
import { runLogConformance } from './log-conformance.js';
import { seededRandom } from './seeded-random.js';

describe('SegmentedLog conformance', () => {
  runLogConformance('MemoryDisk', {
    numRuns: 300,
    makeEnv: (seed) => {
      // Growing files ahead of the data by a frame-aligned or odd chunk, or not at all.
      const preallocateBytes = [256, 100, 0][Math.floor(seed / 2) % 3]!;
      const disk = new MemoryDisk({ random: seededRandom(seed), syncMode: seed % 2 === 0 ? 'immediate' : 'manual', preallocateBytes });
      const completeNextSync = (): boolean => disk.completeNextSync();
      const damage = { flipBit: (path: string, offset: number, bit: number) => disk.flipBit(path, offset, bit), truncateFile: (path: string, length: number) => disk.truncateFile(path, length) };
      return { disk, dir: '/data/group-7', powerLoss: (options) => disk.crash(options), completeNextSync, damage, cleanup: () => undefined };
    },
  });
  runLogConformance('NodeDisk', {
    numRuns: 60,
    makeEnv: () => {
      const root = mkdtempSync(join(tmpdir(), 'raftbus-log-'));
      const damage = { flipBit: flipBitOnDisk, truncateFile: (path: string, length: number) => truncateSync(path, length) };
      return { disk: new NodeDisk(), dir: join(root, 'group-7'), powerLoss: undefined, completeNextSync: undefined, damage, cleanup: () => rmSync(root, { recursive: true, force: true }) };
    },
  });
});

/** flipBitOnDisk flips one bit of a real file in place. */
function flipBitOnDisk(path: string, offset: number, bit: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0]! ^= 1 << (bit & 7);
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}
