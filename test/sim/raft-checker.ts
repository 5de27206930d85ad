// RaftChecker judges a simulation from the outside: it sees what nodes persist, send, apply and
// report, and throws InvariantViolation the moment a Raft safety property fails.
import { majoritiesCanBeDisjoint, majority } from '../../src/raft/quorum.js';
import type { ConfState, Entry, Message, NodeId } from '../../src/raft/types.js';

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

function violation(property: string, detail: string): never {
  throw new InvariantViolation(property, detail);
}

/** entryKey identifies an entry's content for comparison: term, type and payload bytes. */
export function entryKey(entry: Entry): string {
  return `${entry.term}/${entry.type}/${Buffer.from(entry.data).toString('hex')}`;
}

/** The durable view of one node the checker may consult: what its storage holds. */
export interface DurableView {
  term(index: number): number | undefined;
  snapshotIndex(): number;
  /**
   * owes: the node's disk lost the entry at index after it may have acknowledged it, and the node
   * still owes it (abstaining until a leader sends it back): it counts as holding it, since its
   * acknowledgement stands and its vote is withheld until it holds it again.
   */
  owes(index: number): boolean;
}

export class RaftChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly voteOf = new Map<string, NodeId>();
  private readonly persistedTerm = new Map<NodeId, number>();
  private readonly persistedCommit = new Map<NodeId, number>();
  private readonly memoryTerm = new Map<NodeId, number>();
  private readonly memoryCommit = new Map<NodeId, number>();
  /** committed[index] is the key of the entry committed at index, once any node commits it. */
  private readonly committed = new Map<number, string>();
  private committedMax = 0;
  /** byIndexTerm[index/term] is the content of the entry with that index and term (log matching). */
  private readonly byIndexTerm = new Map<string, string>();
  /** appliedHash[index] is the state machine's chained hash after applying index. */
  private readonly appliedHash = new Map<number, number>();
  readonly events: string[] = [];
  checks = 0;

  /** onPersist: entries and hard state a node has just made durable. */
  persist(node: NodeId, options: { entries: readonly Entry[]; term?: number; vote?: NodeId; commit?: number }): void {
    this.checks++;
    // An uncommitted suffix may differ from what others committed (a stale leader appends to its
    // own log until it learns of the new term); what a node knows committed may not.
    const knownCommit = Math.max(this.memoryCommit.get(node) ?? 0, options.commit ?? 0);
    for (const entry of options.entries) this.checkEntryContent(node, entry, 'persisted', entry.index <= knownCommit);
    if (options.term !== undefined) {
      const previous = this.persistedTerm.get(node) ?? 0;
      if (options.term < previous) violation('term never decreases', `node ${node} persisted term ${options.term} after ${previous}`);
      this.persistedTerm.set(node, options.term);
      if (options.vote !== undefined && options.vote !== 0) this.recordVote(node, options.term, options.vote, 'persisted vote');
    }
    if (options.commit !== undefined) {
      const previous = this.persistedCommit.get(node) ?? 0;
      if (options.commit < previous) violation('commit index never decreases', `node ${node} persisted commit ${options.commit} after ${previous}`);
      this.persistedCommit.set(node, options.commit);
    }
  }

  private checkEntryContent(node: NodeId, entry: Entry, how: string, knownCommitted: boolean): void {
    const key = entryKey(entry);
    const committedKey = this.committed.get(entry.index);
    if (knownCommitted && committedKey !== undefined && committedKey !== key) {
      violation('committed entries never change', `node ${node} ${how} ${key} at committed index ${entry.index}, which holds ${committedKey}`);
    }
    const slot = `${entry.index}/${entry.term}`;
    const known = this.byIndexTerm.get(slot);
    if (known === undefined) this.byIndexTerm.set(slot, key);
    else if (known !== key) violation('log matching', `node ${node} ${how} ${key} at ${slot}, another log has ${known}`);
  }

  /**
   * send: a message leaves a node whose disk is `durable`. Checks the persistence contract (term,
   * vote and entries are durable before any message that depends on them leaves) and records
   * granted votes (one vote per term per node).
   */
  send(message: Message, durable: { term: number; vote: NodeId; holds: (index: number) => boolean }): void {
    this.checks++;
    const contract = 'the persistence contract: durable before a dependent message leaves';
    if (message.term > durable.term && !(message.type === 'requestVote' && message.preVote) && !(message.type === 'requestVoteResponse' && message.preVote)) {
      violation(contract, `node ${message.from} sent ${message.type} at term ${message.term} with term ${durable.term} on disk`);
    }
    if (message.type === 'requestVoteResponse' && message.granted && !message.preVote) {
      if (durable.term !== message.term || durable.vote !== message.to) {
        violation(contract, `node ${message.from} granted its term-${message.term} vote to ${message.to} with term ${durable.term} vote ${durable.vote} on disk`);
      }
      this.recordVote(message.from, message.term, message.to, 'granted vote');
    }
    if (message.type === 'appendEntriesResponse' && !message.reject && message.index > 0 && !durable.holds(message.index)) {
      violation(contract, `node ${message.from} acknowledged index ${message.index} that its disk does not hold`);
    }
  }

  /**
   * elected: a node became leader of a term. It must hold a majority of votes granted for it in
   * that term (election safety, checked at its source) and every entry committed so far (leader
   * completeness, §5.4).
   */
  elected(options: { node: NodeId; term: number; voters: readonly NodeId[]; selfVote: NodeId; entryAt: (index: number) => Entry | undefined; firstIndex: number; lastIndex: number }): void {
    const { node, term, voters } = options;
    const votes = voters.filter((voter) => (voter === node ? options.selfVote === node : this.voteOf.get(`${voter}/${term}`) === node)).length;
    if (votes < majority(voters.length)) {
      violation('a leader is elected by a majority of votes of its term', `node ${node} leads term ${term} with ${votes} votes of voters [${voters.join(',')}]`);
    }
    for (let index = options.firstIndex; index <= this.committedMax; index++) {
      const committed = this.committed.get(index);
      if (committed === undefined) continue;
      const entry = index <= options.lastIndex ? options.entryAt(index) : undefined;
      if (entry === undefined || entryKey(entry) !== committed) {
        violation('leader completeness: a new leader holds every committed entry', `node ${node} leads term ${term} without committed entry ${index} (${committed})`);
      }
    }
  }

  private recordVote(node: NodeId, term: number, candidate: NodeId, how: string): void {
    const key = `${node}/${term}`;
    const previous = this.voteOf.get(key);
    if (previous !== undefined && previous !== candidate) {
      violation('at most one vote per term per node', `node ${node} ${how} for ${candidate} in term ${term}, but voted for ${previous}`);
    }
    this.voteOf.set(key, candidate);
  }

  /**
   * observe: a node's volatile state after it handled an event. Checks election safety, monotonic
   * term and commit within one incarnation, and that every newly committed entry is held by a
   * majority of the leader's voters on their disks.
   */
  observe(options: {
    node: NodeId;
    role: string;
    term: number;
    commit: number;
    confState: ConfState;
    entryAt: (index: number) => Entry | undefined;
    durable: (id: NodeId) => DurableView | undefined;
  }): void {
    this.checks++;
    const { node, term, commit } = options;
    if (options.role === 'leader') {
      const leader = this.leaderOfTerm.get(term);
      if (leader !== undefined && leader !== node) violation('at most one leader per term', `nodes ${leader} and ${node} both lead term ${term}`);
      this.leaderOfTerm.set(term, node);
    }
    const previousTerm = this.memoryTerm.get(node) ?? 0;
    if (term < previousTerm) violation('term never decreases', `node ${node} went from term ${previousTerm} to ${term}`);
    this.memoryTerm.set(node, term);
    const previousCommit = this.memoryCommit.get(node) ?? 0;
    if (commit < previousCommit) violation('commit index never decreases', `node ${node} went from commit ${previousCommit} to ${commit}`);
    this.memoryCommit.set(node, commit);
    for (let index = previousCommit + 1; index <= commit; index++) {
      const entry = options.entryAt(index);
      if (entry === undefined) continue; // compacted away: its snapshot was checked when applied
      this.recordCommitted(node, entry);
      if (options.role === 'leader') this.checkQuorumHolds(options, entry);
    }
  }

  /**
   * lostCommit: a node's disk lost entries, and the commit index it had persisted went with them
   * (it persists it lazily, so it never held a higher one durably): what it holds now is the floor.
   */
  lostCommit(node: NodeId, commit: number): void {
    this.persistedCommit.set(node, Math.min(this.persistedCommit.get(node) ?? 0, commit));
  }

  /** restarted: a node lost its volatile state; its memory of term and commit starts from disk. */
  restarted(node: NodeId): void {
    this.memoryTerm.set(node, this.persistedTerm.get(node) ?? 0);
    this.memoryCommit.delete(node);
  }

  private recordCommitted(node: NodeId, entry: Entry): void {
    const key = entryKey(entry);
    const known = this.committed.get(entry.index);
    if (known === undefined) {
      this.committed.set(entry.index, key);
      this.committedMax = Math.max(this.committedMax, entry.index);
    } else if (known !== key) {
      violation('committed entries never change', `node ${node} committed ${key} at ${entry.index}, earlier ${known}`);
    }
  }

  private checkQuorumHolds(options: { node: NodeId; confState: ConfState; durable: (id: NodeId) => DurableView | undefined }, entry: Entry): void {
    const voters = options.confState.voters;
    let holders = 0;
    for (const voter of voters) {
      const view = options.durable(voter);
      if (view === undefined) continue;
      if (view.snapshotIndex() >= entry.index || view.term(entry.index) === entry.term || view.owes(entry.index)) holders++;
    }
    if (holders < majority(voters.length)) {
      violation(
        'commitment needs a majority of voters to hold the entry',
        `leader ${options.node} committed ${entry.index}/${entry.term} held by ${holders} of voters [${voters.join(',')}]`,
      );
    }
  }

  /** applied: a node applied an entry and its state machine's chained hash is now hash. */
  applied(node: NodeId, index: number, hash: number): void {
    const known = this.appliedHash.get(index);
    if (known === undefined) this.appliedHash.set(index, hash);
    else if (known !== hash) violation('every node applies the same entry at the same index', `node ${node} reached state ${hash} at ${index}, others ${known}`);
  }

  /**
   * leaderMembership: a leader has at most one membership change in flight, and the configuration
   * it uses (latest in its log) never allows a majority disjoint from one of the committed
   * configuration (so no two majorities can decide independently during a change).
   */
  leaderMembership(options: { node: NodeId; committed: ConfState; effective: ConfState; pendingChanges: number }): void {
    if (options.pendingChanges > 1) {
      violation('one membership change at a time', `leader ${options.node} has ${options.pendingChanges} uncommitted membership changes`);
    }
    if (majoritiesCanBeDisjoint({ a: options.committed.voters, b: options.effective.voters })) {
      violation(
        'a membership change never allows two disjoint majorities',
        `leader ${options.node} uses voters [${options.effective.voters.join(',')}], committed voters are [${options.committed.voters.join(',')}]`,
      );
    }
  }

  /** read: a ReadIndex answer must cover every write acknowledged before the read was asked. */
  read(options: { node: NodeId; index: number; ackedBeforeRequest: number }): void {
    if (options.index < options.ackedBeforeRequest) {
      violation('reads are linearizable', `node ${options.node} read at ${options.index}, but ${options.ackedBeforeRequest} was acknowledged before the read began`);
    }
  }

  committedEntry(index: number): string | undefined {
    return this.committed.get(index);
  }

  highestCommitted(): number {
    return this.committedMax;
  }

  leaders(): ReadonlyMap<number, NodeId> {
    return this.leaderOfTerm;
  }
}
