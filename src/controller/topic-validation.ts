// Topic validation: the pure checks the controller runs before it turns a CreateTopics,
// CreatePartitions or AlterConfigs request into records. Every check returns Problems, each naming
// the field and saying what was given and what is allowed, in the words Kafka users know; bad input
// never throws. Assertions guard only what the controller itself passes in (its own counts and the
// configs it stored), so a failing one is a bug.
import { assert } from '../raft/assert.js';

const kibibyte = 1024;
const mebibyte = 1024 * kibibyte;
const gibibyte = 1024 * mebibyte;

/** Problem is one reason to refuse a request: field names it (`name`, `configs["retention.ms"]`). */
export type { Problem } from '../errors.js';
import type { Problem } from '../errors.js';

/** topicLimits bound topics and the requests that make them. */
export const topicLimits = {
  /** nameCharsMax is Kafka's: a partition's directory `<topic>-<partition>` must fit a 255-byte file name. */
  nameCharsMax: 249,
  /**
   * partitionsMax bounds one topic. Every partition is a Raft group that ticks, heartbeats and holds
   * open segments; a thousand partitions already allows a thousand consumers of one group in parallel,
   * and keeps the PartitionRecords of one CreateTopics within a few metadata entries.
   */
  partitionsMax: 1_000,
  /**
   * partitionsPerClusterMax bounds every topic together. At 10 000 groups a broker of a 3-node cluster
   * with replication factor 3 hosts 10 000 replicas and leads about 3 300 of them, each heartbeating
   * every 100 ms: as much as one Node.js event loop should carry until idle groups quiesce.
   */
  partitionsPerClusterMax: 10_000,
  /**
   * replicationFactorMax is the largest Raft group a partition may have: acks=all waits for a majority
   * to fsync, so latency grows with the group; 7 replicas survive 3 failures, and 3 to 7 nodes is
   * what the simulator proves the Raft library on.
   */
  replicationFactorMax: 7,
  /**
   * configsMax bounds the config entries of one request: room for every Kafka topic config (about 40)
   * so a set copied from Kafka gets an answer per key, while the work and the problems stay bounded.
   */
  configsMax: 64,
} as const;

/** topicConfigLimits are the ranges of the integer topic configs, inclusive. */
export const topicConfigLimits = {
  /** retentionMsMin: -1 keeps data forever (Kafka's meaning); 0 deletes closed segments at once. */
  retentionMsMin: -1,
  /** retentionMsMax is the largest safe JavaScript integer (Kafka's is a long). */
  retentionMsMax: Number.MAX_SAFE_INTEGER,
  /** retentionBytesMin: -1 means no size limit (Kafka's meaning). */
  retentionBytesMin: -1,
  retentionBytesMax: Number.MAX_SAFE_INTEGER,
  /**
   * segmentBytesMin is Kafka 4.0's (KIP-1030 raised it from 14 bytes): smaller segments only multiply
   * files, file handles and index work.
   */
  segmentBytesMin: mebibyte,
  /** segmentBytesMax is Kafka's (2^31 - 1), so every segment.bytes Kafka accepts is accepted here. */
  segmentBytesMax: 2_147_483_647,
  /** maxMessageBytesMin is the header of a RecordBatch v2: below it no batch fits, so nothing could be produced. */
  maxMessageBytesMin: 61,
  /**
   * maxMessageBytesMax: a batch is one Raft entry and must travel in one peer frame (4 MiB,
   * peerFrameBytesMax) with 64 KiB left for the frame's own fields (snapshotChunkFrameOverheadBytesMax).
   */
  maxMessageBytesMax: 4 * mebibyte - 64 * kibibyte,
} as const;

/** shownCharsMax bounds how much of a given value a message repeats; every valid topic name fits. */
const shownCharsMax = 256;

export const compressionTypes = ['producer', 'uncompressed', 'gzip', 'lz4', 'zstd', 'snappy'] as const;
export type CompressionType = (typeof compressionTypes)[number];

/** TopicConfigs are a topic's configs. Invariant: each within topicConfigLimits; maxMessageBytes <= segmentBytes. */
export interface TopicConfigs {
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly segmentBytes: number;
  readonly maxMessageBytes: number;
  readonly cleanupPolicy: 'delete';
  readonly compressionType: CompressionType;
}

