// The chaos faults and their seeded schedule: each fault is applied for a while, then undone, one
// at a time with quiet gaps between them, every choice drawn from the run's seeded random source.
import { renameSync, rmSync } from 'node:fs';
import { AdminClient } from '../src/client/admin-client.js';
import { BrokerClient } from '../src/client/broker-client.js';
import type { ChaosNetwork } from './net/network.js';
import { bridge, isolate, oneWay, partition } from './net/network.js';
import type { NodeProcesses } from './processes.js';
import type { Recorder } from './workload.js';

export const faultKinds = ['kill', 'kill-minority', 'kill-leader', 'lose-data', 'pause', 'pause-leader', 'isolate', 'partition', 'bridge', 'one-way', 'slow', 'lossy', 'clients', 'consumer-crash'] as const;
export type FaultKind = (typeof faultKinds)[number];

/** refusalWaitMs: how long a node started on an empty data directory may run before its peers refuse it. */
export const refusalWaitMs = 15_000;

/** NotRefusedError: a node back on an empty data directory was not refused by its peers. */
export class NotRefusedError extends Error {
  override readonly name = 'NotRefusedError';
}

/** parseFaults reads --faults: a comma-separated list of fault kinds, or "all". Throws RangeError naming the bad one. */
export function parseFaults(list: string): FaultKind[] {
  if (list === 'all') return [...faultKinds];
  const kinds = list.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
  for (const kind of kinds) if (!(faultKinds as readonly string[]).includes(kind)) throw new RangeError(`--faults: unknown fault "${kind}"; use "all" or some of ${faultKinds.join(', ')}`);
  if (kinds.length === 0) throw new RangeError(`--faults: name at least one of ${faultKinds.join(', ')}, or "all"`);
  return kinds as FaultKind[];
}

export interface FaultContext {
  readonly net: ChaosNetwork;
  readonly nodes: NodeProcesses;
  readonly random: () => number;
  readonly recorder: Recorder;
  readonly topics: readonly string[];
  /** workload: for faults of the clients themselves (a consumer that crashes mid-batch). */
  readonly workload?: { crashConsumer(random: () => number): string | undefined };
}

