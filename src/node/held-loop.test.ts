import { describe, expect, it } from 'vitest';
import { everyUnlessHeld } from './held-loop.js';
import type { Clock } from './runtime.js';

/** A clock whose one periodic callback the test fires by hand, at elapsed times it sets. */
function handClock(): { clock: Clock; fireAt(ms: number): void } {
  let elapsed = 0;
  let tick: (() => void) | undefined;
  const clock: Clock = {
    now: () => elapsed,
    elapsedMs: () => elapsed,
    after: () => ({ cancel: () => undefined }),
    every: (_ms, fn) => {
      tick = fn;
      return { cancel: () => (tick = undefined) };
    },
    soon: (fn) => fn(),
    sleep: () => Promise.resolve(),
  };
  return {
    clock,
    fireAt(ms: number): void {
      elapsed = ms;
      tick?.();
    },
  };
}

describe('everyUnlessHeld', () => {
  it('runs the check on every timely period, skips the first run after the loop was held, never two in a row', () => {
    const { clock, fireAt } = handClock();
    const ran: number[] = [];
    everyUnlessHeld(clock, 100, () => ran.push(clock.elapsedMs()));
    fireAt(100);
    fireAt(210); // a little late: timers drift
    expect(ran).toEqual([100, 210]);
    fireAt(900); // held for most of a second: heartbeats are still in the sockets
    expect(ran).toEqual([100, 210]);
    fireAt(1000);
    expect(ran).toEqual([100, 210, 1000]);
    fireAt(2000); // held again
    fireAt(3000); // and again: a loop held all the time still judges
    expect(ran).toEqual([100, 210, 1000, 3000]);
  });

  it('stops when cancelled', () => {
    const { clock, fireAt } = handClock();
    const ran: number[] = [];
    everyUnlessHeld(clock, 100, () => ran.push(clock.elapsedMs())).cancel();
    fireAt(100);
    expect(ran).toEqual([]);
  });
});