/** defaultTopicConfigs are Kafka's defaults: 7 days, no size limit, 1 GiB segments, 1 MiB + 12 bytes batches. */
export const defaultTopicConfigs: TopicConfigs = Object.freeze({
  retentionMs: 604_800_000,
  retentionBytes: -1,
  segmentBytes: gibibyte,
  maxMessageBytes: 1_048_588,
  cleanupPolicy: 'delete',
  compressionType: 'producer',
});

/** topicConfigKeys are the Kafka names of the configs a topic has, in describe order. */
export const topicConfigKeys = ['retention.ms', 'retention.bytes', 'segment.bytes', 'max.message.bytes', 'cleanup.policy', 'compression.type'] as const;
export type TopicConfigKey = (typeof topicConfigKeys)[number];

type IntegerConfigKey = 'retention.ms' | 'retention.bytes' | 'segment.bytes' | 'max.message.bytes';
type IntegerProperty = 'retentionMs' | 'retentionBytes' | 'segmentBytes' | 'maxMessageBytes';

interface IntegerConfig {
  readonly property: IntegerProperty;
  readonly min: number;
  readonly max: number;
  /** allowed says what is allowed, limits included, after "must be". */
  readonly allowed: string;
}

const integerConfigs: Readonly<Record<IntegerConfigKey, IntegerConfig>> = {
  'retention.ms': {
    property: 'retentionMs',
    min: topicConfigLimits.retentionMsMin,
    max: topicConfigLimits.retentionMsMax,
    allowed: `milliseconds from 0 to ${topicConfigLimits.retentionMsMax}, or -1 to keep data forever`,
  },
  'retention.bytes': {
    property: 'retentionBytes',
    min: topicConfigLimits.retentionBytesMin,
    max: topicConfigLimits.retentionBytesMax,
    allowed: `bytes per partition from 0 to ${topicConfigLimits.retentionBytesMax}, or -1 for no size limit`,
  },
  'segment.bytes': {
    property: 'segmentBytes',
    min: topicConfigLimits.segmentBytesMin,
    max: topicConfigLimits.segmentBytesMax,
    allowed: `bytes from ${topicConfigLimits.segmentBytesMin} (1 MiB) to ${topicConfigLimits.segmentBytesMax}`,
  },
  'max.message.bytes': {
    property: 'maxMessageBytes',
    min: topicConfigLimits.maxMessageBytesMin,
    max: topicConfigLimits.maxMessageBytesMax,
    allowed: `bytes from ${topicConfigLimits.maxMessageBytesMin} to ${topicConfigLimits.maxMessageBytesMax} (4 MiB less 64 KiB, what one Raft entry may carry)`,
  },
};

/** kafkaTopicConfigKeys are Kafka's other topic configs: known names, refused as not supported rather than as typos. */
const kafkaTopicConfigKeys: readonly string[] = [
  'compression.gzip.level', 'compression.lz4.level', 'compression.zstd.level', 'delete.retention.ms', 'file.delete.delay.ms',
  'flush.messages', 'flush.ms', 'follower.replication.throttled.replicas', 'index.interval.bytes',
  'leader.replication.throttled.replicas', 'local.retention.bytes', 'local.retention.ms', 'max.compaction.lag.ms',
  'message.downconversion.enable', 'message.format.version', 'message.timestamp.after.max.ms',
  'message.timestamp.before.max.ms', 'message.timestamp.difference.max.ms', 'message.timestamp.type',
  'min.cleanable.dirty.ratio', 'min.compaction.lag.ms', 'min.insync.replicas', 'preallocate', 'remote.storage.enable',
  'remote.log.copy.disable', 'remote.log.delete.on.disable', 'segment.index.bytes', 'segment.jitter.ms', 'segment.ms',
  'unclean.leader.election.enable',
];

const topicNamePattern = /^[A-Za-z0-9._-]+$/;
const topicNameBadChar = /[^A-Za-z0-9._-]/u;
/** decimalIntegerPattern: plain decimal digits, an optional '-', no leading zeros, no '+', spaces or exponent. */
const decimalIntegerPattern = /^(?:0|-?[1-9][0-9]*)$/;
const nameAllowed = `1 to ${topicLimits.nameCharsMax} ASCII letters, digits, ".", "_" or "-"`;

