// `npm run bench:produce`: the data path end to end on real processes. Each repetition starts a
// fresh 3-node cluster (bench/lib/bench-cluster.ts), and for each partition count creates a topic
// with replication factor 3, then measures with the SDK, 1 KiB records, acks=all:
//   sync       Producer (lingerMs 0), one send at a time, each awaited: records/s, latency
//   pipelined  one record per Produce request (lingerMs 0, batchBytes 1, idempotence off so that
//              more than 5 requests may be in flight), a window of 1,000 unacked sends
//   batched    Producer with default batching (lingerMs 5, batchBytes 16 KiB, idempotent, 5 batches
//              in flight per partition) and many sends outstanding: records/s, MB/s
//   consume    Consumer from offset 0 of every partition until every record of the topic is read
//              (time includes opening the consumer): records/s, MB/s
// Around each phase it reads every node's CPU time (/proc) and persist rounds / sync barriers
// (DescribeQuorum, node-wide: every Raft group of the node), so the table shows server CPU and
// fdatasyncs per record. Every loop is bounded by its count and a time cap.
//
// Environment (all optional):
//   REPS=3  PARTITIONS=1,6  WORKLOADS=sync,pipelined,batched,consume  MSG_BYTES=1024
//   SYNC_COUNT=2000 SYNC_WARMUP=5000  PIPELINED_COUNT=20000 PIPELINED_WINDOW=1000
//   BATCHED_COUNT=40000 BATCHED_WINDOW=10000  CAP_S=30 (per phase)
//   LOG_LEVEL=warn  CPU_PROF=1 (V8 profiles of the nodes)  OUT=path.json (raw results)
// The sync warm-up is long for the reason given in raft-commit.ts: fresh node processes run their
// hot paths partly interpreted for the first thousands of requests.
// Quick run: REPS=1 SYNC_COUNT=300 SYNC_WARMUP=200 PIPELINED_COUNT=3000 BATCHED_COUNT=5000 npm run bench:produce
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Admin } from '../src/client/admin.js';
import { Consumer } from '../src/client/consumer.js';
import { Producer, type ProducerOptions } from '../src/client/producer.js';
import { BenchCluster } from './lib/bench-cluster.js';
import { killEverything } from './lib/guards.js';
import { countProduceRequests, waitForLeaders } from './lib/data-path.js';
import { waitForBrokers } from '../src/cluster/start-cluster.js';
import { distSrcHash, machineInfo } from './lib/machine.js';
import { processCpuMicros } from './lib/proc-cpu.js';
import { formatSpread, spreadOf, summarizeLatencies, type LatencySummary, type Spread } from './lib/stats.js';
import { windowed } from './lib/windowed.js';

const projectRoot = join(import.meta.dirname, '../..');
const workloadNames = ['sync', 'pipelined', 'batched', 'consume'] as const;
type WorkloadName = (typeof workloadNames)[number];

function envInteger(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new RangeError(`${name}: expected an integer in ${min}..${max}, got '${raw}'`);
  return n;
}

