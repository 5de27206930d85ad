// Unit tests of the Raft core, one per rule of the Raft paper (Ongaro & Ousterhout, extended
// version) and of Ongaro's thesis, each named after the rule it checks. Nodes are driven directly:
// a single Raft/RawNode fed hand-made messages, or a few RawNodes over MemoryStorage joined by the
// tiny network below (deliver, persist each Ready, advance). Every randomized election timeout is
// exactly electionTicks (random = () => 0) unless a test says otherwise.
import { describe, expect, it } from 'vitest';
import { encodeConfChange } from './confchange.js';
import { Raft, type RaftConfig } from './raft.js';
import { RawNode } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import type { Entry, HardState, Message, NodeId, Ready } from './types.js';

const group = 3;
const electionTicks = 10;
const heartbeatTicks = 2;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type MessageFields = DistributiveOmit<Message, 'group'>;

function entry(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(data) };
}

/** bootstrapStorage is a node's disk at cluster creation: membership in a snapshot at 1@1. */
function bootstrapStorage(options: { voters: NodeId[]; learners?: NodeId[]; hardState?: HardState; entries?: Entry[] }): MemoryStorage {
  return new MemoryStorage({
    snapshot: { metadata: { index: 1, term: 1, confState: { voters: options.voters, learners: options.learners ?? [] } }, data: new Uint8Array(0) },
    hardState: options.hardState ?? { term: 1, vote: 0, commit: 1 },
    entries: options.entries ?? [],
  });
}

interface Warning {
  readonly details: object;
  readonly message: string;
}

function config(id: NodeId, storage: MemoryStorage, warnings: Warning[], overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    group,
    storage,
    random: () => 0,
    electionTicks,
    heartbeatTicks,
    logger: { debug() {}, info() {}, warn: (details, message) => warnings.push({ details, message }) },
    ...overrides,
  };
}

/** newRaft builds a bare Raft over storage, for tests that feed it messages by hand. */
function newRaft(id: NodeId, storage: MemoryStorage, overrides: Partial<RaftConfig> = {}): { raft: Raft; warnings: Warning[] } {
  const warnings: Warning[] = [];
  return { raft: new Raft(config(id, storage, warnings, overrides)), warnings };
}

function message(fields: MessageFields): Message {
  return { group, ...fields } as Message;
}

function logOf(raft: Raft): string[] {
  return raft.log.slice(raft.log.firstIndex(), raft.log.lastIndex() + 1, Infinity).map((e) => `${e.index}@${e.term}`);
}

/** takeMessages empties the raft's outbox. */
function takeMessages(raft: Raft): Message[] {
  const messages = raft.messages;
  raft.messages = [];
  return messages;
}

interface NetNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  readonly warnings: Warning[];
  readonly readies: Ready[];
}

/**
 * Net is a handful of RawNodes and a queue of messages in flight. settle() works off every
 * node's Readies (persist, then queue the messages, then advance); deliver() hands the queued
 * messages to their receivers, dropping those the `drop` predicate names.
 */
class Net {
  readonly nodes = new Map<NodeId, NetNode>();
  queue: Message[] = [];
  drop: (message: Message) => boolean = () => false;
  /** onPersist is called with every Ready after it is persisted and before its messages leave. */
  onPersist: (id: NodeId, ready: Ready, storage: MemoryStorage) => void = () => {};

  constructor(options: { voters: NodeId[]; learners?: NodeId[]; storages?: Map<NodeId, MemoryStorage>; overrides?: Partial<RaftConfig> }) {
    for (const id of [...options.voters, ...(options.learners ?? [])]) {
      const storage = options.storages?.get(id) ?? bootstrapStorage({ voters: options.voters, learners: options.learners ?? [] });
      const warnings: Warning[] = [];
      this.nodes.set(id, { raw: new RawNode(config(id, storage, warnings, options.overrides)), storage, warnings, readies: [] });
    }
  }

