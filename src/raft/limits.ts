// Bounds of the Raft core, in one place. Every queue and message the core builds has one.

/** RaftLimits are the per-group bounds; defaults below, overridable per group. */
export interface RaftLimits {
  /** appendBytesMax bounds the entries of one appendEntries message (at least one entry is sent). */
  readonly appendBytesMax: number;
  /** inflightMessagesMax bounds the append messages in flight to one follower. */
  readonly inflightMessagesMax: number;
  /** inflightBytesMax bounds the entry bytes in flight to one follower. */
  readonly inflightBytesMax: number;
  /** uncommittedBytesMax bounds what a leader accepts but has not committed yet. */
  readonly uncommittedBytesMax: number;
  /** applyBytesMax bounds the committed entries handed out in one Ready. */
  readonly applyBytesMax: number;
  /** entryBytesMax bounds one proposal's payload. */
  readonly entryBytesMax: number;
  /** pendingReadsMax bounds ReadIndex requests waiting on the leader. */
  readonly pendingReadsMax: number;
}

export const defaultRaftLimits: RaftLimits = Object.freeze({
  appendBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 32 * 1024 * 1024,
  uncommittedBytesMax: 64 * 1024 * 1024,
  applyBytesMax: 16 * 1024 * 1024,
  entryBytesMax: 8 * 1024 * 1024,
  pendingReadsMax: 4096,
});
