// RawNode drives a Raft in rounds: the caller feeds it ticks and messages, takes a Ready, does
// its work in order (persist, send, apply) and calls advance. One Ready is outstanding at a time.
import { assert } from './assert.js';
import type { RaftConfig, ReadIndexResult, TransferResult } from './raft.js';
import { Raft } from './raft.js';
import type { ProgressState } from './progress.js';
import type { ConfChange, ConfState, GroupId, HardState, Message, NodeId, ProposeResult, Ready, Role, SoftState } from './types.js';

/** Status is a read-only picture of a group on this node, for tools and checkers. */
export interface Status {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly progress: readonly { id: NodeId; match: number; next: number; state: ProgressState; isLearner: boolean; recentActive: boolean }[];
}

export class RawNode {
  readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.previousSoftState = this.softState();
    this.previousHardState = config.storage.initialState().hardState;
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  campaign(): void {
    this.raft.campaign({ transfer: false });
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(change);
  }

  transferLeadership(target: NodeId): TransferResult {
    return this.raft.transferLeadership(target);
  }

  readIndex(requestId: number): ReadIndexResult {
    return this.raft.readIndex(requestId);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, outcome: 'finished' | 'failed'): void {
    this.raft.reportSnapshot(id, outcome);
  }

  private softState(): SoftState {
    return { leader: this.raft.leader, role: this.raft.role };
  }

  /**
   * hardState is what to persist. Its commit never goes below the one persisted: after a restart
   * whose log lost entries, the log's commit stops at its last index while the persisted one stays
   * (it is still committed, and it keeps the node abstaining across further restarts).
   */
  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: Math.max(this.raft.log.committed, this.previousHardState.commit) };
  }

  private hardStateChanged(): boolean {
    const current = this.hardState();
    const previous = this.previousHardState;
    return current.term !== previous.term || current.vote !== previous.vote || current.commit !== previous.commit;
  }

  private softStateChanged(): boolean {
    return this.raft.leader !== this.previousSoftState.leader || this.raft.role !== this.previousSoftState.role;
  }

  /** hasReady says whether ready() would hand out any work. False while a Ready is outstanding. */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const log = this.raft.log;
    return (
      this.softStateChanged() ||
      this.hardStateChanged() ||
      log.unstableEntries().length > 0 ||
      log.unstableSnapshot() !== undefined ||
      this.raft.messages.length > 0 ||
      this.raft.readStates.length > 0 ||
      log.hasEntriesToApply()
    );
  }

  /** ready hands out the next round of work. Throws if the previous Ready was not advanced. */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready() called before advance()');
    this.raft.flushAppends();
    const log = this.raft.log;
    const ready: Ready = {
      softState: this.softStateChanged() ? this.softState() : undefined,
      hardState: this.hardStateChanged() ? this.hardState() : undefined,
      snapshot: log.unstableSnapshot(),
      entries: [...log.unstableEntries()],
      messages: this.raft.messages,
      committedEntries: log.entriesToApply(this.raft.limits.applyBytesMax),
      readStates: this.raft.readStates,
    };
    this.raft.messages = [];
    this.raft.readStates = [];
    this.outstanding = ready;
    return ready;
  }

  /** advance says the Ready's work is done: persisted, sent and applied. */
  advance(ready: Ready): void {
    assert(ready === this.outstanding, 'advance() of a Ready that is not outstanding');
    this.outstanding = undefined;
    const log = this.raft.log;
    if (ready.softState !== undefined) this.previousSoftState = ready.softState;
    if (ready.hardState !== undefined) this.previousHardState = ready.hardState;
    if (ready.snapshot !== undefined) log.stableSnapshotTo(ready.snapshot.metadata.index);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) {
      log.stableTo(lastEntry.index, lastEntry.term);
      this.raft.persisted(lastEntry.index, lastEntry.term);
    }
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined && lastApplied.index > log.applied) log.appliedTo(lastApplied.index);
  }

  status(): Status {
    const raft = this.raft;
    return {
      id: raft.id,
      group: raft.group,
      term: raft.term,
      vote: raft.vote,
      role: raft.role,
      leader: raft.leader,
      commit: raft.log.committed,
      applied: raft.log.applied,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      confState: raft.confState,
      progress: [...raft.progress].map(([id, p]) => ({ id, match: p.match, next: p.next, state: p.state, isLearner: p.isLearner, recentActive: p.recentActive })),
    };
  }
}
