// Single-server membership changes: their encoding in a log entry and their effect on a ConfState.
import type { ConfChange, ConfState, NodeId } from './types.js';
import { confChangeTypes } from './types.js';

const confChangeBytes = 5;

/** encodeConfChange writes a ConfChange as 1 type byte and a 32-bit node id. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = new Uint8Array(confChangeBytes);
  bytes[0] = confChangeTypes.indexOf(change.type);
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  return bytes;
}

/** decodeConfChange reads what encodeConfChange wrote; undefined when the bytes are not one. */
export function decodeConfChange(bytes: Uint8Array): ConfChange | undefined {
  if (bytes.length !== confChangeBytes) return undefined;
  const type = confChangeTypes[bytes[0]!];
  if (type === undefined) return undefined;
  const nodeId = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
  if (nodeId === 0) return undefined;
  return { type, nodeId };
}

export type ConfChangeOutcome =
  | { readonly kind: 'ok'; readonly confState: ConfState }
  | { readonly kind: 'invalid'; readonly reason: string };

/**
 * applyConfChange returns the membership after change, or why the change is not allowed:
 * adding a node already in that role, removing a node that is not a member, or leaving no voter.
 */
export function applyConfChange(confState: ConfState, change: ConfChange): ConfChangeOutcome {
  const { nodeId } = change;
  const isVoter = confState.voters.includes(nodeId);
  const isLearner = confState.learners.includes(nodeId);
  const without = (ids: readonly NodeId[]): NodeId[] => ids.filter((id) => id !== nodeId);
  const sorted = (ids: NodeId[]): NodeId[] => ids.sort((x, y) => x - y);
  switch (change.type) {
    case 'addVoter':
      if (isVoter) return { kind: 'invalid', reason: `node ${nodeId} is already a voter` };
      return { kind: 'ok', confState: { voters: sorted([...confState.voters, nodeId]), learners: without(confState.learners) } };
    case 'addLearner':
      if (isLearner) return { kind: 'invalid', reason: `node ${nodeId} is already a learner` };
      if (isVoter && confState.voters.length === 1) return { kind: 'invalid', reason: `node ${nodeId} is the last voter` };
      return { kind: 'ok', confState: { voters: without(confState.voters), learners: sorted([...confState.learners, nodeId]) } };
    case 'removeNode':
      if (!isVoter && !isLearner) return { kind: 'invalid', reason: `node ${nodeId} is not a member` };
      if (isVoter && confState.voters.length === 1) return { kind: 'invalid', reason: `node ${nodeId} is the last voter` };
      return { kind: 'ok', confState: { voters: without(confState.voters), learners: without(confState.learners) } };
  }
}
