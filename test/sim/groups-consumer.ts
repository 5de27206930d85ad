// SimConsumer models one consumer process of a group as the SDK behaves (src/client/consumer.ts
// with src/client/group-membership.ts), step for step, over the simulation's clock and network
// instead of timers and gRPC: the application polls in a loop; a poll first keeps the group
// membership current (join, sync, read from the committed offset or from the beginning, commit the
// positions of handed-out records every autoCommitIntervalMs), then fetches every assigned partition
// and hands the records to the application. A background heartbeat every heartbeatIntervalMs asks
// for a rejoin when the group rebalances or the member was fenced. Eager assignors revoke (committing
// first) everything before rejoining; cooperative-sticky keeps what it keeps and revokes after. Every
// coordinator request retries retriable errors with backoff (re-finding the coordinator) for 30 s.
// Deviations, on purpose: one bootstrap address; auto.offset.reset is 'earliest' without a
// ListOffsets round trip; a poll that throws is retried by the application after a backoff; a poll
// waits for its rejoin to finish (the SDK's waits at most maxWaitMs and leaves the join running for
// a later poll: each simulated member polls in its own loop, so no member's poll waits on
// another's, which is what that prevents).
import { IllegalGenerationError, NotCoordinatorError, RaftbusError, UnknownMemberIdError } from '../../src/errors.js';
import type { JoinAnswer, JoinRequest } from '../../src/groups/coordinator.js';
import type { AssignorName } from '../../src/groups/assignors.js';
import type { TopicPartition } from '../../src/groups/records.js';

/** The SDK's constants (src/client/group-membership.ts). */
const backoffStartMs = 50;
const backoffMaxMs = 1000;
const findCoordinatorForMs = 30_000;
const leaveRetryForMs = 2000;

export type GroupMethod = 'FindCoordinator' | 'JoinGroup' | 'SyncGroup' | 'Heartbeat' | 'LeaveGroup' | 'OffsetCommit' | 'OffsetFetch';

/** Target: where a request goes: the bootstrap address (FindCoordinator), or a coordinator incarnation. */
export type Target = 'bootstrap' | number;

/** RequestTimeoutError is the gRPC deadline passing: the SDK sees a retriable RemoteError (and a consumer finds the coordinator again). */
export class RequestTimeoutError extends RaftbusError {
  override readonly name = 'RemoteError';
  readonly retriable = true;
  constructor(what: string) {
    super(`${what}: deadline exceeded`);
  }
}

/** FetchOutcome: the offset after the records read, or an OffsetOutOfRangeError's log start. */
export type FetchOutcome = { readonly nextOffset: number } | { readonly outOfRange: { readonly logStartOffset: number } };

/** ConsumerWorld is what a consumer process uses of the simulation. Every promise settles through a simulation event. */
export interface ConsumerWorld {
  readonly topic: string;
  nowMs(): number;
  sleep(process: number, ms: number): Promise<void>;
  /** request sends a request and answers what the target answered, or rejects with its error or RequestTimeoutError at deadlineMs. */
  request(process: number, target: Target, method: GroupMethod, body: object, deadlineMs: number): Promise<unknown>;
  /**
   * fetch reads a partition from offset (a long poll of up to maxWaitMs) and returns the offset after
   * the last record read, or the partition's log start when the broker answered out of range.
   */
  fetch(process: number, options: { partition: number; offset: number; maxWaitMs: number; recordsMax: number }): Promise<FetchOutcome>;
  /** handed: the application got these records from a poll. */
  handed(process: number, records: readonly { partition: number; offset: number }[]): void;
  /** processMs: how long the application takes over one poll's records. */
  processMs(): number;
  /** fail: the model itself broke (an error the SDK would not expect); the run stops with it. */
  fail(error: unknown): void;
}

