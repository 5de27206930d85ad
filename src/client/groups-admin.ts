// GroupsAdmin administers consumer groups, as Kafka's Admin does for them and
// kafka-consumer-groups.sh shows: every group of the cluster; one group's members and, per
// partition, its committed offset, log end offset and lag; deleting a group; resetting its
// committed offsets. ListGroups goes to every broker (each lists only the groups it coordinates),
// the other calls to the group's coordinator, and ListOffsets to each partition's leader. A reset
// is planned here (ListOffsets resolves the target of each partition) and applied by the
// coordinator, which refuses it while the group has members.
import { CoordinatorLoadingError, GroupNotEmptyError, InvalidRequestError, NotCoordinatorError, NotLeaderError, RaftbusError, UnknownGroupError, UnknownPartitionError, UnknownTopicError } from '../errors.js';
import type { TopicPartition } from '../groups/records.js';
import { groupsServiceName } from '../rpc/groups-service.js';
import { UnaryClient } from '../rpc/unary.js';
import type { BrokerClient } from './broker-client.js';
import { ClusterRouting } from './cluster-routing.js';

export type { TopicPartition } from '../groups/records.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface GroupsAdminOptions {
  /** bootstrap: host:port client addresses of some nodes; one answering is enough. */
  readonly bootstrap: readonly string[];
  /** requestTimeoutMs bounds one call to one node; default 5 s. */
  readonly requestTimeoutMs?: number;
  /** retryForMs bounds the retries of one call (a coordinator or leader that moves, a node that restarts); default 30 s. */
  readonly retryForMs?: number;
}

export interface GroupListing {
  readonly group: string;
  readonly state: GroupState;
  readonly members: number;
  /** coordinator: the broker that coordinates the group. */
  readonly coordinator: number;
}

export interface GroupMemberDescription {
  readonly memberId: string;
  /** instanceId: a static member's instance id; '' when the member is not static. */
  readonly instanceId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly assignment: readonly TopicPartition[];
}

export interface GroupPartitionDescription {
  readonly topic: string;
  readonly partition: number;
  /** committedOffset: the next offset the group reads; undefined when it committed none. */
  readonly committedOffset: number | undefined;
  /** logStartOffset and logEndOffset (the high watermark): undefined when the partition no longer exists. */
  readonly logStartOffset: number | undefined;
  readonly logEndOffset: number | undefined;
  /** lag: logEndOffset - committedOffset, or logEndOffset - logStartOffset when nothing is committed. */
  readonly lag: number | undefined;
  /** memberId and clientId of the member the partition is assigned to; undefined when none. */
  readonly memberId: string | undefined;
  readonly clientId: string | undefined;
}

export interface GroupDescription {
  readonly group: string;
  readonly state: GroupState;
  readonly generation: number;
  /** assignor: the assignor of the current generation; '' before the first. */
  readonly assignor: string;
  readonly coordinator: number;
  readonly members: readonly GroupMemberDescription[];
  /** partitions: those with a committed offset and those assigned, by topic and partition. */
  readonly partitions: readonly GroupPartitionDescription[];
}

/** OffsetTarget: where a reset moves each partition's committed offset (always clamped to the log). */
export type OffsetTarget =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'shiftBy'; readonly shiftBy: number }
  | { readonly kind: 'timestamp'; readonly timestampMs: number };

export interface ResetOffsetsRequest {
  readonly topic: string;
  /** partitions: default every partition of the topic. */
  readonly partitions?: readonly number[];
  readonly to: OffsetTarget;
  /** dryRun: plan only, change nothing; default false. */
  readonly dryRun?: boolean;
}

export interface PlannedOffset {
  readonly topic: string;
  readonly partition: number;
  /** currentOffset: the committed offset before the reset; undefined when none. */
  readonly currentOffset: number | undefined;
  readonly newOffset: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
}

export interface ResetOffsetsPlan {
  readonly group: string;
  /** applied: false for a dry run. */
  readonly applied: boolean;
  readonly offsets: readonly PlannedOffset[];
}

