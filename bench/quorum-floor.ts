// The floor of a metadata-quorum write from Node.js processes on this machine: what any Node
// implementation of our 3-node quorum could reach at best, with none of raftbus's code in it. It
// runs only the steps that every quorum write of one entry must take between Node processes:
//   1. the client sends the entry to the leader in a gRPC unary call (raw bytes, one call in flight);
//   2. the leader writes + fdatasyncs it to its own file and, in parallel, sends it to 2 followers;
//   3. each follower writes + fdatasyncs it to its own file and acks (one peer round trip);
//   4. the leader answers once its own fdatasync and one follower ack (a majority of 3) are done.
// No Raft, no state machine, no log format, no batching. Read bench/raft-commit.ts (raftbus's group 0,
// sequential AppendNoOp) and etcd's sequential puts against it. Leader and followers are child
// processes of this file; each writes one file in a fresh temp dir with writeSync + fdatasync, the
// syscalls of raftbus's segmented log, grown ahead by ftruncate as that log grows its segments.
// Peer transports: `grpc` (one bidi stream per follower over grpc-js, as raftbus), `http2` (the
// same gRPC stream on the wire, but driven through node:http2 without grpc-js's call layers) and
// `tcp` (one socket per follower, 4-byte length-prefixed frames), interleaved run by run.
// Each run: fresh processes, warm-up, then `count` calls or `cap-s` seconds (then flagged CAPPED);
// it reports calls/s, latency, CPU µs per call of every process and fdatasyncs per call. The warm-up
// is long for the reason given in raft-commit.ts: V8 compiles the hot paths only after thousands of
// calls, and what matters is a process that has run for a while; compare runs of the same --warmup.
//
//   node dist/bench/quorum-floor.js [--runs 3] [--count 3000] [--warmup 5000] [--cap-s 60]
//     [--payload-bytes 64] [--transports grpc,http2,tcp] [--out DIR]
import * as grpc from '@grpc/grpc-js';
import { fork, type ChildProcess } from 'node:child_process';
import { constants, fdatasync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import * as http2 from 'node:http2';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { integerArg, printHeaderHelp } from './lib/args.js';
import { guardChild, guardDir, releaseDir } from './lib/guards.js';
import { machineInfo } from './lib/machine.js';
import { processCpuMicros } from './lib/proc-cpu.js';
import { formatSpread, spreadOf, summarizeLatencies, type LatencySummary, type Spread } from './lib/stats.js';
// The one constant taken from raftbus: the floor's file grows ahead exactly as the log's segments do.
import { preallocateBytes } from '../src/storage/limits.js';

const projectRoot = join(import.meta.dirname, '../..');
const scriptPath = new URL(import.meta.url).pathname;
const host = '127.0.0.1';
const transports = ['grpc', 'http2', 'tcp'] as const;
type Transport = (typeof transports)[number];

const tcpFrameBytesMax = 1024 * 1024;
const leaderInFlightMax = 64;
const childStartupMs = 10_000;
const callDeadlineMs = 10_000;
const counterQueryMs = 5_000;
const settleMsMax = 2_000;
const channelOptions: grpc.ChannelOptions = { 'grpc.enable_channelz': 0 };

const identity = (bytes: Buffer): Buffer => bytes;
const appendPath = '/raftbus.floor.Leader/Append';
const replicatePath = '/raftbus.floor.Follower/Replicate';
const method = (path: string, stream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path, requestStream: stream, responseStream: stream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
});

/** Counters are what a child has done so far; acks counts follower acks received (leader only). */
interface Counters { readonly writes: number; readonly syncs: number; readonly acks: number }
type ChildMessage = { kind: 'listening'; port: number } | { kind: 'failed'; message: string } | ({ kind: 'counters' } & Counters);

// ---------------------------------------------------------------- child side: leader or follower

/**
 * EntryFile appends entries to one file, each made durable by fdatasync (libuv threadpool). Like
 * raftbus's log (storage/limits.ts preallocateBytes), it grows the file by that much ahead of the
 * data, so that most fdatasyncs need not make a new file length durable too.
 */
