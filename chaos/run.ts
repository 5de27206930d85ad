// npm run chaos: start the nodes of a cluster file as real processes behind fault-injecting
// proxies, run idempotent producers and consumer groups against them while a seeded schedule kills,
// pauses and partitions nodes, then heal, read everything back and let a checker that stands
// outside the system judge the history. Writes history.json and report.html; exits 1 on any
// violation (also a node on an empty data directory that its peers took in), 2 when the run
// itself could not be carried out.
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Admin } from '../src/client/admin.js';
import { loadClusterFile, type ClusterConfig } from '../src/node/cluster-file.js';
import { seededRandom } from '../src/raft/prng.js';
import { nodePorts } from '../src/cluster/free-port.js';
import { pollUntil } from '../src/cluster/poll.js';
import { check } from './checker.js';
import { faultKinds, NotRefusedError, parseFaults, runSchedule, type FaultKind } from './faults.js';
import type { History, HistoryEvent } from './history.js';
import { startChaosNetwork } from './net/network.js';
import { NodeProcesses } from './processes.js';
import { writeReport } from './report.js';
import { Workload, finalRead, type Recorder } from './workload.js';

interface ChaosOptions {
  readonly cluster: string | undefined;
  readonly duration: number;
  readonly faults: FaultKind[];
  readonly seed: number;
  readonly out: string;
  readonly topics: number;
  readonly partitions: number;
  /** valueBytes pads every value to this size (0: no padding); segmentBytes is the topics' segment.bytes, when given. */
  readonly valueBytes: number;
  readonly segmentBytes: number | undefined;
}

/** valueBytesMax bounds --value-bytes: under the default max.message.bytes with room for the batch. */
const valueBytesMax = 512 * 1024;

/** historyEventsMax bounds the history kept in memory; a run that would exceed it stops producing. */
const historyEventsMax = 2_000_000;
/** offsetsCompactBytes: the nodes compact the offsets partitions this early, so that a run's faults meet groups restored from snapshots. */
const offsetsCompactBytes = 16 * 1024;

class RunRecorder implements Recorder {
  readonly events: HistoryEvent[] = [];
  private readonly startedMs = Date.now();
  full = false;

  now(): number {
    return Date.now() - this.startedMs;
  }