function envList(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const config = {
  reps: envInteger('REPS', 3, 1, 100),
  partitionCounts: envList('PARTITIONS', '1,6').map((item) => {
    const n = Number(item);
    if (!Number.isSafeInteger(n) || n < 1 || n > 64) throw new RangeError(`PARTITIONS: expected integers in 1..64, got '${item}'`);
    return n;
  }),
  workloads: envList('WORKLOADS', workloadNames.join(',')).map((name) => {
    if (!(workloadNames as readonly string[]).includes(name)) throw new RangeError(`WORKLOADS: unknown '${name}' (${workloadNames.join(', ')})`);
    return name as WorkloadName;
  }),
  messageBytes: envInteger('MSG_BYTES', 1024, 1, 1024 * 1024),
  sync: { count: envInteger('SYNC_COUNT', 2000, 1, 10_000_000), warmup: envInteger('SYNC_WARMUP', 5000, 0, 1_000_000) },
  pipelined: { count: envInteger('PIPELINED_COUNT', 20_000, 1, 10_000_000), window: envInteger('PIPELINED_WINDOW', 1000, 1, 100_000) },
  batched: { count: envInteger('BATCHED_COUNT', 40_000, 1, 10_000_000), window: envInteger('BATCHED_WINDOW', 10_000, 1, 100_000) },
  capS: envInteger('CAP_S', 30, 1, 3600),
  logLevel: process.env['LOG_LEVEL'] ?? 'warn',
  cpuProfile: process.env['CPU_PROF'] === '1',
  out: process.env['OUT'],
  startupTimeoutMs: 30_000,
  stopGraceMs: process.env['CPU_PROF'] === '1' ? 30_000 : 5000,
};

/** NodeSample is what the nodes have done so far: CPU time and persist rounds / sync barriers, summed. */
interface NodeSample {
  readonly cpuMicros: number;
  readonly rounds: number;
  readonly syncs: number;
}

interface PhaseResult {
  readonly workload: WorkloadName;
  readonly partitions: number;
  readonly records: number;
  readonly expected: number;
  readonly elapsedS: number;
  readonly recordsPerS: number;
  readonly megabytesPerS: number;
  /** latency per send (produce workloads only). */
  readonly latency: LatencySummary | undefined;
  readonly produceRequests: number;
  readonly recordsPerRequest: number;
  readonly serverCpuMicrosPerRecord: number;
  /** serverCpuPct: the three nodes together, in % of one core. */
  readonly serverCpuPct: number;
  readonly clientCpuMicrosPerRecord: number;
  readonly syncsPerRecord: number;
  readonly roundsPerRecord: number;
  readonly capped: boolean;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly loadavg1: number;
}

interface Measured {
  readonly records: number;
  readonly expected: number;
  readonly elapsedS: number;
  readonly latency: LatencySummary | undefined;
  readonly capped: boolean;
  readonly errors: number;
  readonly firstError: string | undefined;
}

async function sampleNodes(cluster: BenchCluster): Promise<NodeSample> {
  const views = await cluster.describeAll();
  let cpuMicros = 0;
  let rounds = 0;
  let syncs = 0;
  for (const [id, view] of views) {
    const pid = cluster.pid(id);
    cpuMicros += (pid === undefined ? undefined : processCpuMicros(pid)) ?? Number.NaN;
    rounds += view?.rounds ?? Number.NaN;
    syncs += view?.syncs ?? Number.NaN;
  }
  return { cpuMicros, rounds, syncs };
}

/**
 * Meter samples the nodes (CPU, rounds, syncs), this process's CPU and the Produce counter when
 * the measured part of a workload starts, and again when it ends.
 */
class Meter {
  private before: { nodes: NodeSample; requests: number; client: NodeJS.CpuUsage; load: number } | undefined;

  constructor(
    private readonly cluster: BenchCluster,
    private readonly workload: WorkloadName,
    private readonly partitions: number,
  ) {}

  async start(): Promise<void> {
    const load = loadavg()[0]!;
    const nodes = await sampleNodes(this.cluster);
    this.before = { nodes, requests: countProduceRequests().requests, client: process.cpuUsage(), load };
  }

  async stop(measured: Measured): Promise<PhaseResult> {
    const before = this.before;
    if (before === undefined) throw new Error('Meter.stop before start');
    const client = process.cpuUsage(before.client);
    const requests = countProduceRequests().requests - before.requests;
    const after = await sampleNodes(this.cluster);
    const records = Math.max(1, measured.records);
    const serverMicros = after.cpuMicros - before.nodes.cpuMicros;
    return {
      workload: this.workload,
      partitions: this.partitions,
      records: measured.records,
      expected: measured.expected,
      elapsedS: measured.elapsedS,
      recordsPerS: measured.records / measured.elapsedS,
      megabytesPerS: (measured.records * config.messageBytes) / measured.elapsedS / 1e6,
      latency: measured.latency,
      produceRequests: requests,
      recordsPerRequest: requests === 0 ? Number.NaN : measured.records / requests,
      serverCpuMicrosPerRecord: serverMicros / records,
      serverCpuPct: (serverMicros / 1e6 / measured.elapsedS) * 100,
      clientCpuMicrosPerRecord: (client.user + client.system) / records,
      syncsPerRecord: (after.syncs - before.nodes.syncs) / records,
      roundsPerRecord: (after.rounds - before.nodes.rounds) / records,
      capped: measured.capped,
      errors: measured.errors,
      firstError: measured.firstError,
      loadavg1: before.load,
    };
  }
}

function valueFor(seed: number): Buffer {
  const value = Buffer.alloc(config.messageBytes);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31 + seed) & 0xff;
  return value;
}