  node(id: NodeId): NetNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raw.raft;
  }

  settle(): void {
    for (let busy = true; busy; ) {
      busy = false;
      for (const [id, node] of this.nodes) {
        while (node.raw.hasReady()) {
          busy = true;
          const ready = node.raw.ready();
          if (ready.snapshot !== undefined) node.storage.applySnapshot(ready.snapshot);
          node.storage.append(ready.entries);
          if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
          this.onPersist(id, ready, node.storage);
          node.readies.push(ready);
          this.queue.push(...ready.messages);
          node.raw.advance(ready);
        }
      }
    }
  }

  /** deliver delivers one round: the messages queued now (those `only` selects); returns them. */
  deliver(only: (message: Message) => boolean = () => true): Message[] {
    this.settle();
    const chosen = this.queue.filter(only);
    this.queue = this.queue.filter((m) => !only(m));
    for (const m of chosen) if (!this.drop(m)) this.nodes.get(m.to)?.raw.step(m);
    this.settle();
    return chosen;
  }

  stabilize(): void {
    for (let round = 0; round < 100; round++) {
      this.settle();
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error('network did not become quiet');
  }

  tick(id: NodeId, count: number): void {
    for (let i = 0; i < count; i++) {
      this.node(id).raw.tick();
      this.settle();
    }
  }

  /**
   * elect makes id leader (its election broadcast brings everyone its empty entry and commits it,
   * §5.2), then runs one heartbeat round.
   */
  elect(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
    expect(this.raft(id).role).toBe('leader');
    this.tick(id, heartbeatTicks);
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    expect(this.node(id).raw.propose(new TextEncoder().encode(data)).kind).toBe('accepted');
    this.settle();
  }

  pending(filter: (message: Message) => boolean): Message[] {
    this.settle();
    return this.queue.filter(filter);
  }
}

/**
 * campaignHoldingAppends makes id leader while holding back every appendEntries: the election's
 * broadcast (the new leader's empty entry, which is also its first probe) stays queued, so the
 * leader has not yet committed anything in its term and its followers are still in probe state.
 */
function campaignHoldingAppends(net: Net, id: NodeId): void {
  const notAppend = (m: Message) => m.type !== 'appendEntries';
  net.node(id).raw.campaign();
  for (let round = 0; round < 10 && net.raft(id).role !== 'leader'; round++) net.deliver(notAppend);
  expect(net.raft(id).role).toBe('leader');
}

const isTo = (id: NodeId) => (m: Message) => m.to === id;
const touches = (id: NodeId) => (m: Message) => m.to === id || m.from === id;

// ---------------------------------------------------------------------------------------------

describe('§5.1 terms', () => {
  it('§5.1 a server that sees a higher term adopts it and becomes follower', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    expect(net.raft(1).term).toBe(2);
    net.node(1).raw.step(message({ type: 'heartbeat', from: 3, to: 1, term: 7, commit: 0, context: 0 }));
    expect(net.raft(1).role).toBe('follower');
    expect(net.raft(1).term).toBe(7);
    expect(net.raft(1).vote).toBe(0);
    expect(net.raft(1).leader).toBe(3);
  });

  it('§5.1 a server rejects a request with a stale term and answers with its own term', () => {
    const storage = bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 3, vote: 0, commit: 1 } });
    const { raft } = newRaft(2, storage);
    raft.step(message({ type: 'appendEntries', from: 1, to: 2, term: 2, prevIndex: 1, prevTerm: 1, commit: 1, entries: [entry(2, 2)] }));
    expect(logOf(raft)).toEqual([]);
    expect(raft.term).toBe(3);
    const [response] = takeMessages(raft);
    expect(response).toMatchObject({ type: 'appendEntriesResponse', to: 1, term: 3 });
  });
});

