// Corruption on real processes: a follower's disk rots while it is down. Three nodes, a topic
// with three replicas; acks=all records are acknowledged; one follower (neither the partition's
// leader nor the metadata leader) is killed with kill -9 and a bit is flipped in the middle of its
// partition log AND of its metadata log. Restarted, it must come up on its own: each log is cut
// back to the last valid entry before the damage (logged at error level, with the group, the file
// and the indexes dropped), it abstains from voting and leading while its logs are behind, the
// leaders send the rest back, and then every acknowledged record is read back from that node
// alone, byte for byte. Then a last segment cut inside its header, which takes its sync records
// along: synced-segment tells that a sync covered it. Then the same with a sealed segment, which a
// start takes from its index file without reading it: the read that meets the damage stops the
// node, and the next start repairs.
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Admin } from '../../src/client/admin.js';
import { BrokerClient } from '../../src/client/broker-client.js';
import { decodeBatches } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { frameHeaderBytes } from '../../src/storage/limits.js';
import { framesOf } from '../storage/log-conformance.js';
import { ProcessCluster } from './process-cluster.js';

const topic = 'precious';
/** rounds of sendsPerRound concurrent sends: many small batches, so each is its own Raft entry. */
const rounds = 40;
const sendsPerRound = 8;
const recordCount = rounds * sendsPerRound;
/** commitFlushMs: longer than the node's lazy commit-index write (commitWriteMs), so the state store has it. */
const commitFlushMs = 1500;

let cluster: ProcessCluster | undefined;
const clients: BrokerClient[] = [];

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    for (const id of cluster.nodes.keys()) console.log(`--- node ${id} output (tail)\n${cluster.output(id).split('\n').slice(-60).join('\n')}`);
  }
  for (const client of clients.splice(0)) client.close();
  await cluster?.close();
  cluster = undefined;
});

function brokerClient(address: string): BrokerClient {
  const client = new BrokerClient(address, 2000);
  clients.push(client);
  return client;
}

/** valueOf is record i's value: binary, every byte value, of varying length. */
function valueOf(i: number): Buffer {
  return Buffer.from(Array.from({ length: 40 + ((i * 37) % 160) }, (_, k) => (i * 131 + k * 17) & 255));
}

/** LogLine is one pino line of a node. */
interface LogLine {
  readonly level: number;
  readonly group?: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/**
 * flipMiddleFrame flips one bit in the payload of the middle frame of the largest segment in
 * logDir (a frame followed by others, so recovery sees corruption, not a torn tail); returns the file.
 */
function flipMiddleFrame(logDir: string): string {
  // By the bytes of their frames: a file may go on with zeros (room the log grew into ahead).
  const segments = readdirSync(logDir)
    .filter((name) => /^\d{20}\.log$/.test(name))
    .map((name) => ({ path: join(logDir, name), bytes: readFileSync(join(logDir, name)) }))
    .map((segment) => ({ ...segment, frames: framesOf(segment.bytes, 0) }));
  const { path, bytes, frames: largest } = segments.sort((a, b) => b.frames.dataEnd - a.frames.dataEnd)[0]!;
  const frames = largest.list.map(({ offset, end }) => ({ offset, dataBytes: end - offset - frameHeaderBytes }));
  expect(frames.length, `frames in ${path}`).toBeGreaterThanOrEqual(3);
  const middle = frames[Math.floor(frames.length / 2)]!;
  const at = middle.offset + (middle.dataBytes > 0 ? frameHeaderBytes + Math.floor(middle.dataBytes / 2) : 20); // the payload, or the term field
  bytes[at]! ^= 0x10;
  writeFileSync(path, bytes);
  return path;
}

/** collectLines gathers a running node's stdout as parsed pino lines. */
function collectLines(c: ProcessCluster, id: number): LogLine[] {
  const lines: LogLine[] = [];
  let pending = '';
  c.nodes.get(id)!.process!.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const complete = pending.split('\n');
    pending = complete.pop()!;
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as LogLine);
  });
  return lines;
}

/** readAll fetches the partition from one node only, from offset 0 up to highWatermark. */
async function readAll(address: string, highWatermark: number): Promise<Map<number, Buffer>> {
  const client = brokerClient(address);
  const read = new Map<number, Buffer>();
  for (let offset = 0; offset < highWatermark; ) {
    const answer = await client.fetch({ topic, partition: 0, offset, maxBytes: 0, maxWaitMs: 0, minBytes: 0 });
    for (const record of decodeBatches(topic, 0, answer.batches, offset)) read.set(record.offset, Buffer.from(record.value!));
    offset = answer.nextOffset;
  }
  return read;
}

