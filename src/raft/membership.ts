// MembershipLog is a group's configuration as its log holds it: the configuration as of the
// commit index, and the single-server changes in the log above it. A node uses the latest one,
// committed or not (Raft thesis §4.1): with one change at a time, no two configurations in use can
// have disjoint majorities.
import { applyConfChange, decodeConfChange } from './confchange.js';
import type { RaftLogger } from './raft.js';
import type { ConfChange, ConfState, Entry, GroupId } from './types.js';

/** TrackedConfChange is a membership change in the log above the commit index. */
interface TrackedConfChange {
  readonly index: number;
  readonly term: number;
  readonly change: ConfChange;
}

export class MembershipLog {
  private base: ConfState;
  /** tail: the changes above the commit index, in index order. */
  private tail: TrackedConfChange[] = [];

  constructor(
    base: ConfState,
    private readonly context: { logger: RaftLogger; group: GroupId },
  ) {
    this.base = base;
  }

  /** committed is the configuration as of the commit index. */
  committed(): ConfState {
    return this.base;
  }

  /** pendingChanges counts the changes in the log above the commit index. */
  pendingChanges(): number {
    return this.tail.length;
  }

  /**
   * appended takes note of entries just written to the log, replacing any suffix from
   * entries[0].index on; true when the latest configuration may have changed.
   */
  appended(entries: readonly Entry[]): boolean {
    const first = entries[0];
    if (first === undefined) return false;
    const before = this.tail.length;
    this.tail = this.tail.filter((tracked) => tracked.index < first.index);
    let changed = this.tail.length !== before;
    for (const entry of entries) {
      if (entry.type !== 'confChange') continue;
      const change = decodeConfChange(entry.data);
      if (change === undefined) {
        this.context.logger.warn({ group: this.context.group, index: entry.index }, 'undecodable membership change in the log; ignored');
        continue;
      }
      this.tail.push({ index: entry.index, term: entry.term, change });
      changed = true;
    }
    return changed;
  }

  /** latest is the committed configuration with every change in the log applied in order. */
  latest(): ConfState {
    let confState = this.base;
    for (const tracked of this.tail) {
      const outcome = applyConfChange(confState, tracked.change);
      if (outcome.kind === 'ok') confState = outcome.confState;
      else this.context.logger.warn({ group: this.context.group, index: tracked.index, reason: outcome.reason }, 'membership change in the log does not apply; ignored');
    }
    return confState;
  }

  /** foldThrough moves the changes at or below the commit index into the committed configuration. */
  foldThrough(commit: number): void {
    while (this.tail.length > 0 && this.tail[0]!.index <= commit) {
      const tracked = this.tail.shift()!;
      const outcome = applyConfChange(this.base, tracked.change);
      if (outcome.kind === 'ok') this.base = outcome.confState;
      this.context.logger.info({ group: this.context.group, index: tracked.index, change: tracked.change }, 'membership change committed');
    }
  }

  /** restore starts over from a snapshot's configuration. */
  restore(confState: ConfState): void {
    this.base = confState;
    this.tail = [];
  }
}