describe('§5.2 leader election', () => {
  it('§5.2 a follower that hears nothing for the election timeout starts an election', () => {
    const { raft } = newRaft(1, bootstrapStorage({ voters: [1, 2, 3] }), { preVote: false });
    for (let i = 0; i < electionTicks - 1; i++) raft.tick();
    expect(raft.role).toBe('follower');
    expect(raft.messages).toEqual([]);
    raft.tick();
    expect(raft.role).toBe('candidate');
    expect(raft.term).toBe(2);
    expect(raft.vote).toBe(1);
    expect(takeMessages(raft).map((m) => [m.type, m.to, m.term])).toEqual([
      ['requestVote', 2, 2],
      ['requestVote', 3, 2],
    ]);
  });

  it('§5.2 election timeouts are randomized in [electionTicks, 2 * electionTicks)', () => {
    const { raft } = newRaft(1, bootstrapStorage({ voters: [1, 2, 3] }), { random: () => 0.99, preVote: false });
    for (let i = 0; i < 2 * electionTicks - 2; i++) raft.tick();
    expect(raft.role).toBe('follower');
    raft.tick();
    expect(raft.role).toBe('candidate');
  });

  it('§5.2 a candidate that wins a majority becomes leader', () => {
    const net = new Net({ voters: [1, 2, 3, 4, 5], overrides: { preVote: false } });
    net.drop = (m) => touches(4)(m) || touches(5)(m);
    net.node(1).raw.campaign();
    net.stabilize();
    expect(net.raft(1).role).toBe('leader');
    expect(net.raft(1).term).toBe(2);
    expect(net.raft(4).term).toBe(1);
  });

  it('§5.2 a candidate that does not get a majority does not become leader, and retries at a higher term', () => {
    const net = new Net({ voters: [1, 2, 3, 4, 5], overrides: { preVote: false } });
    net.drop = (m) => touches(3)(m) || touches(4)(m) || touches(5)(m);
    net.node(1).raw.campaign();
    net.stabilize();
    expect(net.raft(1).role).toBe('candidate');
    net.tick(1, electionTicks);
    expect(net.raft(1).role).toBe('candidate');
    expect(net.raft(1).term).toBe(3);
  });

  it('§5.2 a candidate that hears AppendEntries from a leader of its term becomes follower', () => {
    const { raft } = newRaft(1, bootstrapStorage({ voters: [1, 2, 3] }), { preVote: false });
    raft.campaign({ transfer: false });
    expect(raft.role).toBe('candidate');
    raft.step(message({ type: 'appendEntries', from: 2, to: 1, term: 2, prevIndex: 1, prevTerm: 1, commit: 1, entries: [entry(2, 2)] }));
    expect(raft.role).toBe('follower');
    expect(raft.leader).toBe(2);
    expect(raft.term).toBe(2);
    expect(logOf(raft)).toEqual(['2@2']);
  });

  it('§5.2 each server votes for at most one candidate per term (first-come-first-served)', () => {
    const { raft } = newRaft(3, bootstrapStorage({ voters: [1, 2, 3] }), { preVote: false });
    const ask = (from: NodeId): Message | undefined => {
      raft.step(message({ type: 'requestVote', from, to: 3, term: 2, preVote: false, transfer: false, lastIndex: 1, lastTerm: 1 }));
      return takeMessages(raft)[0];
    };
    expect(ask(1)).toMatchObject({ type: 'requestVoteResponse', to: 1, term: 2, granted: true });
    expect(raft.vote).toBe(1);
    expect(ask(2)).toMatchObject({ type: 'requestVoteResponse', to: 2, granted: false });
    expect(raft.vote).toBe(1);
    // A repeated request from the candidate it voted for is granted again (a lost response).
    expect(ask(1)).toMatchObject({ type: 'requestVoteResponse', to: 1, granted: true });
  });
});

describe('§5.3 log replication', () => {
  const followerWithLog = (entries: Entry[], term = 3) =>
    newRaft(2, bootstrapStorage({ voters: [1, 2, 3], hardState: { term, vote: 0, commit: 1 }, entries }));
  const append = (fields: { term: number; prevIndex: number; prevTerm: number; commit: number; entries: Entry[] }): Message =>
    message({ type: 'appendEntries', from: 1, to: 2, ...fields });

  it('§5.3 follower rejects AppendEntries whose prevLogIndex/prevLogTerm do not match', () => {
    const { raft } = followerWithLog([entry(2, 2), entry(3, 2)]);
    raft.step(append({ term: 3, prevIndex: 3, prevTerm: 3, commit: 1, entries: [entry(4, 3)] }));
    expect(takeMessages(raft)).toEqual([expect.objectContaining({ type: 'appendEntriesResponse', reject: true, index: 3 })]);
    raft.step(append({ term: 3, prevIndex: 5, prevTerm: 3, commit: 1, entries: [entry(6, 3)] }));
    expect(takeMessages(raft)).toEqual([expect.objectContaining({ type: 'appendEntriesResponse', reject: true, index: 5 })]);
    expect(logOf(raft)).toEqual(['2@2', '3@2']);
    raft.step(append({ term: 3, prevIndex: 3, prevTerm: 2, commit: 1, entries: [entry(4, 3)] }));
    expect(takeMessages(raft)).toEqual([expect.objectContaining({ type: 'appendEntriesResponse', reject: false, index: 4 })]);
    expect(logOf(raft)).toEqual(['2@2', '3@2', '4@3']);
  });

  it('§5.3 conflicting entries are deleted and replaced', () => {
    const { raft } = followerWithLog([entry(2, 2), entry(3, 2), entry(4, 2)]);
    raft.step(append({ term: 3, prevIndex: 2, prevTerm: 2, commit: 1, entries: [entry(3, 3)] }));
    expect(logOf(raft)).toEqual(['2@2', '3@3']);
  });

  it('§5.3 entries that already match are kept: a stale, shorter AppendEntries truncates nothing', () => {
    const { raft } = followerWithLog([entry(2, 2), entry(3, 2), entry(4, 2)]);
    raft.step(append({ term: 3, prevIndex: 1, prevTerm: 1, commit: 1, entries: [entry(2, 2)] }));
    expect(logOf(raft)).toEqual(['2@2', '3@2', '4@2']);
    expect(takeMessages(raft)).toEqual([expect.objectContaining({ reject: false, index: 2 })]);
  });

  it('§5.3 commitIndex = min(leaderCommit, index of last new entry)', () => {
    const { raft } = followerWithLog([entry(2, 2), entry(3, 2), entry(4, 2)]);
    // The follower holds 4 entries, but only up to 2 is known to match the leader.
    raft.step(append({ term: 3, prevIndex: 1, prevTerm: 1, commit: 4, entries: [entry(2, 2)] }));
    expect(raft.log.committed).toBe(2);
    raft.step(append({ term: 3, prevIndex: 2, prevTerm: 2, commit: 3, entries: [entry(3, 2), entry(4, 2)] }));
    expect(raft.log.committed).toBe(3);
  });

  it('§5.3 a leader backs up nextIndex after a rejection until the logs match, then brings the follower up to date', () => {
    const entries = [entry(2, 2), entry(3, 2)];
    const storages = new Map([
      [1, bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 0, commit: 1 }, entries })],
      [2, bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 0, commit: 1 }, entries })],
      [3, bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 0, commit: 1 } })],
    ]);
    const net = new Net({ voters: [1, 2, 3], storages });
    net.elect(1);
    net.stabilize();
    expect(logOf(net.raft(3))).toEqual(['2@2', '3@2', '4@3']);
    expect(net.raft(3).log.committed).toBe(4);
    expect(net.raft(1).log.committed).toBe(4);
  });
});

