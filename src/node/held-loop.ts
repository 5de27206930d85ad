// Timers for checks that must not judge from a stale view after the event loop was held.
import type { Clock, Timer } from './runtime.js';

/**
 * everyUnlessHeld is clock.every for a check that judges peers by when they were last heard from
 * (broker sessions, group members). A run more than a period late means the event loop was held
 * (a flush on it, a long GC, a stopped process): the heartbeats that came meanwhile are still
 * unread in the sockets, so that run is skipped and the next judges after they were read. Never
 * two skips in a row: a loop held all the time still judges.
 */
export function everyUnlessHeld(clock: Clock, periodMs: number, check: () => void): Timer {
  let lastMs = clock.elapsedMs();
  let skipped = false;
  return clock.every(periodMs, () => {
    const nowMs = clock.elapsedMs();
    const held = nowMs - lastMs > 2 * periodMs;
    lastMs = nowMs;
    if (held && !skipped) {
      skipped = true;
      return;
    }
    skipped = false;
    check();
  });
}