export interface ConsumerSettings {
  readonly group: string;
  readonly clientId: string;
  /** instanceId: static membership, or undefined. */
  readonly instanceId: string | undefined;
  readonly assignors: readonly AssignorName[];
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly autoCommitIntervalMs: number;
  readonly maxWaitMs: number;
  readonly recordsPerFetchMax: number;
  /** pollRetryMs: how long the application waits before polling again after a poll failed. */
  readonly pollRetryMs: number;
  /**
   * fencedLosesPartitions: a member the coordinator no longer knows (UnknownMemberId) drops its
   * partitions without committing and rejoins owning none, as Kafka's consumer does (onPartitionsLost).
   * The SDK does not (yet): it keeps them, rejoins claiming them, and commits its stale positions.
   */
  readonly fencedLosesPartitions: boolean;
}

/** What the consumer counts, for the test to show what happened. */
export interface ConsumerCounts {
  joins: number;
  commitsRefused: number;
  pollsFailed: number;
  partitionsLost: number;
}

interface Assignment {
  readonly partition: number;
  position: number | undefined;
}

export class SimConsumer {
  // GroupMembership's state.
  private coordinator: number | undefined;
  memberId = '';
  generation = -1;
  private heartbeatTimer = 0;
  private heartbeatRunning = false;
  rejoinNeeded = true;
  private membershipClosed = false;
  /** fences counts the UnknownMemberId answers heard (fencedLosesPartitions: an assignment of an earlier count is lost). */
  private fences = 0;
  // Consumer's state.
  readonly assignments = new Map<number, Assignment>();
  private subscribedTopics: string[] = [];
  private lastCommitMs: number;
  private cooperative = false;
  private consumerClosed = false;
  /** leaveRequested: the application will close the consumer when its current poll returns. */
  leaveRequested = false;
  /** done: close() returned; the process is gone. */
  done = false;
  /** knownIds: every member id this process was given (the checker's view). */
  readonly knownIds = new Set<string>();
  readonly counts: ConsumerCounts = { joins: 0, commitsRefused: 0, pollsFailed: 0, partitionsLost: 0 };

  constructor(
    readonly process: number,
    readonly settings: ConsumerSettings,
    private readonly world: ConsumerWorld,
  ) {
    this.lastCommitMs = world.nowMs();
  }

  get group(): string {
    return this.settings.group;
  }

  /** holdings lists the partitions the consumer reads (and would commit). */
  holdings(): number[] {
    return [...this.assignments.keys()].sort((a, b) => a - b);
  }

  /** run is the application: poll, take the records, repeat; close when asked to leave. */
  async run(): Promise<void> {
    for (;;) {
      if (this.leaveRequested) {
        await this.close();
        this.done = true;
        return;
      }
      try {
        const records = await this.poll();
        if (records.length > 0) {
          this.world.handed(this.process, records);
          await this.world.sleep(this.process, this.world.processMs());
        }
      } catch (error) {
        if (!(error instanceof RaftbusError)) throw error;
        this.counts.pollsFailed++;
        await this.world.sleep(this.process, this.settings.pollRetryMs);
      }
    }
  }

  // ---- GroupMembership ----

