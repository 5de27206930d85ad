// Reconnect delays: capped exponential backoff with jitter, from an injected random source.

import { assert } from '../raft/assert.js';

/** RandomSource returns a number in [0, 1), as Math.random does; injected so tests can seed it. */
export type RandomSource = () => number;

/** backoffExponentMax keeps 2^attempt finite however many attempts fail in a row. */
const backoffExponentMax = 30;

/**
 * reconnectDelayMs returns how long to wait before reconnect attempt number `attempt` (0 for the
 * first retry): the base doubles from minMs with each attempt up to maxMs, and the delay is drawn
 * uniformly from [base / 2, base), so that nodes that failed together do not retry together.
 */
export function reconnectDelayMs(options: {
  readonly attempt: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly random: RandomSource;
}): number {
  const { attempt, minMs, maxMs, random } = options;
  assert(Number.isSafeInteger(attempt) && attempt >= 0, 'backoff: attempt must be a non-negative integer', { attempt });
  assert(minMs > 0 && minMs <= maxMs, 'backoff: need 0 < minMs <= maxMs', { minMs, maxMs });
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, backoffExponentMax));
  const draw = random();
  assert(draw >= 0 && draw < 1, 'backoff: random source out of [0, 1)', { draw });
  return Math.floor(base / 2 + (draw * base) / 2);
}
