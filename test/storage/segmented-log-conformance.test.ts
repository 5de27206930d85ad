import { mkdtempSync, rmSync } from 'node:fs';
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
      const disk = new MemoryDisk({ random: seededRandom(seed), syncMode: seed % 2 === 0 ? 'immediate' : 'manual' });
      const completeNextSync = (): boolean => disk.completeNextSync();
      return { disk, dir: '/data/group-7', powerLoss: (options) => disk.crash(options), completeNextSync, cleanup: () => undefined };
    },
  });
  runLogConformance('NodeDisk', {
    numRuns: 60,
    makeEnv: () => {
      const root = mkdtempSync(join(tmpdir(), 'raftbus-log-'));
      return { disk: new NodeDisk(), dir: join(root, 'group-7'), powerLoss: undefined, completeNextSync: undefined, cleanup: () => rmSync(root, { recursive: true, force: true }) };
    },
  });
});
