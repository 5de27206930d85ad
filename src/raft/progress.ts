// Progress is the leader's view of one follower: how much of the log it holds and how to send
// it more. Probe sends one message at a time until a match is found; replicate pipelines up to
// the inflight window; snapshot waits for a snapshot to be installed.
import { assert } from './assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Inflights is the bounded window of append messages sent but not yet acknowledged. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    private readonly countMax: number,
    private readonly bytesMax: number,
  ) {}

  /** full says no more messages may be sent until some are acknowledged. */
  full(): boolean {
    return this.lastIndexes.length >= this.countMax || this.bytes >= this.bytesMax;
  }

  /** add records a message whose last entry is lastIndex. Invariant: lastIndexes increase. */
  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'inflights overflow');
    const previous = this.lastIndexes[this.lastIndexes.length - 1];
    assert(previous === undefined || lastIndex > previous, 'inflights out of order', { lastIndex, previous });
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** freeUpTo frees every message whose last entry is <= index. */
  freeUpTo(index: number): void {
    let count = 0;
    while (count < this.lastIndexes.length && this.lastIndexes[count]! <= index) {
      this.bytes -= this.sizes[count]!;
      count++;
    }
    this.lastIndexes.splice(0, count);
    this.sizes.splice(0, count);
  }

  /** freeFirst frees the oldest message: a heartbeat answer shows the peer is back, so probe again. */
  freeFirst(): void {
    if (this.lastIndexes.length === 0) return;
    this.freeUpTo(this.lastIndexes[0]!);
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }

  count(): number {
    return this.lastIndexes.length;
  }
}

/** Progress of one peer, as tracked by the leader. Invariant: match < next. */
export class Progress {
  state: ProgressState = 'probe';
  /** probeSent: in probe state, a message is out and we wait for its answer or a heartbeat. */
  probeSent = false;
  pendingSnapshot = 0;
  /** snapshotTicks counts leader ticks spent waiting for the pending snapshot's answer. */
  snapshotTicks = 0;
  /** recentActive: heard from in the current check-quorum period. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    public match: number,
    public next: number,
    public isLearner: boolean,
    inflightMax: { count: number; bytes: number },
  ) {
    this.inflights = new Inflights(inflightMax.count, inflightMax.bytes);
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** maybeUpdate records that the peer holds the log up to index; false if that is old news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** sentEntries notes an append message with entries up to lastIndex going out. */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * maybeDecrTo handles a rejection of the append at `rejected`; matchHint is the highest index
   * that may still match. Returns false when the rejection is stale (an answer to an old message).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) {
        // Refused at or below what the follower acknowledged, and it says its log ends earlier: it
        // lost entries it had (a log repaired after corruption, abstaining until they are back), or
        // the answer is an old one overtaken by later ones. Either way start over from what it says
        // it holds; a leader that kept its match would never send the lost entries again. Lowering
        // match is safe: it only delays commits, and the commit index never goes back.
        if (matchHint >= this.match) return false;
        this.match = matchHint;
      }
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    // A probe at the index the follower acknowledged, refused: the same as above.
    if (rejected <= this.match) this.match = Math.min(matchHint, rejected - 1);
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** isPaused says no append should be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
