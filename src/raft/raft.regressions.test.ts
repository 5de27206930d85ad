// Found by the rule tests and fixed in the core; kept as regressions.
import { describe, expect, it } from 'vitest';
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
});