/** undo reverses a fault. */
type Undo = () => Promise<void> | void;

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function shuffled<T>(random: () => number, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** metadataLeader asks the running nodes who leads the metadata quorum (undefined: nobody knows). */
async function metadataLeader(context: FaultContext): Promise<number | undefined> {
  for (const id of context.nodes.ids.filter((candidate) => context.nodes.isRunning(candidate) && !context.nodes.isPaused(candidate))) {
    const client = new AdminClient(context.net.clientAddressOf(id), { deadlineMs: 1000 });
    try {
      const quorum = await client.describeQuorum();
      if (quorum.leaderId !== 0) return quorum.leaderId;
    } catch {
      // try the next node
    } finally {
      client.close();
    }
  }
  return undefined;
}

/** partitionLeader asks a running node who leads a random partition of the workload's topics. */
async function partitionLeader(context: FaultContext): Promise<number | undefined> {
  for (const id of context.nodes.ids.filter((candidate) => context.nodes.isRunning(candidate) && !context.nodes.isPaused(candidate))) {
    const client = new BrokerClient(context.net.clientAddressOf(id), 1000);
    try {
      const metadata = await client.metadata([...context.topics]);
      const partitions = metadata.topics.flatMap((topic) => topic.partitions).filter((p) => p.leader !== 0);
      if (partitions.length > 0) return pick(context.random, partitions).leader;
    } catch {
      // try the next node
    } finally {
      client.close();
    }
  }
  return undefined;
}

/** apply starts a fault and returns how to undo it with what it did, or undefined if it could not apply. */
export async function applyFault(kind: FaultKind, context: FaultContext): Promise<{ detail: Record<string, unknown>; undo: Undo } | undefined> {
  const { net, nodes, random } = context;
  const ids = nodes.ids;
  const minority = Math.floor((ids.length - 1) / 2);
  switch (kind) {
    case 'kill':
    case 'kill-minority':
    case 'kill-leader': {
      let victims: number[];
      if (kind === 'kill') victims = [pick(random, ids)];
      else if (kind === 'kill-minority') victims = shuffled(random, ids).slice(0, Math.max(1, minority));
      else {
        const leader = random() < 0.5 ? await metadataLeader(context) : await partitionLeader(context);
        if (leader === undefined) return undefined;
        victims = [leader];
      }
      await Promise.all(victims.map((id) => nodes.kill(id)));
      return { detail: { nodes: victims }, undo: () => victims.forEach((id) => nodes.start(id)) };
    }
    case 'lose-data': {
      // A crash that loses the node's disk: it comes back on an empty directory. Its peers must
      // refuse it (it exits 1 before any vote or acknowledgement of it is taken); then the
      // directory is put back, as an operator would, and the node starts on it again.
      const victim = pick(random, ids);
      const dataDir = nodes.dataDirOf(victim);
      const aside = `${dataDir}.lost`;
      await nodes.kill(victim);
      renameSync(dataDir, aside);
      nodes.start(victim);
      const exit = await nodes.waitExit(victim, refusalWaitMs);
      if (exit !== 1) {
        await nodes.kill(victim);
        throw new NotRefusedError(`node ${victim}, started on an empty data directory, was not refused by its peers within ${refusalWaitMs} ms (${exit === 'running' ? 'still running' : `exit code ${exit}`})`);
      }
      return {
        detail: { node: victim, refused: true },
        undo: () => {
          rmSync(dataDir, { recursive: true, force: true });
          renameSync(aside, dataDir);
          nodes.start(victim);
        },
      };
    }
    case 'pause':
    case 'pause-leader': {
      const victim = kind === 'pause' ? pick(random, ids) : await metadataLeader(context);
      if (victim === undefined || !nodes.isRunning(victim)) return undefined;
      nodes.pause(victim);
      return { detail: { node: victim }, undo: () => nodes.resume(victim) };
    }
    case 'isolate': {
      const node = pick(random, ids);
      isolate(net, node);
      return { detail: { node }, undo: () => net.heal() };
    }
    case 'partition': {
      const order = shuffled(random, ids);
      const small = order.slice(0, Math.max(1, minority));
      const large = order.slice(small.length);
      partition(net, small, large);
      return { detail: { minority: small, majority: large }, undo: () => net.heal() };
    }
    case 'bridge': {
      if (ids.length < 3) return undefined;
      const [a, middle, b] = shuffled(random, ids);
      bridge(net, a!, b!, middle!);
      return { detail: { a, b, bridge: middle }, undo: () => net.heal() };
    }
    case 'one-way': {
      const [from, to] = shuffled(random, ids);
      oneWay(net, from!, to!);
      return { detail: { from, to }, undo: () => net.heal() };
    }
    case 'slow': {
      const [from, to] = shuffled(random, ids);
      const delayMs = 20 + Math.floor(random() * 180);
      net.slow(from!, to!, { delayMs, jitterMs: Math.floor(delayMs / 2) });
      net.slow(to!, from!, { delayMs, jitterMs: Math.floor(delayMs / 2) });
      return { detail: { between: [from, to], delayMs }, undo: () => net.heal() };
    }
    case 'lossy': {
      const [from, to] = shuffled(random, ids);
      const resetRate = 0.01 + random() * 0.09;
      net.lossy(from!, to!, { resetRate });
      net.lossy(to!, from!, { resetRate });
      return { detail: { between: [from, to], resetRate }, undo: () => net.heal() };
    }
    case 'clients': {
      const node = pick(random, ids);
      net.cutClients(node);
      return { detail: { node }, undo: () => net.heal() };
    }
    case 'consumer-crash': {
      const consumer = context.workload?.crashConsumer(random);
      if (consumer === undefined) return undefined;
      return { detail: { consumer }, undo: () => undefined };
    }
  }
}

/**
 * runSchedule applies random faults from `kinds` until `until` (ms since start): each lasts 2 to 7 s
 * (pauses 3 to 7 s: longer than an election timeout, so a paused leader wakes up deposed), with 1 to
 * 3 s of quiet between. Every start and end is recorded. Resolves with everything undone.
 */
export async function runSchedule(context: FaultContext, kinds: readonly FaultKind[], until: number): Promise<void> {
  const { random, recorder } = context;
  while (recorder.now() < until) {
    await sleep(1000 + random() * 2000);
    if (recorder.now() >= until) break;
    const kind = pick(random, kinds);
    const applied = await applyFault(kind, context);
    if (applied === undefined) continue;
    recorder.record({ kind: 'fault', t: recorder.now(), fault: kind, phase: 'start', detail: applied.detail });
    const lastsMs = (kind.startsWith('pause') ? 3000 : 2000) + random() * 4000;
    await sleep(Math.min(lastsMs, Math.max(0, until - recorder.now()) + 500));
    await applied.undo();
    recorder.record({ kind: 'fault', t: recorder.now(), fault: kind, phase: 'end', detail: applied.detail });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
