import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../errors.js';
import { mapBounded, targetOffset, type OffsetTarget } from './groups-admin.js';

/** A partition that holds offsets 100 to 199 (log end 200), the group at 150. */
const partition: { topic: string; partition: number; committedOffset: number | undefined; logStartOffset: number; logEndOffset: number; offsetAtTimestamp: number | undefined } = {
  topic: 'jobs',
  partition: 2,
  committedOffset: 150,
  logStartOffset: 100,
  logEndOffset: 200,
  offsetAtTimestamp: undefined,
};

const to = (target: OffsetTarget, extra: Partial<typeof partition> = {}): number => targetOffset({ ...partition, ...extra, to: target });

describe('targetOffset', () => {
  it('earliest and latest are the log start and end', () => {
    expect(to({ kind: 'earliest' })).toBe(100);
    expect(to({ kind: 'latest' })).toBe(200);
  });

  it('an offset or a shift outside the log is clamped to it, as Kafka does', () => {
    expect(to({ kind: 'offset', offset: 120 })).toBe(120);
    expect(to({ kind: 'offset', offset: 5 })).toBe(100);
    expect(to({ kind: 'offset', offset: 5000 })).toBe(200);
    expect(to({ kind: 'shiftBy', shiftBy: -20 })).toBe(130);
    expect(to({ kind: 'shiftBy', shiftBy: 20 })).toBe(170);
    expect(to({ kind: 'shiftBy', shiftBy: -1000 })).toBe(100);
    expect(to({ kind: 'shiftBy', shiftBy: 1000 })).toBe(200);
  });

  it('a committed offset below the log start (retention deleted it) shifts from where it is, then is clamped', () => {
    expect(to({ kind: 'shiftBy', shiftBy: 30 }, { committedOffset: 80 })).toBe(110);
  });

  it('a timestamp goes to the partition\'s answer, or the end when it has none', () => {
    expect(to({ kind: 'timestamp', timestampMs: 1 }, { offsetAtTimestamp: 140 })).toBe(140);
    expect(to({ kind: 'timestamp', timestampMs: 1 })).toBe(200);
  });

  it('a shift of a partition with nothing committed is refused, naming the partition', () => {
    expect(() => to({ kind: 'shiftBy', shiftBy: 1 }, { committedOffset: undefined })).toThrow(InvalidRequestError);
    expect(() => to({ kind: 'shiftBy', shiftBy: 1 }, { committedOffset: undefined })).toThrow(/jobs-2 has no committed offset to shift/);
  });
});

describe('mapBounded', () => {
  it('keeps the order of the items and never has more than the bound in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, n));
      inFlight--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(most).toBe(3);
    expect(await mapBounded([], 3, async () => 1)).toEqual([]);
  });
});
