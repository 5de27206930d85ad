// ClusterWorkload is the chaos workload (chaos/workload.ts) inside the whole-cluster simulation:
// an admin creates the topic, idempotent producers send unique values with acks=all one at a time
// (retrying the same batch, with the same sequence, until it is acknowledged), and consumers in
// groups (SimConsumer: the SDK's protocol, step for step) read and commit. Everything they see goes
// into a history in the format of chaos/history.ts, so the chaos checker judges it; after healing,
// finalRead records every partition from one replica and requires the others to hold the same.
import { decodeBatches } from '../../src/client/consumer.js';
import { NotControllerError, NotLeaderError, OffsetOutOfRangeError, RaftbusError } from '../../src/errors.js';
import type { NodeShell } from '../../src/node/node-shell.js';
import { groupsHandlers } from '../../src/rpc/groups-service.js';
import { encodeRecordBatch } from '../../src/partition/record-batch.js';
import { randomInt, type Random } from '../../src/raft/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import type { HistoryEvent } from '../../chaos/history.js';
import type { ClusterSimulation } from './cluster-simulation.js';
import { SimConsumer, type ConsumerWorld, type FetchOutcome, type GroupMethod, type Target } from './groups-consumer.js';

export const topic = 'events';
const produceDeadlineMs = 5000;
const produceTimeoutMs = 4000;
const adminDeadlineMs = 2000;
const fetchBytesMax = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Distributive Omit: keeps each event kind's own fields. */
type EventBody = HistoryEvent extends infer E ? (E extends HistoryEvent ? Omit<E, 't'> : never) : never;

export interface WorkloadOptions {
  readonly partitions: number;
  readonly producers: number;
  readonly groups: number;
  readonly consumersPerGroup: number;
  /** sendGapMsMax: a producer waits 0 to this many ms between sends. */
  readonly sendGapMsMax: number;
}

export interface WorkloadCounts {
  sends: number;
  acknowledged: number;
  retries: number;
  consumed: number;
  commits: number;
}

class SimProducer {
  done = false;
  /** stopped: a send was refused for good (see sendOne). */
  stopped = false;
  private producerId = -1n;
  private readonly sequences = new Map<number, number>();
  private sent = 0;

  constructor(
    readonly name: string,
    private readonly workload: ClusterWorkload,
  ) {}

  async run(): Promise<void> {
    const { workload } = this;
    await workload.topicCreated;
    const { firstProducerId } = await workload.askController(`${this.name}`, (shell) => shell.allocateProducerIds({ count: 1 }));
    this.producerId = BigInt(firstProducerId);
    while (workload.producing && !this.stopped) {
      await this.sendOne();
      await workload.wait(randomInt(workload.random, 0, workload.options.sendGapMsMax));
    }
    this.done = true;
  }

  private async sendOne(): Promise<void> {
    const { workload } = this;
    const partition = randomInt(workload.random, 0, workload.options.partitions - 1);
    const value = `${this.name}-${this.sent++}`;
    const sequence = this.sequences.get(partition) ?? 0;
    const batch = encodeRecordBatch({
      baseOffset: 0n,
      partitionLeaderEpoch: -1,
      producerId: this.producerId,
      producerEpoch: 0,
      baseSequence: sequence,
      compression: 'none',
      timestampType: 'create',
      records: [{ timestamp: workload.now, key: encoder.encode(value), value: encoder.encode(value), headers: [] }],
    });
    workload.record({ kind: 'produce-invoke', id: value, producer: this.name, topic, key: value, value });
    workload.counts.sends++;
    for (let attempt = 0; ; attempt++) {
      const leader = await workload.leaderOf(partition, attempt);
      try {
        const answer = await workload.sim.call(this.name, leader, produceDeadlineMs, (shell) => shell.partition(topic, partition).produce({ acks: -1, batch, timeoutMs: produceTimeoutMs }));
        workload.sim.note(() => `${this.name} ${value} (sequence ${sequence}) at node ${leader}: offset ${answer.baseOffset}${answer.duplicate ? ' (duplicate)' : ''}`);
        this.sequences.set(partition, sequence + 1);
        workload.counts.acknowledged++;
        workload.record({ kind: 'produce-ok', id: value, topic, partition, offset: answer.baseOffset });
        return;
      } catch (error) {
        if (!(error instanceof RaftbusError)) throw error;
        workload.sim.note(() => `${this.name} ${value} (sequence ${sequence}) at node ${leader}: ${error.name}: ${error.message}`);
        // A sequential idempotent producer never skips a sequence: anything but a retriable answer
        // means the broker lost or confused its batches. The send's outcome is unknown; the producer
        // stops, and the run fails after the checker has said what was lost.
        if (!error.retriable && error.name !== 'UnknownTopicError') {
          workload.record({ kind: 'produce-fail', id: value, error: error.name });
          workload.refusals.push(`${this.name}: ${value} (sequence ${sequence} of partition ${partition}) was answered ${error.name}: ${error.message}`);
          this.stopped = true;
          return;
        }
        workload.counts.retries++;
        workload.forgetLeader(partition, error instanceof NotLeaderError ? error.leaderHint : 0);
        await workload.wait(randomInt(workload.random, 10, 100));
      }
    }
  }
}

