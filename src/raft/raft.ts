// Raft is the consensus algorithm of one group as a pure state machine: messages and ticks in,
// messages and log changes out (collected by RawNode into a Ready). No I/O, clock or randomness
// of its own.
//
// Role transitions (all in become*; anything else throws):
//   follower     --election timeout, preVote-->    preCandidate
//   follower     --election timeout, no preVote--> candidate
//   preCandidate --quorum of pre-votes-->          candidate
//   candidate    --quorum of votes-->              leader
//   any          --higher term seen / lost vote--> follower
//   leader       --check-quorum fails / removed--> follower
// Durable state (term, vote) changes here only in memory; RawNode hands it out to be persisted
// before any message that depends on it is sent.
import { assert } from './assert.js';
import { applyConfChange, encodeConfChange } from './confchange.js';
import { MembershipLog } from './membership.js';
import { defaultRaftLimits, type RaftLimits } from './limits.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import { ReadIndexQueue } from './readindex.js';
import type { Random } from './prng.js';
import type { RaftStorage } from './storage.js';
import { entryBytes } from './storage.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  GroupId,
  Message,
  NodeId,
  ProposeResult,
  ReadState,
  Role,
  Snapshot,
} from './types.js';
import { noNode } from './types.js';
import { messageProblem } from './validate.js';

/** unboundedAbstain is the abstainUntilIndex of a loss nothing bounds (see RaftConfig). */
export const unboundedAbstain = Number.MAX_SAFE_INTEGER;

/** RaftLogger is the subset of pino's interface the core uses. */
export interface RaftLogger {
  debug(details: object, message: string): void;
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export interface RaftConfig {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly storage: RaftStorage;
  /** random drives the randomized election timeout; hand in a seeded one to replay. */
  readonly random: Random;
  /** electionTicks: a follower campaigns after [electionTicks, 2*electionTicks) silent ticks. */
  readonly electionTicks: number;
  /** heartbeatTicks: a leader sends heartbeats every heartbeatTicks. Must be < electionTicks. */
  readonly heartbeatTicks: number;
  /** applied is the last index the caller's state machine has applied (on restart). */
  readonly applied?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly limits?: Partial<RaftLimits>;
  readonly logger?: RaftLogger;
  /**
   * abstainUntilIndex: the caller knows the log lost entries up to this index that this node may
   * have acknowledged (a repaired corruption). Like a persisted commit index past the end of the
   * log, it keeps the node from voting and campaigning until its log reaches it again.
   * unboundedAbstain (Number.MAX_SAFE_INTEGER) says the caller cannot tell how far the loss
   * reached: only a committed entry of a later term ends it, and the node moves to the next term
   * as it starts (see the constructor).
   */
  readonly abstainUntilIndex?: number;
  /**
   * abstainTerm: the term this node was in when it lost those entries (recorded with the repair
   * bound); default its current term. Every entry it lost is of this term or an earlier one.
   */
  readonly abstainTerm?: number | undefined;
}

export type TransferResult =
  | { readonly kind: 'started' }
  | { readonly kind: 'forwarded'; readonly leader: NodeId }
  | { readonly kind: 'notLeader'; readonly leaderHint: NodeId }
  | { readonly kind: 'invalidTarget'; readonly reason: string };

export type ReadIndexResult =
  | { readonly kind: 'pending' }
  | { readonly kind: 'notLeader'; readonly leaderHint: NodeId }
  | { readonly kind: 'queueFull'; readonly limit: number };


export class Raft {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly log: RaftLog;
  readonly limits: RaftLimits;
  term = 0;
  vote: NodeId = noNode;
  role: Role = 'follower';
  leader: NodeId = noNode;
  confState: ConfState = { voters: [], learners: [] };
  readonly progress = new Map<NodeId, Progress>();
  /** messages waiting to be handed out in the next Ready. */
  messages: Message[] = [];
  readStates: ReadState[] = [];

