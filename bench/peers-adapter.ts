// The raftbus adapter for the shared peers harness (peers/bench/run.mjs): the harness's log
// workloads driven through our SDK, so our broker's rows sit in the same table as NATS JetStream's.
// Compiled to dist/bench/peers-adapter.js (an ES module); the harness loads it with
//   BROKER_ADAPTER=/work/main/dist/bench/peers-adapter.js  (or run.mjs --adapter <that path>)
// The contract is peers/bench/adapters/adapter.d.ts; the interfaces below restate the part used,
// so the build does not depend on a file outside this repository.
//
//   createTopic   Admin.createTopic with the harness's replicas (3) and partitions (1), then waits
//                 until every node names the same leader for every partition
//   produce       Producer.send, resolving on acks=all (a majority of replicas fsynced the batch)
//   produceBatch  the values sent together on a producer whose batches hold up to ~1 MiB, so the
//                 values of one call travel in one Produce request; calls issued in the same tick
//                 (the harness issues its window of 10 at once) may share a request
// It logs, per topic, how many records went in how many Produce requests (stderr).
//   consume       Consumer from offset 0 of every partition, one Fetch (≈ batch records) per poll
//
// Env: BROKER_ADDRS          host:port list of the nodes' client ports (bootstrap)
//      RAFTBUS_PRODUCE       "sdk" (default): Producer with lingerMs 0 and default batching
//                            (idempotent, up to 5 batches in flight per partition; records sent
//                            while those are out travel together);
//                            "per-record": one record per Produce request (batchBytes 1,
//                            idempotence off so that the harness's whole window is on the wire)
import { Admin } from '../src/client/admin.js';
import { Consumer } from '../src/client/consumer.js';
import { Producer, type ProducerOptions } from '../src/client/producer.js';
import { recordBatchBytesMax } from '../src/partition/limits.js';
import { countProduceRequests, waitForLeaders } from './lib/data-path.js';

interface TopicSpec {
  readonly replicas: number;
  readonly partitions: number;
  readonly storage: 'file' | 'memory';
}

interface ConsumeOptions {
  readonly count: number;
  readonly batch: number;
  readonly deadlineMs: number;
  readonly onRecords: (records: number, bytes: number) => void;
}

export interface LogAdapter {
  describe(): string;
  createTopic(topic: string, spec: TopicSpec): Promise<void>;
  deleteTopic(topic: string): Promise<void>;
  produce(topic: string, value: Uint8Array): Promise<number>;
  produceBatch(topic: string, values: Uint8Array[]): Promise<number>;
  consume(topic: string, options: ConsumeOptions): Promise<number>;
  close(): Promise<void>;
}

const produceModes = ['sdk', 'per-record'] as const;
type ProduceMode = (typeof produceModes)[number];

/** leaderWaitMs bounds how long createTopic waits for every partition to have an agreed leader. */
const leaderWaitMs = 30_000;
/** perRecordInFlightMax: in per-record mode, the Produce requests one partition may have unanswered. */
const perRecordInFlightMax = 10_000;
/** recordOverheadBytesMax: a generous bound on what a batch adds per record (headers, varints). */
const recordOverheadBytesMax = 64;

function bootstrapFromEnv(): string[] {
  const raw = process.env['BROKER_ADDRS'];
  if (raw === undefined || raw.trim() === '') throw new RangeError('BROKER_ADDRS: give the nodes\' client addresses, host:port,host:port,...');
  return raw.split(',').map((address) => address.trim());
}

function produceModeFromEnv(): ProduceMode {
  const raw = process.env['RAFTBUS_PRODUCE'] ?? 'sdk';
  if (!(produceModes as readonly string[]).includes(raw)) throw new RangeError(`RAFTBUS_PRODUCE: '${raw}' is not one of ${produceModes.join(', ')}`);
  return raw as ProduceMode;
}

function singleProducerOptions(bootstrap: readonly string[], mode: ProduceMode): ProducerOptions {
  if (mode === 'per-record') return { bootstrap, acks: 'all', lingerMs: 0, batchBytes: 1, idempotent: false, maxInFlightPerPartition: perRecordInFlightMax };
  return { bootstrap, acks: 'all', lingerMs: 0 };
}

/** createLog connects to the cluster at BROKER_ADDRS; nothing is sent until a topic is created. */
export async function createLog(): Promise<LogAdapter> {
  const bootstrap = bootstrapFromEnv();
  const mode = produceModeFromEnv();
  const admin = new Admin({ bootstrap });
  const cluster = await admin.describeCluster();
  const single = new Producer(singleProducerOptions(bootstrap, mode));
  // A batch of the harness (100 x 1 KiB) fits one record batch: lingerMs 0 seals it once the
  // values sent in one go have joined it, before any other produceBatch call can add to it.
  const batches = new Producer({ bootstrap, acks: 'all', lingerMs: 0, batchBytes: recordBatchBytesMax - 1024 });
  const partitionCounts = new Map<string, number>();
  const counter = countProduceRequests();
  let requestsAtCreate = 0;
  return {
    describe: () =>
      `raftbus ${cluster.brokers.length} brokers at ${bootstrap.join(',')} (SDK Producer/Consumer, acks=all: quorum fdatasync before the ack; produce=${mode})`,
    async createTopic(topic, spec) {
      await admin.createTopic({ name: topic, partitions: spec.partitions, replicationFactor: spec.replicas });
      await waitForLeaders({ bootstrap, topic, partitions: spec.partitions, timeoutMs: leaderWaitMs });
      partitionCounts.set(topic, spec.partitions);
      requestsAtCreate = counter.requests;
    },
    async deleteTopic(topic) {
      console.error(`[raftbus adapter] topic ${topic}: ${counter.requests - requestsAtCreate} Produce requests`);
      partitionCounts.delete(topic);
      await admin.deleteTopic(topic);
    },
    async produce(topic, value) {
      return (await single.send({ topic, value })).offset;
    },
    async produceBatch(topic, values) {
      const bytes = values.reduce((sum, value) => sum + value.length + recordOverheadBytesMax, 0);
      if (bytes > recordBatchBytesMax - 1024) throw new RangeError(`produceBatch: ${values.length} values (${bytes} bytes) do not fit one record batch`);
      const sent = await Promise.all(values.map((value) => batches.send({ topic, value })));
      return sent[0]?.offset ?? -1;
    },
    consume: (topic, options) => consume(bootstrap, topic, partitionCounts.get(topic) ?? 1, options),
    async close() {
      await Promise.all([single.close(), batches.close()]);
      admin.close();
    },
  };
}

/** consume reads from offset 0 of every partition until options.count records or the deadline. */
async function consume(bootstrap: readonly string[], topic: string, partitions: number, options: ConsumeOptions): Promise<number> {
  // maxBytesPerPartition: about `batch` records of 1 KiB per Fetch, as the harness asks.
  const consumer = new Consumer({ bootstrap, autoOffsetReset: 'earliest', maxBytesPerPartition: Math.max(64 * 1024, options.batch * 1100), maxWaitMs: 100 });
  let read = 0;
  try {
    await consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0 })));
    while (read < options.count && Date.now() < options.deadlineMs) {
      const records = await consumer.poll();
      let bytes = 0;
      let counted = 0;
      for (const record of records) {
        if (read + counted >= options.count) break;
        bytes += record.value?.length ?? 0;
        counted++;
      }
      read += counted;
      if (counted > 0) options.onRecords(counted, bytes);
    }
    return read;
  } finally {
    consumer.close();
  }
}