export class ClusterWorkload implements ConsumerWorld {
  readonly topic = topic;
  readonly events: HistoryEvent[] = [];
  readonly counts: WorkloadCounts = { sends: 0, acknowledged: 0, retries: 0, consumed: 0, commits: 0 };
  producing = true;
  /** refusals: sends refused for good, which a correct cluster never does to these producers. */
  readonly refusals: string[] = [];
  /** fetchedBehind: OffsetFetch answers below a commit acknowledged before the fetch was sent (a coordinator that lost a commit). */
  readonly fetchedBehind: string[] = [];
  readonly topicCreated: Promise<void>;
  private readonly producers: SimProducer[] = [];
  private readonly consumers: SimConsumer[] = [];
  private readonly leaders = new Map<number, NodeId>();
  /** fetched[process]: what that consumer's fetches returned and it was not handed yet, by partition/offset. */
  private readonly fetched = new Map<number, Map<string, string>>();
  /** committed[group][partition]: the highest acknowledged commit. */
  readonly committed = new Map<string, Map<number, number>>();
  private markCreated: () => void = () => undefined;

  constructor(
    readonly sim: ClusterSimulation,
    readonly options: WorkloadOptions,
    readonly random: Random,
  ) {
    this.topicCreated = new Promise((resolve) => (this.markCreated = resolve));
  }

  get now(): number {
    return this.sim.now;
  }