  record(event: HistoryEvent): void {
    if (this.events.length >= historyEventsMax) {
      this.full = true;
      return;
    }
    this.events.push(event);
  }
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

/** clusterFor loads the cluster file, or makes a 3-node one on free ports; data goes under out/data either way. */
async function clusterFor(options: ChaosOptions): Promise<ClusterConfig> {
  const dataDir = join(options.out, 'data');
  if (options.cluster !== undefined) {
    const loaded = await loadClusterFile(options.cluster);
    return { clusterId: loaded.cluster.clusterId, nodes: loaded.cluster.nodes.map((node) => ({ ...node, dataDir: join(dataDir, `node-${node.id}`) })) };
  }
  const nodes = [];
  const ports = await nodePorts(3);
  for (let id = 1; id <= 3; id++) nodes.push({ id, host: '127.0.0.1', ...ports[id - 1]!, roles: ['controller', 'broker'] as const, dataDir: join(dataDir, `node-${id}`), rack: undefined });
  return { clusterId: 'raftbus-chaos', nodes };
}

async function brokersUnfenced(admin: Admin, count: number): Promise<boolean> {
  const cluster = await admin.describeCluster().catch(() => undefined);
  return cluster !== undefined && cluster.brokers.filter((broker) => !broker.fenced).length >= count;
}

export async function runChaos(options: ChaosOptions): Promise<number> {
  mkdirSync(join(options.out, 'logs'), { recursive: true });
  const random = seededRandom(options.seed);
  const recorder = new RunRecorder();
  const cluster = await clusterFor(options);
  const config = { duration: options.duration, faults: options.faults, topics: options.topics, partitions: options.partitions, valueBytes: options.valueBytes, segmentBytes: options.segmentBytes, nodes: cluster.nodes.map((node) => node.id), cluster: options.cluster ?? '(generated, 3 nodes)' };
  console.log(`chaos: seed ${options.seed}, ${options.duration} s, faults ${options.faults.join(',')}, results in ${options.out}`);
  const net = await startChaosNetwork({ cluster, dir: join(options.out, 'cluster-files'), random });
  const launches = new Map(cluster.nodes.map((node) => [node.id, { clusterFile: net.clusterFileOf(node.id), advertisedClientPort: Number(net.clientAddressOf(node.id).split(':').pop()), dataDir: node.dataDir }]));
  const nodes = new NodeProcesses(launches, join(options.out, 'logs'), ['--session-timeout-ms', '4000', '--offsets-compact-bytes', String(offsetsCompactBytes)]);
  const bootstrap = cluster.nodes.map((node) => net.clientAddressOf(node.id));
  const admin = new Admin({ bootstrap, retryForMs: 30_000 });
  const topics = Array.from({ length: options.topics }, (_, i) => `chaos-${i}`);
  let workload: Workload | undefined;
  try {
    for (const id of nodes.ids) nodes.start(id);
    await pollUntil(() => brokersUnfenced(admin, cluster.nodes.length), { what: 'every broker to register', timeoutMs: 60_000, everyMs: 200 });
    const replicationFactor = Math.min(3, cluster.nodes.length);
    const configs: Record<string, string> = options.segmentBytes === undefined ? {} : { 'segment.bytes': String(options.segmentBytes) };
    for (const topic of topics) await admin.createTopic({ name: topic, partitions: options.partitions, replicationFactor, configs });
    recorder.record({ kind: 'note', t: recorder.now(), text: `cluster up; topics ${topics.join(', ')} with ${options.partitions} partitions, RF ${replicationFactor}` });

    workload = new Workload({ bootstrap, topics, producers: 4, groups: 2, consumersPerGroup: 2, keys: 16, random, recorder, sendTimeoutMs: 20_000, pauseBetweenSendsMs: 5, valueBytes: options.valueBytes });
    workload.start();
    const faultsUntil = recorder.now() + options.duration * 1000;
    await runSchedule({ net, nodes, random, recorder, topics, workload }, options.faults, faultsUntil);

    // Heal everything and let the cluster and the groups settle before stopping the producers.
    net.heal();
    for (const id of nodes.ids) {
      if (nodes.isPaused(id)) nodes.resume(id);
      if (!nodes.isRunning(id)) nodes.start(id);
    }
    recorder.record({ kind: 'note', t: recorder.now(), text: 'healed: every link restored, every node running' });
    await pollUntil(() => brokersUnfenced(admin, cluster.nodes.length), { what: 'every broker to be back after healing', timeoutMs: 60_000, everyMs: 200 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await workload.stopProducing();
    const partitionsInAll = topics.length * options.partitions;
    await pollUntil(() => [...workload!.assignedPartitions().values()].every((count) => count === partitionsInAll) && workload!.lag() === 0, { what: 'the consumer groups to catch up', timeoutMs: 60_000, everyMs: 200 }).catch((error: Error) => recorder.record({ kind: 'note', t: recorder.now(), text: error.message }));
    await workload.stop();
    await finalRead({ bootstrap, topics, recorder, timeoutMs: 60_000 });
  } catch (error) {
    recorder.record({ kind: 'note', t: recorder.now(), text: `the run failed: ${(error as Error).message}` });
    console.error(`chaos: the run failed: ${(error as Error).message}`);
    await workload?.stop().catch(() => undefined);
    await finish(options, recorder, config, { nodes, net, admin });
    return error instanceof NotRefusedError ? 1 : 2; // a node taken in on an empty directory is a violation
  }
  return finish(options, recorder, config, { nodes, net, admin });
}

async function finish(options: ChaosOptions, recorder: RunRecorder, config: Record<string, unknown>, parts: { nodes: NodeProcesses; net: { close(): Promise<void>; stats(): unknown }; admin: Admin }): Promise<number> {
  parts.admin.close();
  await parts.nodes.stopAll(10_000);
  const linkStats = parts.net.stats();
  await parts.net.close();
  const history: History = { seed: options.seed, startedAt: new Date(Date.now() - recorder.now()).toISOString(), config: { ...config, linkStats }, events: recorder.events };
  const verdict = check(history);
  writeReport(options.out, history, verdict);
  writeFileSync(join(options.out, 'verdict.json'), JSON.stringify(verdict, null, 2));
  console.log(`chaos: ${verdict.ok ? 'PASS' : 'FAIL'} ${JSON.stringify(verdict.counts)}`);
  console.log(`chaos: report ${resolve(options.out, 'report.html')}`);
  const sizes = `${options.valueBytes > 0 ? ` --value-bytes ${options.valueBytes}` : ''}${options.segmentBytes === undefined ? '' : ` --segment-bytes ${options.segmentBytes}`}`;
  console.log(`chaos: replay with: npm run chaos -- --seed ${options.seed} --duration ${options.duration} --faults ${options.faults.join(',')} --topics ${options.topics} --partitions ${options.partitions}${sizes}${options.cluster === undefined ? '' : ` --cluster ${options.cluster}`}`);
  return verdict.ok ? 0 : 1;
}

async function main(): Promise<void> {
  const program = new Command('chaos')
    .description('run a workload against real node processes under a seeded schedule of faults, then check the history')
    .option('--cluster <file>', 'the cluster file (default: a generated 3-node cluster on free ports)')
    .option('--duration <s>', 'seconds of faults', positiveInteger, 60)
    .option('--faults <list>', `comma-separated faults, or "all": ${faultKinds.join(', ')}`, 'all')
    .option('--seed <n>', 'the seed of the fault schedule and the workload (default: random)', positiveInteger)
    .option('--out <dir>', 'where history.json, report.html and the node logs go (default: chaos-results/<time>)')
    .option('--topics <n>', 'topics of the workload', positiveInteger, 2)
    .option('--partitions <n>', 'partitions per topic', positiveInteger, 3)
    .option('--value-bytes <n>', `pad every value to n bytes (at most ${valueBytesMax}), so that partition logs roll segments`, positiveInteger)
    .option('--segment-bytes <n>', "the topics' segment.bytes (the broker enforces its bounds)", positiveInteger);
  program.parse();
  const raw = program.opts<{ cluster?: string; duration: number; faults: string; seed?: number; out?: string; topics: number; partitions: number; valueBytes?: number; segmentBytes?: number }>();
  if ((raw.valueBytes ?? 0) > valueBytesMax) {
    console.error(`error: --value-bytes ${raw.valueBytes} is over ${valueBytesMax}`);
    process.exitCode = 2;
    return;
  }
  let faults: FaultKind[];
  try {
    faults = parseFaults(raw.faults);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = 2;
    return;
  }
  const out = resolve(raw.out ?? join('chaos-results', new Date().toISOString().replace(/[:.]/g, '-')));
  const code = await runChaos({ cluster: raw.cluster, duration: raw.duration, faults, seed: raw.seed ?? randomInt(1, 2 ** 31 - 1), out, topics: raw.topics, partitions: raw.partitions, valueBytes: raw.valueBytes ?? 0, segmentBytes: raw.segmentBytes });
  // Everything the run started is stopped; do not wait on a client's late retry timer to exit.
  process.exit(code);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) void main();