class EntryFile {
  writes = 0;
  syncs = 0;
  private position = 0;
  private allocated = 0;
  private readonly fd: number;
  constructor(path: string) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  }
  append(entry: Buffer): Promise<void> {
    if (this.position + entry.length > this.allocated) {
      this.allocated = this.position + entry.length + preallocateBytes;
      ftruncateSync(this.fd, this.allocated);
    }
    const written = writeSync(this.fd, entry, 0, entry.length, this.position);
    if (written !== entry.length) throw new Error(`short write: ${written} of ${entry.length} bytes`);
    this.position += written;
    this.writes++;
    return new Promise((resolve, reject) => fdatasync(this.fd, (error) => (error ? reject(error) : (this.syncs++, resolve()))));
  }
}

let failing = false;

/** reportFailure tells the bench why this child stops, then exits: a child never limps on. */
function reportFailure(error: unknown): void {
  if (failing) return;
  failing = true;
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  setTimeout(() => process.exit(1), 1000);
  process.send?.({ kind: 'failed', message } satisfies ChildMessage, () => process.exit(1));
}

/**
 * Framing is how a transport delimits messages in its byte stream: tcp's 4-byte length, or a gRPC
 * message's 5-byte prefix (a compressed flag, always 0 here, then the length).
 */
const tcpFraming = { prefixBytes: 4 } as const;
const grpcFraming = { prefixBytes: 5 } as const;
type Framing = typeof tcpFraming | typeof grpcFraming;

/** frameReader cuts a byte stream into length-prefixed frames, however 'data' splits them. */
function frameReader(framing: Framing, onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  const prefix = framing.prefixBytes;
  let buffered: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    let offset = 0;
    while (buffered.length - offset >= prefix) {
      if (prefix === 5 && buffered[offset] !== 0) throw new Error('compressed gRPC message: the floor never compresses');
      const length = buffered.readUInt32BE(offset + prefix - 4);
      if (length > tcpFrameBytesMax) throw new Error(`frame of ${length} bytes exceeds ${tcpFrameBytesMax}`);
      if (buffered.length - offset - prefix < length) break;
      onFrame(buffered.subarray(offset + prefix, offset + prefix + length));
      offset += prefix + length;
    }
    buffered = buffered.subarray(offset);
  };
}

function framed(framing: Framing, body: Buffer): Buffer {
  const prefix = framing.prefixBytes;
  const frame = Buffer.allocUnsafe(prefix + body.length);
  if (prefix === 5) frame[0] = 0;
  frame.writeUInt32BE(body.length, prefix - 4);
  body.copy(frame, prefix);
  return frame;
}

/** grpcRequestHeaders open the Replicate stream as a gRPC client would (h2c, no deadline). */
const grpcRequestHeaders = { ':method': 'POST', ':path': replicatePath, 'content-type': 'application/grpc', te: 'trailers' };

function bindGrpc(service: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): Promise<number> {
  const server = new grpc.Server(channelOptions);
  server.addService(service, handlers);
  return new Promise((resolve, reject) => server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))));
}