/** producerOptions: the SDK settings of each produce workload (acks=all throughout). */
function producerOptions(workload: 'sync' | 'pipelined' | 'batched', bootstrap: readonly string[]): ProducerOptions {
  if (workload === 'sync') return { bootstrap, acks: 'all', lingerMs: 0 };
  if (workload === 'pipelined') return { bootstrap, acks: 'all', lingerMs: 0, batchBytes: 1, idempotent: false, maxInFlightPerPartition: config.pipelined.window };
  return { bootstrap, acks: 'all' };
}

/**
 * produceLoop opens a producer, sends one record per partition (connections, metadata and
 * producer id come before the clock starts), then the workload's sends. Returns what was acked.
 */
async function produceLoop(meter: Meter, options: { workload: 'sync' | 'pipelined' | 'batched'; bootstrap: readonly string[]; topic: string; partitions: number; seed: number }): Promise<PhaseResult> {
  const producer = new Producer(producerOptions(options.workload, options.bootstrap));
  const value = valueFor(options.seed);
  try {
    for (let partition = 0; partition < options.partitions; partition++) await producer.send({ topic: options.topic, partition, value });
    if (options.workload === 'sync' && config.sync.warmup > 0) {
      const warm = await windowed({ count: config.sync.warmup, window: 1, capS: config.capS }, () => producer.send({ topic: options.topic, value }));
      if (warm.errors > 0) throw new Error(`warm-up: ${warm.firstError}`);
    }
    const { count, window } = options.workload === 'sync' ? { count: config.sync.count, window: 1 } : config[options.workload];
    await meter.start();
    const result = await windowed({ count, window, capS: config.capS }, () => producer.send({ topic: options.topic, value }));
    return await meter.stop({ records: result.done, expected: count, elapsedS: result.elapsedS, latency: summarizeLatencies(result.latencies, result.done), capped: result.capped, errors: result.errors, firstError: result.firstError });
  } finally {
    await producer.close().catch(() => undefined);
  }
}

/**
 * consumeAll opens a consumer, learns each partition's end offset, and polls from offset 0 until
 * every partition is read to its end; a partition read to its end leaves the assignment (so no
 * poll waits on it). The clock covers opening the consumer too.
 */
async function consumeAll(meter: Meter, options: { bootstrap: readonly string[]; topic: string; partitions: number }): Promise<PhaseResult> {
  await meter.start();
  const start = performance.now();
  const deadline = start + config.capS * 1000;
  const consumer = new Consumer({ bootstrap: options.bootstrap, autoOffsetReset: 'earliest' });
  try {
    const ends = new Map<number, number>();
    for (let partition = 0; partition < options.partitions; partition++) ends.set(partition, await consumer.listOffset(options.topic, partition, 'latest'));
    const expected = [...ends.values()].reduce((sum, end) => sum + end, 0);
    let positions = [...ends.keys()].map((partition) => ({ topic: options.topic, partition, offset: 0 }));
    let records = 0;
    let capped = false;
    while (positions.length > 0) {
      if (performance.now() > deadline) {
        capped = true;
        break;
      }
      await consumer.assign(positions);
      for (const record of await consumer.poll()) if (record.value !== null) records++;
      positions = consumer
        .assignment()
        .filter((assigned) => (assigned.position ?? 0) < ends.get(assigned.partition)!)
        .map((assigned) => ({ topic: assigned.topic, partition: assigned.partition, offset: assigned.position ?? 0 }));
    }
    const elapsedS = (performance.now() - start) / 1000;
    return await meter.stop({ records, expected, elapsedS, latency: undefined, capped, errors: records < expected && !capped ? 1 : 0, firstError: undefined });
  } finally {
    consumer.close();
  }
}

