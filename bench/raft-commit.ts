// `npm run bench`: how fast the metadata quorum (Raft group 0) commits, measured end to end on
// real processes. Each run starts a fresh 3-node cluster (own temp dir, free 127.0.0.1 ports),
// waits for a leader, and sends AppendNoOp to the leader through the SDK's AdminClient:
//   sequential  one call in flight: warm-up, then `count` calls; commits/s and latency. The warm-up
//               is long because the nodes are fresh processes: V8 compiles the hot paths (grpc-js,
//               HTTP/2, Raft) only after thousands of calls, and with 200 the measured calls ran
//               partly interpreted, at about two thirds of the rate a node reaches once warm. A
//               broker runs for days; its warm rate is the one to compare with etcd's (compiled Go).
//   pipelined   `inflight` calls in flight, `count` calls; commits/s and latency under load
// Around each measured phase it reads every node's DescribeQuorum `rounds`/`syncs` counters and
// /proc CPU time, so the table shows persist rounds, fsync barriers and CPU per commit.
// --topic-partitions N first creates a topic of N partitions (replication factor 3) and waits for
// their leaders, so that group 0 commits beside N partition groups on every node, as in a cluster
// in use. Every loop is bounded by its count and by a time cap. Every node process is stopped after its
// run (SIGTERM, then SIGKILL), and killed on Ctrl-C, errors and exit.
//
//   node dist/bench/raft-commit.js [--runs 5] [--count 2000] [--warmup 5000] [--pipelined-count 20000]
//     [--inflight 64] [--payload-bytes 64] [--seq-cap-s 60] [--pipelined-cap-s 120]
//     [--topic-partitions 0] [--log-level info] [--cpu-prof] [--same-cluster] [--workloads sequential,pipelined] [--out DIR]
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { integerArg, printHeaderHelp } from './lib/args.js';
import { Admin } from '../src/client/admin.js';
import { waitForBrokers } from '../src/cluster/start-cluster.js';
import { waitForLeaders } from './lib/data-path.js';
import { BenchCluster } from './lib/bench-cluster.js';
import { killEverything } from './lib/guards.js';
import { distSrcHash, machineInfo } from './lib/machine.js';
import { processCpuMicros } from './lib/proc-cpu.js';
import { formatSpread, spreadOf, summarizeLatencies, type LatencySummary, type Spread } from './lib/stats.js';

const projectRoot = join(import.meta.dirname, '../..');

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    count: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '5000' },
    'pipelined-count': { type: 'string', default: '20000' },
    inflight: { type: 'string', default: '64' },
    'payload-bytes': { type: 'string', default: '64' },
    'topic-partitions': { type: 'string', default: '0' },
    'seq-cap-s': { type: 'string', default: '60' },
    'pipelined-cap-s': { type: 'string', default: '120' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'boolean', default: false },
    'same-cluster': { type: 'boolean', default: false },
    workloads: { type: 'string', default: 'sequential,pipelined' },
    out: { type: 'string', default: join(projectRoot, 'bench/results') },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (args.help) printHeaderHelp(import.meta.url);

function positive(name: string, value: string, max: number): number {
  return integerArg(name, value, 1, max);
}

const config = {
  runs: positive('runs', args.runs, 100),
  sequential: { warmup: integerArg('warmup', args.warmup, 0, 1_000_000), count: positive('count', args.count, 10_000_000), capS: positive('seq-cap-s', args['seq-cap-s'], 3600) },
  pipelined: { count: positive('pipelined-count', args['pipelined-count'], 10_000_000), inflight: positive('inflight', args.inflight, 10_000), capS: positive('pipelined-cap-s', args['pipelined-cap-s'], 3600) },
  payloadBytes: positive('payload-bytes', args['payload-bytes'], 64 * 1024),
  topicPartitions: integerArg('topic-partitions', args['topic-partitions'], 0, 10_000),
  logLevel: args['log-level'],
  cpuProfile: args['cpu-prof'],
  sameCluster: args['same-cluster'],
  workloads: args.workloads.split(',').map((name) => name.trim()),
  startupTimeoutMs: 30_000,
  stopGraceMs: args['cpu-prof'] ? 30_000 : 5_000,
};
for (const name of config.workloads) {
  if (name !== 'sequential' && name !== 'pipelined') throw new Error(`--workloads: unknown workload '${name}' (sequential, pipelined)`);
}

/** NodeCounters is what one node has done so far: persist rounds, sync barriers, CPU time. */
interface NodeCounters {
  readonly rounds: number;
  readonly syncs: number;
  readonly syncWaitMicros: number;
  readonly syncWaitBuckets: readonly number[];
  readonly cpuMicros: number | undefined;
}