/** startCluster starts three nodes and waits for three unfenced brokers. */
async function startCluster(): Promise<{ c: ProcessCluster; admin: Admin }> {
  const c = await ProcessCluster.create({ nodes: 3, extraArgs: ['--session-timeout-ms', '3000'] });
  cluster = c;
  c.startAll();
  await c.waitForLeader();
  const admin = c.admin({ retryForMs: 20_000 });
  await c.waitFor(async () => ((await admin.describeCluster().catch(() => undefined))?.brokers.filter((broker) => !broker.fenced).length === 3 ? true : undefined), 20_000, 'three unfenced brokers');
  return { c, admin };
}

/**
 * highWatermarkOn asks one node for partition 0's high watermark; 'earliest' because every replica
 * answers it, with its own high watermark ('latest' only the leader). Undefined when it cannot answer.
 */
function highWatermarkOn(address: string, topicName: string): Promise<number | undefined> {
  return brokerClient(address).listOffsets({ topic: topicName, partition: 0, spec: 'earliest' }).then((answer) => answer.highWatermark, () => undefined);
}

/**
 * killFollower picks a replica of partition 0 that leads neither it nor the metadata quorum, waits
 * until it has applied `records` records and its commit index is written, and kills it (kill -9).
 */
async function killFollower(c: ProcessCluster, topicName: string, records: number): Promise<{ victim: number; victimAddress: string; dataDir: string; partitionDir: string; groupId: number }> {
  const metadataLeader = (await c.waitForLeader()).nodeId;
  const partitionView = (await brokerClient(c.nodes.get(metadataLeader)!.clientAddress).metadata([topicName])).topics[0]!.partitions[0]!;
  const victim = [1, 2, 3].find((id) => id !== metadataLeader && id !== partitionView.leader)!;
  const victimAddress = c.nodes.get(victim)!.clientAddress;
  await c.waitFor(async () => ((await highWatermarkOn(victimAddress, topicName)) === records ? true : undefined), 10_000, `node ${victim} to apply every record`);
  await new Promise((resolve) => setTimeout(resolve, commitFlushMs));
  await c.kill(victim);
  const dataDir = c.nodes.get(victim)!.dataDir;
  const partitionDir = readdirSync(join(dataDir, 'partitions')).find((name) => name.startsWith(`${topicName}-0-g`))!;
  return { victim, victimAddress, dataDir, partitionDir, groupId: partitionView.groupId };
}