  record(event: EventBody): void {
    this.events.push({ ...event, t: this.sim.now } as HistoryEvent);
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => this.sim.schedule(this.sim.now + ms, undefined, () => resolve()));
  }

  sleep(_process: number, ms: number): Promise<void> {
    return this.wait(ms);
  }

  /** start begins the admin, the producers and the consumers (client events: never paused, never crashed). */
  start(): void {
    const run = (what: string, body: () => Promise<void>): void => this.sim.schedule(this.sim.now, undefined, () => void body().catch((error: unknown) => this.sim.fail(new Error(`${what}: ${String(error)}`, { cause: error }))));
    run('admin', () => this.createTopic());
    for (let i = 0; i < this.options.producers; i++) {
      const producer = new SimProducer(`p${i}`, this);
      this.producers.push(producer);
      run(producer.name, () => producer.run());
    }
    const assignors = [['range'], ['cooperative-sticky'], ['roundrobin']] as const;
    for (let g = 0; g < this.options.groups; g++) {
      for (let c = 0; c < this.options.consumersPerGroup; c++) {
        const process = this.consumers.length;
        const consumer = new SimConsumer(
          process,
          {
            group: `g${g}`,
            clientId: `g${g}-c${c}`,
            instanceId: undefined,
            assignors: assignors[g % assignors.length]!,
            sessionTimeoutMs: 6000,
            rebalanceTimeoutMs: 6000,
            heartbeatIntervalMs: 2000,
            requestTimeoutMs: 5000,
            autoCommitIntervalMs: 500,
            maxWaitMs: 500,
            recordsPerFetchMax: 50,
            pollRetryMs: 100,
            fencedLosesPartitions: true,
          },
          this,
        );
        this.consumers.push(consumer);
        run(`consumer ${process}`, async () => {
          await this.topicCreated;
          await consumer.run();
        });
      }
    }
  }

  /** producersIdle: no producer has a send in flight (after producing stopped: all are done). */
  producersDone(): boolean {
    return this.producers.every((producer) => producer.done);
  }

  private async createTopic(): Promise<void> {
    await this.askController('admin', (shell) => shell.createTopic({ name: topic, partitions: this.options.partitions, replicationFactor: 3, configs: {}, requestId: 'sim-setup' }));
    this.record({ kind: 'note', text: `created ${topic}` });
    this.markCreated();
  }

  /** askController runs an operation on the active controller, following hints and retrying every error (setup runs while brokers still register). */
  async askController<T>(from: string, run: (shell: NodeShell) => Promise<T>): Promise<T> {
    let hint = 0;
    for (let attempt = 0; ; attempt++) {
      const to = hint !== 0 ? hint : 1 + (attempt % this.sim.options.nodes);
      try {
        return await this.sim.call(from, to, adminDeadlineMs, run);
      } catch (error) {
        if (!(error instanceof RaftbusError)) throw error;
        hint = error instanceof NotControllerError ? error.controllerHint : 0;
        await this.wait(hint !== 0 ? 10 : 100);
      }
    }
  }

  /** leaderOf returns the node to send a partition's requests to: the known leader, else one a node's metadata names, else any. */
  async leaderOf(partition: number, attempt: number): Promise<NodeId> {
    const known = this.leaders.get(partition);
    if (known !== undefined) return known;
    const asked = 1 + ((attempt + partition) % this.sim.options.nodes);
    try {
      const metadata = await this.sim.call('metadata', asked, adminDeadlineMs, (shell) => shell.brokerMetadata([topic]));
      const leader = metadata.topics[0]?.partitions[partition]?.leader ?? 0;
      if (leader !== 0) {
        this.leaders.set(partition, leader);
        return leader;
      }
    } catch (error) {
      if (!(error instanceof RaftbusError)) throw error;
    }
    return asked;
  }

  forgetLeader(partition: number, hint: NodeId): void {
    if (hint !== 0) this.leaders.set(partition, hint);
    else this.leaders.delete(partition);
  }

  // ---- the world of a consumer (groups-consumer.ts) ----

  nowMs(): number {
    return this.sim.now;
  }

  processMs(): number {
    return randomInt(this.random, 1, 20);
  }

  fail(error: unknown): void {
    this.sim.fail(error);
  }

  request(process: number, target: Target, method: GroupMethod, body: object, deadlineMs: number): Promise<unknown> {
    const group = (body as { group: string }).group;
    const from = `c${process}`;
    if (target === 'bootstrap') {
      const to = 1 + randomInt(this.random, 0, this.sim.options.nodes - 1);
      return this.sim.call(from, to, deadlineMs, async (shell) => ({ incarnation: (await shell.findCoordinator(group)).nodeId }));
    }
    // The Groups service's own handlers, as a node's gRPC server runs them.
    const called = this.sim.call(from, target, deadlineMs, (shell) => (groupsHandlers(shell)[method] as (request: object) => unknown)(body));
    const answered = called.then(
      (answer) => {
        this.sim.note(() => `${method} of consumer ${process} at node ${target}: ${JSON.stringify(body)} -> ${JSON.stringify(answer)}`);
        return answer;
      },
      (error: unknown) => {
        this.sim.note(() => `${method} of consumer ${process} at node ${target}: ${JSON.stringify(body)} -> ${String(error)}`);
        throw error;
      },
    );
    if (method === 'OffsetFetch') {
      // Commits are acknowledged only once replicated, and a group's commits never go back: an
      // answer must hold at least every commit acknowledged before the question left.
      const before = new Map(this.committed.get(group) ?? []);
      return answered.then((answer) => {
        const found = new Map((answer as { offsets: { partition: number; offset: number }[] }).offsets.map((offset) => [offset.partition, offset.offset]));
        for (const { partition } of (body as { partitions: { partition: number }[] }).partitions) {
          const acknowledged = before.get(partition);
          const offset = found.get(partition);
          if (acknowledged !== undefined && (offset === undefined || offset < acknowledged)) {
            this.fetchedBehind.push(`OffsetFetch of ${group} ${topic}-${partition} by consumer ${process} at node ${String(target)} answered ${offset ?? 'nothing'}, below the commit of ${acknowledged} acknowledged before it`);
          }
        }
        return answer;
      });
    }
    if (method !== 'OffsetCommit') return answered;
    return answered.then((answer) => {
      const consumer = this.consumers[process]!;
      for (const offset of (body as { offsets: { partition: number; offset: number }[] }).offsets) {
        this.counts.commits++;
        this.record({ kind: 'commit', consumer: consumer.settings.clientId, group, topic, partition: offset.partition, offset: offset.offset });
        const partitions = this.committed.get(group) ?? new Map<number, number>();
        partitions.set(offset.partition, Math.max(partitions.get(offset.partition) ?? 0, offset.offset));
        this.committed.set(group, partitions);
      }
      return answer;
    });
  }

  async fetch(process: number, options: { partition: number; offset: number; maxWaitMs: number; recordsMax: number }): Promise<FetchOutcome> {
    const { partition, offset } = options;
    const leader = await this.leaderOf(partition, process);
    try {
      const answer = await this.sim.call(`c${process}`, leader, options.maxWaitMs + 2000, (shell) => shell.partition(topic, partition).fetch({ offset, maxBytes: fetchBytesMax, maxWaitMs: options.maxWaitMs, minBytes: 1 }));
      const records = decodeBatches(topic, partition, answer.batches, offset).slice(0, options.recordsMax);
      const stash = this.fetched.get(process) ?? new Map<string, string>();
      this.fetched.set(process, stash);
      records.forEach((record, i) => {
        if (record.offset !== offset + i) throw new Error(`fetch of ${topic}-${partition} from ${offset} returned offset ${record.offset} at position ${i}`);
        stash.set(`${partition}/${record.offset}`, decoder.decode(record.value ?? new Uint8Array()));
      });
      this.sim.note(() => `fetch of consumer ${process} from node ${leader}: ${partition}/${offset} -> ${records.length} records`);
      return { nextOffset: offset + records.length };
    } catch (error) {
      if (!(error instanceof RaftbusError)) throw error;
      this.sim.note(() => `fetch of consumer ${process} from node ${leader}: ${partition}/${offset} -> ${String(error)}`);
      if (error instanceof OffsetOutOfRangeError) return { outOfRange: { logStartOffset: error.logStartOffset } };
      this.forgetLeader(partition, error instanceof NotLeaderError ? error.leaderHint : 0);
      await this.wait(50);
      return { nextOffset: offset };
    }
  }

  handed(process: number, records: readonly { partition: number; offset: number }[]): void {
    const consumer = this.consumers[process]!;
    const stash = this.fetched.get(process)!;
    for (const { partition, offset } of records) {
      const value = stash.get(`${partition}/${offset}`);
      if (value === undefined) throw new Error(`consumer ${process} was handed ${partition}/${offset}, which no fetch of it returned`);
      stash.delete(`${partition}/${offset}`);
      this.counts.consumed++;
      this.record({ kind: 'consume', consumer: consumer.settings.clientId, group: consumer.group, topic, partition, offset, value });
    }
  }

  /** groupsCaughtUp: every group's acknowledged commits reached each partition's high watermark. */
  groupsCaughtUp(highWatermarks: readonly number[]): boolean {
    for (let g = 0; g < this.options.groups; g++) {
      const partitions = this.committed.get(`g${g}`);
      for (let p = 0; p < highWatermarks.length; p++) {
        if (highWatermarks[p]! > 0 && (partitions?.get(p) ?? 0) < highWatermarks[p]!) return false;
      }
    }
    return true;
  }
}