  private async call<T>(method: GroupMethod, request: object, retryForMs = findCoordinatorForMs): Promise<T> {
    const deadline = this.world.nowMs() + retryForMs;
    let backoffMs = backoffStartMs;
    for (;;) {
      try {
        const coordinator = this.coordinator ?? (await this.findCoordinator());
        return (await this.world.request(this.process, coordinator, method, request, this.settings.requestTimeoutMs + this.settings.rebalanceTimeoutMs)) as T;
      } catch (error) {
        if (!(error instanceof RaftbusError && error.retriable) || this.membershipClosed || this.world.nowMs() + backoffMs > deadline) throw error;
        if (error instanceof NotCoordinatorError || error.name === 'RemoteError') this.coordinator = undefined;
        await this.world.sleep(this.process, backoffMs);
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
  }

  private async findCoordinator(): Promise<number> {
    const found = (await this.world.request(this.process, 'bootstrap', 'FindCoordinator', { group: this.group }, this.settings.requestTimeoutMs + this.settings.rebalanceTimeoutMs)) as { incarnation: number };
    this.coordinator = found.incarnation;
    return found.incarnation;
  }

  private async join(topics: readonly string[], ownedBefore: readonly TopicPartition[]): Promise<{ generation: number; assignor: string; assignment: readonly TopicPartition[] }> {
    this.stopHeartbeat();
    let owned = ownedBefore;
    for (;;) {
      try {
        const request: JoinRequest = {
          group: this.group,
          memberId: this.memberId,
          instanceId: this.settings.instanceId ?? '',
          clientId: this.settings.clientId,
          sessionTimeoutMs: this.settings.sessionTimeoutMs,
          rebalanceTimeoutMs: this.settings.rebalanceTimeoutMs,
          topics,
          assignors: this.settings.assignors,
          owned,
        };
        const joined = await this.call<JoinAnswer>('JoinGroup', request);
        this.memberId = joined.memberId;
        this.generation = joined.generation;
        this.knownIds.add(joined.memberId);
        this.counts.joins++;
        const synced = await this.call<{ assignment: TopicPartition[] }>('SyncGroup', { group: this.group, memberId: this.memberId, generation: this.generation });
        this.rejoinNeeded = false;
        this.startHeartbeat();
        return { generation: this.generation, assignor: joined.assignor, assignment: synced.assignment };
      } catch (error) {
        if (error instanceof UnknownMemberIdError) {
          this.fence();
          if (this.settings.fencedLosesPartitions) owned = [];
          continue;
        }
        if (error instanceof IllegalGenerationError) continue;
        throw error;
      }
    }
  }

  /** startHeartbeat: setInterval's behaviour: a beat every interval, whether or not the last one answered. */
  private startHeartbeat(): void {
    const timer = ++this.heartbeatTimer;
    this.heartbeatRunning = true;
    void (async () => {
      for (;;) {
        await this.world.sleep(this.process, this.settings.heartbeatIntervalMs);
        if (!this.heartbeatRunning || this.heartbeatTimer !== timer) return;
        this.beat().catch((error: unknown) => this.world.fail(error));
      }
    })().catch((error: unknown) => this.world.fail(error));
  }

  private stopHeartbeat(): void {
    this.heartbeatRunning = false;
  }

  private async beat(): Promise<void> {
    try {
      const answer = await this.call<{ rebalanceInProgress: boolean }>('Heartbeat', { group: this.group, memberId: this.memberId, generation: this.generation }, this.settings.heartbeatIntervalMs);
      if (answer.rebalanceInProgress) this.rejoinNeeded = true;
    } catch (error) {
      if (!(error instanceof RaftbusError)) throw error;
      if (error instanceof UnknownMemberIdError) this.fence();
      if (error instanceof UnknownMemberIdError || error instanceof IllegalGenerationError) this.rejoinNeeded = true;
    }
  }

  /**
   * fence: the coordinator no longer knows this member. The SDK forgets the member id; with
   * fencedLosesPartitions the partitions are lost too, at once and without a commit (a fetch in
   * flight still hands its records to the application, which is at least once and harmless).
   */
  private fence(): void {
    this.memberId = '';
    this.fences++;
    if (!this.settings.fencedLosesPartitions || this.assignments.size === 0) return;
    this.counts.partitionsLost += this.assignments.size;
    this.assignments.clear();
  }

  private async commitOffsets(offsets: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
    if (offsets.length === 0) return;
    try {
      await this.call('OffsetCommit', { group: this.group, memberId: this.memberId, generation: this.generation, offsets: offsets.map((offset) => ({ ...offset, metadata: '' })) });
    } catch (error) {
      if (error instanceof UnknownMemberIdError || error instanceof IllegalGenerationError) this.counts.commitsRefused++;
      throw error;
    }
  }

  private async committed(partitions: readonly TopicPartition[]): Promise<Map<number, number>> {
    const answer = await this.call<{ offsets: { topic: string; partition: number; offset: number }[] }>('OffsetFetch', { group: this.group, partitions });
    return new Map(answer.offsets.map((offset) => [offset.partition, offset.offset]));
  }

  private async leave(): Promise<void> {
    this.stopHeartbeat();
    if (this.memberId !== '' && this.settings.instanceId === undefined) {
      await this.call('LeaveGroup', { group: this.group, memberId: this.memberId }, leaveRetryForMs).catch(() => undefined);
    }
  }

  // ---- Consumer ----

  private async commit(): Promise<void> {
    const positions = [...this.assignments.values()].filter((a) => a.position !== undefined).map((a) => ({ topic: this.world.topic, partition: a.partition, offset: a.position! }));
    await this.commitOffsets(positions);
    this.lastCommitMs = this.world.nowMs();
  }

  private async syncGroup(): Promise<void> {
    const topics = [this.world.topic];
    if (!sameList(topics, this.subscribedTopics)) this.rejoinNeeded = true;
    if (!this.rejoinNeeded) {
      if (this.world.nowMs() - this.lastCommitMs >= this.settings.autoCommitIntervalMs) await this.commit().catch(() => undefined);
      return;
    }
    const owned = [...this.assignments.values()].map(({ partition }) => ({ topic: this.world.topic, partition }));
    if (!this.cooperative) await this.revoke(owned);
    const generation = await this.join(topics, this.cooperative ? owned : []);
    const fences = this.fences;
    this.subscribedTopics = topics;
    this.cooperative = generation.assignor === 'cooperative-sticky';
    const next = new Set(generation.assignment.map((tp) => tp.partition));
    await this.revoke([...this.assignments.values()].filter((a) => !next.has(a.partition)).map(({ partition }) => ({ topic: this.world.topic, partition })));
    const added = generation.assignment.filter((tp) => !this.assignments.has(tp.partition));
    const committed = added.length === 0 ? new Map<number, number>() : await this.committed(added);
    // With fencedLosesPartitions, a member fenced meanwhile lost this generation's partitions as well.
    if (this.settings.fencedLosesPartitions && this.fences !== fences) return;
    for (const tp of added) this.assignments.set(tp.partition, { partition: tp.partition, position: committed.get(tp.partition) });
  }

  /** revoke: auto-commit the positions first (failures ignored), then stop reading. */
  private async revoke(partitions: readonly TopicPartition[]): Promise<void> {
    if (partitions.length === 0) return;
    const positions = partitions.map((tp) => this.assignments.get(tp.partition)).filter((a) => a?.position !== undefined).map((a) => ({ topic: this.world.topic, partition: a!.partition, offset: a!.position! }));
    await this.commitOffsets(positions).catch(() => undefined);
    for (const tp of partitions) this.assignments.delete(tp.partition);
  }

  private async poll(): Promise<{ partition: number; offset: number }[]> {
    await this.syncGroup();
    if (this.assignments.size === 0) {
      await this.world.sleep(this.process, Math.min(this.settings.maxWaitMs, 100));
      return [];
    }
    const fetched = await Promise.all([...this.assignments.values()].map((assignment) => this.fetchOne(assignment)));
    return fetched.flat();
  }

  private async fetchOne(assignment: Assignment): Promise<{ partition: number; offset: number }[]> {
    assignment.position ??= 0; // autoOffsetReset 'earliest': the log starts at 0 and is never truncated here
    const offset = assignment.position;
    const outcome = await this.world.fetch(this.process, { partition: assignment.partition, offset, maxWaitMs: this.settings.maxWaitMs, recordsMax: this.settings.recordsPerFetchMax });
    if ('outOfRange' in outcome) {
      // As the SDK: autoOffsetReset 'earliest' moves the position to the log start the broker named.
      if (assignment.position === offset) assignment.position = outcome.outOfRange.logStartOffset;
      return [];
    }
    const { nextOffset } = outcome;
    const records = Array.from({ length: nextOffset - offset }, (_, i) => ({ partition: assignment.partition, offset: offset + i }));
    if (assignment.position === offset && nextOffset > offset) assignment.position = nextOffset;
    return records;
  }

  /** close: commit the positions, leave the group (not a static member), stop. */
  private async close(): Promise<void> {
    if (this.consumerClosed) return;
    this.consumerClosed = true;
    await this.commit().catch(() => undefined);
    await this.leave();
    this.membershipClosed = true;
    this.stopHeartbeat();
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