describe('§5.4 safety', () => {
  it('§5.4.1 a voter denies its vote to a candidate whose log is less up to date', () => {
    const voter = () => newRaft(2, bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 0, commit: 1 }, entries: [entry(2, 2), entry(3, 2)] }), { preVote: false }).raft;
    const decide = (lastIndex: number, lastTerm: number): boolean => {
      const raft = voter();
      raft.step(message({ type: 'requestVote', from: 1, to: 2, term: 4, preVote: false, transfer: false, lastIndex, lastTerm }));
      const [response] = takeMessages(raft);
      if (response?.type !== 'requestVoteResponse') throw new Error('no vote response');
      expect(raft.vote).toBe(response.granted ? 1 : 0);
      return response.granted;
    };
    expect(decide(5, 1)).toBe(false); // longer log, older last term
    expect(decide(2, 2)).toBe(false); // same last term, shorter
    expect(decide(3, 2)).toBe(true); // identical
    expect(decide(4, 2)).toBe(true); // same last term, longer
    expect(decide(2, 3)).toBe(true); // newer last term, shorter
  });

  it('§5.4.2 a leader never commits an entry of a previous term by counting replicas', () => {
    // Figure 8: node 1 holds 2@2 from an earlier term, wins term 4 and appends 3@4.
    const storage = bootstrapStorage({ voters: [1, 2, 3, 4, 5], hardState: { term: 3, vote: 0, commit: 1 }, entries: [entry(2, 2)] });
    const warnings: Warning[] = [];
    const raw = new RawNode(config(1, storage, warnings, { preVote: false }));
    raw.campaign();
    for (const from of [2, 3]) raw.step(message({ type: 'requestVoteResponse', from, to: 1, term: 4, preVote: false, granted: true }));
    expect(raw.raft.role).toBe('leader');
    const ready = raw.ready();
    expect(ready.entries.map((e) => `${e.index}@${e.term}`)).toEqual(['3@4']);
    storage.append(ready.entries);
    raw.advance(ready); // the leader now holds 2@2 and 3@4 durably
    const ack = (from: NodeId, index: number) =>
      raw.step(message({ type: 'appendEntriesResponse', from, to: 1, term: 4, reject: false, index, hintIndex: 0, hintTerm: 0 }));
    ack(2, 2);
    ack(3, 2);
    expect(raw.raft.log.committed).toBe(1); // 2@2 is on a majority (1, 2, 3), but is of term 2
    ack(2, 3);
    expect(raw.raft.log.committed).toBe(1);
    ack(3, 3);
    expect(raw.raft.log.committed).toBe(3); // 3@4 on a majority commits it and, with it, 2@2
  });
});

describe('§9.6 pre-vote', () => {
  it('§9.6 pre-vote does not disrupt a stable leader / does not raise terms', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(3)(m);
    for (let i = 0; i < 5 * electionTicks; i++) {
      for (const id of [1, 2, 3]) net.node(id).raw.tick();
      net.stabilize();
    }
    expect(net.raft(3).term).toBe(2); // campaigned again and again, but only pre-votes
    expect(net.raft(3).role).toBe('preCandidate');
    net.drop = () => false;
    net.node(3).raw.campaign(); // the partitioned node rejoins while still campaigning
    net.stabilize();
    expect([1, 2, 3].map((id) => net.raft(id).term)).toEqual([2, 2, 2]);
    expect(net.raft(1).role).toBe('leader');
    net.tick(1, heartbeatTicks);
    net.stabilize();
    expect(net.raft(3).role).toBe('follower');
    expect(net.raft(3).leader).toBe(1);
  });

  it('§9.6 granting a pre-vote changes neither the term nor the vote', () => {
    const { raft } = newRaft(2, bootstrapStorage({ voters: [1, 2, 3] }));
    raft.step(message({ type: 'requestVote', from: 1, to: 2, term: 2, preVote: true, transfer: false, lastIndex: 1, lastTerm: 1 }));
    expect(takeMessages(raft)).toEqual([expect.objectContaining({ type: 'requestVoteResponse', preVote: true, granted: true, term: 2 })]);
    expect(raft.term).toBe(1);
    expect(raft.vote).toBe(0);
  });
});

