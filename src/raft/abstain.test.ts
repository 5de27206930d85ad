// A node whose log lost entries it had acknowledged (a corrupt log cut back on open) must not
// vote or campaign until a leader has filled its log again: its vote could otherwise elect a
// candidate that lacks committed entries. The bound is the persisted commit index past the end of
// the log, or the caller's abstainUntilIndex (the storage's repair bound), whichever is higher.
import { describe, expect, it } from 'vitest';
import { Raft, type RaftConfig, unboundedAbstain } from './raft.js';
import { RawNode } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import type { Entry, HardState, Message } from './types.js';

const group = 4;

function storage(hardState: HardState): MemoryStorage {
  return new MemoryStorage({ snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) }, hardState });
}

function config(options: { hardState: HardState; abstainUntilIndex?: number; infos?: string[] }): RaftConfig {
  const infos = options.infos ?? [];
  return {
    id: 2,
    group,
    storage: storage(options.hardState),
    random: () => 0,
    electionTicks: 10,
    heartbeatTicks: 2,
    preVote: false,
    checkQuorum: false,
    logger: { debug() {}, info: (_details, message) => infos.push(message), warn: (_details, message) => infos.push(message) },
    ...(options.abstainUntilIndex === undefined ? {} : { abstainUntilIndex: options.abstainUntilIndex }),
  };
}

function entries(from: number, through: number, term: number): Entry[] {
  return Array.from({ length: through - from + 1 }, (_, i) => ({ index: from + i, term, type: 'normal' as const, data: new Uint8Array([i]) }));
}

function voteRequest(term: number, lastIndex: number, lastTerm: number): Message {
  return { type: 'requestVote', group, from: 3, to: 2, term, preVote: false, transfer: false, lastIndex, lastTerm };
}

function votesGranted(raft: Raft): boolean[] {
  const granted = raft.messages.flatMap((message) => (message.type === 'requestVoteResponse' ? [message.granted] : []));
  raft.messages = [];
  return granted;
}