/**
 * topicNameProblem returns why name cannot name a topic, or undefined when it can: Kafka's rule of 1 to
 * 249 ASCII letters, digits, '.', '_' and '-', and neither "." nor "..".
 */
export function topicNameProblem(name: string): Problem | undefined {
  if (name.length === 0) return { field: 'name', message: `topic name is empty; use ${nameAllowed}` };
  if (name.length > topicLimits.nameCharsMax) {
    const message = `topic name is ${name.length} characters long; at most ${topicLimits.nameCharsMax} are allowed (the partition directory "<topic>-<partition>" must fit a 255-byte file name)`;
    return { field: 'name', message };
  }
  if (name === '.' || name === '..') return { field: 'name', message: `topic name ${show(name)} is not allowed: "." and ".." name directories` };
  if (topicNamePattern.test(name)) return undefined;
  const bad = topicNameBadChar.exec(name);
  assert(bad !== null, 'a name the pattern refuses has a character outside it', { name });
  const message = `topic name ${show(name)} contains ${show(bad[0])} at index ${bad.index}; use ${nameAllowed}`;
  return { field: 'name', message };
}

/**
 * topicNameCollision returns a problem when name equals an existing topic's name ("already exists"), or
 * equals one once every '.' is read as '_': Kafka refuses those, because both topics would report under
 * the same metric names. Undefined when name is free.
 */
export function topicNameCollision(name: string, existingNames: readonly string[]): Problem | undefined {
  if (existingNames.includes(name)) return { field: 'name', message: `topic ${show(name)} already exists` };
  const metricName = toMetricName(name);
  const existing = existingNames.find((other) => toMetricName(other) === metricName);
  if (existing === undefined) return undefined;
  const message = `topic name ${show(name)} collides with existing topic ${show(existing)}: "." and "_" give the same metric names; choose a name that differs in more than "." and "_"`;
  return { field: 'name', message };
}

function toMetricName(name: string): string {
  return name.replaceAll('.', '_');
}

/** TopicConfigsParse is the outcome of parseTopicConfigs. */
export type TopicConfigsParse = { readonly kind: 'ok'; readonly configs: TopicConfigs } | { readonly kind: 'invalid'; readonly problems: readonly Problem[] };

/**
 * parseTopicConfigs reads Kafka-named configs over base (the defaults unless given): every key must be
 * one of topicConfigKeys, integers are plain decimal and within topicConfigLimits, and a batch must fit
 * a segment (max.message.bytes <= segment.bytes). Returns the configs, or every problem found. Never
 * throws for bad input; throws AssertionError when base itself breaks the TopicConfigs invariant.
 */
export function parseTopicConfigs(input: Readonly<Record<string, string>>, base: TopicConfigs = defaultTopicConfigs): TopicConfigsParse {
  assertValidConfigs(base);
  const entries = Object.entries(input);
  if (entries.length > topicLimits.configsMax) {
    const message = `${entries.length} configs given; at most ${topicLimits.configsMax} are allowed in one request (known: ${topicConfigKeys.join(', ')})`;
    return { kind: 'invalid', problems: [{ field: 'configs', message }] };
  }
  const problems: Problem[] = [];
  let configs: TopicConfigs = base;
  for (const [key, raw] of entries) {
    const parsed = parseConfig(key, raw);
    if (parsed.kind === 'ok') configs = { ...configs, ...parsed.change };
    else problems.push(parsed.problem);
  }
  const sizesParsed = !problems.some((p) => p.field === configField('segment.bytes') || p.field === configField('max.message.bytes'));
  const fit = sizesParsed ? batchFitsSegmentProblem(configs, input) : undefined;
  if (fit !== undefined) problems.push(fit);
  return problems.length === 0 ? { kind: 'ok', configs } : { kind: 'invalid', problems };
}

type ConfigParse = { readonly kind: 'ok'; readonly change: Partial<TopicConfigs> } | { readonly kind: 'invalid'; readonly problem: Problem };

