// GroupMembership is a consumer's side of the group protocol: it finds the group's coordinator,
// joins and syncs, heartbeats in the background, notices a rebalance (or its own fencing) and
// rejoins, commits and fetches offsets. Which partitions to stop and start reading is the
// Consumer's business; this class tells it the assignment of each generation.
import { IllegalGenerationError, NotCoordinatorError, RaftbusError, UnknownMemberIdError } from '../errors.js';
import type { TopicPartition } from '../groups/records.js';
import { groupsServiceName } from '../rpc/groups-service.js';
import { UnaryClient } from '../rpc/unary.js';

export type AssignorName = 'range' | 'roundrobin' | 'cooperative-sticky';

export interface GroupMembershipOptions {
  readonly bootstrap: readonly string[];
  readonly groupId: string;
  /** groupInstanceId: static membership; a restarted member gets its partitions back without a rebalance. */
  readonly groupInstanceId?: string;
  readonly clientId?: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly assignors: readonly AssignorName[];
  readonly requestTimeoutMs: number;
}

export interface Generation {
  readonly generation: number;
  readonly memberId: string;
  readonly assignor: string;
  readonly assignment: readonly TopicPartition[];
  /** lost: the member was fenced on the way (unknown member id or old generation): what it held before is no longer its own. */
  readonly lost: boolean;
}

const backoffStartMs = 50;
const backoffMaxMs = 1000;
const findCoordinatorForMs = 30_000;

export class GroupMembership {
  private coordinator: UnaryClient | undefined;
  private readonly clients = new Map<string, UnaryClient>();
  private memberId = '';
  private generation = -1;
  private heartbeat: NodeJS.Timeout | undefined;
  /** rejoinNeeded: the coordinator asked for a rebalance, or fenced this member. */
  rejoinNeeded = true;
  /**
   * fenced: the coordinator no longer counts this member in its generation (unknown member id or an
   * old generation): its partitions may already be another member's, so they are lost, not revoked
   * (Kafka's onPartitionsLost): dropped at once and never committed.
   */
  fenced = false;
  private closed = false;

  constructor(private readonly options: GroupMembershipOptions) {}

  get current(): { memberId: string; generation: number } {
    return { memberId: this.memberId, generation: this.generation };
  }

  private client(address: string): UnaryClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new UnaryClient(address, groupsServiceName, this.options.requestTimeoutMs + this.options.rebalanceTimeoutMs);
      this.clients.set(address, client);
    }
    return client;
  }

  /** call sends a request to the coordinator, finding it again and retrying on retriable errors. */
  async call<T>(method: string, request: object, retryForMs = findCoordinatorForMs): Promise<T> {
    const deadline = Date.now() + retryForMs;
    let backoffMs = backoffStartMs;
    for (;;) {
      try {
        const coordinator = this.coordinator ?? (await this.findCoordinator());
        return await coordinator.call<T>(method, request);
      } catch (error) {
        if (!(error instanceof RaftbusError && error.retriable) || this.closed || Date.now() + backoffMs > deadline) throw error;
        if (error instanceof NotCoordinatorError || error.name === 'RemoteError') this.coordinator = undefined;
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
  }

  private async findCoordinator(): Promise<UnaryClient> {
    let lastError: unknown;
    for (const address of this.options.bootstrap) {
      try {
        const found = await this.client(address).call<{ nodeId: number; host: string; port: number }>('FindCoordinator', { group: this.options.groupId });
        this.coordinator = this.client(`${found.host}:${found.port}`);
        return this.coordinator;
      } catch (error) {
        if (!(error instanceof RaftbusError && error.retriable)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /** join joins (or rejoins) the group with the given subscription and owned partitions and returns the new generation's assignment. */
  async join(topics: readonly string[], ownedBefore: readonly TopicPartition[]): Promise<Generation> {
    this.stopHeartbeat();
    let owned = this.fenced ? [] : ownedBefore;
    for (;;) {
      try {
        const joined = await this.call<{ generation: number; memberId: string; assignor: string }>('JoinGroup', {
          group: this.options.groupId,
          memberId: this.memberId,
          instanceId: this.options.groupInstanceId ?? '',
          clientId: this.options.clientId ?? 'raftbus-consumer',
          sessionTimeoutMs: this.options.sessionTimeoutMs,
          rebalanceTimeoutMs: this.options.rebalanceTimeoutMs,
          topics,
          assignors: this.options.assignors,
          owned,
        });
        this.memberId = joined.memberId;
        this.generation = joined.generation;
        const synced = await this.call<{ assignment: TopicPartition[] }>('SyncGroup', { group: this.options.groupId, memberId: this.memberId, generation: this.generation });
        this.rejoinNeeded = false;
        const lost = this.fenced;
        this.fenced = false;
        this.startHeartbeat();
        return { generation: this.generation, memberId: this.memberId, assignor: joined.assignor, assignment: synced.assignment, lost };
      } catch (error) {
        if (!(error instanceof UnknownMemberIdError || error instanceof IllegalGenerationError)) throw error;
        if (error instanceof UnknownMemberIdError) this.memberId = '';
        this.fenced = true;
        owned = [];
      }
    }
  }

  private startHeartbeat(): void {
    // A join answered after close() must not start a timer that nobody will stop.
    if (this.closed) return;
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatIntervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private async beat(): Promise<void> {
    try {
      const answer = await this.call<{ rebalanceInProgress: boolean }>('Heartbeat', { group: this.options.groupId, memberId: this.memberId, generation: this.generation }, this.options.heartbeatIntervalMs);
      if (answer.rebalanceInProgress) this.rejoinNeeded = true;
    } catch (error) {
      this.noteFenced(error);
    }
  }

  /** noteFenced: an answer that says this member was fenced makes it rejoin, its partitions lost. */
  private noteFenced(error: unknown): void {
    if (!(error instanceof UnknownMemberIdError || error instanceof IllegalGenerationError)) return;
    if (error instanceof UnknownMemberIdError) this.memberId = '';
    this.fenced = true;
    this.rejoinNeeded = true;
  }

  /** commit stores offsets as this member of its generation; a fenced member's commit is refused. */
  async commit(offsets: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
    if (offsets.length === 0) return;
    if (this.fenced) throw new UnknownMemberIdError(this.options.groupId, this.memberId);
    try {
      await this.call('OffsetCommit', { group: this.options.groupId, memberId: this.memberId, generation: this.generation, offsets: offsets.map((offset) => ({ ...offset, metadata: '' })) });
    } catch (error) {
      this.noteFenced(error);
      throw error;
    }
  }

  /** committed returns the group's committed offsets of the given partitions. */
  async committed(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    const answer = await this.call<{ offsets: { topic: string; partition: number; offset: number }[] }>('OffsetFetch', { group: this.options.groupId, partitions });
    return new Map(answer.offsets.map((offset) => [`${offset.topic}\u0000${offset.partition}`, offset.offset]));
  }

  /** leave leaves the group (a static member does not: it keeps its place until its session times out). */
  async leave(): Promise<void> {
    this.stopHeartbeat();
    if (this.memberId !== '' && this.options.groupInstanceId === undefined) {
      await this.call('LeaveGroup', { group: this.options.groupId, memberId: this.memberId }, 2000).catch(() => undefined);
    }
  }

  close(): void {
    this.closed = true;
    this.stopHeartbeat();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