/** serveFollower persists every entry it gets, then acks with the entry's 8-byte index. */
async function serveFollower(transport: Transport, file: EntryFile): Promise<number> {
  const follow = (entry: Buffer, ack: (index: Buffer) => void): void => {
    const index = Buffer.from(entry.subarray(0, 8));
    file.append(entry).then(() => ack(index)).catch(reportFailure);
  };
  if (transport === 'grpc') {
    const replicate: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => call.on('data', (entry: Buffer) => follow(entry, (index) => call.write(index)));
    return bindGrpc({ Replicate: method(replicatePath, true) }, { Replicate: replicate });
  }
  if (transport === 'http2') {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      if (headers[':path'] !== replicatePath) return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.on('data', frameReader(grpcFraming, (entry) => follow(entry, (index) => stream.write(framed(grpcFraming, index)))));
    });
    return new Promise((resolve, reject) => server.once('error', reject).listen(0, host, () => resolve((server.address() as AddressInfo).port)));
  }
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', frameReader(tcpFraming, (entry) => follow(entry, (index) => socket.write(framed(tcpFraming, index)))));
  });
  return new Promise((resolve, reject) => server.once('error', reject).listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

/** connectFollower opens the leader's long-lived channel to one follower and returns its send. */
async function connectFollower(transport: Transport, port: number, onAck: (index: Buffer) => void): Promise<(entry: Buffer) => void> {
  if (transport === 'grpc') {
    const client = new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure(), channelOptions);
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + childStartupMs, (error) => (error ? reject(error) : resolve())));
    const stream = client.makeBidiStreamRequest(replicatePath, identity, identity);
    stream.on('data', onAck).on('error', (error) => reportFailure(new Error(`stream to follower :${port} failed`, { cause: error })));
    return (entry) => stream.write(entry);
  }
  if (transport === 'http2') {
    const session = http2.connect(`http://${host}:${port}`);
    await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
    session.on('error', (error) => reportFailure(new Error(`session to follower :${port} failed`, { cause: error })));
    const stream = session.request(grpcRequestHeaders);
    stream.on('data', frameReader(grpcFraming, onAck)).on('close', () => reportFailure(new Error(`follower :${port} closed its stream`)));
    return (entry) => stream.write(framed(grpcFraming, entry));
  }
  const socket: Socket = connect({ port, host, noDelay: true });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('data', frameReader(tcpFraming, onAck)).on('close', () => reportFailure(new Error(`follower :${port} closed its socket`)));
  return (entry) => socket.write(framed(tcpFraming, entry));
}

/** serveLeader answers each Append once its own fdatasync and one follower ack are done. */
async function serveLeader(transport: Transport, file: EntryFile, followerPorts: readonly number[], counters: { acks: number }): Promise<number> {
  const waiting = new Map<number, { synced: boolean; acks: number; answer: () => void }>();
  let lastIndex = 0;
  const settle = (index: number): void => {
    const entry = waiting.get(index);
    if (entry !== undefined && entry.synced && entry.acks >= 1) {
      waiting.delete(index);
      entry.answer();
    }
  };
  const onAck = (ack: Buffer): void => {
    const index = ack.length === 8 ? Number(ack.readBigUInt64BE(0)) : 0;
    if (index < 1 || index > lastIndex) throw new Error(`ack of ${ack.length} bytes for unknown index ${index}`);
    counters.acks++;
    const entry = waiting.get(index);
    if (entry === undefined) return; // a later ack: the majority was already there
    entry.acks++;
    settle(index);
  };
  const sends = await Promise.all(followerPorts.map((port) => connectFollower(transport, port, onAck)));
  const append: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    if (waiting.size >= leaderInFlightMax) return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `${leaderInFlightMax} appends in flight` });
    const index = ++lastIndex;
    const entry = Buffer.allocUnsafe(8 + call.request.length);
    entry.writeBigUInt64BE(BigInt(index), 0);
    call.request.copy(entry, 8);
    waiting.set(index, { synced: false, acks: 0, answer: () => callback(null, entry.subarray(0, 8)) });
    for (const send of sends) send(entry);
    const synced = (): void => {
      waiting.get(index)!.synced = true;
      settle(index);
    };
    file.append(entry).then(synced).catch(reportFailure);
  };
  return bindGrpc({ Append: method(appendPath, false) }, { Append: append });
}

async function runChild(): Promise<void> {
  const { values } = parseArgs({ options: { role: { type: 'string' }, transport: { type: 'string' }, file: { type: 'string' }, followers: { type: 'string', default: '' } }, strict: true });
  if (process.send === undefined) throw new Error('--role is for the processes the bench forks itself');
  process.on('disconnect', () => process.exit(0)).on('uncaughtException', reportFailure).on('unhandledRejection', reportFailure);
  const transport = values.transport as Transport;
  if (!transports.includes(transport) || (values.role !== 'leader' && values.role !== 'follower') || values.file === undefined) throw new Error(`bad child arguments: ${process.argv.slice(2).join(' ')}`);
  const file = new EntryFile(values.file);
  const counters = { acks: 0 };
  process.on('message', () => process.send!({ kind: 'counters', writes: file.writes, syncs: file.syncs, acks: counters.acks } satisfies ChildMessage));
  const port = values.role === 'leader' ? await serveLeader(transport, file, values.followers.split(',').map(Number), counters) : await serveFollower(transport, file);
  process.send({ kind: 'listening', port } satisfies ChildMessage);
}