interface NodeWork {
  readonly nodeId: number;
  readonly role: string;
  readonly rounds: number;
  readonly syncs: number;
  readonly roundsPerCommit: number;
  readonly syncsPerCommit: number;
  /** syncWaitMeanMs is how long the node's rounds waited for their durability barriers, on average. */
  readonly syncWaitMeanMs: number;
  /** syncWaitBuckets counts those waits by duration over the phase (bounds: DescribeQuorum's). */
  readonly syncWaitBuckets: readonly number[];
  readonly cpuMicrosPerCommit: number;
  /** cpuPct is the node's CPU over the phase, in % of one core. */
  readonly cpuPct: number;
}

interface PhaseResult {
  readonly workload: 'sequential' | 'pipelined';
  readonly inflight: number;
  readonly warmup: number;
  readonly requested: number;
  readonly committed: number;
  readonly elapsedS: number;
  readonly commitsPerS: number;
  readonly latency: LatencySummary;
  /** capped: the time cap ended the phase before the count was reached. */
  readonly capped: boolean;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly leaderId: number;
  readonly termBefore: number;
  readonly termAfter: number | undefined;
  readonly leaderChanged: boolean;
  readonly nodes: readonly NodeWork[];
  readonly clientCpuMicrosPerCommit: number;
  readonly clientCpuPct: number;
  /** loadavg is the 1-minute load average before and after the measured part (others' load shows here). */
  readonly loadavg1: readonly [number, number];
}

interface RunResult {
  readonly run: number;
  readonly clusterDir: string;
  readonly phases: PhaseResult[];
  readonly error: string | undefined;
}

function payloadFor(i: number): Buffer {
  const payload = Buffer.alloc(config.payloadBytes, 0x61);
  payload.writeUInt32BE(i >>> 0, 0);
  return payload;
}

async function countersOf(cluster: BenchCluster): Promise<Map<number, NodeCounters>> {
  const views = await cluster.describeAll();
  const counters = new Map<number, NodeCounters>();
  for (const [id, view] of views) {
    if (view === undefined) throw new Error(`node ${id} did not answer DescribeQuorum`);
    const pid = cluster.pid(id);
    counters.set(id, {
      rounds: view.rounds,
      syncs: view.syncs,
      syncWaitMicros: view.syncWaitMicros,
      syncWaitBuckets: view.syncWaitBuckets,
      cpuMicros: pid === undefined ? undefined : processCpuMicros(pid),
    });
  }
  return counters;
}

