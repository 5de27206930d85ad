// The chaos workload: idempotent producers that send unique values with acks=all, each waiting for
// one answer before the next send (so a later send is also later in real time), and consumer
// groups whose members consume, record what they read and commit. Every invocation and outcome
// goes to the history; nothing here judges it (chaos/checker.ts does).
import { Consumer } from '../src/client/consumer.js';
import { Producer } from '../src/client/producer.js';
import type { HistoryEvent } from './history.js';

export interface Recorder {
  record(event: HistoryEvent): void;
  now(): number;
}

export interface WorkloadOptions {
  readonly bootstrap: readonly string[];
  readonly topics: readonly string[];
  readonly producers: number;
  readonly groups: number;
  readonly consumersPerGroup: number;
  readonly keys: number;
  readonly random: () => number;
  readonly recorder: Recorder;
  /** sendTimeoutMs: how long one send may take before it counts as indeterminate. */
  readonly sendTimeoutMs: number;
  /** pauseBetweenSendsMs: how long a producer rests between sends (keeps the load reasonable on small machines). */
  readonly pauseBetweenSendsMs: number;
  /** valueBytes pads each value with '~' to this size (0: none); the history records values unpadded. */
  readonly valueBytes: number;
}

const decoder = new TextDecoder();

/** unpadded is a value read back without the padding a producer gave it (values never end in '~'). */
function unpadded(bytes: Uint8Array | null | undefined): string {
  return decoder.decode(bytes ?? new Uint8Array()).replace(/~+$/, '');
}