describe('corruption on real processes', () => {
  it('bits flipped in a follower\'s partition and metadata logs: it repairs from the others, abstains meanwhile, and serves every acknowledged record', async () => {
    const { c, admin } = await startCluster();
    await admin.createTopic({ name: topic, partitions: 1, replicationFactor: 3 });

    const producer = new Producer({ bootstrap: c.clientAddresses(), acks: 'all', lingerMs: 0, requestTimeoutMs: 10_000, deliveryTimeoutMs: 20_000 });
    const acknowledged = new Map<number, Buffer>();
    for (let round = 0; round < rounds; round++) {
      const sends = Array.from({ length: sendsPerRound }, (_, k) => round * sendsPerRound + k).map(async (i) => {
        const metadata = await producer.send({ topic, value: valueOf(i) });
        acknowledged.set(metadata.offset, valueOf(i));
      });
      await Promise.all(sends);
    }
    await producer.close();
    expect(acknowledged.size).toBe(recordCount);

    const { victim, victimAddress, dataDir, partitionDir, groupId } = await killFollower(c, topic, recordCount);
    const damaged = {
      metadata: flipMiddleFrame(join(dataDir, 'raft', 'group-0', 'log')),
      partition: flipMiddleFrame(join(dataDir, 'partitions', partitionDir, 'log')),
    };
    const groups = { metadata: 0, partition: groupId };

    const restartedMs = Date.now();
    c.start(victim);
    const lines = collectLines(c, victim);
    await c.waitFor(async () => ((await highWatermarkOn(victimAddress, topic)) === recordCount ? true : undefined), 20_000, `node ${victim} to catch up after its repair`);
    const caughtUpMs = Date.now() - restartedMs;

    // Every acknowledged record, from the repaired node alone, byte for byte.
    const read = await readAll(victimAddress, recordCount);
    expect(read.size).toBe(recordCount);
    for (const [offset, value] of acknowledged) expect(read.get(offset)?.equals(value), `offset ${offset} on node ${victim}`).toBe(true);

    for (const [kind, group] of Object.entries(groups) as [keyof typeof groups, number][]) {
      const ofGroup = lines.filter((line) => line.group === group);
      // Repaired, loudly: error level, the file, the indexes dropped.
      const repair = ofGroup.find((line) => line.msg.startsWith('corrupt log: cut back to the last valid entry'));
      expect(repair, `${kind} group ${group}: a repair logged`).toMatchObject({ level: 50, path: damaged[kind] });
      expect(repair!['droppedFromIndex'] as number).toBeLessThanOrEqual(repair!['droppedThroughIndex'] as number);
      // Abstained while behind: no vote granted, no leadership, until the log caught up.
      const abstainFrom = ofGroup.findIndex((line) => line.msg.startsWith('log ends before entries this node acknowledged'));
      const abstainUntil = ofGroup.findIndex((line) => line.msg === 'log caught up; voting and campaigning again');
      expect(abstainFrom, `${kind} group ${group}: abstaining at start`).toBeGreaterThanOrEqual(0);
      expect(abstainUntil, `${kind} group ${group}: caught up`).toBeGreaterThan(abstainFrom);
      const whileBehind = ofGroup.slice(abstainFrom, abstainUntil).filter((line) => line.msg === 'granted a vote' || line.msg === 'became leader');
      expect(whileBehind, `${kind} group ${group}: votes or leadership while behind`).toEqual([]);
    }
    const refused = lines.filter((line) => line.msg === 'refused a vote: log not caught up').length;
    console.log(`node ${victim} repaired ${damaged.metadata} and ${damaged.partition}, abstained (${refused} votes refused), and served all ${recordCount} records ${caughtUpMs} ms after its restart`);
  }, 60_000);

  it('a follower\'s partition log whose last segment is cut inside its header: damage, not a torn roll; it abstains with no known bound, refills, and serves every acknowledged record', async () => {
    const { c, admin } = await startCluster();
    await admin.createTopic({ name: topic, partitions: 1, replicationFactor: 3 });
    const producer = new Producer({ bootstrap: c.clientAddresses(), acks: 'all', lingerMs: 0, requestTimeoutMs: 10_000, deliveryTimeoutMs: 20_000 });
    const acknowledged = new Map<number, Buffer>();
    for (let i = 0; i < recordCount; i += sendsPerRound) {
      await Promise.all(Array.from({ length: sendsPerRound }, (_, k) => producer.send({ topic, value: valueOf(i + k) }).then((metadata) => acknowledged.set(metadata.offset, valueOf(i + k)))));
    }
    await producer.close();

    const { victim, victimAddress, dataDir, partitionDir, groupId } = await killFollower(c, topic, recordCount);
    const logDir = join(dataDir, 'partitions', partitionDir, 'log');
    const last = readdirSync(logDir).filter((name) => /^\d{20}\.log$/.test(name)).sort().at(-1)!;
    const cut = join(logDir, last);
    truncateSync(cut, 40); // its sync records go with the header
    c.start(victim);
    const lines = collectLines(c, victim);
    await c.waitFor(async () => ((await highWatermarkOn(victimAddress, topic)) === recordCount ? true : undefined), 20_000, `node ${victim} to catch up after its repair`);
    const read = await readAll(victimAddress, recordCount);
    expect(read.size).toBe(recordCount);
    for (const [offset, value] of acknowledged) expect(read.get(offset)?.equals(value), `offset ${offset} on node ${victim}`).toBe(true);

    const ofGroup = lines.filter((line) => line.group === groupId);
    const repair = lines.find((line) => line.msg.startsWith('corrupt log: cut back to the last valid entry'));
    expect(repair).toMatchObject({ level: 50, path: cut, droppedThroughIndex: Number.MAX_SAFE_INTEGER });
    expect(repair!['reason']).toContain('a sync covered the segment');
    expect(ofGroup.some((line) => line.msg.startsWith('log ends before entries this node acknowledged'))).toBe(true);
    // Nothing tells how far the lost entries reached: it moves to the next term, and abstains until
    // its log holds a committed entry of a later term than the one it was in.
    expect(ofGroup.some((line) => line.msg.startsWith('nothing bounds the entries this log lost: moving to the next term'))).toBe(true);
    const caughtUp = ofGroup.findIndex((line) => line.msg === 'log caught up; voting and campaigning again');
    const abstaining = caughtUp === -1 ? ofGroup : ofGroup.slice(0, caughtUp);
    expect(abstaining.filter((line) => line.msg === 'granted a vote' || line.msg === 'became leader')).toEqual([]);
  }, 60_000);

  it('a bit flipped in a sealed segment of a follower\'s partition log: the start trusts its index file, the read that meets the damage stops the node, and the next start repairs it', async () => {
    const { c, admin } = await startCluster();
    // The smallest segments a partition allows (about 4 MiB: one batch of the largest size fits), and 6 MiB of records.
    const sealedTopic = 'sealed';
    await admin.createTopic({ name: sealedTopic, partitions: 1, replicationFactor: 3, configs: { 'segment.bytes': String(2 * 1024 * 1024) } });
    const bigValue = (i: number): Buffer => Buffer.alloc(64 * 1024, i & 255);
    const count = 100;
    const producer = new Producer({ bootstrap: c.clientAddresses(), acks: 'all', lingerMs: 0, requestTimeoutMs: 10_000, deliveryTimeoutMs: 20_000 });
    for (let i = 0; i < count; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => producer.send({ topic: sealedTopic, value: bigValue(i + k) })));
    await producer.close();

    const { victim, victimAddress, dataDir, partitionDir } = await killFollower(c, sealedTopic, count);
    const logDir = join(dataDir, 'partitions', partitionDir, 'log');
    const sealed = readdirSync(logDir).filter((name) => name.endsWith('.log.index')).map((name) => join(logDir, name.slice(0, -'.index'.length)));
    expect(sealed.length, 'sealed segments').toBeGreaterThanOrEqual(1);
    const damaged = sealed[0]!;
    const bytes = readFileSync(damaged);
    const frames = framesOf(bytes, 0).list;
    bytes[frames[Math.floor(frames.length / 2)]!.offset + frameHeaderBytes + 100]! ^= 0x04;
    writeFileSync(damaged, bytes);

    // First start: the damaged segment is taken from its index file, unread. A read meets the damage
    // (replaying the log at start, or a fetch from offset 0): the node stops, loudly.
    c.start(victim);
    const firstLines = collectLines(c, victim);
    let reading = true;
    const reader = (async () => {
      while (reading) {
        await brokerClient(victimAddress).fetch({ topic: sealedTopic, partition: 0, offset: 0, maxBytes: 8 * 1024 * 1024, maxWaitMs: 0, minBytes: 0 }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    const exitCode = await c.waitExit(victim, 30_000);
    reading = false;
    await reader;
    expect(exitCode).toBe(1);
    expect(firstLines.some((line) => line.msg.startsWith('corrupt log: cut back'))).toBe(false);
    expect(firstLines.find((line) => line.msg.startsWith('damaged frame in a sealed segment'))).toMatchObject({ level: 50, path: damaged });
    expect(firstLines.find((line) => line.msg === 'raft host stopped: storage failed')).toMatchObject({ level: 50 });
    expect(readdirSync(logDir)).not.toContain(`${damaged.split('/').at(-1)}.index`);

    // Second start: the segment is scanned, the damage found and cut, the leader sends the rest.
    c.start(victim);
    const lines = collectLines(c, victim);
    await c.waitFor(async () => ((await highWatermarkOn(victimAddress, sealedTopic)) === count ? true : undefined), 30_000, `node ${victim} to catch up after its repair`);
    expect(lines.find((line) => line.msg.startsWith('corrupt log: cut back to the last valid entry'))).toMatchObject({ level: 50, path: damaged });
    const client = brokerClient(victimAddress);
    for (let offset = 0; offset < count; ) {
      const answer = await client.fetch({ topic: sealedTopic, partition: 0, offset, maxBytes: 8 * 1024 * 1024, maxWaitMs: 0, minBytes: 0 });
      for (const record of decodeBatches(sealedTopic, 0, answer.batches, offset)) expect(Buffer.from(record.value!).equals(bigValue(record.offset)), `offset ${record.offset}`).toBe(true);
      expect(answer.nextOffset).toBeGreaterThan(offset);
      offset = answer.nextOffset;
    }
  }, 90_000);
});
