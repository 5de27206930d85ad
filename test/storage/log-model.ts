// LogModel is the plain-array model the conformance suite checks SegmentedLog against, and the
// helpers that compare a real log with it.
import { expect } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import type { SegmentedLog } from '../../src/storage/segmented-log.js';

/** LogState is a log's content: entries[i] has index first + i. */
export interface LogState {
  readonly first: number;
  readonly entries: readonly Entry[];
}

export function lastOf(state: LogState): number {
  return state.first + state.entries.length - 1;
}

export function entryKey(entry: Entry): string {
  return `${entry.index}/${entry.term}/${entry.type}/${Buffer.from(entry.data).toString('hex')}`;
}

/** readState reads everything the log holds, checking term() and confChangeIndexes() along the way. */
export function readState(log: SegmentedLog): LogState {
  const first = log.firstIndex();
  const last = log.lastIndex();
  const entries = last >= first ? log.entries(first, last + 1, Number.POSITIVE_INFINITY) : [];
  expect(entries.length).toBe(last - first + 1);
  entries.forEach((entry, i) => {
    expect(entry.index).toBe(first + i);
    expect(log.term(entry.index)).toBe(entry.term);
  });
  expect(log.term(first - 1)).toBeUndefined();
  expect(log.term(last + 1)).toBeUndefined();
  // The membership changes it lists without reading them are those the read finds.
  expect(log.confChangeIndexes(0, Number.MAX_SAFE_INTEGER)).toEqual(entries.filter((entry) => entry.type === 'confChange').map((entry) => entry.index));
  return { first, entries: entries.map((e) => ({ ...e, data: Uint8Array.from(e.data) })) };
}

/** expectSameState asserts two states are identical, with a readable diff. */
export function expectSameState(actual: LogState, expected: LogState): void {
  expect({ first: actual.first, entries: actual.entries.map(entryKey) }).toEqual({
    first: expected.first,
    entries: expected.entries.map(entryKey),
  });
}

/**
 * agreesWith says whether actual matches candidate on every index both hold (entries of actual
 * below candidate.first must match history, the compacted entries), and ends where candidate
 * does (or, when prefixOnly, no later).
 */
export function agreesWith(actual: LogState, candidate: LogState, options: { history: ReadonlyMap<number, string>; prefixOnly: boolean }): boolean {
  const last = lastOf(actual);
  if (options.prefixOnly ? last > lastOf(candidate) : last !== lastOf(candidate)) return false;
  return actual.entries.every((entry) => {
    const expected = entry.index < candidate.first ? options.history.get(entry.index) : candidate.entries[entry.index - candidate.first];
    return expected !== undefined && (typeof expected === 'string' ? expected : entryKey(expected)) === entryKey(entry);
  });
}

/** agreeThrough is the last index through which a and b hold the same entries (compacted ones count as equal). */
export function agreeThrough(a: LogState, b: LogState): number {
  let index = Math.max(a.first, b.first);
  const end = Math.min(lastOf(a), lastOf(b));
  while (index <= end && entryKey(a.entries[index - a.first]!) === entryKey(b.entries[index - b.first]!)) index++;
  return index - 1;
}