export class Workload {
  private producing = false;
  private consuming = false;
  private readonly loops: Promise<void>[] = [];
  private readonly consumers: { name: string; group: string; consumer: Consumer }[] = [];
  /** crashNext: consumer loops told to crash after their next poll that returns records. */
  private readonly crashNext = new Set<string>();
  private readonly producers: Producer[] = [];
  private nextId = 0;

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    this.producing = true;
    this.consuming = true;
    for (let p = 0; p < this.options.producers; p++) this.loops.push(this.produceLoop(`p${p}`));
    for (let g = 0; g < this.options.groups; g++) {
      for (let c = 0; c < this.options.consumersPerGroup; c++) this.loops.push(this.consumeLoop(`g${g}`, `g${g}-c${c}`));
    }
  }

  private async produceLoop(name: string): Promise<void> {
    const { recorder, topics, random } = this.options;
    const producer = new Producer({ bootstrap: this.options.bootstrap, lingerMs: 0, deliveryTimeoutMs: this.options.sendTimeoutMs, requestTimeoutMs: 3000 });
    this.producers.push(producer);
    for (let sequence = 0; this.producing; sequence++) {
      const topic = topics[Math.floor(random() * topics.length)]!;
      const key = `k${Math.floor(random() * this.options.keys)}`;
      const value = `${name}-${sequence}`;
      const id = `op${this.nextId++}`;
      recorder.record({ kind: 'produce-invoke', t: recorder.now(), id, producer: name, topic, key, value });
      try {
        const sent = await producer.send({ topic, key, value: value.padEnd(this.options.valueBytes, '~') });
        recorder.record({ kind: 'produce-ok', t: recorder.now(), id, topic, partition: sent.partition, offset: sent.offset });
      } catch (error) {
        recorder.record({ kind: 'produce-fail', t: recorder.now(), id, error: `${(error as Error).name}: ${(error as Error).message}` });
        await sleep(200);
      }
      if (this.options.pauseBetweenSendsMs > 0) await sleep(this.options.pauseBetweenSendsMs);
    }
  }

  /**
   * crashConsumer makes one consumer crash after its next poll that returns records: it drops them
   * unprocessed (not recorded, not committed) and goes away; a new member takes its place. A
   * consumer that committed before processing would make its group skip those records.
   */
  crashConsumer(random: () => number): string | undefined {
    const live = this.consumers.filter(({ name }) => !this.crashNext.has(name));
    if (live.length === 0) return undefined;
    const victim = live[Math.floor(random() * live.length)]!.name;
    this.crashNext.add(victim);
    return victim;
  }

  private async consumeLoop(group: string, name: string): Promise<void> {
    for (let incarnation = 0; this.consuming; incarnation++) await this.consumeAs(group, name, incarnation);
  }

  /** consumeAs runs one incarnation of a consumer until the run ends or it is told to crash. */
  private async consumeAs(group: string, name: string, incarnation: number): Promise<void> {
    const { recorder } = this.options;
    const consumer = new Consumer({
      bootstrap: this.options.bootstrap,
      groupId: group,
      clientId: name,
      autoOffsetReset: 'earliest',
      autoCommit: false,
      maxWaitMs: 250,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 1000,
      rebalanceTimeoutMs: 10_000,
      requestTimeoutMs: 5000,
    });
    const slot = { name, group, consumer };
    this.consumers.push(slot);
    consumer.subscribe([...this.options.topics]);
    while (this.consuming) {
      try {
        const records = await consumer.poll();
        if (records.length > 0 && this.crashNext.delete(name)) {
          recorder.record({ kind: 'note', t: recorder.now(), text: `${name} (incarnation ${incarnation}) crashed with ${records.length} records polled but not processed` });
          await consumer.close().catch(() => undefined); // autoCommit is off: nothing is committed
          this.consumers.splice(this.consumers.indexOf(slot), 1);
          return;
        }
        for (const record of records) {
          recorder.record({ kind: 'consume', t: recorder.now(), consumer: name, group, topic: record.topic, partition: record.partition, offset: record.offset, value: unpadded(record.value) });
        }
        if (records.length === 0) continue;
        const positions = consumer.assignment().filter((assigned) => assigned.position !== undefined);
        await consumer.commit(positions.map((assigned) => ({ topic: assigned.topic, partition: assigned.partition, offset: assigned.position! })));
        for (const assigned of positions) {
          recorder.record({ kind: 'commit', t: recorder.now(), consumer: name, group, topic: assigned.topic, partition: assigned.partition, offset: assigned.position! });
        }
      } catch (error) {
        recorder.record({ kind: 'note', t: recorder.now(), text: `${name}: ${(error as Error).name}: ${(error as Error).message}` });
        await sleep(500);
      }
    }
  }

  /** stopProducing ends the producer loops (each finishes its send in progress). */
  async stopProducing(): Promise<void> {
    this.producing = false;
    await Promise.all(this.producers.map((producer) => producer.close().catch(() => undefined)));
  }

  /** lag sums, over every consumer, how far its partitions are behind what it last saw. */
  lag(): number {
    return this.consumers.reduce((sum, { consumer }) => sum + consumer.lag().reduce((total, partition) => total + partition.lag, 0), 0);
  }

  /** assignedPartitions counts partitions assigned per group (a settled group covers every partition). */
  assignedPartitions(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { group, consumer } of this.consumers) counts.set(group, (counts.get(group) ?? 0) + consumer.assignment().length);
    return counts;
  }

  async stop(): Promise<void> {
    this.producing = false;
    this.consuming = false;
    await Promise.all(this.loops);
    await Promise.all(this.consumers.map(({ consumer }) => consumer.close().catch(() => undefined)));
  }
}

/** finalRead reads every record of every partition from its log start, after the cluster healed. */
export async function finalRead(options: { bootstrap: readonly string[]; topics: readonly string[]; recorder: Recorder; timeoutMs: number }): Promise<void> {
  const consumer = new Consumer({ bootstrap: options.bootstrap, autoOffsetReset: 'earliest', maxWaitMs: 100 });
  try {
    const wanted: { topic: string; partition: number; end: number }[] = [];
    for (const topic of options.topics) {
      const count = await consumer.partitionsFor(topic);
      for (let partition = 0; partition < count; partition++) wanted.push({ topic, partition, end: await consumer.listOffset(topic, partition, 'latest') });
    }
    await consumer.assign(wanted.map(({ topic, partition }) => ({ topic, partition })));
    for (const { topic, partition } of wanted) await consumer.seekToBeginning(topic, partition);
    const deadline = Date.now() + options.timeoutMs;
    const done = (): boolean => consumer.assignment().every((assigned) => (assigned.position ?? 0) >= wanted.find((w) => w.topic === assigned.topic && w.partition === assigned.partition)!.end);
    while (!done()) {
      if (Date.now() > deadline) throw new Error('the final read did not reach the end of every partition in time');
      for (const record of await consumer.poll()) {
        options.recorder.record({ kind: 'final-read', t: options.recorder.now(), topic: record.topic, partition: record.partition, offset: record.offset, value: unpadded(record.value) });
      }
    }
  } finally {
    await consumer.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
