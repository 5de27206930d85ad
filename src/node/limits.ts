// Defaults and bounds of a node, in one place.
import type { GroupId } from '../raft/types.js';
import type { RaftTiming } from './raft-host.js';

/** metadataGroup is the Raft group of the metadata quorum. */
export const metadataGroup: GroupId = 0;

export const nodeDefaults = Object.freeze({
  /** 50 ms ticks: heartbeats every 100 ms, elections after 1 to 2 s of silence. */
  timing: Object.freeze({ tickMs: 50, electionTicks: 20, heartbeatTicks: 2 }) satisfies RaftTiming,
  snapshotEveryEntries: 10_000,
});

/** noOpPayloadBytesMax bounds the payload of an AppendNoOp request. */
export const noOpPayloadBytesMax = 64 * 1024;
/** metadataLogEntriesMax bounds one ReadMetadataLog page. */
export const metadataLogEntriesMax = 10_000;
