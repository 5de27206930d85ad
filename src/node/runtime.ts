// NodeRuntime is what a node takes from the world around it: time, timers, a disk, randomness
// and fresh ids. A real node uses systemRuntime (Node's timers, node:fs, crypto); the whole-cluster
// simulation passes its virtual clock, in-memory disk and seeded generators, and runs the same node
// shell in virtual time. Nothing NodeShell runs reads Date.now, starts a timer, touches node:fs or
// draws a random number except through these (the process around it, node.ts and data-dir.ts, does).
import { randomInt, randomUUID } from 'node:crypto';
import { seededRandom, type Random } from '../raft/prng.js';
import type { Disk } from '../storage/disk.js';
import { NodeDisk } from '../storage/node-disk.js';

/** Timer is a scheduled callback; cancel is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** now is the wall-clock time in ms (append times, deadlines, session expiry). */
  now(): number;
  /** elapsedMs is monotonic time in fractional ms from an arbitrary origin: for measuring durations. */
  elapsedMs(): number;
  /** after runs fn once, ms from now. */
  after(ms: number, fn: () => void): Timer;
  /** every runs fn every ms until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** soon runs fn after the current I/O and microtasks (setImmediate). */
  soon(fn: () => void): void;
  /** sleep resolves ms from now. */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  elapsedMs: () => performance.now(),
  after(ms: number, fn: () => void): Timer {
    const handle = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(handle) };
  },
  every(ms: number, fn: () => void): Timer {
    const handle = setInterval(fn, ms);
    return { cancel: () => clearInterval(handle) };
  },
  soon(fn: () => void): void {
    setImmediate(fn);
  },
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
});

export interface NodeRuntime {
  readonly clock: Clock;
  readonly disk: Disk;
  /** random drives Raft's election timeouts. */
  readonly random: Random;
  /** newId returns a fresh unique id (topic ids, member ids, broker incarnations). */
  readonly newId: () => string;
}

/** systemRuntime is the runtime of a real process. */
export function systemRuntime(): NodeRuntime {
  return { clock: systemClock, disk: new NodeDisk(), random: seededRandom(randomInt(1, 2 ** 31 - 1)), newId: () => randomUUID() };
}
