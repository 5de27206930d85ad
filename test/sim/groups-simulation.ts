// GroupsSimulation runs consumer groups in virtual time: one topic whose partitions fill with a
// fixed sequence of records, consumer processes that follow the SDK's protocol (groups-consumer.ts),
// and the production GroupCoordinator on the leader of a simulated __consumer_offsets partition that
// commits after a delay and fails over (groups-offsets-partition.ts), answering as the node's Groups
// service would.
//
// Requests and answers between consumers and coordinators travel over links that are FIFO per
// connection (one gRPC connection each) with a random delay and loss; a lost request is retried by
// the client once its deadline passes. A stopped consumer (a crash, or a pause longer than its
// session) processes nothing: what would reach it (answers, its own timers) waits, and a consumer
// that comes back gets it all at once, as a process resumed after SIGSTOP does.
//
// The coordinator is asynchronous (promises), so the runner lets every microtask settle after each
// event before the next: the order of everything stays a function of the seed.
import { CoordinatorLoadingError, NotCoordinatorError, RaftbusError } from '../../src/errors.js';
import type { GroupCoordinator, JoinRequest } from '../../src/groups/coordinator.js';
import type { AssignorName } from '../../src/groups/assignors.js';
import { randomInt, seededRandom, type Random } from '../../src/raft/prng.js';
import { SimConsumer, RequestTimeoutError, type ConsumerWorld, type FetchOutcome, type GroupMethod, type Target } from './groups-consumer.js';
import { GroupsChecker } from './groups-checker.js';
import { SimOffsetsPartition, topic, type CoordinatorHost, type PartitionContext, type PartitionCounts } from './groups-offsets-partition.js';
import { EventHeap, firstOnly, type Scheduled } from './heap.js';

export { topic };
/** coordinatorTickMs: how often the node ticks its coordinators (src/node/group-coordinators.ts). */
const coordinatorTickMs = 100;
const fetchLatencyMsMax = 3;

export interface GroupSpec {
  readonly name: string;
  readonly assignors: readonly AssignorName[];
  /** staticMembers: each consumer has a group.instance.id; a consumer started in place of a dead one takes its id. */
  readonly staticMembers: boolean;
  readonly consumers: number;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly autoCommitIntervalMs: number;
  readonly maxWaitMs: number;
  readonly recordsPerFetchMax: number;
}

export interface LinkFaults {
  readonly dropRate: number;
  readonly delayMaxMs: number;
}

export const healthyLinks: LinkFaults = { dropRate: 0, delayMaxMs: 3 };

export interface SimulationOptions {
  readonly seed: number;
  /** lengths[partition]: how many records the partition has in the end. */
  readonly lengths: readonly number[];
  /** produceForMs: the records appear evenly over this long from time 0. */
  readonly produceForMs: number;
  readonly groups: readonly GroupSpec[];
  /** commitDelayMsMax: an entry of the offsets log commits 1 to this many ms after it is appended (after the one before it). */
  readonly commitDelayMsMax: number;
  /** fencedLosesPartitions: the consumers drop their partitions when fenced (see groups-consumer.ts). */
  readonly fencedLosesPartitions: boolean;
  readonly trace: boolean;
}

interface SimEvent extends Scheduled {
  /** process: the consumer process the event belongs to (held while it is stopped), or undefined. */
  readonly process: number | undefined;
  /** fire returns false when it did nothing (no microtasks to let settle). */
  readonly fire: () => boolean | void;
}

export type ProcessState = 'running' | 'stopped' | 'gone';

export interface ProcessSlot {
  readonly consumer: SimConsumer;
  state: ProcessState;
  /** revivable: a stop with an end; a consumer stopped for good never comes back. */
  revivable: boolean;
  /** held: events that reached the process while it was stopped, in order. */
  readonly held: SimEvent[];
  /** stops: how often it was stopped (a zombie once it comes back). */
  stops: number;
}

export interface SimulationCounts extends PartitionCounts {
  events: number;
  requests: number;
  lost: number;
  staleAnswers: number;
  zombieCommitsRefused: number;
  stops: number;
  starts: number;
  leaves: number;
  answers: Map<string, number>;
}