function describePhase(result: PhaseResult): string {
  const latency = result.latency === undefined ? '' : `  p50 ${result.latency.p50Ms.toFixed(3)} ms  p99 ${result.latency.p99Ms.toFixed(3)} ms`;
  const flags = `${result.capped ? '  CAPPED' : ''}${result.errors > 0 ? `  ERRORS ${result.errors}: ${result.firstError ?? 'records missing'}` : ''}`;
  return (
    `${result.workload.padEnd(9)} p=${result.partitions}  ${result.recordsPerS.toFixed(0).padStart(7)} rec/s  ${result.megabytesPerS.toFixed(1)} MB/s${latency}` +
    `  rec/request ${result.recordsPerRequest.toFixed(1)}  server ${result.serverCpuMicrosPerRecord.toFixed(0)} µs/rec (${result.serverCpuPct.toFixed(0)} %)  client ${result.clientCpuMicrosPerRecord.toFixed(0)} µs/rec  syncs/rec ${result.syncsPerRecord.toFixed(3)}  load ${result.loadavg1.toFixed(1)}${flags}`
  );
}

/** runTopic creates one topic of `partitions` partitions (RF 3) and runs every workload on it. */
async function runTopic(cluster: BenchCluster, bootstrap: readonly string[], rep: number, partitions: number): Promise<PhaseResult[]> {
  const topic = `bench-r${rep}-p${partitions}`;
  const admin = new Admin({ bootstrap });
  try {
    await admin.createTopic({ name: topic, partitions, replicationFactor: 3 });
  } finally {
    admin.close();
  }
  await waitForLeaders({ bootstrap, topic, partitions, timeoutMs: config.startupTimeoutMs });
  const results: PhaseResult[] = [];
  for (const workload of config.workloads) {
    const meter = new Meter(cluster, workload, partitions);
    const result = workload === 'consume' ? await consumeAll(meter, { bootstrap, topic, partitions }) : await produceLoop(meter, { workload, bootstrap, topic, partitions, seed: rep });
    results.push(result);
    console.error(`rep ${rep}/${config.reps} ${describePhase(result)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return results;
}

async function startCluster(): Promise<{ cluster: BenchCluster; bootstrap: string[] }> {
  const cluster = await BenchCluster.create({ nodes: 3, logLevel: config.logLevel, cpuProfile: config.cpuProfile, clientDeadlineMs: 10_000 });
  cluster.startAll();
  await cluster.waitForLeader(config.startupTimeoutMs);
  const bootstrap = [...cluster.nodes.values()].map((node) => node.clientAddress);
  await waitForBrokers({ bootstrap, count: 3, timeoutMs: config.startupTimeoutMs });
  return { cluster, bootstrap };
}

interface SummaryRow {
  readonly workload: WorkloadName;
  readonly partitions: number;
  readonly recordsPerS: Spread;
  readonly megabytesPerS: Spread;
  readonly p50Ms: Spread;
  readonly p99Ms: Spread;
  readonly recordsPerRequest: Spread;
  readonly serverCpuMicrosPerRecord: Spread;
  readonly serverCpuPct: Spread;
  readonly clientCpuMicrosPerRecord: Spread;
  readonly syncsPerRecord: Spread;
  readonly runs: number;
  readonly flagged: number;
}

function summarize(phases: readonly PhaseResult[], workload: WorkloadName, partitions: number): SummaryRow {
  const all = phases.filter((phase) => phase.workload === workload && phase.partitions === partitions);
  const clean = all.filter((phase) => phase.errors === 0 && !phase.capped);
  const of = (pick: (phase: PhaseResult) => number): Spread => spreadOf(clean.map(pick));
  return {
    workload,
    partitions,
    recordsPerS: of((p) => p.recordsPerS),
    megabytesPerS: of((p) => p.megabytesPerS),
    p50Ms: of((p) => p.latency?.p50Ms ?? Number.NaN),
    p99Ms: of((p) => p.latency?.p99Ms ?? Number.NaN),
    recordsPerRequest: of((p) => p.recordsPerRequest),
    serverCpuMicrosPerRecord: of((p) => p.serverCpuMicrosPerRecord),
    serverCpuPct: of((p) => p.serverCpuPct),
    clientCpuMicrosPerRecord: of((p) => p.clientCpuMicrosPerRecord),
    syncsPerRecord: of((p) => p.syncsPerRecord),
    runs: all.length,
    flagged: all.length - clean.length,
  };
}

function label(workload: WorkloadName): string {
  switch (workload) {
    case 'sync':
      return `sync (1 in flight, lingerMs 0), ${config.sync.count}`;
    case 'pipelined':
      return `pipelined (1 record/request, ${config.pipelined.window} in flight), ${config.pipelined.count}`;
    case 'batched':
      return `batched (SDK defaults, ${config.batched.window} sends outstanding), ${config.batched.count}`;
    case 'consume':
      return 'consume (from offset 0, every record of the topic)';
  }
}

function markdown(rows: readonly SummaryRow[]): string {
  return [
    `raftbus data path: 3 nodes (one process each), topic RF 3, ${config.messageBytes} B records, acks=all (quorum fdatasync); median (min–max) over ${config.reps} rep(s), a fresh cluster per rep`,
    '',
    '| Workload | partitions | records/s | MB/s | p50 ms | p99 ms | records/request | server CPU µs/record | server CPU % | client CPU µs/record | fdatasyncs/record (3 nodes) | runs (flagged) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${label(row.workload)} | ${row.partitions} | ${formatSpread(row.recordsPerS)} | ${formatSpread(row.megabytesPerS)} | ${formatSpread(row.p50Ms)} | ${formatSpread(row.p99Ms)} | ${formatSpread(row.recordsPerRequest)} | ${formatSpread(row.serverCpuMicrosPerRecord)} | ${formatSpread(row.serverCpuPct)} | ${formatSpread(row.clientCpuMicrosPerRecord)} | ${formatSpread(row.syncsPerRecord)} | ${row.runs} (${row.flagged}) |`,
    ),
  ].join('\n');
}

