// DurableRaftStorage serves recent entries from memory: whatever it returns must equal what the
// segmented log returns, across appends that truncate, compaction and snapshots; and the
// membership changes it finds in the log's index must be those a read finds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DurableRaftStorage } from '../../src/node/durable-raft-storage.js';
import { encodeConfChange } from '../../src/raft/confchange.js';
import { Raft } from '../../src/raft/raft.js';
import type { Entry, Snapshot } from '../../src/raft/types.js';
import { SegmentedLog } from '../../src/storage/segmented-log.js';
import { MemoryDisk } from '../sim/memory-disk.js';

type Op = { kind: 'append'; back: number; count: number; bytes: number } | { kind: 'compact'; back: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), back: fc.nat({ max: 6 }), count: fc.integer({ min: 1, max: 40 }), bytes: fc.nat({ max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), back: fc.nat({ max: 30 }) }) },
);

/** plain compares entries by content (the log hands out Buffers, memory the bytes it was given). */
const plain = (entries: Entry[]) => entries.map((entry) => ({ ...entry, data: [...entry.data] }));

const bootstrap: Snapshot = { metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };

describe('DurableRaftStorage', () => {
  it('returns from memory exactly what the log returns from disk', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 200 }), async (ops) => {
        const log = await SegmentedLog.open({ disk: new MemoryDisk(), dir: '/log', segmentBytesMax: 4096, entryBytesMax: 1024 });
        const storage = new DurableRaftStorage(log, bootstrap, { term: 1, vote: 0, commit: 1 });
        let term = 1;
        for (const step of ops) {
          if (step.kind === 'append') {
            const from = Math.max(storage.firstIndex(), storage.lastIndex() + 1 - step.back);
            term++;
            const entries: Entry[] = Array.from({ length: step.count }, (_, i) => ({ index: from + i, term, type: (from + i) % 9 === 0 ? 'confChange' : 'normal', data: new Uint8Array(step.bytes).fill(i) }));
            storage.append(entries);
          } else {
            const index = storage.lastIndex() - step.back;
            if (index >= storage.firstIndex()) storage.compact({ metadata: { index, term: storage.term(index)!, confState: bootstrap.metadata.confState }, data: new Uint8Array(0) });
          }
          const first = storage.firstIndex();
          const last = storage.lastIndex();
          // The membership changes, found without reading the rest: those a read of everything finds.
          const all = first <= last ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
          expect(plain(storage.confChangeEntries(first, last + 1))).toEqual(plain(all.filter((entry) => entry.type === 'confChange')));
          for (let lo = first; lo <= last; lo += 7) {
            for (const maxBytes of [0, 200, Number.MAX_SAFE_INTEGER]) {
              const hi = Math.min(last + 1, lo + 50);
              expect(plain(storage.entries(lo, hi, maxBytes))).toEqual(plain(log.entries(lo, hi, maxBytes)));
            }
          }
        }
        log.close();
      }),
      { numRuns: 60 },
    );
  });
});

describe('a Raft group started on DurableRaftStorage', () => {
  it('finds the membership changes among 200,000 entries past its snapshot without reading the others, and slices them all', async () => {
    const disk = new MemoryDisk();
    const log = await SegmentedLog.open({ disk, dir: '/log', segmentBytesMax: 256 * 1024, entryBytesMax: 1024 });
    const count = 200_000;
    const change = encodeConfChange({ type: 'addLearner', nodeId: 4 });
    const entries: Entry[] = Array.from({ length: count }, (_, i) => {
      const index = i + 2;
      return index === 150_000 ? { index, term: 1, type: 'confChange', data: change } : { index, term: 1, type: 'normal', data: new Uint8Array(10).fill(i & 255) };
    });
    log.compactPrefix(1); // the bootstrap snapshot's index
    log.append(entries);
    await log.sync();
    log.close();
    const reopened = await SegmentedLog.open({ disk, dir: '/log', segmentBytesMax: 256 * 1024, entryBytesMax: 1024 });
    const before = disk.totalBytesRead();
    const raft = new Raft({ id: 1, group: 9, storage: new DurableRaftStorage(reopened, bootstrap, { term: 1, vote: 0, commit: 1 }), random: () => 0, electionTicks: 10, heartbeatTicks: 2 });
    expect(raft.confState).toEqual({ voters: [1], learners: [4] });
    expect(disk.totalBytesRead() - before, 'bytes read to start the group').toBeLessThan(1024);
    // A slice of the whole log in one call (once a spread into push, which overflowed the stack).
    expect(raft.log.slice(2, count + 2, Number.POSITIVE_INFINITY)).toHaveLength(count);
    reopened.close();
  });
});