export class GroupsSimulation implements ConsumerWorld, PartitionContext {
  readonly topic = topic;
  now = 0;
  private seq = 0;
  private readonly events = new EventHeap<SimEvent>();
  readonly random: Random;
  readonly checker: GroupsChecker;
  readonly processes: ProcessSlot[] = [];
  readonly partition: SimOffsetsPartition;
  private links: LinkFaults = healthyLinks;
  private readonly linkFree = new Map<string, number>();
  private failure: { error: unknown } | undefined;
  /** appearAt[partition][offset]: when the record is produced. */
  private readonly appearAt: number[][];
  readonly trace: string[] = [];
  readonly counts: SimulationCounts = {
    events: 0,
    requests: 0,
    lost: 0,
    failovers: 0,
    committedAtFailover: 0,
    lostAtFailover: 0,
    persistsRejected: 0,
    staleAnswers: 0,
    zombieCommitsRefused: 0,
    expulsions: 0,
    stops: 0,
    starts: 0,
    leaves: 0,
    answers: new Map(),
  };

  constructor(readonly options: SimulationOptions) {
    this.random = seededRandom(options.seed);
    this.appearAt = options.lengths.map((length) => Array.from({ length }, (_, offset) => Math.floor((offset * options.produceForMs) / length)));
    this.checker = new GroupsChecker({
      topic,
      lengths: options.lengths,
      groups: options.groups.map((group) => group.name),
      consumers: () => this.processes.filter((slot) => slot.state !== 'gone').map((slot) => ({ process: slot.consumer.process, group: slot.consumer.group, knownIds: slot.consumer.knownIds, holdings: slot.consumer.holdings() })),
    });
    this.partition = new SimOffsetsPartition(this);
    this.schedule(coordinatorTickMs, undefined, () => this.tick());
    options.groups.forEach((group, index) => {
      for (let i = 0; i < group.consumers; i++) this.startConsumer(index);
    });
  }

  get partitionCount(): number {
    return this.options.lengths.length;
  }

  get commitDelayMsMax(): number {
    return this.options.commitDelayMsMax;
  }

  // ---- the clock ----

  schedule(at: number, process: number | undefined, fire: () => boolean | void): void {
    this.events.push({ at, seq: this.seq++, process, fire });
  }

  /** at runs fire at a time of the schedule (a fault, a phase change, a commit). */
  at(at: number, fire: () => boolean | void): void {
    this.schedule(at, undefined, fire);
  }