async function finishCluster(cluster: BenchCluster, rep: number, profileRoot: string): Promise<string[]> {
  await cluster.stop(config.stopGraceMs);
  const copied: string[] = [];
  if (config.cpuProfile) {
    for (const node of cluster.nodes.values()) {
      if (node.cpuProfileDir === undefined || !existsSync(node.cpuProfileDir)) continue;
      const target = join(profileRoot, `rep-${rep}`, `node-${node.id}`);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(node.cpuProfileDir, target, { recursive: true });
      copied.push(target);
    }
  }
  cluster.remove();
  return copied;
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const stamp = started.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const profileRoot = config.out === undefined ? join(projectRoot, 'bench/results', `${stamp}-produce-cpuprof`) : `${resolve(config.out).replace(/\.json$/, '')}-cpuprof`;
  console.error(`raftbus bench:produce: ${config.reps} rep(s), partitions ${config.partitionCounts.join(',')}, ${config.workloads.join(' + ')}, log level ${config.logLevel}${config.cpuProfile ? ', CPU profiles' : ''}`);
  console.error(`code under test: dist/src sha256 ${distSrcHash(projectRoot)}`);
  const phases: PhaseResult[] = [];
  const failures: string[] = [];
  const profiles: string[] = [];
  try {
    for (let rep = 1; rep <= config.reps; rep++) {
      const { cluster, bootstrap } = await startCluster();
      try {
        for (const partitions of config.partitionCounts) phases.push(...(await runTopic(cluster, bootstrap, rep, partitions)));
      } catch (error) {
        failures.push(`rep ${rep}: ${(error as Error).stack ?? String(error)}`);
        console.error(`rep ${rep} failed: ${(error as Error).stack ?? String(error)}`);
        for (const id of cluster.nodes.keys()) console.error(`--- node ${id} log tail ---\n${cluster.logTail(id)}`);
      } finally {
        profiles.push(...(await finishCluster(cluster, rep, profileRoot)));
      }
    }
  } finally {
    killEverything();
  }
  const rows = config.partitionCounts.flatMap((partitions) => config.workloads.map((workload) => summarize(phases, workload, partitions)));
  console.log(markdown(rows));
  if (config.out !== undefined) {
    const report = { bench: 'produce-consume', started, finished: new Date().toISOString(), machine: machineInfo(projectRoot), config, summary: rows, phases, failures, cpuProfiles: profiles };
    mkdirSync(dirname(resolve(config.out)), { recursive: true });
    writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    console.error(`raw results: ${config.out}`);
  }
  if (profiles.length > 0) console.error(`CPU profiles: ${profileRoot}`);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
