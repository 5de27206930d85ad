import { describe, expect, it } from 'vitest';
import { reconnectDelayMs } from './backoff.js';

describe('reconnectDelayMs', () => {
  it('doubles from the minimum, caps at the maximum, and jitters within [base/2, base)', () => {
    const at = (attempt: number, draw: number) => reconnectDelayMs({ attempt, minMs: 100, maxMs: 1000, random: () => draw });
    expect([0, 1, 2, 3, 4, 50].map((attempt) => at(attempt, 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect(at(0, 0.999)).toBe(99);
    expect(at(10, 0.5)).toBe(750);
  });
});
