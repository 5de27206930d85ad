// Defaults and bounds of a node, in one place.
import type { GroupId } from '../raft/types.js';
import type { RaftTiming } from './raft-host.js';

/** metadataGroup is the Raft group of the metadata quorum. */
export const metadataGroup: GroupId = 0;

export const nodeDefaults = Object.freeze({
  /** 50 ms ticks: heartbeats every 100 ms, elections after 1 to 2 s of silence. */
  timing: Object.freeze({ tickMs: 50, electionTicks: 20, heartbeatTicks: 2 }) satisfies RaftTiming,
  snapshotEveryEntries: 10_000,
  /** serverDrainMs: how long a stopping node lets client calls finish before it cancels them. */
  serverDrainMs: 1000,
  /** dataDirCheckMs: how often a running node checks that its data directory is still the one it opened. */
  dataDirCheckMs: 1000,
});

/** noOpPayloadBytesMax bounds the payload of an AppendNoOp request. */
export const noOpPayloadBytesMax = 64 * 1024;
/** metadataLogEntriesMax bounds one ReadMetadataLog page. */
export const metadataLogEntriesMax = 10_000;

export const controllerDefaults = Object.freeze({
  /** A broker silent for longer than this is fenced (Kafka's broker.session.timeout.ms is 9 s). */
  sessionTimeoutMs: 6000,
  /** How often the active controller looks for silent brokers. */
  fenceCheckMs: 250,
  /** How often a broker heartbeats to the active controller (Kafka: 2 s; a third of our session). */
  heartbeatIntervalMs: 500,
  /** Bound on controller operations waiting their turn. */
  queuedOperationsMax: 1000,
  /** How long a broker waits for the controller to release it on a graceful shutdown. */
  controlledShutdownMs: 5000,
  /** callDeadlineMs bounds a broker's register and heartbeat calls to the controller. */
  callDeadlineMs: 2000,
  /** createTopicRetryForMs: how long a broker asking for the offsets topic retries while no controller answers. */
  createTopicRetryForMs: 10_000,
});

/** Bounds and defaults of the partitions a broker hosts, and of produce and fetch. */
export const partitionDefaults = Object.freeze({
  /** fetchBytesDefault: what a fetch returns when the client asks no size (at least one batch). */
  fetchBytesDefault: 1024 * 1024,
  /** fetchBytesMax bounds one fetch answer's batches (a single larger batch still goes whole). */
  fetchBytesMax: 8 * 1024 * 1024,
  /** fetchWaitMsMax bounds a long poll. */
  fetchWaitMsMax: 30_000,
  /** waitingFetchesMax bounds the long polls parked on one node. */
  waitingFetchesMax: 10_000,
  /** produceTimeoutMsDefault and produceTimeoutMsMax: how long a produce waits for its acks. */
  produceTimeoutMsDefault: 30_000,
  produceTimeoutMsMax: 300_000,
  /** produceStreamInFlightMax bounds the unanswered requests of one ProduceStream. */
  produceStreamInFlightMax: 4096,
  /** subscribeWaitMs: how long a Subscribe stream parks between commits before it looks again. */
  subscribeWaitMs: 1000,
  /** balanceEveryMs: how often a partition leader checks whether the controller's chosen leader should lead instead. */
  balanceEveryMs: 1000,
  /** newLeaderCampaignEveryMs, newLeaderCampaignsMax: how a new partition's chosen leader campaigns until it leads. */
  newLeaderCampaignEveryMs: 100,
  newLeaderCampaignsMax: 30,
  /** leadershipCheckMsMax bounds how long a leader confirms its leadership before refusing a producer's batch for good. */
  leadershipCheckMsMax: 2000,
  /** retentionCheckMs: how often retention looks for whole segments to delete. */
  retentionCheckMs: 5000,
  /** grpcMessageBytesMax: the largest gRPC message a broker accepts or a client receives. */
  grpcMessageBytesMax: 16 * 1024 * 1024,
});
