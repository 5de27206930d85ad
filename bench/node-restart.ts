// `npm run bench:restart`: how long a node takes to come back with a large partition. It starts a
// 3-node cluster, creates a topic of one partition with replication factor 3, produces --mib MiB of
// --record-bytes records (acks=all), then --restarts times kills a follower of the partition with
// SIGKILL, starts it again and measures, from the spawn:
//   hosting    until its log says it hosts the partition's replica (its log open, its Raft group up)
//   applied    until it reports the partition's high watermark at the end (it has replayed every
//              record past the group's snapshot, which here is all of them: no retention ran)
//   peak RSS   the restarted process's peak resident set (VmHWM) once it has applied everything
// and prints median (min–max). The page cache is warm: the data was just written or read.
//
//   node dist/bench/node-restart.js [--mib 1024] [--record-bytes 65536] [--restarts 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Admin } from '../src/client/admin.js';
import { BrokerClient } from '../src/client/broker-client.js';
import { Producer } from '../src/client/producer.js';
import { waitForBrokers } from '../src/cluster/start-cluster.js';
import { integerArg, printHeaderHelp } from './lib/args.js';
import { BenchCluster } from './lib/bench-cluster.js';
import { formatSpread, spreadOf } from './lib/stats.js';

const topic = 'restart';
const capMs = 600_000;

interface Restart {
  readonly hostingMs: number;
  readonly appliedMs: number;
  readonly peakRssMiB: number;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${capMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** hostedAt returns when node id's log (JSON lines) last said it hosts the partition's replica, after `since`. */
function hostedAt(cluster: BenchCluster, id: number, since: number): number | undefined {
  const lines = readFileSync(cluster.nodes.get(id)!.logPath, 'utf8').split('\n');
  for (const line of lines) {
    if (!line.startsWith('{') || !line.includes('hosting partition replica') || !line.includes(topic)) continue;
    const time = (JSON.parse(line) as { time: number }).time;
    if (time >= since) return time;
  }
  return undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mib: { type: 'string', default: '1024' }, 'record-bytes': { type: 'string', default: '65536' }, restarts: { type: 'string', default: '3' }, help: { type: 'boolean', default: false } },
    strict: true,
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const mib = integerArg('mib', values.mib, 1, 64 * 1024);
  const recordBytes = integerArg('record-bytes', values['record-bytes'], 1, 512 * 1024);
  const restarts = integerArg('restarts', values.restarts, 1, 20);
  const records = Math.ceil((mib * 1024 * 1024) / recordBytes);
  const cluster = await BenchCluster.create({ nodes: 3, logLevel: 'info', cpuProfile: false, clientDeadlineMs: 2000 });
  try {
    cluster.startAll();
    const bootstrap = [...cluster.nodes.values()].map((node) => node.clientAddress);
    await waitForBrokers({ bootstrap, count: 3, timeoutMs: 30_000 });
    const admin = new Admin({ bootstrap, retryForMs: 20_000 });
    await admin.createTopic({ name: topic, partitions: 1, replicationFactor: 3 });
    admin.close();
    const producer = new Producer({ bootstrap, acks: 'all', lingerMs: 5, requestTimeoutMs: 30_000, deliveryTimeoutMs: 120_000 });
    const value = Buffer.alloc(recordBytes, 7);
    const producing = Date.now();
    for (let sent = 0; sent < records; sent += 256) await Promise.all(Array.from({ length: Math.min(256, records - sent) }, () => producer.send({ topic, value })));
    await producer.close();
    console.error(`produced ${records.toLocaleString('en-US')} records of ${recordBytes} B in ${((Date.now() - producing) / 1000).toFixed(1)} s`);

    const leader = (await cluster.waitForLeader(30_000)).nodeId;
    const metadata = new BrokerClient(cluster.nodes.get(leader)!.clientAddress, 2000);
    const partitionLeader = (await metadata.metadata([topic])).topics[0]!.partitions[0]!.leader;
    metadata.close();
    const victim = [...cluster.nodes.keys()].find((id) => id !== leader && id !== partitionLeader)!;
    const client = new BrokerClient(cluster.nodes.get(victim)!.clientAddress, 2000);
    // 'earliest': every replica answers with its own high watermark.
    const applied = (): Promise<true | undefined> => client.listOffsets({ topic, partition: 0, spec: 'earliest' }).then((answer) => (answer.highWatermark === records ? true : undefined), () => undefined);
    await until('follower caught up', applied);
    const results: Restart[] = [];
    for (let run = 1; run <= restarts; run++) {
      await new Promise((resolve) => setTimeout(resolve, 1500)); // its commit index written (commitWriteMs)
      await cluster.kill(victim);
      const spawned = Date.now();
      cluster.start(victim);
      await until('follower caught up', applied);
      const appliedMs = Date.now() - spawned;
      const status = readFileSync(`/proc/${cluster.pid(victim)!}/status`, 'utf8');
      const peakRssMiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
      const hostingMs = (hostedAt(cluster, victim, spawned) ?? Number.NaN) - spawned;
      console.error(`restart ${run}/${restarts}: hosting ${hostingMs} ms, applied ${appliedMs} ms, peak RSS ${peakRssMiB.toFixed(0)} MiB`);
      results.push({ hostingMs, appliedMs, peakRssMiB });
    }
    client.close();
    console.log(`Restart of a follower holding one partition of ${mib} MiB (${records.toLocaleString('en-US')} records of ${recordBytes} B, one replica of 3); median (min–max) of ${restarts} restart(s)`);
    console.log('');
    console.log('| hosting, ms | applied everything, ms | peak RSS, MiB |');
    console.log('|---|---|---|');
    console.log(`| ${[results.map((r) => r.hostingMs), results.map((r) => r.appliedMs), results.map((r) => r.peakRssMiB)].map((column) => formatSpread(spreadOf(column))).join(' | ')} |`);
  } finally {
    await cluster.stop(5000);
    cluster.remove();
  }
}

await main();
