import { describe, expect, it } from 'vitest';
import { splitMessages } from './ready.js';
import type { HardState, Message, Ready } from './types.js';

const base = { group: 0, from: 1, to: 2, term: 3 };
const append: Message = { ...base, type: 'appendEntries', prevIndex: 4, prevTerm: 3, entries: [], commit: 4 };
const heartbeat: Message = { ...base, type: 'heartbeat', commit: 4, context: 0 };
const ack: Message = { ...base, type: 'appendEntriesResponse', reject: false, index: 5, hintIndex: 0, hintTerm: 0 };
const vote: Message = { ...base, type: 'requestVoteResponse', preVote: false, granted: true };

function ready(parts: Partial<Ready>): Ready {
  return { softState: undefined, hardState: undefined, snapshot: undefined, entries: [], messages: [], committedEntries: [], readStates: [], ...parts };
}

const durable: HardState = { term: 3, vote: 1, commit: 4 };

describe('splitMessages: what may leave before the Ready is durable (thesis §10.2.1)', () => {
  it('a leader\'s appends and heartbeats leave early; an acknowledgement waits for the disk', () => {
    const { early, late } = splitMessages(ready({ messages: [append, heartbeat, ack], hardState: { ...durable, commit: 5 } }), durable);
    expect(early).toEqual([append, heartbeat]);
    expect(late).toEqual([ack]);
  });

  it('nothing leaves early when the Ready changes the term or the vote', () => {
    expect(splitMessages(ready({ messages: [append, vote], hardState: { term: 4, vote: 0, commit: 4 } }), durable).early).toEqual([]);
    expect(splitMessages(ready({ messages: [append, vote], hardState: { term: 3, vote: 2, commit: 4 } }), durable).early).toEqual([]);
  });

  it('nothing leaves early with a snapshot to install', () => {
    const snapshot = { metadata: { index: 9, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) };
    expect(splitMessages(ready({ messages: [heartbeat], snapshot }), durable).early).toEqual([]);
  });

  it('a message of a term above the durable one waits', () => {
    expect(splitMessages(ready({ messages: [{ ...heartbeat, term: 4 }] }), durable).early).toEqual([]);
  });
});