  private readonly random: Random;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly logger: RaftLogger;
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = noNode;
  /** pendingConfIndex: no new membership change until commit reaches it (one at a time). */
  private pendingConfIndex = 0;
  private readonly membership: MembershipLog;
  private uncommitted: { index: number; bytes: number }[] = [];
  private uncommittedBytes = 0;
  private readonly readQueue: ReadIndexQueue;
  /** appendsPending: entries were proposed since the last flushAppends. */
  private appendsPending = false;
  /** abstainUntilIndex: after losing acknowledged entries, no votes or campaigns until the log reaches it (0: not abstaining). */
  private abstainUntilIndex = 0;
  /** abstainTerm: the term when abstaining began; a committed entry of a later term held here also ends it. */
  private abstainTerm = 0;
  /** Reads that arrived before this leader committed an entry of its own term. */
  private readsAwaitingCommit: { requestId: number; from: NodeId }[] = [];

  constructor(config: RaftConfig) {
    assert(config.id > 0, 'node id must be positive', { id: config.id });
    assert(config.heartbeatTicks > 0 && config.heartbeatTicks < config.electionTicks, 'heartbeatTicks must be in (0, electionTicks)');
    this.id = config.id;
    this.group = config.group;
    this.random = config.random;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.logger = config.logger ?? silentLogger;
    this.limits = { ...defaultRaftLimits, ...config.limits };
    this.readQueue = new ReadIndexQueue(this.limits.pendingReadsMax);
    this.log = new RaftLog(config.storage, config.applied ?? 0);
    const { hardState, confState } = config.storage.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.membership = new MembershipLog(confState, { logger: this.logger, group: this.group });
    // The membership changes past the snapshot, without reading the log's other entries.
    this.entriesAppended(config.storage.confChangeEntries(this.log.firstIndex(), this.log.lastIndex() + 1));
    this.applyConfState(this.membership.latest());
    const owed = Math.max(hardState.commit, config.abstainUntilIndex ?? 0);
    if (owed > this.log.lastIndex()) {
      // The log lost entries this node had acknowledged (a damaged tail was cut away). Until it
      // holds them again its vote could elect a candidate that lacks committed entries.
      this.logger.warn(
        { group: this.group, commit: hardState.commit, abstainUntilIndex: owed, lastIndex: this.log.lastIndex() },
        'log ends before entries this node acknowledged; not voting or campaigning until caught up',
      );
      this.abstainUntilIndex = owed;
      this.abstainTerm = Math.min(config.abstainTerm ?? hardState.term, hardState.term);
      if (owed === unboundedAbstain) {
        // Only a committed entry of a later term can end this. The leader of this term may never
        // step down (and may keep handing leadership to this node, its preferred replica, which
        // will not campaign); and a message of this term sent before the loss, arriving late,
        // could vouch for a log that no longer holds what this node acknowledged. So move to the
        // next term, without a vote: this term's messages are dropped from now on, a leader of
        // this term steps down when it hears of it, and the group elects one of a later term.
        this.term = hardState.term + 1;
        this.vote = noNode;
        this.logger.warn({ group: this.group, term: this.term }, 'nothing bounds the entries this log lost: moving to the next term, so that the group elects a leader of a later term');
      }
    }
    this.log.commitTo(Math.min(hardState.commit, this.log.lastIndex()));
    this.foldCommittedConfChanges();
    this.becomeFollower(this.term, noNode);
  }

  // ------------------------------------------------------------------------------------------
  // Role transitions.

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    this.role = 'preCandidate';
    this.votes = new Map();
    this.leader = noNode;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader', { role: this.role });
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    for (const progress of this.progress.values()) progress.recentActive = true;
    this.pendingConfIndex = this.log.lastIndex();
    this.appendLocal([{ type: 'normal', data: new Uint8Array(0) }]);
    this.logger.info({ group: this.group, term: this.term }, 'became leader');
    // Assert leadership at once (§5.2), with the entry of the new term, before anyone else times out.
    this.broadcastAppend();
  }

