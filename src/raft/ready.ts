// What of a Ready may leave before the Ready is durable.
import type { HardState, Message, Ready } from './types.js';

/** Messages that acknowledge nothing and carry no state that this Ready would first persist. */
const sendableEarly: ReadonlySet<Message['type']> = new Set(['appendEntries', 'heartbeat', 'heartbeatResponse', 'timeoutNow']);

/**
 * splitMessages divides a Ready's messages into those that may be sent before its entries and
 * hard state are durable (`early`) and those that must wait (`late`). A leader may replicate its
 * log while writing it (Raft thesis §10.2.1): it counts itself toward commitment only once its own
 * write is durable (RawNode.advance), and its appends depend on nothing else in the Ready as long
 * as the Ready changes neither term nor vote (those were made durable by an earlier Ready).
 * `durable` is the hard state already on disk.
 */
export function splitMessages(ready: Ready, durable: HardState): { early: Message[]; late: Message[] } {
  const changesTermOrVote = ready.hardState !== undefined && (ready.hardState.term !== durable.term || ready.hardState.vote !== durable.vote);
  if (changesTermOrVote || ready.snapshot !== undefined) return { early: [], late: [...ready.messages] };
  const early: Message[] = [];
  const late: Message[] = [];
  for (const message of ready.messages) (sendableEarly.has(message.type) && message.term <= durable.term ? early : late).push(message);
  return { early, late };
}