  /** runUntil plays every event up to untilMs, letting microtasks settle after each; throws the first failure. */
  async runUntil(untilMs: number): Promise<void> {
    for (;;) {
      const next = this.events.peek();
      if (next === undefined || next.at > untilMs) break;
      this.events.pop();
      this.now = next.at;
      if (next.process !== undefined) {
        const slot = this.processes[next.process]!;
        if (slot.state === 'stopped') {
          slot.held.push(next);
          continue;
        }
        if (slot.state === 'gone') continue;
      }
      this.counts.events++;
      if (next.fire() === false) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.failure !== undefined) throw this.failure.error;
    }
    this.now = Math.max(this.now, untilMs);
  }

  fail(error: unknown): void {
    this.failure ??= { error };
  }

  note(line: () => string): void {
    if (this.options.trace) this.trace.push(`${this.now} ${line()}`);
  }

  // ---- the world of a consumer ----

  nowMs(): number {
    return this.now;
  }

  sleep(process: number, ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(this.now + ms, process, () => resolve()));
  }

  processMs(): number {
    return randomInt(this.random, 1, 20);
  }

  handed(process: number, records: readonly { partition: number; offset: number }[]): void {
    const consumer = this.processes[process]!.consumer;
    this.note(() => `consumer ${process} handed ${records.map((record) => `${record.partition}/${record.offset}`).join(' ')}`);
    for (const record of records) this.checker.delivered({ group: consumer.group, partition: record.partition, offset: record.offset });
  }

  fetch(process: number, options: { partition: number; offset: number; maxWaitMs: number; recordsMax: number }): Promise<FetchOutcome> {
    const { partition, offset } = options;
    const latency = randomInt(this.random, 1, fetchLatencyMsMax);
    let at = this.now + latency;
    if (this.highWatermark(partition) <= offset) {
      const appear = this.appearAt[partition]![offset];
      at = Math.min(this.now + options.maxWaitMs, appear ?? Number.POSITIVE_INFINITY) + latency;
    }
    return new Promise((resolve) => this.schedule(at, process, () => resolve({ nextOffset: Math.max(offset, Math.min(this.highWatermark(partition), offset + options.recordsMax)) })));
  }

  /** highWatermark: how many records the partition has now. */
  highWatermark(partition: number): number {
    const appear = this.appearAt[partition]!;
    let low = 0;
    let high = appear.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (appear[middle]! <= this.now) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  request(process: number, target: Target, method: GroupMethod, body: object, deadlineMs: number): Promise<unknown> {
    this.counts.requests++;
    return new Promise((resolve, reject) => {
      const settle = firstOnly();
      this.schedule(this.now + deadlineMs, process, () => settle(() => reject(new RequestTimeoutError(method))));
      const arrival = this.transit(`${process}>${target}`);
      if (arrival === undefined) {
        this.note(() => `lost ${method} of consumer ${process} to ${target}`);
        return;
      }
      this.schedule(arrival, undefined, () => {
        this.serve(process, target, method, body).then(
          (answer) => this.answer(process, target, () => settle(() => resolve(answer))),
          (error: unknown) => {
            if (!(error instanceof RaftbusError)) return this.fail(error);
            this.answer(process, target, () => settle(() => reject(error)));
          },
        );
      });
    });
  }

  /** answer carries an answer back to the process over its link. */
  private answer(process: number, target: Target, deliver: () => boolean): void {
    const arrival = this.transit(`${target}>${process}`);
    if (arrival === undefined) {
      this.note(() => `lost an answer to consumer ${process} from ${target}`);
      return;
    }
    this.schedule(arrival, process, deliver);
  }

  /** transit returns when a message sent now over link arrives (FIFO per link), or undefined when it is lost. */
  private transit(link: string): number | undefined {
    if (this.random() < this.links.dropRate) {
      this.counts.lost++;
      return undefined;
    }
    const at = Math.max(this.now + randomInt(this.random, 1, this.links.delayMaxMs), this.linkFree.get(link) ?? 0);
    this.linkFree.set(link, at);
    return at;
  }

  setLinks(faults: LinkFaults): void {
    this.links = faults;
  }

  private tick(): void {
    this.partition.tick();
    this.schedule(this.now + coordinatorTickMs, undefined, () => this.tick());
  }

  /** serve answers a request as the target node's Groups service would (src/rpc/groups-service.ts). */
  private serve(process: number, target: Target, method: GroupMethod, body: object): Promise<unknown> {
    const group = (body as { group: string }).group;
    // FindCoordinator names the partition's leader, loading or not (src/node/group-coordinators.ts).
    if (target === 'bootstrap') return Promise.resolve({ incarnation: this.partition.leader });
    const host = this.partition.host(target);
    if (host.state === 'loading') return Promise.reject(new CoordinatorLoadingError(group));
    if (host.state === 'closed') return Promise.reject(new NotCoordinatorError(group, 0));
    if (host.state === 'deposed') this.counts.staleAnswers++;
    if (method !== 'OffsetFetch' && !host.touched.has(group)) {
      // The coordinator loads the group now: each member's session starts over.
      host.touched.add(group);
      for (const member of this.checker.latest(group)?.members ?? []) host.contactMs.set(`${group}/${member.memberId}`, this.now);
    }
    const memberId = (body as { memberId?: string }).memberId ?? '';
    if (method === 'JoinGroup' && memberId !== '') host.contactMs.set(`${group}/${memberId}`, this.now);
    const answered = this.call(host, process, method, body);
    return answered.then(
      (answer) => {
        if (method === 'JoinGroup') host.contactMs.set(`${group}/${(answer as { memberId: string }).memberId}`, this.now);
        if (method === 'Heartbeat') host.contactMs.set(`${group}/${memberId}`, this.now);
        this.count(method, 'ok');
        this.note(() => `${method} of consumer ${process} at ${host.incarnation}: ${JSON.stringify(answer)}`);
        return answer;
      },
      (error: unknown) => {
        this.count(method, error instanceof Error ? error.name : 'thrown');
        this.note(() => `${method} of consumer ${process} ${JSON.stringify(body)} at ${host.incarnation}: ${String(error)}`);
        if (method === 'OffsetCommit' && this.processes[process]!.stops > 0 && (error instanceof Error) && (error.name === 'IllegalGenerationError' || error.name === 'UnknownMemberIdError')) this.counts.zombieCommitsRefused++;
        throw error;
      },
    );
  }

  private count(method: GroupMethod, outcome: string): void {
    const key = `${method}:${outcome}`;
    this.counts.answers.set(key, (this.counts.answers.get(key) ?? 0) + 1);
  }

  private call(host: CoordinatorHost, process: number, method: GroupMethod, body: object): Promise<unknown> {
    const coordinator = host.coordinator!;
    const now = this.now;
    try {
      switch (method) {
        case 'JoinGroup':
          return coordinator.join(body as JoinRequest, now).then((answer) => {
            this.checker.joinAnswered({ group: (body as JoinRequest).group, memberId: answer.memberId, generation: answer.generation, members: answer.members });
            return answer;
          });
        case 'SyncGroup': {
          const request = body as { group: string; memberId: string; generation: number };
          const assignment = coordinator.sync(request, now);
          this.checker.syncAnswered({ ...request, assignment });
          return Promise.resolve({ assignment });
        }
        case 'Heartbeat':
          return Promise.resolve(coordinator.heartbeat(body as { group: string; memberId: string; generation: number }, now));
        case 'LeaveGroup':
          coordinator.leave(body as { group: string; memberId: string }, now);
          return Promise.resolve({});
        case 'OffsetCommit': {
          const request = body as Parameters<GroupCoordinator['commitOffsets']>[0];
          const committed = this.partition.withCommitContext({ memberId: request.memberId, generation: request.generation, process }, () => coordinator.commitOffsets(request, now));
          return committed.then(() => {
            this.checker.commitAnswered({ group: request.group, offsets: request.offsets });
            return {};
          });
        }
        case 'OffsetFetch': {
          const request = body as { group: string; partitions: { topic: string; partition: number }[] };
          const offsets = coordinator.fetchOffsets(request);
          this.checker.fetchAnswered({ group: request.group, offsets, current: host.state === 'leading' });
          return Promise.resolve({ offsets });
        }
        case 'FindCoordinator':
          throw new Error('FindCoordinator goes to the bootstrap address');
      }
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // ---- consumer processes ----

  /** startConsumer starts a consumer process in a group; a static group's takes the instance id of a dead one, or a new one. */
  startConsumer(groupIndex: number): number {
    const spec = this.options.groups[groupIndex]!;
    const process = this.processes.length;
    const inGroup = this.processes.filter((slot) => slot.consumer.group === spec.name);
    let instanceId: string | undefined;
    if (spec.staticMembers) {
      const taken = new Set(inGroup.filter((slot) => slot.state === 'running' || slot.revivable).map((slot) => slot.consumer.settings.instanceId));
      for (let n = 0; instanceId === undefined; n++) if (!taken.has(`${spec.name}-i${n}`)) instanceId = `${spec.name}-i${n}`;
    }
    const consumer = new SimConsumer(
      process,
      {
        group: spec.name,
        clientId: `${spec.name}-c${process}`,
        instanceId,
        assignors: spec.assignors,
        sessionTimeoutMs: spec.sessionTimeoutMs,
        rebalanceTimeoutMs: spec.rebalanceTimeoutMs,
        heartbeatIntervalMs: Math.floor(spec.sessionTimeoutMs / 3),
        requestTimeoutMs: spec.requestTimeoutMs,
        autoCommitIntervalMs: spec.autoCommitIntervalMs,
        maxWaitMs: spec.maxWaitMs,
        recordsPerFetchMax: spec.recordsPerFetchMax,
        pollRetryMs: 100,
        fencedLosesPartitions: this.options.fencedLosesPartitions,
      },
      this,
    );
    this.processes.push({ consumer, state: 'running', revivable: false, held: [], stops: 0 });
    this.counts.starts++;
    this.note(() => `start consumer ${process} in ${spec.name}${instanceId === undefined ? '' : ` as ${instanceId}`}`);
    this.schedule(this.now, process, () => {
      consumer.run().then(
        () => (this.processes[process]!.state = 'gone'),
        (error: unknown) => this.fail(error),
      );
    });
    return process;
  }

  /** stop stops a running consumer silently; it comes back after forMs (undefined: never). */
  stop(process: number, forMs: number | undefined): void {
    const slot = this.processes[process]!;
    if (slot.state !== 'running') return;
    slot.state = 'stopped';
    slot.stops++;
    slot.revivable = forMs !== undefined;
    this.counts.stops++;
    this.note(() => `stop consumer ${process} ${forMs === undefined ? 'for good' : `for ${forMs} ms`} (member ${slot.consumer.memberId} generation ${slot.consumer.generation})`);
    if (forMs !== undefined) this.at(this.now + forMs, () => this.resume(process));
  }

  private resume(process: number): void {
    const slot = this.processes[process]!;
    if (slot.state !== 'stopped') return;
    slot.state = 'running';
    slot.revivable = false;
    this.note(() => `resume consumer ${process} with ${slot.held.length} events held`);
    for (const event of slot.held.splice(0)) this.schedule(this.now, process, event.fire);
  }

  /** leave has a running consumer close (commit, leave the group) after its current poll. */
  leave(process: number): void {
    const slot = this.processes[process]!;
    if (slot.state !== 'running' || slot.consumer.leaveRequested) return;
    slot.consumer.leaveRequested = true;
    this.counts.leaves++;
    this.note(() => `consumer ${process} leaves`);
  }

  /** running lists the processes of a group that run and will not leave. */
  running(group: string): ProcessSlot[] {
    return this.processes.filter((slot) => slot.consumer.group === group && slot.state === 'running' && !slot.consumer.leaveRequested);
  }
}
