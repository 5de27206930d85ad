// A Direction is one way between two ends of the chaos network: node 1 to node 2, clients to node 3,
// node 3 to its clients. It holds the faults applied to every byte going that way, whichever
// connection carries it (node 1's requests to node 2 and node 1's answers to node 2's requests both
// go 1->2), and counts what went through. Pipes register to be woken when the faults change.

/** DirectionFaults are the faults of one direction; healthyFaults is none. */
export interface DirectionFaults {
  /** cut: bytes are held, not forwarded, until the direction heals. */
  readonly cut: boolean;
  /** delayMs, jitterMs: every chunk waits delayMs plus a uniform [0, jitterMs) before it is forwarded. */
  readonly delayMs: number;
  readonly jitterMs: number;
  /** resetRate: the probability, per chunk, that the connection carrying it is reset instead. */
  readonly resetRate: number;
}

export const healthyFaults: DirectionFaults = Object.freeze({ cut: false, delayMs: 0, jitterMs: 0, resetRate: 0 });

/** delayMsMax bounds an injected delay (and jitter): a minute is already far past every Raft timeout. */
export const delayMsMax = 60_000;

/** Waker is anything that must look again when a direction's faults change (a pipe, a pending connect). */
export interface Waker {
  wake(): void;
}

export class Direction {
  private current: DirectionFaults = healthyFaults;
  private readonly wakers = new Set<Waker>();
  /** bytes counts the bytes forwarded this way. */
  bytes = 0;
  /** resets counts the connections reset on a chunk going this way (lossy). */
  resets = 0;

  constructor(readonly name: string) {}

  get faults(): DirectionFaults {
    return this.current;
  }

  /**
   * update changes some faults and wakes every registered waker. Throws RangeError for a delay or
   * jitter outside [0, delayMsMax] or a resetRate outside [0, 1].
   */
  update(change: Partial<DirectionFaults>): void {
    const next = { ...this.current, ...change };
    checkFaults(next, this.name);
    this.current = Object.freeze(next);
    for (const waker of [...this.wakers]) waker.wake();
  }

  register(waker: Waker): void {
    this.wakers.add(waker);
  }

  unregister(waker: Waker): void {
    this.wakers.delete(waker);
  }
}

function checkFaults(faults: DirectionFaults, name: string): void {
  for (const field of ['delayMs', 'jitterMs'] as const) {
    const value = faults[field];
    if (!Number.isFinite(value) || value < 0 || value > delayMsMax) {
      throw new RangeError(`${name}: ${field} must be between 0 and ${delayMsMax}, got ${value}`);
    }
  }
  if (!(faults.resetRate >= 0 && faults.resetRate <= 1)) {
    throw new RangeError(`${name}: resetRate must be between 0 and 1, got ${faults.resetRate}`);
  }
}