function parseConfig(key: string, raw: string): ConfigParse {
  if (typeof raw !== 'string') return invalid(key, `${key} must be given as a string, got ${typeof raw}`);
  if (Object.hasOwn(integerConfigs, key)) return parseIntegerConfig(key as IntegerConfigKey, raw);
  if (key === 'cleanup.policy') return parseCleanupPolicy(raw);
  if (key === 'compression.type') return parseCompressionType(raw);
  return { kind: 'invalid', problem: unknownConfigProblem(key) };
}

function parseIntegerConfig(key: IntegerConfigKey, raw: string): ConfigParse {
  const spec = integerConfigs[key];
  if (!decimalIntegerPattern.test(raw)) {
    return invalid(key, `${key} must be an integer in plain decimal digits (no "+", spaces, separators, leading zeros, decimal point or exponent): ${spec.allowed}; got ${show(raw)}`);
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) return invalid(key, `${key} must be ${spec.allowed}; got ${cut(raw)}`);
  return { kind: 'ok', change: { [spec.property]: value } };
}

function parseCleanupPolicy(raw: string): ConfigParse {
  if (raw === 'delete') return { kind: 'ok', change: { cleanupPolicy: 'delete' } };
  const policies = raw.split(',').map((policy) => policy.trim().toLowerCase());
  if (policies.includes('compact')) {
    return invalid('cleanup.policy', `cleanup.policy ${show(raw)} asks for log compaction, which raftbus does not support yet; use "delete" (the default: segments are deleted by retention.ms and retention.bytes)`);
  }
  return invalid('cleanup.policy', `cleanup.policy must be "delete", got ${show(raw)}`);
}

function parseCompressionType(raw: string): ConfigParse {
  const compressionType = compressionTypes.find((type) => type === raw);
  if (compressionType !== undefined) return { kind: 'ok', change: { compressionType } };
  const allowed = compressionTypes.map((type) => `"${type}"`).join(', ');
  const caseless = compressionTypes.find((type) => type === raw.trim().toLowerCase());
  const hint = caseless === undefined ? '' : ` (did you mean "${caseless}"? values are lowercase, without spaces)`;
  return invalid('compression.type', `compression.type must be one of ${allowed}; got ${show(raw)}${hint}`);
}

function unknownConfigProblem(key: string): Problem {
  const known = `raftbus topics support ${topicConfigKeys.join(', ')}`;
  if (kafkaTopicConfigKeys.includes(key)) return { field: configField(key), message: `${key} is a Kafka topic config that raftbus does not support; ${known}` };
  const suggestion = topicConfigKeys.find((candidate) => looseKey(candidate) === looseKey(key));
  const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
  return { field: configField(key), message: `unknown topic config ${show(key)}${hint}; ${known}` };
}

/** looseKey reduces a config key to lowercase letters and digits, so retentionMs and retention_ms find retention.ms. */
function looseKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** batchFitsSegmentProblem refuses a batch limit larger than a segment, as Kafka refuses such a batch at produce time. */
function batchFitsSegmentProblem(configs: TopicConfigs, input: Readonly<Record<string, string>>): Problem | undefined {
  const { maxMessageBytes, segmentBytes } = configs;
  if (maxMessageBytes <= segmentBytes) return undefined;
  const key = Object.hasOwn(input, 'max.message.bytes') ? 'max.message.bytes' : 'segment.bytes';
  const message = `max.message.bytes ${maxMessageBytes} is larger than segment.bytes ${segmentBytes}; a record batch must fit in one segment: raise segment.bytes to at least ${maxMessageBytes} or lower max.message.bytes to at most ${segmentBytes}`;
  return { field: configField(key), message };
}

function invalid(key: string, message: string): ConfigParse {
  return { kind: 'invalid', problem: { field: configField(key), message } };
}

function configField(key: string): string {
  return `configs[${show(key)}]`;
}

/**
 * configsToStrings renders configs under their Kafka names, as describe shows them; parseTopicConfigs
 * reads the result back to equal configs. Throws AssertionError when configs break their invariant.
 */
