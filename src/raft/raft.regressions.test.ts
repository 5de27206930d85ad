// Found by the rule tests and fixed in the core; kept as regressions.
import { describe, expect, it } from 'vitest';
import { encodeConfChange } from './confchange.js';
import { Raft } from './raft.js';
import { RawNode } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import type { Message } from './types.js';

const group = 3;

function storage(hardState: { term: number; vote: number; commit: number }): MemoryStorage {
  return new MemoryStorage({
    snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) },
    hardState,
  });
}

describe('regressions found by the rule tests', () => {
  it('§5.2 a new leader at once sends AppendEntries to every follower to establish its authority', () => {
    const raw = new RawNode({ id: 1, group, storage: storage({ term: 1, vote: 0, commit: 1 }), random: () => 0, electionTicks: 10, heartbeatTicks: 2, preVote: false });
    raw.campaign();
    raw.advance(raw.ready());
    for (const from of [2, 3]) raw.step({ type: 'requestVoteResponse', group, from, to: 1, term: 2, preVote: false, granted: true });
    expect(raw.raft.role).toBe('leader');
    const sent: Message[] = [];
    for (let round = 0; round < 3 && raw.hasReady(); round++) {
      const ready = raw.ready();
      sent.push(...ready.messages);
      raw.advance(ready);
    }
    expect(sent.filter((m) => m.type === 'appendEntries' || m.type === 'heartbeat').map((m) => m.to).sort()).toEqual([2, 3]);
  });

  // A heartbeat of a higher term whose commit is past our log is what the real leader sends a
  // follower that lost acknowledged entries (a damaged tail cut away): the leader still counts on
  // its old match until it re-probes. The follower must follow that leader to be repaired, so it
  // adopts the term and leader, but it never moves its commit past its own log, and it warns.
  it('a heartbeat of a higher term whose commit is past the end of the log: the term is adopted, the commit is not', () => {
    const warnings: string[] = [];
    const raft = new Raft({
      id: 2,
      group,
      storage: storage({ term: 2, vote: 3, commit: 1 }),
      random: () => 0,
      electionTicks: 10,
      heartbeatTicks: 2,
      logger: { debug() {}, info() {}, warn: (_details, message) => warnings.push(message) },
    });
    raft.step({ type: 'heartbeat', group, from: 1, to: 2, term: 5, commit: 9, context: 0 });
    expect(warnings).toEqual(['heartbeat commit past the end of the log']);
    expect({ term: raft.term, vote: raft.vote, leader: raft.leader, commit: raft.log.committed }).toEqual({ term: 5, vote: 0, leader: 1, commit: 1 });
  });

  // Found by the simulator: a leader that demoted itself (uncommitted), kept appending and stepped
  // down held the only up-to-date log but could not campaign, and no one else could win. A voter of
  // the committed configuration may campaign until its removal commits (thesis §4.2.2); its own
  // vote counts only if its latest configuration has it as a voter.
  it('a voter demoted by an uncommitted change still campaigns, and wins on the votes of the new voters', () => {
    const demoteSelf = { index: 2, term: 2, type: 'confChange' as const, data: encodeConfChange({ type: 'addLearner', nodeId: 1 }) };
    const storage = new MemoryStorage({
      snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1, 2], learners: [] } }, data: new Uint8Array(0) },
      hardState: { term: 2, vote: 1, commit: 1 },
      entries: [demoteSelf],
    });
    const raft = new Raft({ id: 1, group, storage, random: () => 0, electionTicks: 10, heartbeatTicks: 2, preVote: false });
    expect(raft.confState).toEqual({ voters: [2], learners: [1] });
    raft.campaign({ transfer: false });
    expect(raft.role).toBe('candidate');
    expect(raft.messages.filter((m) => m.type === 'requestVote').map((m) => m.to)).toEqual([2]);
    raft.step({ type: 'requestVoteResponse', group, from: 2, to: 1, term: 3, preVote: false, granted: true });
    expect(raft.role).toBe('leader');
  });

  it('a node that is a voter of neither its committed nor its latest configuration never campaigns', () => {
    const storage = new MemoryStorage({
      snapshot: { metadata: { index: 1, term: 1, confState: { voters: [2, 3], learners: [1] } }, data: new Uint8Array(0) },
      hardState: { term: 2, vote: 0, commit: 1 },
    });
    const raft = new Raft({ id: 1, group, storage, random: () => 0, electionTicks: 10, heartbeatTicks: 2 });
    for (let tick = 0; tick < 100; tick++) raft.tick();
    expect(raft.role).toBe('follower');
    expect(raft.messages).toEqual([]);
  });

  // Found by the persistence-contract check: messages of an older term still waiting for a Ready
  // would leave after the node's newer term (and a log truncated by the new leader) were on disk.
  it('moving to a higher term drops the messages of older terms not yet handed out', () => {
    const raft = new Raft({ id: 2, group, storage: storage({ term: 2, vote: 0, commit: 1 }), random: () => 0, electionTicks: 10, heartbeatTicks: 2, checkQuorum: false, preVote: false });
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 2, prevIndex: 1, prevTerm: 1, entries: [{ index: 2, term: 2, type: 'normal', data: new Uint8Array([1]) }], commit: 1 });
    expect(raft.messages.map((m) => `${m.type}@${m.term}`)).toEqual(['appendEntriesResponse@2']);
    raft.step({ type: 'requestVote', group, from: 3, to: 2, term: 3, preVote: false, transfer: false, lastIndex: 2, lastTerm: 2 });
    expect(raft.messages.map((m) => `${m.type}@${m.term}`)).toEqual(['requestVoteResponse@3']);
  });
});