// ---------------------------------------------------------------- bench side

/** Quorum is one run: leader and followers as child processes, their temp dir, the client. */
class Quorum {
  readonly dir = mkdtempSync(join(tmpdir(), 'raftbus-floor-'));
  /** processes: the leader, follower 1, follower 2. */
  private readonly processes: ChildProcess[] = [];
  private readonly failed: Promise<never>;
  private failure: Error | undefined;
  private rejectFailed: (error: Error) => void = () => {};
  private abortCall: ((error: Error) => void) | undefined;
  private stopping = false;
  private client: grpc.Client | undefined;

  constructor() {
    guardDir(this.dir);
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
  }

  async start(transport: Transport): Promise<void> {
    const ports = await Promise.all([1, 2].map((n) => this.spawnChild(`follower ${n}`, n, ['--role', 'follower', '--transport', transport])));
    const leaderPort = await this.spawnChild('leader', 0, ['--role', 'leader', '--transport', transport, '--followers', ports.join(',')]);
    const client = (this.client = new grpc.Client(`${host}:${leaderPort}`, grpc.credentials.createInsecure(), channelOptions));
    await this.guard(childStartupMs, 'channel to leader', new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + childStartupMs, (error) => (error ? reject(error) : resolve()))));
  }

  /** append makes one Append call; it fails at once when a child fails. */
  append(payload: Buffer): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.abortCall = reject;
      this.client!.makeUnaryRequest(appendPath, identity, identity, payload, { deadline: Date.now() + callDeadlineMs }, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** snapshot waits until both followers acked every entry, then reads every child's counters and CPU. */
  async snapshot(): Promise<{ counters: Counters[]; cpuMicros: (number | undefined)[] }> {
    const deadline = performance.now() + settleMsMax;
    for (let leader = await this.counters(0); leader.acks < 2 * leader.writes; leader = await this.counters(0)) {
      if (performance.now() > deadline) throw new Error(`followers still owe ${2 * leader.writes - leader.acks} acks after ${settleMsMax} ms`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const counters = [await this.counters(0), await this.counters(1), await this.counters(2)];
    return { counters, cpuMicros: this.processes.map((child) => processCpuMicros(child.pid!)) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.client?.close();
    // SIGKILL: the children keep nothing worth a graceful stop, and it cannot be ignored.
    const running = this.processes.filter((child) => child.exitCode === null && child.signalCode === null);
    await Promise.all(running.map((child) => new Promise((resolve) => child.once('exit', resolve).kill('SIGKILL'))));
    rmSync(this.dir, { recursive: true, force: true });
    releaseDir(this.dir);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.rejectFailed(this.failure);
    this.abortCall?.(this.failure);
  }

  /** guard settles as promise does, or rejects when a child fails or ms have passed. */
  private guard<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
    return Promise.race([promise, this.failed, timeout]).finally(() => clearTimeout(timer));
  }

  private spawnChild(name: string, slot: number, args: readonly string[]): Promise<number> {
    const child = fork(scriptPath, [...args, '--file', join(this.dir, `${name.replace(' ', '-')}.log`)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    guardChild(child);
    this.processes[slot] = child;
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.fail(new Error(`${name} exited (code ${code}, signal ${signal})`));
    });
    child.on('message', (message: ChildMessage) => message.kind === 'failed' && !this.stopping && this.fail(new Error(`${name} failed: ${message.message}`)));
    return this.guard(childStartupMs, `${name} start-up`, new Promise((resolve) => child.on('message', (message: ChildMessage) => message.kind === 'listening' && resolve(message.port))));
  }

  private counters(slot: number): Promise<Counters> {
    const child = this.processes[slot]!;
    return this.guard(counterQueryMs, 'counter query', new Promise((resolve) => {
      const onMessage = (message: ChildMessage): void => {
        if (message.kind !== 'counters') return;
        child.off('message', onMessage);
        resolve(message);
      };
      child.on('message', onMessage).send({ kind: 'counters' });
    }));
  }
}

function readConfig() {
  const { values: args } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      count: { type: 'string', default: '3000' },
      warmup: { type: 'string', default: '5000' },
      'cap-s': { type: 'string', default: '60' },
      'payload-bytes': { type: 'string', default: '64' },
      transports: { type: 'string', default: transports.join(',') },
      out: { type: 'string', default: join(projectRoot, 'bench/results') },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (args.help) printHeaderHelp(import.meta.url);
  const chosen = args.transports.split(',').map((name) => name.trim());
  for (const name of chosen) if (!(transports as readonly string[]).includes(name)) throw new Error(`--transports: unknown transport '${name}' (valid: ${transports.join(', ')})`);
  return {
    runs: integerArg('runs', args.runs, 1, 100),
    count: integerArg('count', args.count, 1, 10_000_000),
    warmup: integerArg('warmup', args.warmup, 0, 1_000_000),
    capS: integerArg('cap-s', args['cap-s'], 1, 3600),
    payloadBytes: integerArg('payload-bytes', args['payload-bytes'], 1, 64 * 1024),
    transports: [...new Set(chosen)] as Transport[],
    out: args.out,
  };
}
type Config = ReturnType<typeof readConfig>;

/** calls makes up to count Append calls one at a time, until done or capS has passed. */
async function calls(quorum: Quorum, count: number, capS: number, payload: Buffer): Promise<{ latencies: Float64Array; done: number; elapsedS: number; capped: boolean }> {
  const latencies = new Float64Array(count);
  const start = performance.now();
  let done = 0;
  while (done < count && performance.now() - start <= capS * 1000) {
    const t0 = performance.now();
    await quorum.append(payload);
    latencies[done++] = performance.now() - t0;
  }
  return { latencies, done, elapsedS: (performance.now() - start) / 1000, capped: done < count };
}

/** Measured is one run's result; per-process values are [leader, follower 1, follower 2]. */
interface Measured {
  readonly calls: number;
  readonly elapsedS: number;
  readonly callsPerS: number;
  readonly latency: LatencySummary;
  readonly capped: boolean;
  readonly cpuMicrosPerCall: readonly number[];
  readonly clientCpuMicrosPerCall: number;
  readonly fdatasyncsPerCall: readonly number[];
  readonly loadavg1: readonly [number, number];
}
type RunResult = { readonly run: number; readonly transport: Transport } & ({ readonly measured: Measured } | { readonly error: string });

async function measure(quorum: Quorum, config: Config): Promise<Measured> {
  const payload = Buffer.alloc(config.payloadBytes, 0x61);
  const warm = await calls(quorum, config.warmup, config.capS, payload);
  if (warm.capped) throw new Error(`warm-up did only ${warm.done} of ${config.warmup} calls in ${config.capS} s`);
  const loadBefore = loadavg()[0]!;
  const before = await quorum.snapshot();
  const clientBefore = process.cpuUsage();
  const run = await calls(quorum, config.count, config.capS, payload);
  const client = process.cpuUsage(clientBefore);
  const after = await quorum.snapshot();
  const n = Math.max(1, run.done);
  return {
    calls: run.done,
    elapsedS: run.elapsedS,
    callsPerS: run.done / run.elapsedS,
    latency: summarizeLatencies(run.latencies, run.done),
    capped: run.capped,
    cpuMicrosPerCall: before.cpuMicros.map((b, i) => (b === undefined || after.cpuMicros[i] === undefined ? Number.NaN : (after.cpuMicros[i]! - b) / n)),
    clientCpuMicrosPerCall: (client.user + client.system) / n,
    fdatasyncsPerCall: before.counters.map((b, i) => (after.counters[i]!.syncs - b.syncs) / n),
    loadavg1: [loadBefore, loadavg()[0]!],
  };
}

function describeRun(m: Measured): string {
  const [leaderCpu, ...followerCpu] = m.cpuMicrosPerCall.map((v) => v.toFixed(0));
  const [leaderSyncs, ...followerSyncs] = m.fdatasyncsPerCall.map((v) => v.toFixed(3));
  return `${m.callsPerS.toFixed(0).padStart(5)} calls/s  p50 ${m.latency.p50Ms.toFixed(3)} p90 ${m.latency.p90Ms.toFixed(3)} p99 ${m.latency.p99Ms.toFixed(3)} ms` +
    `  CPU µs/call leader ${leaderCpu} followers ${followerCpu.join('/')} client ${m.clientCpuMicrosPerCall.toFixed(0)}` +
    `  fdatasyncs/call leader ${leaderSyncs} followers ${followerSyncs.join('/')}${m.capped ? '  CAPPED' : ''}`;
}

function summarize(config: Config, runs: readonly RunResult[]): { table: string; rows: { transport: Transport; runs: number; flagged: number; spreads: Record<string, Spread> }[] } {
  const followers = (values: readonly number[]): number => (values[1]! + values[2]!) / 2;
  const columns: [string, (m: Measured) => number][] = [
    ['calls/s', (m) => m.callsPerS], ['p50 ms', (m) => m.latency.p50Ms], ['p90 ms', (m) => m.latency.p90Ms], ['p99 ms', (m) => m.latency.p99Ms],
    ['leader CPU µs/call', (m) => m.cpuMicrosPerCall[0]!], ['follower CPU µs/call', (m) => followers(m.cpuMicrosPerCall)], ['client CPU µs/call', (m) => m.clientCpuMicrosPerCall],
    ['leader fdatasyncs/call', (m) => m.fdatasyncsPerCall[0]!], ['follower fdatasyncs/call', (m) => followers(m.fdatasyncsPerCall)],
  ];
  const rows = config.transports.map((transport) => {
    const mine = runs.filter((run) => run.transport === transport);
    const measured = mine.flatMap((run) => ('measured' in run ? [run.measured] : []));
    const spreads = Object.fromEntries(columns.map(([name, pick]) => [name, spreadOf(measured.map(pick))]));
    return { transport, runs: mine.length, flagged: mine.length - measured.filter((m) => !m.capped).length, spreads };
  });
  const table = [
    `Quorum-write floor: 3 Node processes on 127.0.0.1, ${config.payloadBytes} B entries, 1 call in flight; median (min–max) over ${config.runs} run(s) of ${config.count} calls`,
    '',
    `| peer transport | ${columns.map(([name]) => name).join(' | ')} | runs (flagged) |`,
    `|---|${columns.map(() => '---|').join('')}---|`,
    ...rows.map((row) => `| ${row.transport} | ${columns.map(([name]) => formatSpread(row.spreads[name]!)).join(' | ')} | ${row.runs} (${row.flagged}) |`),
    '',
    'Follower columns: mean of the two followers. Flagged: capped by --cap-s, or failed (left out of the medians).',
  ];
  return { table: table.join('\n'), rows };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = readConfig();
  } catch (error) {
    console.error(`quorum-floor: ${(error as Error).message} (see --help)`);
    process.exit(2);
  }
  const started = new Date().toISOString();
  console.error(`quorum floor: ${config.runs} run(s) of ${config.transports.join(' + ')}, ${config.warmup} warm-up + ${config.count} calls each, cap ${config.capS} s`);
  const runs: RunResult[] = [];
  for (let run = 1; run <= config.runs; run++) {
    for (const transport of config.transports) {
      const quorum = new Quorum();
      try {
        await quorum.start(transport);
        const measured = await measure(quorum, config);
        runs.push({ run, transport, measured });
        console.error(`run ${run}/${config.runs} ${transport.padEnd(4)} ${describeRun(measured)}`);
      } catch (caught) {
        runs.push({ run, transport, error: (caught as Error).stack ?? String(caught) });
        console.error(`run ${run}/${config.runs} ${transport} FAILED: ${(caught as Error).message}`);
      } finally {
        await quorum.stop();
      }
    }
  }
  const { table, rows } = summarize(config, runs);
  mkdirSync(config.out, { recursive: true });
  const outPath = join(config.out, `${started.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-floor.json`);
  const report = { bench: 'quorum-floor', started, finished: new Date().toISOString(), machine: machineInfo(projectRoot), config, summary: rows, runs };
  writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
  console.log(table);
  console.log(`\nraw results: ${relative(process.cwd(), outPath) || outPath}`);
  if (runs.some((run) => 'error' in run)) process.exitCode = 1;
}

if (process.argv[2] === '--role') await runChild();
else await main();