export function configsToStrings(configs: TopicConfigs): Record<TopicConfigKey, string> {
  assertValidConfigs(configs);
  return {
    'retention.ms': String(configs.retentionMs),
    'retention.bytes': String(configs.retentionBytes),
    'segment.bytes': String(configs.segmentBytes),
    'max.message.bytes': String(configs.maxMessageBytes),
    'cleanup.policy': configs.cleanupPolicy,
    'compression.type': configs.compressionType,
  };
}

function assertValidConfigs(configs: TopicConfigs): void {
  for (const spec of Object.values(integerConfigs)) {
    const value = configs[spec.property];
    assert(Number.isSafeInteger(value) && value >= spec.min && value <= spec.max, 'topic config out of range', { [spec.property]: value });
  }
  assert(configs.cleanupPolicy === 'delete', 'unsupported cleanup policy', { cleanupPolicy: configs.cleanupPolicy });
  assert(compressionTypes.includes(configs.compressionType), 'unknown compression type', { compressionType: configs.compressionType });
  assert(configs.maxMessageBytes <= configs.segmentBytes, 'a batch must fit a segment', { ...configs });
}

/** CreateTopicRequest is a CreateTopics entry as the controller receives it (defaults already resolved). */
export interface CreateTopicRequest {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** ClusterView is what validation needs of the metadata image. Invariant: counts are non-negative integers. */
export interface ClusterView {
  readonly unfencedBrokers: number;
  readonly existingTopicNames: readonly string[];
  readonly totalPartitions: number;
}

/**
 * createTopicProblems returns every reason to refuse request in cluster, empty when it may be created:
 * the name and its collisions, partitions in [1, partitionsMax] and within partitionsPerClusterMax,
 * replicationFactor in [1, min(replicationFactorMax, unfencedBrokers)], and the configs.
 * Throws AssertionError only when cluster breaks its invariant.
 */
export function createTopicProblems(request: CreateTopicRequest, cluster: ClusterView): readonly Problem[] {
  assertClusterCounts(cluster);
  const problems: Problem[] = [];
  const nameProblem = topicNameProblem(request.name) ?? topicNameCollision(request.name, cluster.existingTopicNames);
  const partitionsProblem = partitionCountProblem(request.partitions) ?? clusterPartitionsProblem(request.partitions, cluster.totalPartitions);
  for (const problem of [nameProblem, partitionsProblem, replicationFactorProblem(request.replicationFactor, cluster.unfencedBrokers)]) {
    if (problem !== undefined) problems.push(problem);
  }
  const configs = parseTopicConfigs(request.configs);
  if (configs.kind === 'invalid') problems.push(...configs.problems);
  return problems;
}

/** TopicView is what validation needs of an existing topic. Invariant: partitions and replicationFactor are at least 1. */
export interface TopicView {
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: TopicConfigs;
}

/**
 * addPartitionsProblems returns every reason to refuse growing topic to request.partitions (the new
 * total, as `kafka-topics --alter --partitions` takes it), empty when it may grow: the count must exceed
 * the current one (Kafka never removes partitions), stay within partitionsMax and partitionsPerClusterMax,
 * and the topic's replication factor must fit the unfenced brokers that will host the new replicas.
 * Throws AssertionError only when topic or cluster break their invariants.
 */
export function addPartitionsProblems(
  request: { readonly partitions: number },
  topic: Omit<TopicView, 'configs'>,
  cluster: Omit<ClusterView, 'existingTopicNames'>,
): readonly Problem[] {
  assertClusterCounts(cluster);
  assert(Number.isSafeInteger(topic.partitions) && topic.partitions >= 1 && topic.partitions <= cluster.totalPartitions, 'topic partitions out of range', { ...topic, ...cluster });
  assert(Number.isSafeInteger(topic.replicationFactor) && topic.replicationFactor >= 1, 'topic replication factor out of range', { ...topic });
  const problems: Problem[] = [];
  const countProblem =
    partitionCountProblem(request.partitions) ??
    growthProblem(request.partitions, topic.partitions) ??
    clusterPartitionsProblem(request.partitions - topic.partitions, cluster.totalPartitions);
  if (countProblem !== undefined) problems.push(countProblem);
  if (topic.replicationFactor > cluster.unfencedBrokers) {
    const message = `the topic's replication factor ${topic.replicationFactor} is larger than the ${cluster.unfencedBrokers} unfenced brokers; new partitions cannot be placed until at least ${topic.replicationFactor} brokers are unfenced`;
    problems.push({ field: 'replicationFactor', message });
  }
  return problems;
}

/**
 * alterConfigsProblems returns every reason to refuse setting request.configs over topic.configs (the
 * keys given replace their values, the others stay), empty when the change may be applied; the new
 * configs are parseTopicConfigs(request.configs, topic.configs).configs.
 */
export function alterConfigsProblems(request: { readonly configs: Readonly<Record<string, string>> }, topic: Pick<TopicView, 'configs'>): readonly Problem[] {
  const parsed = parseTopicConfigs(request.configs, topic.configs);
  return parsed.kind === 'ok' ? [] : parsed.problems;
}

function partitionCountProblem(partitions: number): Problem | undefined {
  if (!Number.isSafeInteger(partitions) || partitions < 1) {
    return { field: 'partitions', message: `partitions must be an integer from 1 to ${topicLimits.partitionsMax}, got ${partitions}` };
  }
  if (partitions <= topicLimits.partitionsMax) return undefined;
  return { field: 'partitions', message: `partitions ${partitions} is more than the limit of ${topicLimits.partitionsMax} partitions per topic` };
}

function growthProblem(partitions: number, current: number): Problem | undefined {
  if (partitions > current) return undefined;
  const given = partitions === current ? `the topic already has ${current} partitions` : `the topic has ${current} partitions, more than the ${partitions} asked for`;
  const message = `${given}; partitions is the new total and must be greater than ${current} (partitions cannot be removed: keyed records would move)`;
  return { field: 'partitions', message };
}

function clusterPartitionsProblem(adding: number, totalPartitions: number): Problem | undefined {
  const total = totalPartitions + adding;
  if (total <= topicLimits.partitionsPerClusterMax) return undefined;
  const room = Math.max(0, topicLimits.partitionsPerClusterMax - totalPartitions);
  const message = `adding ${adding} partitions would bring the cluster to ${total}; at most ${topicLimits.partitionsPerClusterMax} partitions are allowed in a cluster (${room} can still be added)`;
  return { field: 'partitions', message };
}

function replicationFactorProblem(replicationFactor: number, unfencedBrokers: number): Problem | undefined {
  const { replicationFactorMax } = topicLimits;
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
    const message = `replication factor must be an integer from 1 to ${replicationFactorMax} and at most the ${unfencedBrokers} unfenced brokers, got ${replicationFactor}`;
    return { field: 'replicationFactor', message };
  }
  if (replicationFactor > unfencedBrokers && unfencedBrokers < replicationFactorMax) {
    const fix = unfencedBrokers === 0 ? 'start or unfence a broker first' : `use at most ${unfencedBrokers}, or start more brokers`;
    return { field: 'replicationFactor', message: `replication factor ${replicationFactor} is larger than the ${unfencedBrokers} unfenced brokers; ${fix}` };
  }
  if (replicationFactor <= replicationFactorMax) return undefined;
  const message = `replication factor ${replicationFactor} is more than the limit of ${replicationFactorMax} (a partition of ${replicationFactorMax} replicas survives ${(replicationFactorMax - 1) / 2} failed brokers)`;
  return { field: 'replicationFactor', message };
}

function assertClusterCounts(cluster: { readonly unfencedBrokers: number; readonly totalPartitions: number }): void {
  assert(Number.isSafeInteger(cluster.unfencedBrokers) && cluster.unfencedBrokers >= 0, 'unfencedBrokers out of range', { ...cluster });
  assert(Number.isSafeInteger(cluster.totalPartitions) && cluster.totalPartitions >= 0, 'totalPartitions out of range', { ...cluster });
}

/** show renders a given string for a message: JSON-quoted, so invisible characters show, and cut at shownCharsMax. */
function show(value: string): string {
  return cut(JSON.stringify(value));
}

/** cut shortens text to shownCharsMax characters, marking the cut with '…'. */
function cut(text: string): string {
  return text.length <= shownCharsMax ? text : `${text.slice(0, shownCharsMax)}…`;
}