describe('§6.2 check-quorum', () => {
  it('§6.2 check-quorum: a leader that cannot hear a majority steps down', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(1)(m);
    for (let i = 0; i < 2 * electionTicks; i++) {
      net.tick(1, 1);
      net.stabilize();
    }
    expect(net.raft(1).role).toBe('follower');
    expect(net.raft(1).term).toBe(2);
    expect(net.node(1).warnings.map((w) => w.message)).toContain('stepping down: no quorum heard within the election timeout');
  });

  it('§6.2 check-quorum: a leader that hears a majority stays leader', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(3)(m);
    for (let i = 0; i < 5 * electionTicks; i++) {
      net.tick(1, 1);
      net.stabilize();
    }
    expect(net.raft(1).role).toBe('leader');
  });
});

describe('§3.10 leadership transfer', () => {
  it('§3.10 leadership transfer: the leader catches the target up, then sends timeoutNow, and the target wins without pre-vote', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(3)(m);
    net.propose(1, 'a');
    net.stabilize();
    net.drop = () => false;
    expect(net.raft(3).log.lastIndex()).toBe(2);
    expect(net.node(1).raw.transferLeadership(3).kind).toBe('started');
    expect(net.node(1).raw.propose(new Uint8Array([1])).kind).toBe('transferring');
    const first = net.pending(isTo(3));
    expect(first.map((m) => m.type)).not.toContain('timeoutNow');
    const seen: Message[] = [];
    for (let round = 0; round < 10 && net.queue.length > 0; round++) seen.push(...net.deliver());
    const timeoutNow = seen.findIndex((m) => m.type === 'timeoutNow');
    expect(timeoutNow).toBeGreaterThanOrEqual(0);
    // timeoutNow goes out only after node 3 acknowledged the leader's whole log.
    const caughtUp = seen.findIndex((m) => m.type === 'appendEntriesResponse' && m.from === 3 && m.index === 3);
    expect(caughtUp).toBeGreaterThanOrEqual(0);
    expect(caughtUp).toBeLessThan(timeoutNow);
    expect(seen).toContainEqual(expect.objectContaining({ type: 'requestVote', from: 3, preVote: false, transfer: true, term: 3 }));
    expect(net.raft(3).role).toBe('leader');
    expect(net.raft(3).term).toBe(3);
    expect(net.raft(1).role).toBe('follower');
  });

  it('§3.10 a transfer that does not complete within an election timeout is aborted', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(3)(m);
    expect(net.node(1).raw.transferLeadership(3).kind).toBe('started');
    expect(net.node(1).raw.propose(new Uint8Array([1])).kind).toBe('transferring');
    for (let i = 0; i < electionTicks; i++) {
      net.tick(1, 1);
      net.stabilize();
    }
    expect(net.raft(1).role).toBe('leader');
    expect(net.node(1).raw.propose(new Uint8Array([1])).kind).toBe('accepted');
  });
});