  private reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, 'term must not decrease', { from: this.term, to: term });
      this.term = term;
      this.vote = noNode;
      // Messages of older terms not yet handed out describe a log and a vote this node is about to
      // replace: an acknowledgement of entries a new leader truncates, a vote of a term it left.
      // They would leave after that replacement is on disk, so they are dropped (Raft tolerates loss).
      this.messages = this.messages.filter((message) => message.term >= term);
    }
    this.leader = noNode;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
    this.leadTransferee = noNode;
    this.votes = new Map();
    this.pendingConfIndex = 0;
    this.uncommitted = [];
    this.uncommittedBytes = 0;
    this.readQueue.clear();
    this.readsAwaitingCommit = [];
    const lastIndex = this.log.lastIndex();
    for (const [id, progress] of this.progress) {
      progress.becomeProbe();
      progress.match = id === this.id ? this.log.lastStableIndex() : 0;
      progress.next = lastIndex + 1;
    }
  }

  /**
   * promotable: this node may campaign. A voter of its latest configuration may; so may a voter of
   * the committed one that the latest removes or demotes, until that change commits (thesis
   * §4.2.2): its log may be the only one holding the change, and the others may need it to lead.
   * Its own vote counts only when it is a voter of its latest configuration (voteResult).
   */
  private promotable(): boolean {
    return this.confState.voters.includes(this.id) || this.membership.committed().voters.includes(this.id);
  }

  // ------------------------------------------------------------------------------------------
  // Inputs from the caller.

  /** tick advances logical time by one tick. */
  tick(): void {
    this.endAbstainingWhenCaughtUp();
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * endAbstainingWhenCaughtUp stops abstaining once the log reaches abstainUntilIndex, or once it
   * holds a committed entry of a term after abstainTerm. Either way the log holds every entry that
   * was committed with this node's help before it lost them. Entries reach abstainUntilIndex only
   * from a leader, which holds every committed entry. A committed entry of a later term was
   * committed by a leader elected without this node, so it follows every entry committed before
   * (Leader Completeness), and this log, holding it, holds them (Log Matching). The second way
   * matters when the group is idle: its log may never grow to the bound (the entries lost were
   * never committed), and a node that abstains for good cannot take leadership handed to it.
   */
  private endAbstainingWhenCaughtUp(): void {
    if (this.abstainUntilIndex === 0) return;
    const committedTerm = this.log.term(this.log.committed) ?? 0;
    if (this.log.lastIndex() < this.abstainUntilIndex && committedTerm <= this.abstainTerm) return;
    this.logger.info(
      { group: this.group, abstainUntilIndex: this.abstainUntilIndex, lastIndex: this.log.lastIndex(), abstainTerm: this.abstainTerm, committedTerm },
      'log caught up; voting and campaigning again',
    );
    this.abstainUntilIndex = 0;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign({ transfer: false });
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.retryStalledSnapshots();
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.logger.warn({ group: this.group, term: this.term }, 'stepping down: no quorum heard within the election timeout');
        this.becomeFollower(this.term, noNode);
        return;
      }
      this.leadTransferee = noNode;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(0);
    }
  }

  /** retryStalledSnapshots falls back to probing a follower whose snapshot got no answer in time. */
  private retryStalledSnapshots(): void {
    for (const progress of this.progress.values()) {
      if (progress.state !== 'snapshot') continue;
      progress.snapshotTicks++;
      if (progress.snapshotTicks >= 2 * this.electionTicks) progress.becomeProbe();
    }
  }

  private quorumActive(): boolean {
    const active = hasQuorum(this.confState.voters, (id) => id === this.id || this.progress.get(id)?.recentActive === true);
    for (const [id, progress] of this.progress) if (id !== this.id) progress.recentActive = false;
    return active;
  }

  /** campaign starts an election now (as if the election timeout had passed). */
  campaign(options: { transfer: boolean }): void {
    if (this.role === 'leader' || !this.promotable() || this.abstaining()) return;
    if (this.preVote && !options.transfer) this.startElection({ preVote: true, transfer: false });
    else this.startElection({ preVote: false, transfer: options.transfer });
  }

  private startElection(options: { preVote: boolean; transfer: boolean }): void {
    if (options.preVote) this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = options.preVote ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (voteResult(this.confState.voters, this.votes) === 'won') {
      this.electionWon(options.preVote);
      return;
    }
    for (const voter of this.confState.voters) {
      if (voter === this.id) continue;
      this.messages.push({
        type: 'requestVote',
        group: this.group,
        from: this.id,
        to: voter,
        term: voteTerm,
        preVote: options.preVote,
        transfer: options.transfer,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
      });
    }
  }

  private electionWon(preVote: boolean): void {
    if (preVote) this.startElection({ preVote: false, transfer: false });
    else this.becomeLeader();
  }

  /** propose appends data to the log if this node leads. */
  propose(data: Uint8Array): ProposeResult {
    return this.proposeEntry('normal', data);
  }

  /** proposeConfChange proposes a single-server membership change; one at a time. */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role === 'leader' && this.pendingConfIndex > this.log.committed) {
      return { kind: 'confChangePending', pendingIndex: this.pendingConfIndex };
    }
    const outcome = applyConfChange(this.confState, change);
    if (outcome.kind === 'invalid') return { kind: 'invalidConfChange', reason: outcome.reason };
    const result = this.proposeEntry('confChange', encodeConfChange(change));
    if (result.kind === 'accepted') this.pendingConfIndex = result.index;
    return result;
  }

  private proposeEntry(type: EntryType, data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { kind: 'notLeader', leaderHint: this.leader };
    if (this.leadTransferee !== noNode) return { kind: 'transferring', target: this.leadTransferee };
    if (data.length > this.limits.entryBytesMax) return { kind: 'tooLarge', bytes: data.length, limitBytes: this.limits.entryBytesMax };
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + data.length > this.limits.uncommittedBytesMax) {
      return { kind: 'queueFull', uncommittedBytes: this.uncommittedBytes, limitBytes: this.limits.uncommittedBytesMax };
    }
    const index = this.appendLocal([{ type, data }]);
    // Sent at the next Ready (flushAppends): proposals that arrive together leave as one append.
    this.appendsPending = true;
    return { kind: 'accepted', index, term: this.term };
  }

  private appendLocal(entries: readonly { type: EntryType; data: Uint8Array }[]): number {
    let index = this.log.lastIndex();
    const full: Entry[] = entries.map((entry) => ({ index: ++index, term: this.term, type: entry.type, data: entry.data }));
    this.log.append(full);
    this.entriesAppended(full);
    for (const entry of full) {
      this.uncommitted.push({ index: entry.index, bytes: entry.data.length });
      this.uncommittedBytes += entry.data.length;
    }
    return index;
  }

  /** transferLeadership asks the leader to hand leadership to target. */
  transferLeadership(target: NodeId): TransferResult {
    if (this.role !== 'leader') {
      if (this.leader === noNode) return { kind: 'notLeader', leaderHint: noNode };
      this.messages.push({ type: 'transferLeaderRequest', group: this.group, from: this.id, to: this.leader, term: this.term, target });
      return { kind: 'forwarded', leader: this.leader };
    }
    return this.startTransfer(target);
  }

  private startTransfer(target: NodeId): TransferResult {
    if (target === this.id) return { kind: 'invalidTarget', reason: 'already the leader' };
    if (!this.confState.voters.includes(target)) return { kind: 'invalidTarget', reason: `node ${target} is not a voter` };
    if (this.leadTransferee === target) return { kind: 'started' };
    this.leadTransferee = target;
    this.electionElapsed = 0;
    const progress = this.progress.get(target)!;
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, { sendIfEmpty: true });
    return { kind: 'started' };
  }

  /**
   * flushAppends sends followers the entries proposed since the last call, one append message per
   * follower (within its flow control) instead of one per proposal. RawNode calls it for every Ready.
   */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === 'leader') this.broadcastAppend();
  }

  private sendTimeoutNow(to: NodeId): void {
    this.messages.push({ type: 'timeoutNow', group: this.group, from: this.id, to, term: this.term });
  }

  /**
   * readIndex asks for a linearizable read. When confirmed, a ReadState with requestId and the
   * index to wait for (applied >= index) appears in a Ready.
   */
  readIndex(requestId: number): ReadIndexResult {
    if (this.role === 'leader') return this.leaderRead(requestId, this.id);
    if (this.leader === noNode) return { kind: 'notLeader', leaderHint: noNode };
    this.messages.push({ type: 'readIndexRequest', group: this.group, from: this.id, to: this.leader, term: this.term, requestId });
    return { kind: 'pending' };
  }

  private leaderRead(requestId: number, from: NodeId): ReadIndexResult {
    if (this.log.term(this.log.committed) !== this.term) {
      if (this.readsAwaitingCommit.length >= this.limits.pendingReadsMax) return this.rejectRead(requestId, from);
      this.readsAwaitingCommit.push({ requestId, from });
      return { kind: 'pending' };
    }
    if (this.confState.voters.length === 1) {
      this.releaseRead({ requestId, from, index: this.log.committed });
      return { kind: 'pending' };
    }
    if (this.readQueue.full()) return this.rejectRead(requestId, from);
    const context = this.readQueue.add({ index: this.log.committed, requestId, from, self: this.id });
    this.broadcastHeartbeat(context);
    return { kind: 'pending' };
  }

  private rejectRead(requestId: number, from: NodeId): ReadIndexResult {
    if (from !== this.id) {
      this.messages.push({ type: 'readIndexResponse', group: this.group, from: this.id, to: from, term: this.term, requestId, index: 0, rejected: true });
    }
    return { kind: 'queueFull', limit: this.limits.pendingReadsMax };
  }

  private releaseRead(read: { requestId: number; from: NodeId; index: number }): void {
    if (read.from === this.id) {
      this.readStates.push({ requestId: read.requestId, index: read.index });
      return;
    }
    this.messages.push({
      type: 'readIndexResponse',
      group: this.group,
      from: this.id,
      to: read.from,
      term: this.term,
      requestId: read.requestId,
      index: read.index,
      rejected: false,
    });
  }

  /**
   * reportUnreachable tells the leader a peer could not be reached (its stream broke). The peer may
   * have restarted and lost entries it had acknowledged (a damaged tail cut away), so the leader
   * forgets what it knew of the peer's log and probes it afresh, as a new leader does. Lowering a
   * match index is always safe: the commit index never moves back.
   */
  reportUnreachable(id: NodeId): void {
    const progress = this.progress.get(id);
    if (this.role !== 'leader' || progress === undefined || id === this.id) return;
    progress.becomeProbe();
    progress.match = 0;
    progress.next = this.log.lastIndex() + 1;
  }

  /** reportSnapshot tells the leader whether sending a snapshot to a peer finished or failed. */
  reportSnapshot(id: NodeId, outcome: 'finished' | 'failed'): void {
    const progress = this.progress.get(id);
    if (this.role !== 'leader' || progress?.state !== 'snapshot') return;
    if (outcome === 'failed') progress.pendingSnapshot = 0;
    progress.becomeProbe();
    progress.probeSent = true;
  }

  /** persisted tells the core that its own log is durable up to (index, term): the leader counts itself. */
  persisted(index: number, term: number): void {
    if (this.role !== 'leader' || this.log.term(index) !== term) return;
    const self = this.progress.get(this.id);
    // Followers learn the new commit index with the next append or heartbeat (§5.3), not at once:
    // an extra message and round on every node per commit is the larger cost.
    if (self?.maybeUpdate(index)) this.maybeCommit();
  }

  // ------------------------------------------------------------------------------------------
  // Messages from peers.

  /** step handles one message from a peer. Malformed or impossible messages are logged and ignored. */
  step(message: Message): void {
    const problem = messageProblem(message, { id: this.id, group: this.group });
    if (problem !== undefined) {
      this.logger.warn({ group: this.group, from: message.from, type: message.type, problem }, 'ignored an impossible message');
      return;
    }
    if (message.term > this.term) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    this.stepRole(message);
  }

  /** stepHigherTerm adopts a higher term where Raft says to; false when the message is dropped. */
  private stepHigherTerm(message: Message): boolean {
    if (message.type === 'requestVote') {
      const inLease = this.checkQuorum && this.leader !== noNode && this.electionElapsed < this.electionTicks;
      if (inLease && !message.transfer) {
        this.logger.debug({ group: this.group, from: message.from, term: message.term }, 'ignored a vote request within the leader lease');
        return false;
      }
      if (message.preVote) return true;
    }
    if (message.type === 'requestVoteResponse' && message.preVote && message.granted) return true;
    const fromLeader = message.type === 'appendEntries' || message.type === 'heartbeat' || message.type === 'installSnapshot';
    this.becomeFollower(message.term, fromLeader ? message.from : noNode);
    return true;
  }

  private stepLowerTerm(message: Message): void {
    // An abstaining node answers too: it cannot campaign, so a leader of a lower term that never
    // heard of its term would lead on and never commit the entry of a later term it waits for.
    if ((this.checkQuorum || this.preVote || this.abstainUntilIndex !== 0) && (message.type === 'appendEntries' || message.type === 'heartbeat')) {
      // A stale leader learns the new term from the answer and steps down.
      this.messages.push({ type: 'appendEntriesResponse', group: this.group, from: this.id, to: message.from, term: this.term, reject: false, index: 0, hintIndex: 0, hintTerm: 0 });
    } else if (message.type === 'requestVote' && message.preVote) {
      this.messages.push({ type: 'requestVoteResponse', group: this.group, from: this.id, to: message.from, term: this.term, preVote: true, granted: false });
    }
  }

  private stepRole(message: Message): void {
    if (message.type === 'requestVote') {
      this.handleVoteRequest(message);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
    }
  }

  /**
   * owesLostEntries: this node abstains for entries it lost, as of its last check (abstaining()
   * checks again and may end it). A read without that side effect, for observers (the simulator).
   */
  get owesLostEntries(): boolean {
    return this.abstainUntilIndex !== 0;
  }

  /** abstaining says whether this node still owes entries it lost (see endAbstainingWhenCaughtUp). */
  private abstaining(): boolean {
    this.endAbstainingWhenCaughtUp();
    return this.abstainUntilIndex !== 0;
  }

  private handleVoteRequest(message: Extract<Message, { type: 'requestVote' }>): void {
    const canVote =
      !this.abstaining() &&
      (this.vote === message.from ||
      (this.vote === noNode && this.leader === noNode) ||
      (message.preVote && message.term > this.term));
    const granted = canVote && this.log.isUpToDate(message.lastIndex, message.lastTerm);
    if (this.abstaining()) {
      this.logger.info({ group: this.group, from: message.from, term: message.term, preVote: message.preVote, abstainUntilIndex: this.abstainUntilIndex, lastIndex: this.log.lastIndex() }, 'refused a vote: log not caught up');
    } else if (granted) {
      this.logger.info({ group: this.group, to: message.from, term: message.term, preVote: message.preVote }, 'granted a vote');
    }
    this.messages.push({
      type: 'requestVoteResponse',
      group: this.group,
      from: this.id,
      to: message.from,
      term: granted ? message.term : this.term,
      preVote: message.preVote,
      granted,
    });
    if (granted && !message.preVote) {
      this.electionElapsed = 0;
      this.vote = message.from;
    }
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case 'requestVoteResponse': {
        if (message.preVote !== (this.role === 'preCandidate')) return;
        this.votes.set(message.from, message.granted);
        const result = voteResult(this.confState.voters, this.votes);
        if (result === 'won') this.electionWon(message.preVote);
        else if (result === 'lost') this.becomeFollower(this.term, noNode);
        return;
      }
      case 'appendEntries':
      case 'heartbeat':
      case 'installSnapshot':
        this.becomeFollower(this.term, message.from);
        this.stepFollower(message);
        return;
      default:
        return;
    }
  }

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'appendEntries':
        this.heardFromLeader(message.from);
        this.handleAppendEntries(message);
        return;
      case 'heartbeat':
        this.heardFromLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case 'installSnapshot':
        this.heardFromLeader(message.from);
        this.handleSnapshot(message);
        return;
      case 'timeoutNow':
        this.logger.info({ group: this.group, from: message.from }, 'campaigning at once for a leadership transfer');
        this.campaign({ transfer: true });
        return;
      case 'readIndexResponse':
        if (!message.rejected) this.readStates.push({ requestId: message.requestId, index: message.index });
        return;
      case 'transferLeaderRequest':
        if (this.leader !== noNode) this.messages.push({ ...message, from: this.id, to: this.leader, term: this.term });
        return;
      case 'readIndexRequest':
        this.messages.push({ type: 'readIndexResponse', group: this.group, from: this.id, to: message.from, term: this.term, requestId: message.requestId, index: 0, rejected: true });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.leader = leader;
  }

  private handleAppendEntries(message: Extract<Message, { type: 'appendEntries' }>): void {
    const respond = (fields: { reject: boolean; index: number; hintIndex: number; hintTerm: number }): void => {
      const { reject, index, hintIndex, hintTerm } = fields;
      this.messages.push({ type: 'appendEntriesResponse', group: this.group, from: this.id, to: message.from, term: this.term, reject, index, hintIndex, hintTerm });
    };
    if (message.prevIndex < this.log.committed) {
      respond({ reject: false, index: this.log.committed, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const outcome = this.log.maybeAppend(message);
    if (outcome !== undefined) {
      this.entriesAppended(outcome.appended);
      this.foldCommittedConfChanges();
      respond({ reject: false, index: outcome.lastNewIndex, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(Math.min(message.prevIndex, this.log.lastIndex()), message.prevTerm);
    respond({ reject: true, index: message.prevIndex, hintIndex, hintTerm: this.log.term(hintIndex) ?? 0 });
  }

  private handleHeartbeat(message: Extract<Message, { type: 'heartbeat' }>): void {
    if (message.commit > this.log.lastIndex()) {
      // The leader counts entries this log no longer holds (it was repaired): say where it ends, so the leader sends them again.
      this.logger.warn({ group: this.group, from: message.from, commit: message.commit, lastIndex: this.log.lastIndex() }, 'heartbeat commit past the end of the log');
      const lastIndex = this.log.lastIndex();
      this.messages.push({ type: 'appendEntriesResponse', group: this.group, from: this.id, to: message.from, term: this.term, reject: true, index: message.commit, hintIndex: lastIndex, hintTerm: this.log.term(lastIndex) ?? 0 });
    } else {
      this.log.commitTo(message.commit);
      this.foldCommittedConfChanges();
    }
    this.messages.push({ type: 'heartbeatResponse', group: this.group, from: this.id, to: message.from, term: this.term, context: message.context });
  }

  private handleSnapshot(message: Extract<Message, { type: 'installSnapshot' }>): void {
    const { index, term } = message.snapshot.metadata;
    let matched = this.log.committed;
    if (index > this.log.committed) {
      if (this.log.matchTerm(index, term)) {
        this.log.commitTo(index);
        this.foldCommittedConfChanges();
        matched = this.log.committed;
      } else {
        this.restore(message.snapshot);
        matched = index;
      }
    }
    this.messages.push({ type: 'appendEntriesResponse', group: this.group, from: this.id, to: message.from, term: this.term, reject: false, index: matched, hintIndex: 0, hintTerm: 0 });
  }

  private restore(snapshot: Snapshot): void {
    this.logger.info({ group: this.group, index: snapshot.metadata.index, term: snapshot.metadata.term }, 'restoring a snapshot from the leader');
    this.log.restore(snapshot);
    this.membership.restore(snapshot.metadata.confState);
    this.applyConfState(snapshot.metadata.confState);
  }

  private stepLeader(message: Message): void {
    switch (message.type) {
      case 'appendEntriesResponse':
        this.handleAppendResponse(message);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(message);
        return;
      case 'readIndexRequest':
        if (this.progress.has(message.from)) this.leaderRead(message.requestId, message.from);
        return;
      case 'transferLeaderRequest':
        this.startTransfer(message.target);
        return;
      case 'appendEntries':
      case 'heartbeat':
      case 'installSnapshot':
        this.logger.warn({ group: this.group, from: message.from, term: message.term }, 'another leader claims this term');
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(message: Extract<Message, { type: 'appendEntriesResponse' }>): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    if (message.index > this.log.lastIndex()) {
      this.logger.warn({ group: this.group, from: message.from, index: message.index }, 'append response past the end of the log');
      return;
    }
    progress.recentActive = true;
    if (message.reject) {
      const hint = message.hintTerm > 0 ? this.log.findConflictByTerm(message.hintIndex, message.hintTerm) : message.hintIndex;
      if (progress.maybeDecrTo(message.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(message.from, { sendIfEmpty: true });
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(message.index)) return;
    if (progress.state === 'probe') progress.becomeReplicate();
    else if (progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex()) progress.becomeReplicate();
    else if (progress.state === 'replicate') progress.inflights.freeUpTo(message.index);
    this.maybeCommit();
    if (wasPaused) this.sendAppend(message.from, { sendIfEmpty: true });
    while (this.sendAppend(message.from, { sendIfEmpty: false })) {
      // keep the pipeline full
    }
    if (message.from === this.leadTransferee && progress.match === this.log.lastIndex()) this.sendTimeoutNow(message.from);
  }

  private handleHeartbeatResponse(message: Extract<Message, { type: 'heartbeatResponse' }>): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirst();
    if (progress.match < this.log.lastIndex()) this.sendAppend(message.from, { sendIfEmpty: true });
    if (message.context === 0) return;
    const released = this.readQueue.ack({
      context: message.context,
      from: message.from,
      isQuorum: (acks) => hasQuorum(this.confState.voters, (id) => acks.has(id)),
    });
    for (const read of released) for (const request of read.requests) this.releaseRead({ ...request, index: read.index });
  }

  // ------------------------------------------------------------------------------------------
  // Replication.

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, { sendIfEmpty: true });
  }

  private broadcastHeartbeat(context: number): void {
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(progress.match, this.log.committed);
      this.messages.push({ type: 'heartbeat', group: this.group, from: this.id, to: id, term: this.term, commit, context });
    }
  }

  /** sendAppend sends entries (or a snapshot) to a follower; false when nothing was sent. */
  private sendAppend(to: NodeId, options: { sendIfEmpty: boolean }): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.entriesFrom(progress.next, this.limits.appendBytesMax);
    if (prevTerm === undefined || entries === undefined) return this.sendSnapshot(to, progress);
    if (entries.length === 0 && !options.sendIfEmpty) return false;
    this.messages.push({ type: 'appendEntries', group: this.group, from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit: this.log.committed });
    const last = entries[entries.length - 1];
    if (last !== undefined) progress.sentEntries(last.index, entries.reduce((sum, entry) => sum + entryBytes(entry), 0));
    else if (progress.state === 'probe') progress.probeSent = true;
    return true;
  }

  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    if (!progress.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, 'log compacted but no snapshot', { to });
    progress.becomeSnapshot(snapshot.metadata.index);
    this.messages.push({ type: 'installSnapshot', group: this.group, from: this.id, to, term: this.term, snapshot });
    return true;
  }

  /** maybeCommit commits what a quorum of voters holds, if it is of the current term (§5.4.2). */
  private maybeCommit(): boolean {
    const index = committedIndex(this.confState.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (!this.log.maybeCommit(index, this.term)) return false;
    this.afterLeaderCommit();
    return true;
  }

  private afterLeaderCommit(): void {
    while (this.uncommitted.length > 0 && this.uncommitted[0]!.index <= this.log.committed) {
      this.uncommittedBytes -= this.uncommitted.shift()!.bytes;
    }
    this.foldCommittedConfChanges();
    if (this.role === 'leader' && this.readsAwaitingCommit.length > 0 && this.log.term(this.log.committed) === this.term) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const read of waiting) this.leaderRead(read.requestId, read.from);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Membership.

  /** entriesAppended updates the membership after entries were written to the log. */
  private entriesAppended(entries: readonly Entry[]): void {
    if (this.membership.appended(entries)) this.applyConfState(this.membership.latest());
  }

  /**
   * foldCommittedConfChanges moves changes at or below the commit index into the committed
   * configuration. A leader whose own removal has just committed steps down.
   */
  private foldCommittedConfChanges(): void {
    this.membership.foldThrough(this.log.committed);
    if (this.role === 'leader' && this.membership.pendingChanges() === 0 && !this.promotable()) {
      this.logger.info({ group: this.group }, 'stepping down: no longer a voter');
      this.becomeFollower(this.term, noNode);
    }
  }

  private applyConfState(confState: ConfState): void {
    this.confState = { voters: [...confState.voters], learners: [...confState.learners] };
    const members = new Set([...confState.voters, ...confState.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    const inflightMax = { count: this.limits.inflightMessagesMax, bytes: this.limits.inflightBytesMax };
    for (const id of members) {
      const isLearner = confState.learners.includes(id);
      const existing = this.progress.get(id);
      if (existing !== undefined) {
        existing.isLearner = isLearner;
        continue;
      }
      const match = id === this.id ? this.log.lastStableIndex() : 0;
      const progress = new Progress(match, this.log.lastIndex() + 1, isLearner, inflightMax);
      progress.recentActive = true;
      this.progress.set(id, progress);
    }
    this.afterMembershipChange();
  }

  private afterMembershipChange(): void {
    if (this.role === 'leader') {
      if (this.leadTransferee !== noNode && !this.confState.voters.includes(this.leadTransferee)) this.leadTransferee = noNode;
      this.maybeCommit();
      this.broadcastAppend();
    } else if (this.role !== 'follower' && !this.promotable()) {
      this.becomeFollower(this.term, noNode);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Introspection.

  /** committedConfState is the membership as of the commit index. */
  committedConfState(): ConfState {
    return this.membership.committed();
  }

  /** pendingConfChanges counts membership changes in the log above the commit index. */
  pendingConfChanges(): number {
    return this.membership.pendingChanges();
  }
}
