// GroupStore.compacted is what an offsets partition's snapshots carry in place of the records they
// drop. A snapshot is taken at the store's applied index but may stand for an earlier Raft index
// (compaction and retention cut at a batch or segment boundary), so a replica restored from it
// replays records the store already holds. These properties show that this is harmless: for any
// history of records, restoring the compacted store and replaying any suffix of the history gives
// the store the whole history gives, and the compacted form holds one record per name.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupStore, type GroupRecord } from './records.js';

// Few groups, topics and partitions, so that records often name the same thing.
const group = fc.constantFrom('a', 'b', 'c');
const offsetCommit = fc.record({
  type: fc.constant('offsetCommit' as const),
  group,
  topic: fc.constantFrom('t', 'u'),
  partition: fc.integer({ min: 0, max: 2 }),
  offset: fc.integer({ min: 0, max: 1000 }),
  metadata: fc.constantFrom('', 'm'),
  commitTimestampMs: fc.integer({ min: 0, max: 10 }),
});
const groupMetadata = fc.record({
  type: fc.constant('groupMetadata' as const),
  group,
  generation: fc.integer({ min: 0, max: 5 }),
  assignor: fc.constantFrom('range', 'roundrobin'),
  leaderId: fc.constantFrom('', 'm-1'),
  members: fc.constantFrom([], [{ memberId: 'm-1', instanceId: '', clientId: 'c', sessionTimeoutMs: 10, rebalanceTimeoutMs: 20, topics: ['t'], assignment: [{ topic: 't', partition: 0 }] }]),
  stateTimestampMs: fc.integer({ min: 0, max: 10 }),
});
const groupDelete = fc.record({ type: fc.constant('groupDelete' as const), group });
const history = fc.array(fc.oneof({ weight: 6, arbitrary: offsetCommit }, { weight: 2, arbitrary: groupMetadata }, { weight: 1, arbitrary: groupDelete }), { maxLength: 60 });

function replayed(records: readonly GroupRecord[], store = new GroupStore()): GroupStore {
  for (const record of records) store.replay(record);
  return store;
}

/** contents is what a store answers: its groups, each one's metadata and committed offsets. */
function contents(store: GroupStore): unknown {
  return store.groups().map((name) => ({ name, metadata: store.metadata.get(name), committed: store.committed(name) }));
}

describe('GroupStore compaction', () => {
  it('a store restored from its compacted records, then replaying any suffix of its history, is the same store', () => {
    fc.assert(
      fc.property(history, fc.nat(), (records, cut) => {
        const whole = replayed(records);
        const restored = new GroupStore();
        restored.restore(whole.compacted());
        expect(contents(restored)).toEqual(contents(whole));
        const suffix = records.slice(cut % (records.length + 1));
        expect(contents(replayed(suffix, restored))).toEqual(contents(whole));
      }),
    );
  });

  it('the compacted records name each group metadata and each offset once, and hold no deletes', () => {
    fc.assert(
      fc.property(history, (records) => {
        const compacted = replayed(records).compacted();
        const names = compacted.map((record) => (record.type === 'offsetCommit' ? `${record.group}/${record.topic}/${record.partition}` : `${record.group}:${record.type}`));
        expect(new Set(names).size).toBe(names.length);
        expect(compacted.some((record) => record.type === 'groupDelete')).toBe(false);
      }),
    );
  });

  it('restore drops what the store held before', () => {
    const store = replayed([{ type: 'offsetCommit', group: 'old', topic: 't', partition: 0, offset: 5, metadata: '', commitTimestampMs: 1 }]);
    store.restore([{ type: 'offsetCommit', group: 'new', topic: 't', partition: 1, offset: 9, metadata: '', commitTimestampMs: 2 }]);
    expect(store.groups()).toEqual(['new']);
    expect(store.committed('new')).toEqual([{ topic: 't', partition: 1, offset: 9, metadata: '', commitTimestampMs: 2 }]);
  });
});