describe('§4 membership changes', () => {
  it('§4.1/§4.2.1 membership: one change at a time', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    const raw = net.node(1).raw;
    expect(raw.proposeConfChange({ type: 'addLearner', nodeId: 4 }).kind).toBe('accepted');
    expect(raw.proposeConfChange({ type: 'addLearner', nodeId: 5 })).toMatchObject({ kind: 'confChangePending', pendingIndex: 3 });
    net.stabilize();
    expect(net.raft(1).log.committed).toBe(3);
    expect(raw.proposeConfChange({ type: 'addLearner', nodeId: 5 }).kind).toBe('accepted');
  });

  it('§4.1 a server uses the latest configuration in its log, committed or not, and reverts it when the entry is truncated', () => {
    const { raft } = newRaft(2, bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 0, commit: 1 } }));
    const change: Entry = { index: 2, term: 2, type: 'confChange', data: encodeConfChange({ type: 'addVoter', nodeId: 4 }) };
    raft.step(message({ type: 'appendEntries', from: 1, to: 2, term: 2, prevIndex: 1, prevTerm: 1, commit: 1, entries: [change] }));
    expect(raft.confState.voters).toEqual([1, 2, 3, 4]);
    expect(raft.committedConfState().voters).toEqual([1, 2, 3]);
    raft.step(message({ type: 'appendEntries', from: 3, to: 2, term: 3, prevIndex: 1, prevTerm: 1, commit: 1, entries: [entry(2, 3)] }));
    expect(logOf(raft)).toEqual(['2@3']);
    expect(raft.confState.voters).toEqual([1, 2, 3]);
  });

  it('§4.2.1 a learner never votes nor counts toward commit', () => {
    const net = new Net({ voters: [1, 2], learners: [3] });
    net.node(1).raw.campaign();
    expect(net.pending(() => true).map((m) => m.to)).toEqual([2]);
    net.stabilize();
    net.tick(1, heartbeatTicks);
    net.stabilize();
    expect(net.raft(1).role).toBe('leader');
    const commit = net.raft(1).log.committed;
    net.drop = (m) => touches(2)(m);
    net.propose(1, 'x');
    net.stabilize();
    expect(net.raft(3).log.lastIndex()).toBe(net.raft(1).log.lastIndex()); // the learner holds it
    expect(net.raft(1).log.committed).toBe(commit); // but it does not count
    // A learner never campaigns, however long it hears nothing.
    for (let i = 0; i < 5 * electionTicks; i++) net.node(3).raw.tick();
    net.settle();
    expect(net.raft(3).role).toBe('follower');
    expect(net.pending((m) => m.from === 3)).toEqual([]);
  });

  it('§4.2.1 a learner promoted to voter counts toward commit once the change is in its log', () => {
    const net = new Net({ voters: [1, 2], learners: [3] });
    net.elect(1);
    expect(net.node(1).raw.proposeConfChange({ type: 'addVoter', nodeId: 3 }).kind).toBe('accepted');
    net.stabilize();
    expect(net.raft(3).confState.voters).toEqual([1, 2, 3]);
    net.drop = (m) => touches(2)(m);
    net.propose(1, 'y');
    net.stabilize();
    expect(net.raft(1).log.committed).toBe(net.raft(1).log.lastIndex()); // 1 and 3 are a majority of 3
  });
});

describe('§6.4 ReadIndex', () => {
  it('§6.4 ReadIndex: read index = commit after confirming leadership', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'x');
    net.stabilize();
    const commit = net.raft(1).log.committed;
    expect(net.node(1).raw.readIndex(42).kind).toBe('pending');
    net.settle();
    const heartbeats = net.pending((m) => m.type === 'heartbeat');
    expect(heartbeats).toHaveLength(2);
    expect(heartbeats.every((m) => m.type === 'heartbeat' && m.context !== 0)).toBe(true);
    expect(net.node(1).readies.flatMap((r) => r.readStates)).toEqual([]);
    net.drop = (m) => touches(3)(m);
    net.stabilize(); // one acknowledgement (from 2) makes a majority with the leader
    expect(net.node(1).readies.flatMap((r) => r.readStates)).toEqual([{ requestId: 42, index: commit }]);
  });

  it('§6.4 ReadIndex: a read through a follower is answered by the leader after confirmation', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    expect(net.node(2).raw.readIndex(7).kind).toBe('pending');
    net.stabilize();
    expect(net.node(2).readies.flatMap((r) => r.readStates)).toEqual([{ requestId: 7, index: net.raft(1).log.committed }]);
  });

  it('§6.4 ReadIndex: a leader that has not committed in its term defers reads', () => {
    const net = new Net({ voters: [1, 2, 3] });
    campaignHoldingAppends(net, 1);
    // The election's broadcast of the empty entry 2@2 is still queued: nothing of term 2 is committed.
    expect(net.pending((m) => m.type === 'appendEntries' && m.from === 1).map((m) => m.to)).toEqual([2, 3]);
    expect(net.raft(1).log.committed).toBe(1);
    expect(net.node(1).raw.readIndex(9).kind).toBe('pending');
    expect(net.pending((m) => m.type === 'heartbeat')).toEqual([]); // no confirmation round yet
    expect(net.node(1).readies.flatMap((r) => r.readStates)).toEqual([]); // and no read served at 1
    net.stabilize(); // 2@2 reaches the followers and commits; then the read is confirmed
    expect(net.raft(1).log.committed).toBe(2);
    expect(net.node(1).readies.flatMap((r) => r.readStates)).toEqual([{ requestId: 9, index: 2 }]);
  });
});