/** loop sends up to count AppendNoOps to the leader, inflight at a time, until done or capS passed. */
async function loop(
  cluster: BenchCluster,
  leaderId: number,
  options: { count: number; inflight: number; capS: number; indexBase: number },
): Promise<{ latencies: Float64Array; committed: number; elapsedS: number; capped: boolean; errors: number; firstError: string | undefined }> {
  const client = cluster.client(leaderId);
  const latencies = new Float64Array(options.count);
  let issued = 0;
  let committed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let capped = false;
  const start = performance.now();
  const deadline = start + options.capS * 1000;
  const worker = async (): Promise<void> => {
    while (issued < options.count && errors === 0) {
      if (performance.now() > deadline) {
        capped = true;
        return;
      }
      const i = issued++;
      const payload = payloadFor(options.indexBase + i);
      const t0 = performance.now();
      try {
        await client.appendNoOp(payload);
        latencies[committed++] = performance.now() - t0;
      } catch (error) {
        errors++;
        firstError ??= `${(error as Error).name}: ${(error as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.inflight, options.count) }, worker));
  return { latencies, committed, elapsedS: (performance.now() - start) / 1000, capped, errors, firstError };
}

async function phase(cluster: BenchCluster, workload: 'sequential' | 'pipelined', indexBase: number): Promise<PhaseResult> {
  const leader = await cluster.waitForLeader(config.startupTimeoutMs);
  const inflight = workload === 'sequential' ? 1 : config.pipelined.inflight;
  const count = workload === 'sequential' ? config.sequential.count : config.pipelined.count;
  const capS = workload === 'sequential' ? config.sequential.capS : config.pipelined.capS;
  const warmup = workload === 'sequential' ? config.sequential.warmup : 0;
  if (warmup > 0) {
    const warm = await loop(cluster, leader.nodeId, { count: warmup, inflight: 1, capS, indexBase });
    if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
  }
  const loadBefore = loadavg()[0]!;
  const before = await countersOf(cluster);
  const clientBefore = process.cpuUsage();
  const measured = await loop(cluster, leader.nodeId, { count, inflight, capS, indexBase: indexBase + warmup });
  const clientCpu = process.cpuUsage(clientBefore);
  const after = await countersOf(cluster);
  const afterViews = await cluster.describeAll();
  const leaderAfter = afterViews.get(leader.nodeId);
  const commits = Math.max(1, measured.committed);
  const nodes: NodeWork[] = [...before.keys()].map((id) => {
    const b = before.get(id)!;
    const a = after.get(id)!;
    const cpu = a.cpuMicros !== undefined && b.cpuMicros !== undefined ? a.cpuMicros - b.cpuMicros : Number.NaN;
    const syncWaitBuckets = a.syncWaitBuckets.map((count, i) => count - (b.syncWaitBuckets[i] ?? 0));
    const syncWaits = syncWaitBuckets.reduce((sum, count) => sum + count, 0);
    return {
      nodeId: id,
      role: id === leader.nodeId ? 'leader' : 'follower',
      rounds: a.rounds - b.rounds,
      syncs: a.syncs - b.syncs,
      roundsPerCommit: (a.rounds - b.rounds) / commits,
      syncsPerCommit: (a.syncs - b.syncs) / commits,
      syncWaitMeanMs: syncWaits === 0 ? Number.NaN : (a.syncWaitMicros - b.syncWaitMicros) / syncWaits / 1000,
      syncWaitBuckets,
      cpuMicrosPerCommit: cpu / commits,
      cpuPct: (cpu / 1e6 / measured.elapsedS) * 100,
    };
  });
  const clientMicros = clientCpu.user + clientCpu.system;
  return {
    workload,
    inflight,
    warmup,
    requested: count,
    committed: measured.committed,
    elapsedS: measured.elapsedS,
    commitsPerS: measured.committed / measured.elapsedS,
    latency: summarizeLatencies(measured.latencies, measured.committed),
    capped: measured.capped,
    errors: measured.errors,
    firstError: measured.firstError,
    leaderId: leader.nodeId,
    termBefore: leader.term,
    termAfter: leaderAfter?.term,
    leaderChanged: leaderAfter?.role !== 'leader' || leaderAfter.term !== leader.term,
    nodes,
    clientCpuMicrosPerCommit: clientMicros / commits,
    clientCpuPct: (clientMicros / 1e6 / measured.elapsedS) * 100,
    loadavg1: [loadBefore, loadavg()[0]!],
  };
}

async function startCluster(): Promise<BenchCluster> {
  const cluster = await BenchCluster.create({ nodes: 3, logLevel: config.logLevel, cpuProfile: config.cpuProfile, clientDeadlineMs: 10_000 });
  cluster.startAll();
  await cluster.waitForLeader(config.startupTimeoutMs);
  if (config.topicPartitions > 0) {
    const bootstrap = [...cluster.nodes.values()].map((node) => node.clientAddress);
    await waitForBrokers({ bootstrap, count: 3, timeoutMs: config.startupTimeoutMs });
    const admin = new Admin({ bootstrap });
    try {
      await admin.createTopic({ name: 'bench-load', partitions: config.topicPartitions, replicationFactor: 3 });
    } finally {
      admin.close();
    }
    await waitForLeaders({ bootstrap, topic: 'bench-load', partitions: config.topicPartitions, timeoutMs: config.startupTimeoutMs });
  }
  return cluster;
}

function describePhase(result: PhaseResult): string {
  const leader = result.nodes.find((node) => node.role === 'leader')!;
  const followers = result.nodes.filter((node) => node.role === 'follower');
  const followerSyncs = followers.map((node) => node.syncsPerCommit.toFixed(3)).join('/');
  const followerWaits = followers.map((node) => node.syncWaitMeanMs.toFixed(3)).join('/');
  return (
    `${result.workload.padEnd(10)} ${result.commitsPerS.toFixed(0).padStart(6)} commits/s  p50 ${result.latency.p50Ms.toFixed(3)} ms  p99 ${result.latency.p99Ms.toFixed(3)} ms` +
    `  leader syncs/commit ${leader.syncsPerCommit.toFixed(3)} rounds/commit ${leader.roundsPerCommit.toFixed(3)}  followers syncs/commit ${followerSyncs}  sync wait ms leader ${leader.syncWaitMeanMs.toFixed(3)} followers ${followerWaits}  load ${result.loadavg1[0].toFixed(1)}` +
    `${result.capped ? '  CAPPED' : ''}${result.errors > 0 ? `  ERRORS ${result.errors}: ${result.firstError}` : ''}${result.leaderChanged ? '  LEADER CHANGED' : ''}`
  );
}

interface SummaryRow {
  readonly workload: string;
  readonly commitsPerS: Spread;
  readonly p50Ms: Spread;
  readonly p90Ms: Spread;
  readonly p99Ms: Spread;
  readonly leaderSyncsPerCommit: Spread;
  readonly leaderRoundsPerCommit: Spread;
  readonly followerSyncsPerCommit: Spread;
  readonly followerRoundsPerCommit: Spread;
  readonly leaderSyncWaitMs: Spread;
  readonly followerSyncWaitMs: Spread;
  readonly leaderCpuMicrosPerCommit: Spread;
  readonly followerCpuMicrosPerCommit: Spread;
  readonly clientCpuMicrosPerCommit: Spread;
  readonly leaderCpuPct: Spread;
  readonly loadavg1: Spread;
  readonly runs: number;
  readonly flagged: number;
}

function summarize(runs: readonly RunResult[], workload: 'sequential' | 'pipelined'): SummaryRow {
  const phases = runs.flatMap((run) => run.phases.filter((result) => result.workload === workload));
  const clean = phases.filter((result) => result.errors === 0 && !result.leaderChanged);
  const of = (pick: (result: PhaseResult) => number): Spread => spreadOf(clean.map(pick));
  const leader = (result: PhaseResult): NodeWork => result.nodes.find((node) => node.role === 'leader')!;
  const followersMean = (result: PhaseResult, pick: (node: NodeWork) => number): number => {
    const followers = result.nodes.filter((node) => node.role === 'follower');
    return followers.reduce((sum, node) => sum + pick(node), 0) / followers.length;
  };
  return {
    workload,
    commitsPerS: of((r) => r.commitsPerS),
    p50Ms: of((r) => r.latency.p50Ms),
    p90Ms: of((r) => r.latency.p90Ms),
    p99Ms: of((r) => r.latency.p99Ms),
    leaderSyncsPerCommit: of((r) => leader(r).syncsPerCommit),
    leaderRoundsPerCommit: of((r) => leader(r).roundsPerCommit),
    followerSyncsPerCommit: of((r) => followersMean(r, (n) => n.syncsPerCommit)),
    followerRoundsPerCommit: of((r) => followersMean(r, (n) => n.roundsPerCommit)),
    leaderSyncWaitMs: of((r) => leader(r).syncWaitMeanMs),
    followerSyncWaitMs: of((r) => followersMean(r, (n) => n.syncWaitMeanMs)),
    leaderCpuMicrosPerCommit: of((r) => leader(r).cpuMicrosPerCommit),
    followerCpuMicrosPerCommit: of((r) => followersMean(r, (n) => n.cpuMicrosPerCommit)),
    clientCpuMicrosPerCommit: of((r) => r.clientCpuMicrosPerCommit),
    leaderCpuPct: of((r) => leader(r).cpuPct),
    loadavg1: of((r) => (r.loadavg1[0] + r.loadavg1[1]) / 2),
    runs: phases.length,
    flagged: phases.filter((r) => r.capped || r.errors > 0 || r.leaderChanged).length,
  };
}

function markdown(rows: readonly SummaryRow[]): string {
  const label = (row: SummaryRow): string =>
    row.workload === 'sequential' ? `sequential (1 in flight, ${config.sequential.count})` : `pipelined (${config.pipelined.inflight} in flight, ${config.pipelined.count})`;
  const lines = [
    `raftbus metadata quorum, 3 nodes${config.topicPartitions > 0 ? ` hosting a ${config.topicPartitions}-partition topic (RF 3)` : ''}, AppendNoOp ${config.payloadBytes} B; median (min–max) over ${config.runs} run(s), ${config.sameCluster ? 'one cluster for all runs' : 'a fresh cluster per run'}`,
    '',
    '| Workload | commits/s | p50 ms | p90 ms | p99 ms | runs (flagged) | load avg (1 min) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${label(row)} | ${formatSpread(row.commitsPerS)} | ${formatSpread(row.p50Ms)} | ${formatSpread(row.p90Ms)} | ${formatSpread(row.p99Ms)} | ${row.runs} (${row.flagged}) | ${formatSpread(row.loadavg1)} |`,
    ),
    '',
    'Durability work and CPU per commit (followers: mean of the two; rounds also count heartbeat rounds; sync wait: mean time a round waited for its fsyncs):',
    '',
    '| Workload | leader syncs/commit | leader rounds/commit | follower syncs/commit | follower rounds/commit | leader sync wait ms | follower sync wait ms | leader CPU µs/commit | follower CPU µs/commit | client CPU µs/commit | leader CPU % |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.workload} | ${formatSpread(row.leaderSyncsPerCommit)} | ${formatSpread(row.leaderRoundsPerCommit)} | ${formatSpread(row.followerSyncsPerCommit)} | ${formatSpread(row.followerRoundsPerCommit)} | ${formatSpread(row.leaderSyncWaitMs)} | ${formatSpread(row.followerSyncWaitMs)} | ${formatSpread(row.leaderCpuMicrosPerCommit)} | ${formatSpread(row.followerCpuMicrosPerCommit)} | ${formatSpread(row.clientCpuMicrosPerCommit)} | ${formatSpread(row.leaderCpuPct)} |`,
    ),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const outDir = args.out;
  mkdirSync(outDir, { recursive: true });
  const outPath = join(outDir, `${stamp}.json`);
  console.error(`raftbus bench: ${config.runs} run(s), ${config.workloads.join(' + ')}, ${config.sameCluster ? 'one cluster' : 'fresh cluster per run'}, log level ${config.logLevel}${config.cpuProfile ? ', CPU profiles' : ''}`);
  const started = new Date().toISOString();
  console.error(`code under test: dist/src sha256 ${distSrcHash(projectRoot)}`);
  const runs: RunResult[] = [];
  let shared: BenchCluster | undefined;
  const profiles: string[] = [];
  const finishCluster = async (cluster: BenchCluster, run: number): Promise<void> => {
    await cluster.stop(config.stopGraceMs);
    if (config.cpuProfile) {
      const target = join(outDir, `${stamp}-cpuprof`, `run-${run}`);
      mkdirSync(target, { recursive: true });
      for (const node of cluster.nodes.values()) {
        if (node.cpuProfileDir !== undefined && existsSync(node.cpuProfileDir)) {
          cpSync(node.cpuProfileDir, join(target, `node-${node.id}`), { recursive: true });
          profiles.push(join(target, `node-${node.id}`));
        }
      }
    }
    cluster.remove();
  };
  try {
    let indexBase = 0;
    for (let run = 1; run <= config.runs; run++) {
      let cluster: BenchCluster | undefined;
      const phases: PhaseResult[] = [];
      let error: string | undefined;
      try {
        cluster = shared ?? (await startCluster());
        if (config.sameCluster) shared = cluster;
        for (const workload of config.workloads as ('sequential' | 'pipelined')[]) {
          const result = await phase(cluster, workload, indexBase);
          indexBase += result.warmup + result.requested;
          phases.push(result);
          console.error(`run ${run}/${config.runs} ${describePhase(result)}`);
        }
        const leaderRole = phases.map((p) => `leader=node ${p.leaderId}`).join(', ');
        console.error(`run ${run}/${config.runs} done (${leaderRole})`);
      } catch (caught) {
        error = (caught as Error).stack ?? String(caught);
        console.error(`run ${run}/${config.runs} failed: ${error}`);
        if (cluster !== undefined) for (const id of cluster.nodes.keys()) console.error(`--- node ${id} log tail ---\n${cluster.logTail(id)}`);
      }
      runs.push({ run, clusterDir: cluster?.dir ?? '', phases, error });
      if (cluster !== undefined && !config.sameCluster) await finishCluster(cluster, run);
      else if (cluster !== undefined && error !== undefined) {
        await finishCluster(cluster, run);
        shared = undefined;
      }
    }
  } finally {
    if (shared !== undefined) await finishCluster(shared, config.runs);
    killEverything();
  }
  const rows = config.workloads.map((workload) => summarize(runs, workload as 'sequential' | 'pipelined'));
  const table = markdown(rows);
  const report = { bench: 'raft-commit', started, finished: new Date().toISOString(), machine: machineInfo(projectRoot), config, summary: rows, runs, cpuProfiles: profiles.map((p) => relative(projectRoot, p)) };
  writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
  console.log(table);
  console.log(`\nraw results: ${relative(process.cwd(), outPath) || outPath}`);
  if (profiles.length > 0) console.log(`CPU profiles: ${profiles.map((p) => relative(process.cwd(), p)).join(', ')}`);
  const failed = runs.filter((run) => run.error !== undefined).length;
  if (failed > 0) {
    console.error(`${failed} run(s) failed`);
    process.exitCode = 1;
  }
}

await main();
