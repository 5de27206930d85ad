// The metadata quorum on real processes: elections after kill -9, no committed entry lost,
// catch-up by log and by snapshot, recovery from a torn or corrupted log tail, a data directory
// removed under a running node, and that node refused when it comes back on an empty one.
import { appendFileSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { latencyBucketBoundsMicros } from '../../src/node/latency-histogram.js';
import { decodeRecordBatch } from '../../src/rpc/metadata-codec.js';
import { framesOf } from '../storage/log-conformance.js';
import { ProcessCluster } from './process-cluster.js';

let cluster: ProcessCluster | undefined;

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    for (const id of cluster.nodes.keys()) console.log(`--- node ${id} output (tail)\n${cluster.output(id).split('\n').slice(-40).join('\n')}`);
  }
  await cluster?.close();
  cluster = undefined;
});

/** expectHeld checks that node id holds every written payload at its index in its log. */
async function expectHeld(c: ProcessCluster, id: number, written: Map<number, string>): Promise<void> {
  const indexes = [...written.keys()];
  const page = await c.client(id).readMetadataLog({ fromIndex: Math.min(...indexes), maxEntries: 10_000 });
  const byIndex = new Map(page.entries.map((entry) => [Number(entry.index), noOpPayload(entry.data)]));
  for (const [index, payload] of written) expect(byIndex.get(index), `node ${id} index ${index}`).toBe(payload);
}

/** noOpPayload reads the payload of an entry holding one no-op record ('' for anything else). */
function noOpPayload(data: Uint8Array): string {
  if (data.length === 0) return '';
  const [record] = decodeRecordBatch(data);
  return record?.type === 'noOp' ? Buffer.from(record.payload).toString() : '';
}

/** waitCaughtUp waits until node id has applied what the leader has, with the same state digest. */
async function waitCaughtUp(c: ProcessCluster, id: number): Promise<void> {
  await c.waitFor(
    async () => {
      const leader = await c.waitForLeader();
      const view = await c.describe(id);
      if (view === undefined || view.appliedIndex < leader.appliedIndex) return undefined;
      const fresh = await c.describe(leader.nodeId);
      return fresh !== undefined && fresh.appliedIndex === view.appliedIndex && fresh.stateDigest === view.stateDigest ? true : undefined;
    },
    30_000,
    `node ${id} to catch up with the leader`,
  );
}

function lastSegment(dataDir: string): string {
  const logDir = join(dataDir, 'raft', 'group-0', 'log');
  const segments = readdirSync(logDir).filter((name) => name.endsWith('.log')).sort();
  return join(logDir, segments[segments.length - 1]!);
}

