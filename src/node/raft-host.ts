// RaftHost runs every Raft group of one node: it feeds them ticks and peer messages and does
// their Readys in rounds. A round takes the Ready of every group that has one, persists them all
// (entries to each group's log, hard states in one batch, then one sync barrier covering every
// group), and only then sends their messages and applies their committed entries. While a round
// is on disk, new work accumulates and goes into the next round: group commit.
import { assert } from '../raft/assert.js';
import { applyConfChange, decodeConfChange } from '../raft/confchange.js';
import type { Random } from '../raft/prng.js';
import { RawNode, type Status } from '../raft/rawnode.js';
import { splitMessages } from '../raft/ready.js';
import { type RaftLogger, unboundedAbstain } from '../raft/raft.js';
import type { ConfState, Entry, GroupId, HardState, Message, NodeId, ProposeResult, Ready, Snapshot } from '../raft/types.js';
import { CorruptLogError } from '../storage/errors.js';
import { indexMax } from '../storage/limits.js';
import type { SnapshotStore } from '../storage/snapshot-store.js';
import type { DurableRaftStorage } from './durable-raft-storage.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { Clock, Timer } from './runtime.js';
import { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from '../errors.js';

// The log's repair bound for a loss it could not bound is the one the Raft core reads as such.
assert(indexMax === unboundedAbstain, 'the unknown repair bound is the Raft core\'s unboundedAbstain');

/** StateMachine is what a group applies its committed entries to. */
export interface StateMachine {
  /** apply is handed committed entries in index order, without gaps. */
  apply(entries: readonly Entry[]): void;
  /** snapshotData returns the state after the last applied entry. */
  snapshotData(): Uint8Array;
  /** restore replaces the state with the snapshot's. */
  restore(snapshot: Snapshot): void;
}

/** HardStateStore persists the hard state of many groups in one write. */
export interface HardStateStore {
  saveHardStates(states: readonly { group: GroupId; hardState: HardState }[], options: { sync: boolean }): Promise<void>;
}

/** commitWriteMs: how often commit indexes that moved are written (unsynced) to the state store. */
const commitWriteMs = 1000;

/**
 * A round whose one barrier is a single log's sync of one entry of at most inlineSyncBytesMax
 * bytes flushes on the event loop (NodeDisk.fdatasync, inline): a caller waiting for each write
 * before the next, whose round has nothing else to do than wait for the flush. On the thread
 * pool, the hand-off to a worker thread and back waits for a free core twice when the cores are
 * busy (the README's "The metadata quorum" has the figures). Everything else goes to the pool:
 * several barriers overlap there, and under load (rounds of many entries) the event loop reads and
 * decodes the next requests while the disk flushes, which makes the next round bigger; blocked
 * instead, a pipelined producer's rounds shrank to a third and its rate fell by a third (one pair
 * of runs). The event loop does other work than rounds (it reads sockets, answers reads, runs
 * timers), so a flush on it that takes longer than inlineSyncSlowMs sends every flush to the pool
 * for inlineSyncBackoffMs: a stalling disk must not stall the whole process.
 */
const inlineSyncBytesMax = 64 * 1024;
const inlineSyncSlowMs = 50;
const inlineSyncBackoffMs = 60_000;

export interface RaftTiming {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
}

export interface HostedGroupOptions {
  readonly group: GroupId;
  readonly storage: DurableRaftStorage;
  readonly snapshots: SnapshotStore;
  readonly machine: StateMachine;
  /** snapshotEveryEntries: take a snapshot once this many entries were applied since the last. */
  readonly snapshotEveryEntries: number;
  readonly logger: RaftLogger;
}

interface Waiter {
  readonly term: number;
  readonly resolve: (position: { index: number; term: number }) => void;
  readonly reject: (error: Error) => void;
}

/** A confirmation of leadership (ReadIndex) waiting for its read index to be confirmed, then applied. */
interface LeadershipCheck {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
  /** index: the confirmed read index, once the quorum answered. */
  index: number | undefined;
}

/** HostedGroup is one group on this node: its RawNode, storage, state machine and waiters. */
class HostedGroup {
  readonly raw: RawNode;
  readonly waiters = new Map<number, Waiter>();
  /** leadershipChecks: confirmations of leadership in flight, by ReadIndex request id. */
  readonly leadershipChecks = new Map<number, LeadershipCheck>();
  /** persistWaiters wait for an entry to be durable on this node only (acks=1). */
  readonly persistWaiters = new Map<number, Waiter>();
  appliedIndex: number;
  appliedTerm: number;
  /** confState is the membership as of appliedIndex, for snapshots. */
  confState: ConfState;
  snapshotting = false;

  constructor(
    readonly options: HostedGroupOptions,
    config: { id: NodeId; random: Random; timing: RaftTiming },
  ) {
    const snapshot = options.storage.snapshot();
    options.machine.restore(snapshot);
    this.appliedIndex = snapshot.metadata.index;
    this.appliedTerm = snapshot.metadata.term;
    this.confState = snapshot.metadata.confState;
    this.raw = new RawNode({
      id: config.id,
      group: options.group,
      storage: options.storage,
      random: config.random,
      electionTicks: config.timing.electionTicks,
      heartbeatTicks: config.timing.heartbeatTicks,
      applied: this.appliedIndex,
      logger: options.logger,
      // A repaired log owes the entries it lost: no votes or campaigns until they are back. A bound
      // the repair could not know (indexMax) is the Raft core's unboundedAbstain.
      abstainUntilIndex: options.storage.log.repairThroughIndex(),
      abstainTerm: options.storage.log.repairTerm(),
    });
  }

  /** applyReady hands the Ready's snapshot and committed entries to the state machine. */
  applyReady(ready: Ready): void {
    if (ready.snapshot !== undefined) {
      this.options.machine.restore(ready.snapshot);
      this.appliedIndex = ready.snapshot.metadata.index;
      this.appliedTerm = ready.snapshot.metadata.term;
      this.confState = ready.snapshot.metadata.confState;
    }
    const fresh = ready.committedEntries.filter((entry) => entry.index > this.appliedIndex);
    if (fresh.length === 0) return;
    this.options.machine.apply(fresh);
    for (const entry of fresh) {
      if (entry.type === 'confChange') this.trackMembership(entry);
      this.settleWaiter(entry);
    }
    const last = fresh[fresh.length - 1]!;
    this.appliedIndex = last.index;
    this.appliedTerm = last.term;
  }

  private trackMembership(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    if (change === undefined) return;
    const outcome = applyConfChange(this.confState, change);
    if (outcome.kind === 'ok') this.confState = outcome.confState;
  }

  private settleWaiter(entry: Entry): void {
    const waiter = this.waiters.get(entry.index);
    if (waiter === undefined) return;
    this.waiters.delete(entry.index);
    if (waiter.term === entry.term) waiter.resolve({ index: entry.index, term: entry.term });
    else waiter.reject(new ProposalDroppedError(this.options.group, entry.index));
  }

  /** settlePersisted answers the persist waiters of entries just made durable. */
  settlePersisted(entries: readonly Entry[]): void {
    if (this.persistWaiters.size === 0) return;
    for (const entry of entries) {
      const waiter = this.persistWaiters.get(entry.index);
      if (waiter === undefined) continue;
      this.persistWaiters.delete(entry.index);
      if (waiter.term === entry.term) waiter.resolve({ index: entry.index, term: entry.term });
      else waiter.reject(new ProposalDroppedError(this.options.group, entry.index));
    }
  }

  /** failLeadershipChecks rejects the confirmations in flight (the node stepped down or stops). */
  failLeadershipChecks(): void {
    for (const check of this.leadershipChecks.values()) {
      check.timer.cancel();
      check.reject(new NotLeaderError(this.options.group, this.raw.status().leader));
    }
    this.leadershipChecks.clear();
  }

  /** failWaitersUpTo rejects waiters whose slot a snapshot skipped: their outcome is unknown here. */
  failWaitersUpTo(index: number): void {
    for (const waiters of [this.waiters, this.persistWaiters]) {
      for (const [waiterIndex, waiter] of waiters) {
        if (waiterIndex > index) continue;
        waiters.delete(waiterIndex);
        waiter.reject(new ProposalDroppedError(this.options.group, waiterIndex));
      }
    }
  }

  /** settleLeadershipChecks notes the read indexes a quorum confirmed and answers the checks whose index is applied. */
  settleLeadershipChecks(readStates: readonly { requestId: number; index: number }[]): void {
    if (this.leadershipChecks.size === 0) return;
    for (const read of readStates) {
      const check = this.leadershipChecks.get(read.requestId);
      if (check !== undefined) check.index = read.index;
    }
    for (const [requestId, check] of this.leadershipChecks) {
      if (check.index === undefined || check.index > this.appliedIndex) continue;
      this.leadershipChecks.delete(requestId);
      check.timer.cancel();
      check.resolve();
    }
  }

  wantsSnapshot(): boolean {
    const snapshotIndex = this.options.storage.snapshot().metadata.index;
    return !this.snapshotting && this.appliedIndex - snapshotIndex >= this.options.snapshotEveryEntries;
  }
}

export interface RaftHostOptions {
  readonly nodeId: NodeId;
  readonly timing: RaftTiming;
  readonly random: Random;
  readonly clock: Clock;
  readonly hardStates: HardStateStore;
  readonly send: (messages: readonly Message[]) => void;
  readonly logger: RaftLogger & { error(details: object, message: string): void };
  /** onFailure hears of a failure that stopped the host (a storage error). */
  readonly onFailure: (error: Error) => void;
}

export class RaftHost {
  private readonly groups = new Map<GroupId, HostedGroup>();
  /**
   * mayBeReady holds every group that may have a Ready: each one touched since a round last found it
   * idle. Rounds look only at these, so a node with many idle groups pays for the busy ones alone.
   * Every call into a group's RawNode that can produce a Ready adds the group here.
   */
  private readonly mayBeReady = new Set<HostedGroup>();
  private roundScheduled = false;
  private roundRunning = false;
  private ticker: Timer | undefined;
  private commitWriter: Timer | undefined;
  private readonly commitsToWrite = new Map<GroupId, HardState>();
  private hardStateTail: Promise<void> = Promise.resolve();
  private closed = false;
  private failure: Error | undefined;
  /** rounds counts persist rounds; syncs counts durability barriers (log fdatasyncs, synced batches). */
  rounds = 0;
  syncs = 0;
  /** syncWaits times how long each round that had something to make durable waited for its barriers. */
  readonly syncWaits = new LatencyHistogram();
  /** poolOnlyUntilMs: no flush on the event loop before this (elapsedMs), after one that was slow. */
  private poolOnlyUntilMs = Number.NEGATIVE_INFINITY;
  private nextReadId = 1;

  constructor(private readonly options: RaftHostOptions) {}

  /** addGroup starts hosting a group; its storage must already be recovered. */
  addGroup(options: HostedGroupOptions): void {
    assert(!this.groups.has(options.group), 'raft host: a group is added twice', { group: options.group });
    const hosted = new HostedGroup(options, { id: this.options.nodeId, random: this.options.random, timing: this.options.timing });
    this.groups.set(options.group, hosted);
    this.mayBeReady.add(hosted);
    this.scheduleRound();
  }

  /** start begins ticking every group. */
  start(): void {
    this.ticker = this.options.clock.every(this.options.timing.tickMs, () => this.tick());
    this.commitWriter = this.options.clock.every(commitWriteMs, () => void this.flushCommits());
  }

  private tick(): void {
    for (const hosted of this.groups.values()) {
      hosted.raw.tick();
      if (hosted.raw.hasReady()) this.mayBeReady.add(hosted);
    }
    this.scheduleRound();
  }

  /** receive steps messages from a peer into their groups; unknown groups are dropped. */
  receive(messages: readonly Message[]): void {
    if (this.closed) return;
    for (const message of messages) {
      const hosted = this.groups.get(message.group);
      if (hosted === undefined) {
        this.options.logger.debug({ group: message.group, from: message.from }, 'message for a group this node does not host');
        continue;
      }
      try {
        // A leader reads its log to send entries; a damaged frame stops the host as in a round.
        this.readingLog(() => hosted.raw.step(message));
      } catch (error) {
        if (error instanceof CorruptLogError) return;
        throw error;
      }
      this.mayBeReady.add(hosted);
    }
    this.scheduleRound();
  }

  reportUnreachable(peer: NodeId): void {
    for (const hosted of this.groups.values()) {
      hosted.raw.reportUnreachable(peer);
      if (hosted.raw.hasReady()) this.mayBeReady.add(hosted);
    }
  }

  reportSnapshot(options: { group: GroupId; to: NodeId; outcome: 'finished' | 'failed' }): void {
    const hosted = this.groups.get(options.group);
    if (hosted === undefined) return;
    hosted.raw.reportSnapshot(options.to, options.outcome);
    this.mayBeReady.add(hosted);
    this.scheduleRound();
  }

  /**
   * propose appends data to a group's log and resolves with its position once it is committed and
   * applied here. Rejects with NotLeaderError (with a hint) when this node does not lead the group.
   */
  propose(group: GroupId, data: Uint8Array): Promise<{ index: number; term: number }> {
    const hosted = this.requireGroup(group);
    return this.waitFor(hosted, hosted.raw.propose(data));
  }

  /**
   * proposeDurable is propose for a caller who needs less than a commit: with 'leader' it
   * resolves once the entry is durable on this node (Kafka's acks=1), with 'none' at once.
   */
  proposeDurable(group: GroupId, data: Uint8Array, durability: 'quorum' | 'leader' | 'none'): { index: number; term: number; done: Promise<{ index: number; term: number }> } {
    const hosted = this.requireGroup(group);
    const result = hosted.raw.propose(data);
    this.mayBeReady.add(hosted);
    if (result.kind !== 'accepted') throw result.kind === 'notLeader' ? new NotLeaderError(group, result.leaderHint) : new ProposalRejectedError(group, result);
    this.scheduleRound();
    const position = { index: result.index, term: result.term };
    if (durability === 'none') return { ...position, done: Promise.resolve(position) };
    const waiters = durability === 'quorum' ? hosted.waiters : hosted.persistWaiters;
    const done = new Promise<{ index: number; term: number }>((resolve, reject) => waiters.set(result.index, { term: result.term, resolve, reject }));
    return { ...position, done };
  }

  /**
   * confirmLeadership resolves once a quorum has confirmed, after the call, that this node leads the
   * group (Raft's ReadIndex) and this node has applied everything committed before: from then on
   * its state is as current as the group's. Rejects with NotLeaderError when it does not lead, or
   * when no confirmation comes within timeoutMs (a deposed leader that has not noticed yet).
   */
  confirmLeadership(group: GroupId, timeoutMs: number): Promise<void> {
    const hosted = this.requireGroup(group);
    const requestId = this.nextReadId++;
    const result = hosted.raw.readIndex(requestId);
    this.mayBeReady.add(hosted);
    if (result.kind === 'notLeader') return Promise.reject(new NotLeaderError(group, result.leaderHint));
    if (result.kind !== 'pending') return Promise.reject(new NotLeaderError(group, 0));
    this.scheduleRound();
    return new Promise<void>((resolve, reject) => {
      const timer = this.options.clock.after(timeoutMs, () => {
        hosted.leadershipChecks.delete(requestId);
        reject(new NotLeaderError(group, hosted.raw.status().leader));
      });
      hosted.leadershipChecks.set(requestId, { resolve, reject, timer, index: undefined });
    });
  }

  /** pendingEntries returns a group's entries after its applied index (proposed, not applied yet). */
  pendingEntries(group: GroupId): Entry[] {
    const hosted = this.requireGroup(group);
    const log = hosted.raw.raft.log;
    const lastIndex = log.lastIndex();
    const entries: Entry[] = [];
    // A read from disk may stop short of what was asked (it is bounded): read on until the end.
    this.readingLog(() => {
      for (let next = hosted.appliedIndex + 1; next <= lastIndex; next = entries[entries.length - 1]!.index + 1) {
        for (const entry of log.slice(next, lastIndex + 1, Number.MAX_SAFE_INTEGER)) entries.push(entry); // no spread: it overflows the stack past ~100,000
      }
    });
    return entries;
  }

  /** appliedTerm is the term of the last entry a group applied here (equal to the current term once a new leader has caught up). */
  appliedTerm(group: GroupId): number {
    return this.groups.get(group)?.appliedTerm ?? 0;
  }

  /** hosts says whether this node hosts the group. */
  hosts(group: GroupId): boolean {
    return this.groups.has(group);
  }

  /**
   * exclusive runs work between rounds, when no Ready is outstanding: for changes to a group's
   * storage that a round must not see half done (retention, removing a group).
   */
  async exclusive<T>(work: () => Promise<T> | T): Promise<T> {
    while (this.roundRunning) await this.options.clock.sleep(1);
    this.roundRunning = true;
    try {
      return await work();
    } finally {
      this.roundRunning = false;
      if (this.anyReady()) this.scheduleRound();
    }
  }

  /** removeGroup stops hosting a group (its partition was deleted); waiters are rejected. Resolves when no round uses it. */
  removeGroup(group: GroupId): Promise<void> {
    return this.exclusive(() => {
      const hosted = this.groups.get(group);
      if (hosted === undefined) return;
      this.groups.delete(group);
      this.mayBeReady.delete(hosted);
      this.commitsToWrite.delete(group);
      hosted.failWaitersUpTo(Number.MAX_SAFE_INTEGER);
      hosted.failLeadershipChecks();
    });
  }

  /** compact records a snapshot taken outside the round loop (retention) and drops the log before it. */
  async compact(group: GroupId, snapshot: Snapshot): Promise<void> {
    await this.exclusive(async () => {
      const hosted = this.groups.get(group);
      if (hosted === undefined) return;
      assert(snapshot.metadata.index <= hosted.appliedIndex, 'a group compacts only what it applied', { group, index: snapshot.metadata.index, applied: hosted.appliedIndex });
      await hosted.options.snapshots.save(snapshot);
      hosted.options.storage.compact(snapshot);
      await hosted.options.storage.log.sync();
    });
  }

  /** campaign makes this node start an election in the group now (tests, leadership moves). */
  campaign(group: GroupId): void {
    const hosted = this.requireGroup(group);
    hosted.raw.campaign();
    this.mayBeReady.add(hosted);
    this.scheduleRound();
  }

  transferLeadership(group: GroupId, target: NodeId): void {
    const hosted = this.requireGroup(group);
    // A target behind the leader gets entries read from the log at once.
    this.readingLog(() => hosted.raw.transferLeadership(target));
    this.mayBeReady.add(hosted);
    this.scheduleRound();
  }

  status(group: GroupId): Status | undefined {
    return this.groups.get(group)?.raw.status();
  }

  private requireGroup(group: GroupId): HostedGroup {
    if (this.failure !== undefined) throw this.failure;
    const hosted = this.groups.get(group);
    if (hosted === undefined) throw new NotLeaderError(group, 0);
    return hosted;
  }

  private waitFor(hosted: HostedGroup, result: ProposeResult): Promise<{ index: number; term: number }> {
    this.mayBeReady.add(hosted);
    this.scheduleRound();
    if (result.kind === 'accepted') {
      return new Promise((resolve, reject) => hosted.waiters.set(result.index, { term: result.term, resolve, reject }));
    }
    if (result.kind === 'notLeader') return Promise.reject(new NotLeaderError(hosted.options.group, result.leaderHint));
    return Promise.reject(new ProposalRejectedError(hosted.options.group, result));
  }

  /** anyReady says whether a group has a Ready; groups found idle leave mayBeReady. */
  private anyReady(): boolean {
    for (const hosted of this.mayBeReady) {
      if (hosted.raw.hasReady()) return true;
      this.mayBeReady.delete(hosted);
    }
    return false;
  }

  private scheduleRound(): void {
    if (this.roundScheduled || this.roundRunning || this.closed) return;
    this.roundScheduled = true;
    this.options.clock.soon(() => {
      this.roundScheduled = false;
      void this.runRounds();
    });
  }

  private async runRounds(): Promise<void> {
    if (this.roundRunning || this.closed) return;
    this.roundRunning = true;
    try {
      // Only a group that applied entries can have come to want a snapshot.
      const applied = new Set<HostedGroup>();
      while (!this.closed && this.anyReady()) await this.round(applied);
      for (const hosted of applied) if (this.groups.get(hosted.options.group) === hosted && hosted.wantsSnapshot()) await this.snapshot(hosted);
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.roundRunning = false;
    }
    if (this.anyReady()) this.scheduleRound();
  }

  /** round persists every group's Ready behind one sync barrier, then sends, then applies. */
  private async round(applied: Set<HostedGroup>): Promise<void> {
    this.rounds++;
    const work: { hosted: HostedGroup; ready: Ready; late: Message[] }[] = [];
    const early: Message[] = [];
    for (const hosted of this.mayBeReady) {
      if (!hosted.raw.hasReady()) {
        this.mayBeReady.delete(hosted);
        continue;
      }
      const ready = hosted.raw.ready();
      const split = splitMessages(ready, hosted.options.storage.hardState());
      early.push(...split.early);
      work.push({ hosted, ready, late: split.late });
    }
    // A leader's appends leave while its own write is on disk (thesis §10.2.1); the rest waits.
    if (early.length > 0) {
      this.options.send(early);
      // Let the transport put them on the wire first (its socket writes run in the next check
      // phase): the leader's own write and fdatasync are off the followers' path then.
      await new Promise<void>((resolve) => this.options.clock.soon(resolve));
    }
    await this.persist(work);
    const messages = work.flatMap(({ late }) => late);
    if (messages.length > 0) {
      this.options.send(messages);
      // A follower's acknowledgements are what its leader waits for; the transport writes them to
      // the socket at the end of this turn. Applying first would hold them back by the apply.
      if (work.some(({ ready }) => ready.committedEntries.length > 0)) await new Promise<void>((resolve) => this.options.clock.soon(resolve));
    }
    this.finishRound(work, applied);
  }

  /** finishRound settles, applies and advances each group's Ready once it is on disk and sent. */
  private finishRound(work: readonly { hosted: HostedGroup; ready: Ready }[], applied: Set<HostedGroup>): void {
    for (const { hosted, ready } of work) {
      hosted.settlePersisted(ready.entries);
      // A leader that steps down cannot tell whether its pending entries will commit: say so now
      // (retriable, outcome unknown) rather than leave callers waiting until a new leader's log
      // overwrites or commits them. An idempotent retry finds out which.
      if (ready.softState !== undefined && ready.softState.role !== 'leader') {
        hosted.failWaitersUpTo(Number.MAX_SAFE_INTEGER);
        hosted.failLeadershipChecks();
      }
      if (ready.snapshot !== undefined) hosted.failWaitersUpTo(ready.snapshot.metadata.index);
      hosted.applyReady(ready);
      if (ready.committedEntries.length > 0) applied.add(hosted);
      hosted.settleLeadershipChecks(ready.readStates);
      hosted.raw.advance(ready);
    }
  }

  private async persist(work: readonly { hosted: HostedGroup; ready: Ready }[]): Promise<void> {
    const snapshots = work.filter(({ ready }) => ready.snapshot !== undefined);
    await Promise.all(snapshots.map(({ hosted, ready }) => hosted.options.snapshots.save(ready.snapshot!)));
    const termOrVote: { group: GroupId; hardState: HardState }[] = [];
    const logSyncs: { log: DurableRaftStorage['log']; loneEntry: boolean }[] = [];
    for (const { hosted, ready } of work) {
      const storage = hosted.options.storage;
      if (ready.snapshot !== undefined) storage.installSnapshot(ready.snapshot);
      if (ready.entries.length > 0) storage.append(ready.entries);
      if (ready.entries.length > 0 || ready.snapshot !== undefined) {
        const loneEntry = ready.snapshot === undefined && ready.entries.length === 1 && ready.entries[0]!.data.length <= inlineSyncBytesMax;
        logSyncs.push({ log: storage.log, loneEntry });
      }
      if (ready.hardState === undefined) continue;
      const previous = storage.hardState();
      storage.setHardState(ready.hardState);
      if (previous.term !== ready.hardState.term || previous.vote !== ready.hardState.vote) termOrVote.push({ group: hosted.options.group, hardState: ready.hardState });
      else this.commitsToWrite.set(hosted.options.group, ready.hardState);
    }
    const inline = logSyncs.length === 1 && logSyncs[0]!.loneEntry && termOrVote.length === 0 && this.options.clock.elapsedMs() >= this.poolOnlyUntilMs;
    const syncs = logSyncs.map(({ log }) => log.sync({ inline }));
    this.syncs += syncs.length;
    // Term and vote must be durable before a message leaves. A commit index alone can be re-learned
    // from the leader: it is written lazily, without fsync, at most every commitWriteMs.
    if (termOrVote.length > 0) {
      for (const { group } of termOrVote) this.commitsToWrite.delete(group);
      syncs.push(this.writeHardStates(termOrVote, { sync: true }));
      this.syncs++;
    }
    const started = this.options.clock.elapsedMs();
    await Promise.all(syncs);
    const waitedMs = this.options.clock.elapsedMs() - started;
    if (syncs.length > 0) this.syncWaits.record(waitedMs * 1000);
    if (inline && waitedMs > inlineSyncSlowMs) {
      this.poolOnlyUntilMs = started + waitedMs + inlineSyncBackoffMs;
      this.options.logger.warn({ waitedMs: Math.round(waitedMs), poolForMs: inlineSyncBackoffMs }, 'a flush on the event loop was slow; flushing on the thread pool for a while');
    }
  }

  /** writeHardStates chains hard-state writes so that a later one never lands before an earlier one. */
  private writeHardStates(states: { group: GroupId; hardState: HardState }[], options: { sync: boolean }): Promise<void> {
    const write = this.hardStateTail.then(() => this.options.hardStates.saveHardStates(states, options));
    this.hardStateTail = write.catch(() => undefined);
    return write;
  }

  /** flushCommits writes the commit indexes that moved since the last write, unsynced. */
  private flushCommits(): Promise<void> {
    if (this.commitsToWrite.size === 0) return Promise.resolve();
    const states = [...this.commitsToWrite].map(([group, hardState]) => ({ group, hardState }));
    this.commitsToWrite.clear();
    return this.writeHardStates(states, { sync: false }).catch((error: unknown) => this.fail(error as Error));
  }

  /** snapshot writes the state machine out at the applied index and compacts the log before it. */
  private async snapshot(hosted: HostedGroup): Promise<void> {
    hosted.snapshotting = true;
    try {
      const snapshot: Snapshot = {
        metadata: { index: hosted.appliedIndex, term: hosted.appliedTerm, confState: hosted.confState },
        data: hosted.options.machine.snapshotData(),
      };
      await hosted.options.snapshots.save(snapshot);
      hosted.options.storage.compact(snapshot);
      this.options.logger.info({ group: hosted.options.group, index: snapshot.metadata.index }, 'snapshot taken; log compacted');
    } finally {
      hosted.snapshotting = false;
    }
  }

  /**
   * readingLog runs work that reads a group's log outside a round (a fetch, the metadata log reader,
   * a leader sending entries from step()): a damaged frame it meets (CorruptLogError) stops the
   * host (storageFailed) before the error goes on to the caller.
   */
  readingLog<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (error instanceof CorruptLogError) this.storageFailed(error);
      throw error;
    }
  }

  /**
   * storageFailed stops the host for a storage error met outside its rounds: a read of a group's
   * log (a consumer's fetch) that found a damaged frame. As in a round, going on could serve or
   * send what the log no longer holds; the next start scans the damaged segment and repairs it (the
   * log removed the segment's index file; see SegmentedLog.entries).
   */
  storageFailed(error: Error): void {
    if (this.failure !== undefined || this.closed) return;
    this.fail(error);
  }

  /** fail stops the host after a storage error: serving on would risk acknowledging lost data. */
  private fail(error: Error): void {
    this.failure = error;
    this.options.logger.error({ err: error }, 'raft host stopped: storage failed');
    void this.close().finally(() => this.options.onFailure(error));
  }

  failed(): Error | undefined {
    return this.failure;
  }

  /** close stops ticking and rounds; pending proposals are rejected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ticker?.cancel();
    this.commitWriter?.cancel();
    for (const hosted of this.groups.values()) {
      hosted.failWaitersUpTo(Number.MAX_SAFE_INTEGER);
      hosted.failLeadershipChecks();
    }
    while (this.roundRunning) await this.options.clock.sleep(1);
    await this.flushCommits();
    await this.hardStateTail;
    await Promise.all([...this.groups.values()].map((hosted) => hosted.options.storage.log.sync()));
  }
}