describe('snapshots', () => {
  it('snapshot: a follower behind the log start receives a snapshot and restores', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    net.drop = (m) => touches(3)(m);
    for (const data of ['a', 'b', 'c']) net.propose(1, data);
    net.stabilize();
    const leader = net.raft(1);
    expect(leader.log.committed).toBe(5);
    net.node(1).storage.createSnapshot(4, leader.committedConfState(), new TextEncoder().encode('state@4'));
    expect(leader.log.firstIndex()).toBe(5);
    net.drop = () => false;
    net.tick(1, heartbeatTicks);
    const seen: Message[] = [];
    for (let round = 0; round < 10 && net.queue.length > 0; round++) seen.push(...net.deliver());
    const snapshots = seen.filter((m) => m.type === 'installSnapshot');
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]).toMatchObject({ to: 3, snapshot: { metadata: { index: 4, term: 2 } } });
    const follower = net.node(3);
    expect(follower.storage.snapshot().metadata.index).toBe(4);
    expect(new TextDecoder().decode(follower.storage.snapshot().data)).toBe('state@4');
    expect(follower.readies.some((r) => r.snapshot?.metadata.index === 4)).toBe(true);
    expect(logOf(net.raft(3))).toEqual(['5@2']);
    expect(net.raft(3).log.committed).toBe(5);
  });
});

describe('persistence before sending', () => {
  it('persistence: hard state and entries in a Ready are to be persisted before its messages are sent — a vote response never appears in a Ready whose hardState lacks the vote', () => {
    // No leader lease (checkQuorum off), so that the second election below gets its votes.
    const net = new Net({ voters: [1, 2, 3, 4, 5], overrides: { preVote: false, checkQuorum: false } });
    let checked = 0;
    net.onPersist = (id, ready, storage) => {
      const durable = storage.hardState();
      for (const m of ready.messages) {
        if (m.type === 'requestVoteResponse' && m.granted && !m.preVote) {
          expect(ready.hardState).toMatchObject({ term: m.term, vote: m.to });
          checked++;
        }
        if (m.type === 'requestVote' && !m.preVote) expect(durable).toMatchObject({ term: m.term, vote: id });
        if (m.type === 'appendEntriesResponse' && !m.reject) expect(storage.lastIndex()).toBeGreaterThanOrEqual(m.index);
      }
    };
    net.node(1).raw.campaign();
    net.stabilize();
    net.tick(1, heartbeatTicks);
    net.stabilize();
    net.propose(1, 'x');
    net.stabilize();
    net.node(2).raw.campaign(); // a second election at term 3
    net.stabilize();
    expect(checked).toBe(8);
  });
});

describe('flow control', () => {
  it('flow control: probe sends one message at a time', () => {
    const net = new Net({ voters: [1, 2, 3] });
    campaignHoldingAppends(net, 1); // the election's broadcast probes each follower once
    expect(net.raft(1).progress.get(2)?.state).toBe('probe');
    expect(net.pending((m) => m.type === 'appendEntries' && m.to === 2)).toHaveLength(1);
    for (const data of ['a', 'b', 'c']) net.propose(1, data);
    expect(net.pending((m) => m.type === 'appendEntries' && m.to === 2)).toHaveLength(1);
    expect(net.raft(1).progress.get(2)?.state).toBe('probe');
  });

  it('flow control: replicate is bounded by inflightMessagesMax', () => {
    const net = new Net({ voters: [1, 2, 3], overrides: { limits: { inflightMessagesMax: 2 } } });
    net.elect(1);
    expect(net.raft(1).progress.get(2)?.state).toBe('replicate');
    for (const data of ['a', 'b', 'c', 'd', 'e']) net.propose(1, data);
    expect(net.pending((m) => m.type === 'appendEntries' && m.to === 2 && m.entries.length > 0)).toHaveLength(2);
    net.stabilize();
    expect(net.raft(2).log.lastIndex()).toBe(net.raft(1).log.lastIndex());
  });
});

describe('fast back-off', () => {
  it('fast back-off: one rejection skips a whole conflicting term', () => {
    const followerEntries = [2, 3, 4, 5, 6].map((index) => entry(index, 2));
    const leaderEntries = [entry(2, 3), entry(3, 3), entry(4, 3)];
    const hardState = { term: 3, vote: 0, commit: 1 };
    const storages = new Map([
      [1, bootstrapStorage({ voters: [1, 2, 3], hardState, entries: leaderEntries })],
      [2, bootstrapStorage({ voters: [1, 2, 3], hardState, entries: followerEntries })],
      [3, bootstrapStorage({ voters: [1, 2, 3], hardState, entries: leaderEntries })],
    ]);
    const net = new Net({ voters: [1, 2, 3], storages });
    net.drop = (m) => touches(2)(m);
    net.node(1).raw.campaign();
    net.stabilize();
    expect(net.raft(1).role).toBe('leader');
    net.drop = () => false;
    net.tick(1, heartbeatTicks);
    const seen: Message[] = [];
    for (let round = 0; round < 10 && net.queue.length > 0; round++) seen.push(...net.deliver());
    const rejections = seen.filter((m) => m.type === 'appendEntriesResponse' && m.from === 2 && m.reject);
    expect(rejections).toHaveLength(1);
    const appendsTo2 = seen.filter((m) => m.type === 'appendEntries' && m.to === 2);
    expect(appendsTo2.map((m) => m.type === 'appendEntries' && `${m.prevIndex}@${m.prevTerm}`).slice(0, 2)).toEqual(['4@3', '1@1']); // without the hint: 4@3, 3@3, 2@3, 1@1
    expect(logOf(net.raft(2))).toEqual(['2@3', '3@3', '4@3', '5@4']);
  });
});

