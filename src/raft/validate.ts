// Validation of messages from the network. A message that fails here is impossible for a
// correct peer (or for this group); the core ignores it and logs why, and its state is untouched.
import type { Entry, GroupId, Message, NodeId, Snapshot } from './types.js';
import { entryTypes, messageTypes } from './types.js';

const isIndex = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0;
const isNodeId = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) > 0;

function entriesProblem(entries: readonly Entry[], prevIndex: number, prevTerm: number, term: number): string | undefined {
  let expectedIndex = prevIndex + 1;
  let previousTerm = prevTerm;
  for (const entry of entries) {
    if (entry.index !== expectedIndex) return `entry index ${entry.index}, expected ${expectedIndex}`;
    if (!isIndex(entry.term) || entry.term < previousTerm || entry.term > term) {
      return `entry ${entry.index} has term ${entry.term}, outside [${previousTerm}, ${term}]`;
    }
    if (!entryTypes.includes(entry.type)) return `entry ${entry.index} has unknown type`;
    if (!(entry.data instanceof Uint8Array)) return `entry ${entry.index} has no data bytes`;
    expectedIndex++;
    previousTerm = entry.term;
  }
  return undefined;
}

function snapshotProblem(snapshot: Snapshot, term: number): string | undefined {
  const { index, term: snapshotTerm, confState } = snapshot.metadata;
  if (!isNodeId(index) || !isNodeId(snapshotTerm) || snapshotTerm > term) return `snapshot at ${index} term ${snapshotTerm} is impossible`;
  if (!confState.voters.every(isNodeId) || !confState.learners.every(isNodeId)) return 'snapshot membership has invalid ids';
  if (confState.voters.length === 0) return 'snapshot membership has no voter';
  return undefined;
}

/**
 * messageProblem returns why a message cannot be from a correct peer of this group addressed to
 * this node, or undefined when it is well formed. It checks shape, not Raft state.
 */
export function messageProblem(message: Message, self: { id: NodeId; group: GroupId }): string | undefined {
  if (!messageTypes.includes(message.type)) return `unknown message type ${String(message.type)}`;
  if (message.group !== self.group) return `message for group ${message.group}, this is group ${self.group}`;
  if (message.to !== self.id) return `message to node ${message.to}, this is node ${self.id}`;
  if (!isNodeId(message.from) || message.from === self.id) return `invalid sender ${message.from}`;
  if (!isNodeId(message.term)) return `invalid term ${message.term}`;
  switch (message.type) {
    case 'appendEntries':
      if (!isIndex(message.prevIndex) || !isIndex(message.prevTerm) || !isIndex(message.commit)) return 'invalid append position';
      if (message.prevTerm > message.term) return `prevTerm ${message.prevTerm} above term ${message.term}`;
      if ((message.prevIndex === 0) !== (message.prevTerm === 0)) return 'prevIndex and prevTerm disagree on the log start';
      return entriesProblem(message.entries, message.prevIndex, message.prevTerm, message.term);
    case 'appendEntriesResponse':
      if (!isIndex(message.index) || !isIndex(message.hintIndex) || !isIndex(message.hintTerm)) return 'invalid response position';
      return undefined;
    case 'requestVote':
      if (!isIndex(message.lastIndex) || !isIndex(message.lastTerm) || message.lastTerm >= message.term) {
        return `candidate's last term ${message.lastTerm} is not below term ${message.term}`;
      }
      return undefined;
    case 'heartbeat':
      return isIndex(message.commit) && isIndex(message.context) ? undefined : 'invalid heartbeat';
    case 'heartbeatResponse':
      return isIndex(message.context) ? undefined : 'invalid heartbeat response';
    case 'installSnapshot':
      return snapshotProblem(message.snapshot, message.term);
    case 'readIndexRequest':
      return isIndex(message.requestId) ? undefined : 'invalid read request id';
    case 'readIndexResponse':
      return isIndex(message.requestId) && isIndex(message.index) ? undefined : 'invalid read response';
    case 'transferLeaderRequest':
      return isNodeId(message.target) ? undefined : 'invalid transfer target';
    case 'requestVoteResponse':
    case 'timeoutNow':
      return undefined;
  }
}
