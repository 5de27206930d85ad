// ReadIndex (Raft thesis §6.4): the leader notes its commit index, confirms with a round of
// heartbeats that it still leads, and then says reads at that index are linearizable.
import type { NodeId } from './types.js';

/** PendingRead is one ReadIndex round awaiting heartbeat acknowledgements from a quorum. */
interface PendingRead {
  readonly context: number;
  readonly index: number;
  /** Who asked: this node, or a follower that forwarded its request. */
  readonly requests: { readonly requestId: number; readonly from: NodeId }[];
  readonly acks: Set<NodeId>;
}

/** ReadIndexQueue holds the leader's pending reads in context order. */
export class ReadIndexQueue {
  private pending: PendingRead[] = [];
  private nextContext = 1;

  constructor(private readonly capacity: number) {}

  size(): number {
    return this.pending.length;
  }

  full(): boolean {
    return this.pending.length >= this.capacity;
  }

  /** add starts a round at index for a request; it returns the heartbeat context to send. */
  add(options: { index: number; requestId: number; from: NodeId; self: NodeId }): number {
    const context = this.nextContext++;
    this.pending.push({ context, index: options.index, requests: [{ requestId: options.requestId, from: options.from }], acks: new Set([options.self]) });
    return context;
  }

  /**
   * ack records a heartbeat response for context; when the round reaches a quorum it returns that
   * round and every earlier one (a later confirmation of leadership covers earlier reads).
   */
  ack(options: { context: number; from: NodeId; isQuorum: (acks: ReadonlySet<NodeId>) => boolean }): PendingRead[] {
    const position = this.pending.findIndex((read) => read.context === options.context);
    if (position < 0) return [];
    const read = this.pending[position]!;
    read.acks.add(options.from);
    if (!options.isQuorum(read.acks)) return [];
    return this.pending.splice(0, position + 1);
  }

  /** clear drops every pending read (leadership lost): they must be asked again. */
  clear(): PendingRead[] {
    const dropped = this.pending;
    this.pending = [];
    return dropped;
  }
}
