// `npm run bench:failover`: how long the cluster is without a controller after kill -9 of the
// active one. Each run starts a fresh 3-node cluster (temp dir, free 127.0.0.1 ports), creates a
// topic (so the controller is active), kills the active controller with SIGKILL and measures:
//   elected    until a survivor reports itself leader of the metadata quorum (DescribeQuorum)
//   writable   until a CreateTopic succeeds again (the admin request a user would retry)
// Probes go to every survivor every 10 ms, each call bounded by 250 ms. Every run is bounded by a
// time cap, and every process is killed on exit, errors and Ctrl-C.
//
//   node dist/bench/controller-failover.js [--runs 7] [--cap-s 30]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { AdminClient } from '../src/client/admin-client.js';
import { BenchCluster } from './lib/bench-cluster.js';
import { formatSpread, spreadOf } from './lib/stats.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '7' }, 'cap-s': { type: 'string', default: '30' } },
  strict: true,
});
const runs = Number(args.runs);
const capMs = Number(args['cap-s']) * 1000;
if (!Number.isSafeInteger(runs) || runs < 1 || runs > 100) throw new Error(`--runs: expected 1..100, got ${args.runs}`);
if (!Number.isFinite(capMs) || capMs < 1000) throw new Error(`--cap-s: expected at least 1, got ${args['cap-s']}`);

const probeEveryMs = 10;
const probeDeadlineMs = 250;

async function until<T>(what: string, deadline: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within the cap`);
    await new Promise((resolve) => setTimeout(resolve, probeEveryMs));
  }
}

async function createOn(clients: AdminClient[]): Promise<true | undefined> {
  const attempts = clients.map((client) =>
    client.call('CreateTopic', { name: `probe-${randomUUID().slice(0, 8)}`, partitions: 1, replicationFactor: 1, configs: {}, requestId: randomUUID() }).then(
      () => true as const,
      () => undefined,
    ),
  );
  return (await Promise.all(attempts)).find((result) => result === true);
}

async function oneRun(run: number): Promise<{ electedMs: number; writableMs: number }> {
  const cluster = await BenchCluster.create({ nodes: 3, logLevel: 'warn', cpuProfile: false, clientDeadlineMs: probeDeadlineMs });
  try {
    cluster.startAll();
    const deadline = Date.now() + capMs;
    const ids = [...cluster.nodes.keys()];
    const all = ids.map((id) => new AdminClient(cluster.nodes.get(id)!.clientAddress, { deadlineMs: probeDeadlineMs }));
    await until('first controller', deadline, () => createOn(all));
    const leader = await cluster.waitForLeader(capMs);
    const survivors = ids.filter((id) => id !== leader.nodeId);
    const clients = survivors.map((id) => all[ids.indexOf(id)]!);
    process.kill(cluster.pid(leader.nodeId)!, 'SIGKILL');
    const killedAt = performance.now();
    const electedMs = await until('new leader', deadline, async () => {
      const views = await Promise.all(clients.map((client) => client.describeQuorum().catch(() => undefined)));
      return views.some((view) => view?.role === 'leader' && view.term > leader.term) ? performance.now() - killedAt : undefined;
    });
    const writableMs = await until('successful CreateTopic', deadline, async () => ((await createOn(clients)) ? performance.now() - killedAt : undefined));
    for (const client of all) client.close();
    console.error(`run ${run}: killed node ${leader.nodeId}; new leader after ${electedMs.toFixed(0)} ms, writable after ${writableMs.toFixed(0)} ms`);
    return { electedMs, writableMs };
  } finally {
    await cluster.stop(2000);
    cluster.remove();
  }
}

const results: { electedMs: number; writableMs: number }[] = [];
for (let run = 1; run <= runs; run++) results.push(await oneRun(run));
const elected = spreadOf(results.map((result) => result.electedMs));
const writable = spreadOf(results.map((result) => result.writableMs));
console.log(`\ncontroller failover after kill -9 of the active controller, 3 nodes, ${runs} runs (median (min–max), ms)\n`);
console.log('| measure | ms |');
console.log('|---|---|');
console.log(`| new metadata leader elected | ${formatSpread(elected)} |`);
console.log(`| admin writes succeed again | ${formatSpread(writable)} |`);
