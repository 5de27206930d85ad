// The vocabulary of the Raft core: node ids, log entries, durable state, configurations, messages.
// Everything here is plain data, so that it can be persisted, sent and compared without help.

/** NodeId identifies a node of the cluster; 0 means "none" (no vote, no known leader). */
export type NodeId = number;
export const noNode: NodeId = 0;

/** GroupId identifies a Raft group: 0 is the metadata quorum, partitions have their own ids. */
export type GroupId = number;

export const entryTypes = ['normal', 'confChange'] as const;
export type EntryType = (typeof entryTypes)[number];

/**
 * Entry is one slot of the replicated log. Invariant: index >= 1, term >= 1.
 * A confChange entry's data is an encoded ConfChange (see confChange.ts).
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/**
 * HardState is what a node must have on disk before any message that depends on it leaves:
 * the current term, the vote cast in it, and the highest index known committed.
 */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: noNode, commit: 0 });

/** ConfState is the membership of a group: who votes, and who only listens. Disjoint sets. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export const confChangeTypes = ['addVoter', 'addLearner', 'removeNode'] as const;
export type ConfChangeType = (typeof confChangeTypes)[number];

/**
 * ConfChange is a single-server membership change. addVoter on a learner promotes it;
 * addLearner on a voter demotes it; removeNode removes a voter or a learner.
 */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** Snapshot is the state machine's state after applying every entry up to metadata.index. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export const emptySnapshot: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: Object.freeze({ voters: [], learners: [] }) }),
  data: new Uint8Array(0),
});

// ---------------------------------------------------------------------------------------------
// Messages between nodes. Every message names its group, sender, receiver and the sender's term.

interface MessageBase {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries carries entries after (prevIndex, prevTerm) and the leader's commit index. */
export interface AppendEntriesMessage extends MessageBase {
  readonly type: 'appendEntries';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * AppendEntriesResponse: on success, index is the last index now known to match the leader.
 * On reject, index is the rejected prevIndex and (hintIndex, hintTerm) point the leader at the
 * highest entry of the follower that might match, so it can skip a whole term at a time.
 */
export interface AppendEntriesResponseMessage extends MessageBase {
  readonly type: 'appendEntriesResponse';
  readonly reject: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/**
 * RequestVote asks for a vote (or, with preVote, whether a vote would be given) at `term`.
 * transfer marks a campaign started by leadership transfer, which ignores leader leases.
 */
export interface RequestVoteMessage extends MessageBase {
  readonly type: 'requestVote';
  readonly preVote: boolean;
  readonly transfer: boolean;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

export interface RequestVoteResponseMessage extends MessageBase {
  readonly type: 'requestVoteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

/**
 * Heartbeat asserts leadership and advances the follower's commit to min(commit, its match).
 * context, when not 0, is a ReadIndex round the leader wants confirmed.
 */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly context: number;
}

export interface InstallSnapshotMessage extends MessageBase {
  readonly type: 'installSnapshot';
  readonly snapshot: Snapshot;
}

/** TimeoutNow tells the transfer target to campaign at once. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/** ReadIndexRequest is a follower asking the leader for a linearizable read index. */
export interface ReadIndexRequestMessage extends MessageBase {
  readonly type: 'readIndexRequest';
  readonly requestId: number;
}

/** ReadIndexResponse answers a ReadIndexRequest; index 0 with rejected means "ask again". */
export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly requestId: number;
  readonly index: number;
  readonly rejected: boolean;
}

/** TransferLeaderRequest is a follower forwarding a leadership transfer request to the leader. */
export interface TransferLeaderRequestMessage extends MessageBase {
  readonly type: 'transferLeaderRequest';
  readonly target: NodeId;
}

export type Message =
  | AppendEntriesMessage
  | AppendEntriesResponseMessage
  | RequestVoteMessage
  | RequestVoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | InstallSnapshotMessage
  | TimeoutNowMessage
  | ReadIndexRequestMessage
  | ReadIndexResponseMessage
  | TransferLeaderRequestMessage;

export type MessageType = Message['type'];

export const messageTypes = [
  'appendEntries',
  'appendEntriesResponse',
  'requestVote',
  'requestVoteResponse',
  'heartbeat',
  'heartbeatResponse',
  'installSnapshot',
  'timeoutNow',
  'readIndexRequest',
  'readIndexResponse',
  'transferLeaderRequest',
] as const satisfies readonly MessageType[];

// ---------------------------------------------------------------------------------------------
// What the core hands back to its caller.

export const roles = ['follower', 'preCandidate', 'candidate', 'leader'] as const;
export type Role = (typeof roles)[number];

/** SoftState is volatile and need not be persisted: who leads, and what this node is. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** ReadState says: a read issued with requestId is linearizable once applied >= index. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/**
 * Ready is one round of work for the caller, to be done in this order:
 *   1. persist snapshot (if any), entries and hardState (if any), durably (fsync);
 *   2. send messages;
 *   3. apply committedEntries (and the snapshot, if any) to the state machine;
 * then call advance(ready). Invariant: no message here depends on state not in this Ready or
 * already persisted.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/** ProposeResult is the outcome of a proposal: accepted at an index, or why not. */
export type ProposeResult =
  | { readonly kind: 'accepted'; readonly index: number; readonly term: number }
  | { readonly kind: 'notLeader'; readonly leaderHint: NodeId }
  | { readonly kind: 'transferring'; readonly target: NodeId }
  | { readonly kind: 'tooLarge'; readonly bytes: number; readonly limitBytes: number }
  | { readonly kind: 'confChangePending'; readonly pendingIndex: number }
  | { readonly kind: 'invalidConfChange'; readonly reason: string }
  | { readonly kind: 'queueFull'; readonly uncommittedBytes: number; readonly limitBytes: number };
