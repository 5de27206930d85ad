import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntryIndex } from './entry-index.js';

/** Model is what an EntryIndex must answer: plain arrays from first on. */
interface Model {
  first: number;
  terms: number[];
  offsets: number[];
  crcs: number[];
  confChanges: boolean[];
}

type Op =
  | { readonly kind: 'push'; readonly count: number; readonly termStep: number }
  | { readonly kind: 'keep'; readonly fraction: number }
  | { readonly kind: 'dropFirst'; readonly fraction: number }
  | { readonly kind: 'reset'; readonly skip: number }
  | { readonly kind: 'rebuild'; readonly fraction: number };

// Pushes come a few or about an array's worth at a time (the arrays start at 1,024 entries), so
// that runs reach both ways of making room: moving to the front and doubling.
const pushCount = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 400, max: 2100 }));
// Fractions of what is held, uniform in whole percents (fc.double leans to the bounds), past 1 too.
const fraction = fc.integer({ min: 0, max: 120 }).map((percent) => percent / 100);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('push' as const), count: pushCount, termStep: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('keep' as const), fraction }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dropFirst' as const), fraction }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), skip: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rebuild' as const), fraction }) },
);

/** apply runs an operation on index and model; returns the index to go on with (rebuild makes a new one). */
function apply(index: EntryIndex, model: Model, operation: Op, step: number): EntryIndex {
  switch (operation.kind) {
    case 'rebuild': {
      // In two bulk copies split anywhere (as a log takes over a scan's index), runs merged across the split.
      const end = index.first() + index.length;
      const split = index.first() + Math.min(index.length, Math.floor(index.length * operation.fraction));
      const rebuilt = new EntryIndex(index.first());
      rebuilt.pushAll(index.columns(index.first(), split));
      rebuilt.pushAll(index.columns(split, end));
      return rebuilt;
    }
    case 'push':
      for (let i = 0; i < operation.count; i++) {
        // Terms never go down along a log; a term step of 0 keeps the run going.
        const term = (model.terms.at(-1) ?? 1) + (i === 0 ? operation.termStep : 0);
        const offset = (step * 7919 + i * 131) % 0x1_0000_0000;
        const crc = (step * 2654435761 + i * 40503) >>> 0;
        const confChange = (step * 13 + i) % 7 === 0;
        index.push(term, offset, crc, confChange);
        model.confChanges.push(confChange);
        model.terms.push(term);
        model.offsets.push(offset);
        model.crcs.push(crc);
      }
      return index;
    case 'keep': {
      const count = Math.floor(model.terms.length * operation.fraction);
      index.keep(count);
      for (const column of [model.terms, model.offsets, model.crcs, model.confChanges]) column.length = Math.min(column.length, count);
      return index;
    }
    case 'dropFirst': {
      const n = Math.floor(model.terms.length * operation.fraction);
      index.dropFirst(n);
      for (const column of [model.terms, model.offsets, model.crcs, model.confChanges]) column.splice(0, n);
      model.first += n;
      return index;
    }
    case 'reset':
      model.first += model.terms.length + operation.skip;
      index.reset(model.first);
      model.terms = [];
      model.offsets = [];
      model.crcs = [];
      model.confChanges = [];
      return index;
  }
}

function expectSame(index: EntryIndex, model: Model): void {
  expect(index.first()).toBe(model.first);
  expect(index.length).toBe(model.terms.length);
  expect(index.lastCrc()).toBe(model.crcs.at(-1));
  expect(index.confChangesBetween(0, Number.MAX_SAFE_INTEGER)).toEqual(model.confChanges.flatMap((confChange, k) => (confChange ? [model.first + k] : [])));
  for (let k = 0; k < model.terms.length; k++) {
    const at = model.first + k;
    if (index.term(at) !== model.terms[k] || index.offset(at) !== model.offsets[k] || index.crc(at) !== model.crcs[k]) {
      expect({ at, term: index.term(at), offset: index.offset(at), crc: index.crc(at) }).toEqual({ at, term: model.terms[k], offset: model.offsets[k], crc: model.crcs[k] });
    }
  }
}

describe('EntryIndex', () => {
  it('answers as plain arrays would through pushes, truncations, drops from the front, resets and bulk copies', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.array(op, { minLength: 1, maxLength: 25 }), (first, operations) => {
        let index = new EntryIndex(first);
        const model: Model = { first, terms: [], offsets: [], crcs: [], confChanges: [] };
        operations.forEach((operation, step) => {
          index = apply(index, model, operation, step);
          expectSame(index, model);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('moves what it holds to the front of its arrays, or doubles them, and loses nothing either way', () => {
    const index = new EntryIndex(1);
    for (let i = 1; i <= 1000; i++) index.push(1, i, i);
    index.dropFirst(900); // 100 held at the end of 1,024: the next pushes move them to the front
    for (let i = 1001; i <= 1100; i++) index.push(1, i, i);
    index.dropFirst(50); // 150 held; pushing 2,000 more doubles the arrays twice
    for (let i = 1101; i <= 3100; i++) index.push(2, i, i);
    const held = Array.from({ length: index.length }, (_, k) => index.first() + k);
    expect(held.every((at) => index.offset(at) === at && index.crc(at) === at && index.term(at) === (at <= 1100 ? 1 : 2))).toBe(true);
    expect([index.first(), index.length, index.lastCrc()]).toEqual([951, 2150, 3100]);
  });

  it('keeps terms as runs: a term looked up anywhere in a long run is that run', () => {
    const index = new EntryIndex(10);
    for (let i = 0; i < 5000; i++) index.push(i < 2000 ? 3 : i < 2001 ? 4 : 9, i * 10, i);
    expect([index.term(10), index.term(2009), index.term(2010), index.term(2011), index.term(5009)]).toEqual([3, 3, 4, 9, 9]);
    index.dropFirst(2001); // the run of 3 is gone, the single 4 too
    expect([index.first(), index.term(2011), index.term(5009), index.offset(2011)]).toEqual([2011, 9, 9, 20010]);
    index.keep(0);
    expect([index.length, index.lastCrc()]).toEqual([0, undefined]);
    index.push(11, 0, 77);
    expect([index.term(2011), index.crc(2011)]).toEqual([11, 77]);
  });

  it('copies out only the term runs and membership changes a range holds, from the range\'s first index', () => {
    const index = new EntryIndex(5);
    for (let i = 0; i < 30; i++) index.push(i < 10 ? 2 : i < 20 ? 4 : 7, 100 + i, i, i % 10 === 0);
    const middle = index.columns(12, 27);
    expect([middle.runStarts, middle.runTerms, [...middle.offsets.slice(0, 2)], middle.offsets.length, middle.confChanges]).toEqual([[12, 15, 25], [2, 4, 7], [107, 108], 15, [15, 25]]);
    expect(index.columns(20, 20)).toMatchObject({ runStarts: [], runTerms: [] });
    const rebuilt = new EntryIndex(12);
    expect(() => rebuilt.pushAll(index.columns(13, 20))).toThrow(/continue/);
  });

  it('refuses an offset that does not fit 32 bits rather than wrap it', () => {
    const index = new EntryIndex(1);
    expect(() => index.push(1, 2 ** 32, 0)).toThrow(/32 bits/);
    expect(index.length).toBe(0);
  });
});