/** groupsAdminLimits: the bounds of GroupsAdmin. */
export const groupsAdminLimits = Object.freeze({
  /** listOffsetsInFlightMax bounds the ListOffsets calls one describe or reset has in flight. */
  listOffsetsInFlightMax: 32,
  backoffStartMs: 50,
  backoffMaxMs: 1000,
});

/** offsetsTopic: asking Metadata for it alone returns the brokers without every topic. */
const offsetsTopic = '__consumer_offsets';

interface DescribeAnswer {
  group: string;
  state: string;
  generation: number;
  assignor: string;
  members: { memberId: string; instanceId: string; clientId: string; topics: string[]; assignment: TopicPartition[] }[];
  offsets: { topic: string; partition: number; offset: number }[];
}

interface Broker {
  readonly id: number;
  readonly address: string;
  readonly fenced: boolean;
}

interface Coordinator {
  readonly nodeId: number;
  readonly address: string;
}

function isRetriable(error: unknown): boolean {
  return error instanceof RaftbusError && error.retriable;
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class GroupsAdmin {
  private readonly routing: ClusterRouting;
  private readonly groupsClients = new Map<string, UnaryClient>();
  /** coordinators: each group's coordinator as last found; dropped when it fails retriably. */
  private readonly coordinators = new Map<string, Coordinator>();
  private readonly requestTimeoutMs: number;
  private readonly retryForMs: number;

  constructor(private readonly options: GroupsAdminOptions) {
    if (options.bootstrap.length === 0) throw new RangeError('bootstrap: give at least one host:port');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.retryForMs = options.retryForMs ?? 30_000;
    this.routing = new ClusterRouting(options.bootstrap, this.requestTimeoutMs);
  }

  /**
   * listGroups asks every broker for the groups it coordinates and merges the answers, one listing
   * per group, sorted by name. Throws the error of an unfenced broker that did not answer within
   * retryForMs (the list would miss its groups); a fenced broker coordinates nothing and may be down.
   */
  async listGroups(): Promise<GroupListing[]> {
    const brokers = await this.brokers();
    const answers = await Promise.all(brokers.map((broker) => this.listGroupsOf(broker)));
    const merged = new Map<string, GroupListing>();
    // While a coordinator moves, two brokers may list a group: the first (lowest id) is kept.
    for (const listing of answers.flat()) if (!merged.has(listing.group)) merged.set(listing.group, listing);
    return [...merged.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  private async listGroupsOf(broker: Broker): Promise<GroupListing[]> {
    type Answer = { groups: { group: string; state: string; members: number }[] };
    const ask = (): Promise<Answer> => this.groupsClient(broker.address).call<Answer>('ListGroups', {});
    let answer: Answer;
    try {
      answer = broker.fenced ? await ask() : await this.withRetries(ask);
    } catch (error) {
      if (broker.fenced) return [];
      throw error;
    }
    return answer.groups.map((listed) => ({ group: listed.group, state: listed.state as GroupState, members: listed.members, coordinator: broker.id }));
  }

  /** brokers returns every broker the metadata knows, by id. */
  private brokers(): Promise<Broker[]> {
    return this.withRetries(async () => {
      let lastError: unknown;
      for (const address of this.options.bootstrap) {
        try {
          const metadata = await this.routing.clientAt(address).metadata([offsetsTopic]);
          return metadata.brokers.map((broker) => ({ id: broker.id, address: `${broker.host}:${broker.port}`, fenced: broker.fenced })).sort((a, b) => a.id - b.id);
        } catch (error) {
          if (!isRetriable(error)) throw error;
          lastError = error;
        }
      }
      throw lastError;
    });
  }

  /**
   * describeGroup returns a group's state and members and, for each partition it committed an
   * offset for or has assigned, the committed offset, the log end offset and the lag. Throws
   * UnknownGroupError.
   */
  async describeGroup(group: string): Promise<GroupDescription> {
    const { answer, coordinator } = await this.toCoordinator<DescribeAnswer>(group, 'DescribeGroup', { group });
    const owners = new Map<string, DescribeAnswer['members'][number]>();
    for (const member of answer.members) for (const tp of member.assignment) owners.set(partitionKey(tp.topic, tp.partition), member);
    const committed = new Map(answer.offsets.map((offset) => [partitionKey(offset.topic, offset.partition), offset.offset]));
    const partitions = new Map<string, TopicPartition>();
    for (const tp of [...answer.offsets, ...answer.members.flatMap((member) => member.assignment)]) partitions.set(partitionKey(tp.topic, tp.partition), { topic: tp.topic, partition: tp.partition });
    const sorted = [...partitions.values()].sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    const described = await mapBounded(sorted, groupsAdminLimits.listOffsetsInFlightMax, async ({ topic, partition }): Promise<GroupPartitionDescription> => {
      const log = await this.logOffsetsIfPresent(topic, partition);
      const committedOffset = committed.get(partitionKey(topic, partition));
      const owner = owners.get(partitionKey(topic, partition));
      const lag = log === undefined ? undefined : log.logEndOffset - (committedOffset ?? log.logStartOffset);
      return { topic, partition, committedOffset, logStartOffset: log?.logStartOffset, logEndOffset: log?.logEndOffset, lag, memberId: owner?.memberId, clientId: owner?.clientId };
    });
    const members = answer.members.map(({ memberId, instanceId, clientId, topics, assignment }) => ({ memberId, instanceId, clientId, topics, assignment }));
    return { group, state: answer.state as GroupState, generation: answer.generation, assignor: answer.assignor, coordinator, members, partitions: described };
  }

  /**
   * deleteGroup deletes a group without members, its committed offsets included. Throws
   * UnknownGroupError, or GroupNotEmptyError while it has members. A retry that no longer finds
   * the group after an attempt whose outcome was unknown counts as done.
   */
  async deleteGroup(group: string): Promise<void> {
    let maybeDeleted = false;
    await this.withRetries(async () => {
      try {
        await this.callCoordinator(group, 'DeleteGroup', { group });
      } catch (error) {
        if (error instanceof UnknownGroupError && maybeDeleted) return;
        if (!(error instanceof NotCoordinatorError || error instanceof CoordinatorLoadingError)) maybeDeleted = true;
        throw error;
      }
    });
  }

  /**
   * resetOffsets moves the group's committed offsets of a topic's partitions (all, or those
   * named) to the target, clamped to each partition's [logStartOffset, logEndOffset], and returns
   * the plan; with dryRun it changes nothing. Throws UnknownGroupError, GroupNotEmptyError while
   * the group has members (the coordinator checks again when applying), UnknownTopicError,
   * UnknownPartitionError, and InvalidRequestError for a bad request or a shift of a partition
   * with nothing committed.
   */
  async resetOffsets(group: string, request: ResetOffsetsRequest): Promise<ResetOffsetsPlan> {
    checkResetRequest(request);
    const { answer } = await this.toCoordinator<DescribeAnswer>(group, 'DescribeGroup', { group });
    if (answer.members.length > 0) throw new GroupNotEmptyError(group, answer.members.length);
    const { topic, to } = request;
    const count = (await this.withRetries(() => this.routing.requireTopic(topic))).partitions.length;
    const partitions = request.partitions ?? Array.from({ length: count }, (_, partition) => partition);
    const missing = partitions.find((partition) => partition >= count);
    if (missing !== undefined) throw new UnknownPartitionError(topic, missing, count);
    const committed = new Map(answer.offsets.filter((offset) => offset.topic === topic).map((offset) => [offset.partition, offset.offset]));
    const offsets = await mapBounded([...partitions].sort((a, b) => a - b), groupsAdminLimits.listOffsetsInFlightMax, async (partition): Promise<PlannedOffset> => {
      const { logStartOffset, logEndOffset } = await this.logOffsets(topic, partition);
      const offsetAtTimestamp = to.kind === 'timestamp' ? (await this.atLeader(topic, partition, (client) => client.listOffsets({ topic, partition, spec: 'timestamp', timestampMs: to.timestampMs }))).offset : undefined;
      const currentOffset = committed.get(partition);
      const newOffset = targetOffset({ to, topic, partition, committedOffset: currentOffset, logStartOffset, logEndOffset, offsetAtTimestamp });
      return { topic, partition, currentOffset, newOffset, logStartOffset, logEndOffset };
    });
    if (request.dryRun === true) return { group, applied: false, offsets };
    await this.toCoordinator(group, 'ResetOffsets', { group, offsets: offsets.map((planned) => ({ topic, partition: planned.partition, offset: planned.newOffset, metadata: '' })) });
    return { group, applied: true, offsets };
  }

  /** logOffsets asks the partition's leader for its log start offset and high watermark. */
  private async logOffsets(topic: string, partition: number): Promise<{ logStartOffset: number; logEndOffset: number }> {
    const answer = await this.atLeader(topic, partition, (client) => client.listOffsets({ topic, partition, spec: 'latest' }));
    return { logStartOffset: answer.logStartOffset, logEndOffset: answer.offset };
  }

  /** logOffsetsIfPresent is logOffsets, or undefined when the partition no longer exists (its topic was deleted). */
  private async logOffsetsIfPresent(topic: string, partition: number): Promise<{ logStartOffset: number; logEndOffset: number } | undefined> {
    try {
      return await this.logOffsets(topic, partition);
    } catch (error) {
      if (error instanceof UnknownTopicError || error instanceof UnknownPartitionError) return undefined;
      throw error;
    }
  }

  /** atLeader calls a partition's leader, following leader hints and retrying retriable failures. */
  private atLeader<T>(topic: string, partition: number, call: (client: BrokerClient) => Promise<T>): Promise<T> {
    const stillListed = (): boolean => this.routing.topic(topic)?.partitions[partition] !== undefined;
    return this.withRetries(
      async () => {
        const route = await this.routing.requireTopic(topic);
        const replica = route.partitions[partition];
        if (replica === undefined) throw new UnknownPartitionError(topic, partition, route.partitions.length);
        const client = replica.leader === 0 ? undefined : this.routing.client(replica.leader);
        try {
          if (client === undefined) throw new NotLeaderError(0, 0);
          return await call(client);
        } catch (error) {
          if (error instanceof NotLeaderError && error.leaderHint !== 0) this.routing.noteLeader(topic, partition, error.leaderHint);
          else await this.routing.refresh([topic]).catch(() => undefined);
          throw error;
        }
      },
      // A broker that has not applied a new topic yet answers unknown: retry while the metadata still lists the partition.
      (error) => isRetriable(error) || ((error instanceof UnknownTopicError || error instanceof UnknownPartitionError) && stillListed()),
    );
  }

  private toCoordinator<T>(group: string, method: string, request: object): Promise<{ answer: T; coordinator: number }> {
    return this.withRetries(() => this.callCoordinator<T>(group, method, request));
  }

  /** callCoordinator makes one attempt at the group's coordinator (found first when not known). */
  private async callCoordinator<T>(group: string, method: string, request: object): Promise<{ answer: T; coordinator: number }> {
    const coordinator = this.coordinators.get(group) ?? (await this.findCoordinator(group));
    try {
      return { answer: await this.groupsClient(coordinator.address).call<T>(method, request), coordinator: coordinator.nodeId };
    } catch (error) {
      if (isRetriable(error)) this.coordinators.delete(group);
      throw error;
    }
  }

  private async findCoordinator(group: string): Promise<Coordinator> {
    let lastError: unknown;
    for (const address of this.options.bootstrap) {
      try {
        const found = await this.groupsClient(address).call<{ nodeId: number; host: string; port: number }>('FindCoordinator', { group });
        const coordinator = { nodeId: found.nodeId, address: `${found.host}:${found.port}` };
        this.coordinators.set(group, coordinator);
        return coordinator;
      } catch (error) {
        if (!isRetriable(error)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  private groupsClient(address: string): UnaryClient {
    let client = this.groupsClients.get(address);
    if (client === undefined) {
      client = new UnaryClient(address, groupsServiceName, this.requestTimeoutMs);
      this.groupsClients.set(address, client);
    }
    return client;
  }

  /** withRetries retries failures the predicate allows (default: retriable ones) with exponential backoff until retryForMs passes. */
  private async withRetries<T>(attempt: () => Promise<T>, retriable: (error: unknown) => boolean = isRetriable): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    let backoffMs: number = groupsAdminLimits.backoffStartMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (!retriable(error) || Date.now() + backoffMs > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, groupsAdminLimits.backoffMaxMs);
      }
    }
  }

  close(): void {
    for (const client of this.groupsClients.values()) client.close();
    this.groupsClients.clear();
    this.routing.close();
  }
}

/**
 * targetOffset resolves where a reset moves one partition's committed offset, clamped to
 * [logStartOffset, logEndOffset] (as Kafka does): earliest, latest, a given offset, the committed
 * offset shifted by n, or offsetAtTimestamp (the partition's answer to ListOffsets by timestamp).
 * Throws InvalidRequestError for a shift of a partition with nothing committed.
 */
export function targetOffset(options: {
  readonly to: OffsetTarget;
  readonly topic: string;
  readonly partition: number;
  readonly committedOffset: number | undefined;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly offsetAtTimestamp: number | undefined;
}): number {
  const { to, committedOffset, logStartOffset, logEndOffset } = options;
  let wanted: number;
  switch (to.kind) {
    case 'earliest':
      wanted = logStartOffset;
      break;
    case 'latest':
      wanted = logEndOffset;
      break;
    case 'offset':
      wanted = to.offset;
      break;
    case 'shiftBy':
      if (committedOffset === undefined) {
        throw InvalidRequestError.of('to.shiftBy', `${options.topic}-${options.partition} has no committed offset to shift; reset it to the earliest, the latest or an offset instead`);
      }
      wanted = committedOffset + to.shiftBy;
      break;
    case 'timestamp':
      wanted = options.offsetAtTimestamp ?? logEndOffset;
      break;
  }
  return Math.min(Math.max(wanted, logStartOffset), logEndOffset);
}

const offsetTargetKinds: readonly OffsetTarget['kind'][] = ['earliest', 'latest', 'offset', 'shiftBy', 'timestamp'];

/** checkResetRequest refuses what no cluster could do: throws InvalidRequestError naming the field. */
function checkResetRequest(request: ResetOffsetsRequest): void {
  if (request.topic.length === 0) throw InvalidRequestError.of('topic', 'is required');
  const partitions = request.partitions ?? [];
  const bad = partitions.find((partition) => !Number.isSafeInteger(partition) || partition < 0);
  if (bad !== undefined) throw InvalidRequestError.of('partitions', `${bad} is not a partition number (0 or more)`);
  if (request.partitions !== undefined && request.partitions.length === 0) throw InvalidRequestError.of('partitions', 'name at least one partition, or leave it out for every partition');
  if (new Set(partitions).size !== partitions.length) throw InvalidRequestError.of('partitions', 'names a partition twice');
  const { to } = request;
  if (!offsetTargetKinds.includes(to.kind)) throw InvalidRequestError.of('to.kind', `must be one of ${offsetTargetKinds.join(', ')}, got ${String(to.kind)}`);
  if (to.kind === 'offset' && (!Number.isSafeInteger(to.offset) || to.offset < 0)) throw InvalidRequestError.of('to.offset', `must be an offset from 0, got ${to.offset}`);
  if (to.kind === 'shiftBy' && !Number.isSafeInteger(to.shiftBy)) throw InvalidRequestError.of('to.shiftBy', `must be a whole number, got ${to.shiftBy}`);
  if (to.kind === 'timestamp' && (!Number.isSafeInteger(to.timestampMs) || to.timestampMs < 0)) throw InvalidRequestError.of('to.timestampMs', `must be milliseconds since 1970 (0 or more), got ${to.timestampMs}`);
}

/** mapBounded maps items with at most inFlightMax calls at a time; results keep the items' order. */
export async function mapBounded<T, R>(items: readonly T[], inFlightMax: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await map(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlightMax, items.length) }, worker));
  return results;
}