describe('metadata quorum on real processes', () => {
  it('elects a new leader after kill -9 of the leader, loses no committed entry, and the old leader catches up by log', async () => {
    cluster = await ProcessCluster.create({ nodes: 3 });
    cluster.startAll();
    const first = await cluster.waitForLeader();
    const written = await cluster.appendNoOps(40, 'before');
    // Every node timed the rounds that waited for their fsyncs: at most one wait per round and per sync.
    for (const id of [1, 2, 3]) {
      const view = (await cluster.describe(id))!;
      const waits = view.syncWaitBuckets.reduce((sum, count) => sum + count, 0);
      expect(view.syncWaitBucketBoundsMicros).toEqual(latencyBucketBoundsMicros);
      expect(view.syncWaitBuckets).toHaveLength(latencyBucketBoundsMicros.length + 1);
      expect(waits).toBeGreaterThan(0);
      expect(waits).toBeLessThanOrEqual(Math.min(view.rounds, view.syncs));
      expect(view.syncWaitMicros).toBeGreaterThan(0);
    }
    await cluster.kill(first.nodeId);
    const survivors = [1, 2, 3].filter((id) => id !== first.nodeId);
    const second = await cluster.waitForLeader({ among: survivors, notTerm: first.term });
    expect(second.nodeId).not.toBe(first.nodeId);
    expect(second.term).toBeGreaterThan(first.term);
    for (const id of survivors) await expectHeld(cluster, id, written);
    const after = await cluster.appendNoOps(20, 'after');

    // Its directory set aside, it starts on an empty one and is refused; with it back, it catches up.
    const dataDir = cluster.nodes.get(first.nodeId)!.dataDir;
    renameSync(dataDir, `${dataDir}.aside`);
    cluster.start(first.nodeId);
    expect(await cluster.waitExit(first.nodeId, 15_000)).toBe(1);
    expect(cluster.output(first.nodeId)).toContain('data directory refused by a peer');
    rmSync(dataDir, { recursive: true });
    renameSync(`${dataDir}.aside`, dataDir);
    cluster.start(first.nodeId);
    await waitCaughtUp(cluster, first.nodeId);
    await expectHeld(cluster, first.nodeId, new Map([...written, ...after]));
  });

  it('a restarted node whose log is behind the leader\'s snapshot catches up by snapshot', async () => {
    cluster = await ProcessCluster.create({ nodes: 3, extraArgs: ['--snapshot-every-entries', '25'] });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const lagging = [1, 2, 3].find((id) => id !== leader.nodeId)!;
    await cluster.kill(lagging);
    await cluster.appendNoOps(120, 'while-down');
    const leaderView = await cluster.describe(leader.nodeId);
    expect(leaderView!.snapshotIndex).toBeGreaterThan(25);
    cluster.start(lagging);
    await waitCaughtUp(cluster, lagging);
    const caughtUp = await cluster.describe(lagging);
    expect(caughtUp!.snapshotIndex).toBeGreaterThan(1);
    expect(cluster.output(lagging)).toContain('restoring a snapshot from the leader');
  });

  it('recovers from kill -9 during appends and a torn, corrupted segment tail without losing a committed entry', async () => {
    cluster = await ProcessCluster.create({ nodes: 3 });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const victim = [1, 2, 3].find((id) => id !== leader.nodeId)!;
    const written = await cluster.appendNoOps(30, 'steady');
    const inFlight = cluster.appendNoOps(30, 'during-kill');
    await new Promise((resolve) => setTimeout(resolve, 30));
    await cluster.kill(victim);
    const more = await inFlight;
    const segment = lastSegment(cluster.nodes.get(victim)!.dataDir);
    const { dataEnd } = framesOf(readFileSync(segment), 0); // the file may go on with zeros past its frames
    truncateSync(segment, dataEnd - 7); // a torn last frame
    appendFileSync(segment, Buffer.from('garbage that is not a frame')); // and junk after it
    cluster.start(victim);
    await waitCaughtUp(cluster, victim);
    await expectHeld(cluster, victim, new Map([...written, ...more]));
    expect(cluster.output(victim)).toMatch(/truncat|dropp|torn/i);
  });

  it('a node whose data directory is removed under it stops with exit code 1, saying why; started on an empty one, its peers refuse it; the other two commit on', async () => {
    cluster = await ProcessCluster.create({ nodes: 3 });
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    await cluster.appendNoOps(5, 'before');
    const victim = [1, 2, 3].find((id) => id !== leader.nodeId)!;
    const node = cluster.nodes.get(victim)!;
    const exit = cluster.waitExit(victim, 15_000); // it notices within a second
    rmSync(node.dataDir, { recursive: true, force: true });
    expect(await exit).toBe(1);
    expect(cluster.output(victim)).toContain(`${node.dataDir} was removed`);
    expect(cluster.output(victim)).toContain('data directory lost');
    const after = await cluster.appendNoOps(5, 'after');
    expect(after.size).toBe(5);
    for (const id of [1, 2, 3].filter((id) => id !== victim)) await expectHeld(cluster, id, after);

    // Started again, it finds an empty directory and makes a new one: its peers know it on the
    // directory it lost, refuse it, and it stops rather than vote with a memory it does not have.
    node.output.length = 0;
    cluster.start(victim);
    expect(await cluster.waitExit(victim, 15_000)).toBe(1);
    expect(cluster.output(victim)).toContain('data directory refused by a peer');
    expect(cluster.output(victim)).toMatch(new RegExp(`node ${victim} runs on data directory [0-9a-f]{32}, but node \\d knows it on directory [0-9a-f]{32}`));
    const others = [1, 2, 3].filter((id) => id !== victim);
    const running = cluster;
    expect(others.some((id) => /lost its data directory or was given another one/.test(running.output(id)))).toBe(true);
    const last = await cluster.appendNoOps(3, 'last');
    for (const id of others) await expectHeld(cluster, id, last);
  });
});