describe('a node that lost acknowledged entries abstains', () => {
  it.each([
    ['its persisted commit index is past the end of its log', { hardState: { term: 2, vote: 0, commit: 4 } }],
    ['the caller says the log lost entries up to an index (a repair bound)', { hardState: { term: 2, vote: 0, commit: 1 }, abstainUntilIndex: 4 }],
  ])('%s: no vote and no campaign until a leader has filled the log up to it', (_why, options) => {
    const infos: string[] = [];
    const raft = new Raft(config({ ...options, infos }));
    expect(infos).toContain('log ends before entries this node acknowledged; not voting or campaigning until caught up');
    for (let tick = 0; tick < 50; tick++) raft.tick();
    expect(raft.role).toBe('follower');
    expect(raft.messages).toEqual([]);
    raft.step(voteRequest(3, 1, 1));
    expect(votesGranted(raft)).toEqual([false]);
    expect(infos).toContain('refused a vote: log not caught up');
    // A leader of term 3 sends the entries back.
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 3, prevIndex: 1, prevTerm: 1, entries: entries(2, 3, 2), commit: 3 });
    raft.tick();
    raft.step(voteRequest(4, 3, 2));
    expect(votesGranted(raft)).toEqual([false]);
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 4, prevIndex: 3, prevTerm: 2, entries: entries(4, 4, 4), commit: 4 });
    raft.messages = [];
    raft.tick();
    expect(infos).toContain('log caught up; voting and campaigning again');
    raft.step(voteRequest(5, 4, 4));
    expect(votesGranted(raft)).toEqual([true]);
  });

  it('a committed entry of a later term ends abstaining before the log reaches the bound (the entries lost were never committed)', () => {
    const infos: string[] = [];
    const raft = new Raft(config({ hardState: { term: 2, vote: 0, commit: 1 }, abstainUntilIndex: 6, infos }));
    // A leader of term 3, elected without this node, holds entries 2..3 of term 2 and its own 4; the group is idle after it.
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 3, prevIndex: 1, prevTerm: 1, entries: [...entries(2, 3, 2), ...entries(4, 4, 3)], commit: 3 });
    raft.step(voteRequest(4, 4, 3));
    expect(votesGranted(raft)).toEqual([false]); // entry 4 is not known committed yet
    raft.step({ type: 'heartbeat', group, from: 1, to: 2, term: 4, commit: 4, context: 0 });
    raft.messages = [];
    raft.step(voteRequest(5, 4, 3));
    expect(votesGranted(raft)).toEqual([true]);
    expect(infos).toContain('log caught up; voting and campaigning again');
  });

  it('a loss nothing bounds moves the node to the next term as it starts: a late message of its old term vouches for nothing, and a leader of a later term ends it', () => {
    const infos: string[] = [];
    const unbounded = { hardState: { term: 3, vote: 1, commit: 1 }, abstainUntilIndex: unboundedAbstain, infos };
    // The new term, with no vote, is persisted before any message.
    expect(new RawNode(config(unbounded)).ready().hardState).toEqual({ term: 4, vote: 0, commit: 1 });
    expect(infos).toContain('nothing bounds the entries this log lost: moving to the next term, so that the group elects a leader of a later term');
    const raft = new Raft({ ...config(unbounded), preVote: true });
    // The leader of term 3 (a message sent before the loss, say) is answered with term 4, so that it steps down; nothing is appended.
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 3, prevIndex: 1, prevTerm: 1, entries: entries(2, 3, 3), commit: 3 });
    raft.step({ type: 'timeoutNow', group, from: 1, to: 2, term: 3 });
    expect([raft.term, raft.role, raft.log.lastIndex()]).toEqual([4, 'follower', 1]);
    expect(raft.messages.map((message) => [message.type, message.term])).toEqual([['appendEntriesResponse', 4]]);
    raft.messages = [];
    // A leader of term 5 fills the log and commits an entry of its own term: the node votes again.
    raft.step({ type: 'appendEntries', group, from: 3, to: 2, term: 5, prevIndex: 1, prevTerm: 1, entries: [...entries(2, 3, 3), ...entries(4, 4, 5)], commit: 4 });
    raft.messages = [];
    raft.step(voteRequest(6, 4, 5));
    expect(votesGranted(raft)).toEqual([true]);
    expect(infos).toContain('log caught up; voting and campaigning again');
  });

  it('with neither pre-vote nor check-quorum, a node that moved on still answers its old leader with its term (so that the leader steps down)', () => {
    const raft = new Raft(config({ hardState: { term: 3, vote: 0, commit: 1 }, abstainUntilIndex: unboundedAbstain }));
    raft.step({ type: 'heartbeat', group, from: 1, to: 2, term: 3, commit: 1, context: 0 });
    expect(raft.messages.map((message) => [message.type, message.to, message.term])).toEqual([['appendEntriesResponse', 1, 4]]);
  });

  it('a bounded loss keeps the node in its term', () => {
    const node = new RawNode(config({ hardState: { term: 3, vote: 1, commit: 1 }, abstainUntilIndex: 6 }));
    expect(node.ready().hardState).toBeUndefined();
  });

  it('the term recorded with the repair, not the term the node has reached since, is the one a committed entry must pass', () => {
    const raft = new Raft({ ...config({ hardState: { term: 3, vote: 0, commit: 1 }, abstainUntilIndex: 6 }), abstainTerm: 2 });
    // The node restarted again while following the leader of term 3: that leader's committed entry ends abstaining.
    raft.step({ type: 'appendEntries', group, from: 1, to: 2, term: 3, prevIndex: 1, prevTerm: 1, entries: [...entries(2, 3, 2), ...entries(4, 4, 3)], commit: 4 });
    raft.messages = [];
    raft.step(voteRequest(4, 4, 3));
    expect(votesGranted(raft)).toEqual([true]);
  });

  it('a leader whose follower lost acknowledged entries sends them again instead of counting them forever', () => {
    // Node 1 leads with entries up to `last`, all acknowledged by node 2, which then comes back repaired with a log ending at 1.
    const leader = new Raft({ ...config({ hardState: { term: 1, vote: 0, commit: 1 } }), id: 1 });
    leader.campaign({ transfer: false });
    leader.step({ type: 'requestVoteResponse', group, from: 3, to: 1, term: leader.term, preVote: false, granted: true });
    expect(leader.role).toBe('leader');
    for (let i = 0; i < 3; i++) leader.propose(new Uint8Array([i]));
    const last = leader.log.lastIndex();
    leader.step({ type: 'appendEntriesResponse', group, from: 2, to: 1, term: leader.term, reject: false, index: last, hintIndex: 0, hintTerm: 0 });
    expect(leader.progress.get(2)!.match).toBe(last);
    const appendsTo2 = (): number[][] => {
      const sent = leader.messages.flatMap((message) => (message.type === 'appendEntries' && message.to === 2 ? [[message.prevIndex, ...message.entries.map((entry) => entry.index)]] : []));
      leader.messages = [];
      return sent;
    };
    appendsTo2();
    // The repaired follower hears a heartbeat committing entries it no longer has, and says its log ends at 1.
    const follower = new Raft(config({ hardState: { term: leader.term, vote: 1, commit: 1 }, abstainUntilIndex: last }));
    follower.step({ type: 'heartbeat', group, from: 1, to: 2, term: leader.term, commit: last, context: 0 });
    const answer = follower.messages.find((message) => message.type === 'appendEntriesResponse');
    expect(answer).toMatchObject({ reject: true, index: last, hintIndex: 1, hintTerm: 1 });
    leader.step(answer!);
    expect(leader.progress.get(2)!.match).toBe(1);
    expect(appendsTo2()).toEqual([[1, ...Array.from({ length: last - 1 }, (_, i) => i + 2)]]);
    // A refusal of a probe at the acknowledged index (the follower's answer to an append) does the same.
    leader.step({ type: 'appendEntriesResponse', group, from: 2, to: 1, term: leader.term, reject: false, index: last, hintIndex: 0, hintTerm: 0 });
    leader.propose(new Uint8Array([9]));
    appendsTo2();
    leader.step({ type: 'appendEntriesResponse', group, from: 2, to: 1, term: leader.term, reject: true, index: last, hintIndex: 1, hintTerm: 1 });
    expect(leader.progress.get(2)!.match).toBe(1);
    expect(appendsTo2()[0]![0]).toBe(1);
  });

  it('the commit index a node persists never goes below the one it started with', () => {
    const raw = new RawNode(config({ hardState: { term: 2, vote: 0, commit: 4 } }));
    expect(raw.raft.log.committed).toBe(1);
    raw.step({ type: 'heartbeat', group, from: 1, to: 2, term: 2, commit: 4, context: 0 });
    const first = raw.ready();
    expect(first.hardState).toBeUndefined();
    raw.advance(first);
    raw.step(voteRequest(3, 1, 1));
    expect(raw.ready().hardState).toEqual({ term: 3, vote: 0, commit: 4 });
  });
});