describe('bad input', () => {
  const base = { from: 1, to: 2, term: 5 };
  const impossible: [string, Message][] = [
    ['wrong group', { ...message({ type: 'heartbeat', ...base, commit: 0, context: 0 }), group: group + 1 }],
    ['to another node', message({ type: 'heartbeat', ...base, to: 3, commit: 0, context: 0 })],
    ['from node 0', message({ type: 'heartbeat', ...base, from: 0, commit: 0, context: 0 })],
    ['from itself', message({ type: 'heartbeat', ...base, from: 2, commit: 0, context: 0 })],
    ['term 0', message({ type: 'requestVote', ...base, term: 0, preVote: false, transfer: false, lastIndex: 9, lastTerm: 0 })],
    ['non-contiguous entries', message({ type: 'appendEntries', ...base, prevIndex: 2, prevTerm: 2, commit: 0, entries: [entry(3, 2), entry(5, 2)] })],
    ['entry term above message term', message({ type: 'appendEntries', ...base, prevIndex: 2, prevTerm: 2, commit: 0, entries: [entry(3, 6)] })],
    ['entry terms decreasing', message({ type: 'appendEntries', ...base, prevIndex: 2, prevTerm: 2, commit: 0, entries: [entry(3, 1)] })],
    ['unknown type', { ...message({ type: 'heartbeat', ...base, commit: 0, context: 0 }), type: 'gossip' } as unknown as Message],
    ['candidate log term not below its term', message({ type: 'requestVote', ...base, preVote: false, transfer: false, lastIndex: 9, lastTerm: 5 })],
    ['snapshot of a term above the message term', message({ type: 'installSnapshot', ...base, snapshot: { metadata: { index: 9, term: 6, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) } })],
  ];

  for (const [name, bad] of impossible) {
    it(`bad input: an impossible message (${name}) is ignored, logged, and leaves term/vote/log unchanged`, () => {
      const storage = bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 3, commit: 1 }, entries: [entry(2, 2)] });
      const { raft, warnings } = newRaft(2, storage);
      const before = { term: raft.term, vote: raft.vote, commit: raft.log.committed, log: logOf(raft), role: raft.role, leader: raft.leader };
      raft.step(bad);
      expect({ term: raft.term, vote: raft.vote, commit: raft.log.committed, log: logOf(raft), role: raft.role, leader: raft.leader }).toEqual(before);
      expect(raft.messages).toEqual([]);
      expect(warnings.map((w) => w.message)).toEqual(['ignored an impossible message']);
    });
  }

  it('bad input: a heartbeat whose commit is past the end of the log does not move commit, is logged, and leaves term/vote/log unchanged', () => {
    const storage = bootstrapStorage({ voters: [1, 2, 3], hardState: { term: 2, vote: 3, commit: 1 }, entries: [entry(2, 2)] });
    const { raft, warnings } = newRaft(2, storage);
    raft.step(message({ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 9, context: 0 }));
    expect({ term: raft.term, vote: raft.vote, commit: raft.log.committed, log: logOf(raft) }).toEqual({ term: 2, vote: 3, commit: 1, log: ['2@2'] });
    expect(warnings.map((w) => w.message)).toEqual(['heartbeat commit past the end of the log']);
  });

  it('bad input: an append response past the end of the leader log is logged and changes no progress', () => {
    const net = new Net({ voters: [1, 2, 3] });
    net.elect(1);
    const before = { ...net.raft(1).progress.get(2)! };
    net.node(1).raw.step(message({ type: 'appendEntriesResponse', from: 2, to: 1, term: 2, reject: false, index: 99, hintIndex: 0, hintTerm: 0 }));
    expect(net.raft(1).progress.get(2)?.match).toBe(before.match);
    expect(net.raft(1).log.committed).toBe(2);
    expect(net.node(1).warnings.map((w) => w.message)).toContain('append response past the end of the log');
  });
});
