// ClusterSimulation runs whole raftbus nodes in virtual time: the production NodeShell (Raft host,
// metadata quorum, controller, broker membership, partition replicas, group coordinators), each over
// its own MemoryDisk (fdatasync completes some virtual ms after it is issued, a slow disk later; a crash keeps only
// what completed, and may tear the unsynced tail) and MemoryStateStore, the peers' Raft messages
// through the production peer codec over a SimNetwork, brokers' calls to the controller and
// clients' calls to brokers over FIFO links with delay and loss.
//
// Every timer of a node is an event of this simulation owned by one incarnation of that node: a
// crashed incarnation's events are dropped, a paused node's are held and replayed when it resumes
// (as after SIGCONT). After each event the runner lets every microtask settle before the next, so
// with no real I/O and no real timers the whole run is a function of the seed.
import { controllerDefaults, metadataGroup } from '../../src/node/limits.js';
import { createLogger, type Logger } from '../../src/node/logger.js';
import { NodeShell, type ShellEnvironment } from '../../src/node/node-shell.js';
import type { ControllerApi } from '../../src/node/broker-lifecycle.js';
import type { ClusterConfig, ClusterNode } from '../../src/node/cluster-file.js';
import type { Clock, Timer } from '../../src/node/runtime.js';
import { NotControllerError, RaftbusError } from '../../src/errors.js';
import { randomInt, seededRandom, type Random } from '../../src/raft/prng.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { decodeMessage, encodeMessage } from '../../src/rpc/peer-codec.js';
import type { Disk, DiskFile } from '../../src/storage/disk.js';
import { EventHeap, firstOnly, type Scheduled } from './heap.js';
import { MemoryDisk } from './memory-disk.js';
import { MemoryStateStore } from './memory-state-store.js';
import { RequestTimeoutError } from './groups-consumer.js';
import { SimNetwork, type LinkFaults } from './network.js';

/** snapshotAckTimeoutMs: a snapshot whose receiver never acknowledged it is reported failed after this long (the stream broke). */
const snapshotAckTimeoutMs = 1000;
/** eventsAtOneInstantMax: more events than this without virtual time moving is a livelock. */
const eventsAtOneInstantMax = 100_000;

export interface ClusterSimOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly trace: boolean;
  /** sessionTimeoutMs: the controller fences a broker silent this long. */
  readonly sessionTimeoutMs: number;
  /** snapshotEveryEntries: the metadata quorum snapshots this often. */
  readonly snapshotEveryEntries: number;
  /** syncMsMax[i]: node i+1's fdatasync (and synced state-store write) completes 0 to this many ms after it is issued. */
  readonly syncMsMax: readonly number[];
  /** offsetsCompactBytes: the offsets partitions are compacted once they hold this many bytes; unset, the production default (never reached here). */
  readonly offsetsCompactBytes?: number | undefined;
}

interface Owner {
  readonly slot: NodeSlot;
  readonly incarnation: number;
}

interface SimEvent extends Scheduled {
  readonly owner: Owner | undefined;
  /** fire returns false when it did nothing (no microtasks to let settle). */
  readonly fire: () => boolean | void;
}

export type NodeState = 'down' | 'starting' | 'up' | 'paused';

export class NodeSlot {
  incarnation = 0;
  state: NodeState = 'down';
  shell: NodeShell | undefined;
  held: SimEvent[] = [];
  /** syncFree: when this disk completes its last issued sync (syncs complete in order). */
  syncFree = 0;
  starts = 0;
  readonly disk: MemoryDisk;
  readonly stateStore: MemoryStateStore;

  constructor(
    readonly id: NodeId,
    readonly sim: ClusterSimulation,
    random: Random,
  ) {
    this.disk = new MemoryDisk({ random, syncMode: 'manual' });
    this.stateStore = new MemoryStateStore(() => sim.afterSyncLatency(this));
  }

  owner(): Owner {
    return { slot: this, incarnation: this.incarnation };
  }

  get dataDir(): string {
    return `/data/node-${this.id}`;
  }
}

export interface SimCounts {
  events: number;
  messages: number;
  /** messagesInOneSecondMax: the most peer messages sent in one virtual second. */
  messagesInOneSecondMax: number;
  messagesLost: number;
  crashes: number;
  corruptions: number;
  pauses: number;
  calls: number;
  callsLost: number;
}

export class ClusterSimulation {
  now = 0;
  readonly random: Random;
  readonly network: SimNetwork;
  readonly slots = new Map<NodeId, NodeSlot>();
  readonly cluster: ClusterConfig;
  readonly trace: string[] = [];
  readonly counts: SimCounts = { events: 0, messages: 0, messagesInOneSecondMax: 0, messagesLost: 0, crashes: 0, corruptions: 0, pauses: 0, calls: 0, callsLost: 0 };
  /** clientFaults: loss and delay on links between clients and nodes; clientCuts: nodes clients cannot reach. */
  clientFaults: LinkFaults;
  readonly clientCuts = new Set<NodeId>();
  private readonly events = new EventHeap<SimEvent>();
  private seq = 0;
  private eventsAtNow = 0;
  private second = 0;
  private messagesThisSecond = 0;
  private failure: { error: unknown } | undefined;
  private readonly linkFree = new Map<string, number>();
  private ids = 0;

  constructor(readonly options: ClusterSimOptions) {
    this.random = seededRandom(options.seed);
    this.network = new SimNetwork(seededRandom((options.seed ^ 0x5bd1e995) >>> 0));
    this.clientFaults = this.network.faults;
    const nodes: ClusterNode[] = [];
    for (let id = 1; id <= options.nodes; id++) {
      this.slots.set(id, new NodeSlot(id, this, seededRandom((options.seed * 31 + id) >>> 0)));
      nodes.push({ id, host: `node-${id}`, peerPort: 9100 + id, clientPort: 9200 + id, roles: ['controller', 'broker'], dataDir: `/data/node-${id}`, rack: undefined });
    }
    this.cluster = { clusterId: 'sim', nodes };
  }

  slot(id: NodeId): NodeSlot {
    return this.slots.get(id)!;
  }

  // ---- the event loop ----

  schedule(at: number, owner: Owner | undefined, fire: () => boolean | void): void {
    this.events.push({ at: Math.max(at, this.now), seq: this.seq++, owner, fire });
  }

  /** runUntil plays every event up to untilMs (or until stop() says so), letting microtasks settle after each. */
  async runUntil(untilMs: number, stop: () => boolean = () => false): Promise<void> {
    for (;;) {
      this.throwIfFailed();
      const next = this.events.peek();
      if (next === undefined || next.at > untilMs || stop()) break;
      this.events.pop();
      if (next.at === this.now) {
        if (++this.eventsAtNow > eventsAtOneInstantMax) throw new Error(`livelock: more than ${eventsAtOneInstantMax} events at virtual time ${this.now}`);
      } else this.eventsAtNow = 0;
      this.now = next.at;
      const owner = next.owner;
      if (owner !== undefined) {
        const slot = owner.slot;
        if (slot.incarnation !== owner.incarnation || slot.state === 'down') continue;
        if (slot.state === 'paused') {
          slot.held.push(next);
          continue;
        }
      }
      this.counts.events++;
      if (next.fire() === false) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.throwIfFailed();
    if (!stop()) this.now = Math.max(this.now, untilMs);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  fail(error: unknown): void {
    this.failure ??= { error };
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  note(line: () => string): void {
    if (this.options.trace) this.trace.push(`${this.now} ${line()}`);
  }

  // ---- nodes ----

  /** afterSyncLatency resolves when a sync issued now by slot's current incarnation completes (never, if it crashes first). */
  afterSyncLatency(slot: NodeSlot): Promise<void> {
    const at = Math.max(this.now + randomInt(this.random, 0, this.options.syncMsMax[slot.id - 1] ?? 3), slot.syncFree);
    slot.syncFree = at;
    return new Promise((resolve) => this.schedule(at, slot.owner(), () => resolve()));
  }

  /** start starts a new incarnation of a node that is down: it recovers from its disk and joins. */
  start(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== 'down') return;
    slot.incarnation++;
    slot.starts++;
    slot.state = 'starting';
    slot.held = [];
    slot.syncFree = this.now;
    const owner = slot.owner();
    this.note(() => `start node ${id} (incarnation ${owner.incarnation})`);
    const env = this.environment(slot, owner);
    const logger = this.loggerFor(id);
    NodeShell.open(
      {
        cluster: this.cluster,
        nodeId: id,
        logger,
        clientPort: 9200 + id,
        sessionTimeoutMs: this.options.sessionTimeoutMs,
        snapshotEveryEntries: this.options.snapshotEveryEntries,
        offsetsTopicPartitions: 2,
        ...(this.options.offsetsCompactBytes === undefined ? {} : { offsetsCompactBytes: this.options.offsetsCompactBytes }),
        onFailure: (error) => {
          if (slot.incarnation === owner.incarnation) this.fail(new Error(`node ${id} stopped on a storage failure: ${error.message}`, { cause: error }));
        },
      },
      env,
    ).then(
      (shell) => {
        if (slot.incarnation !== owner.incarnation) return;
        slot.shell = shell;
        slot.state = 'up';
        shell.start();
      },
      (error: unknown) => {
        if (slot.incarnation === owner.incarnation) this.fail(new Error(`node ${id} failed to start: ${String(error)}`, { cause: error }));
      },
    );
  }

  /**
   * crash kills a node. With power: true the machine loses power too: unsynced writes are lost (torn
   * when tear); without, only the process dies (kill -9) and the page cache keeps what it wrote.
   */
  crash(id: NodeId, options: { power: boolean; tear: boolean }): void {
    const slot = this.slot(id);
    if (slot.state === 'down') return;
    this.counts.crashes++;
    this.note(() => `${options.power ? 'power loss of' : 'kill -9 of'} node ${id}${options.power && options.tear ? ' (torn writes)' : ''}`);
    slot.state = 'down';
    slot.shell = undefined;
    slot.held = [];
    slot.incarnation++; // the dead incarnation's events and answers are dropped
    // The other nodes' streams to it break: their transports report it unreachable (a leader then probes it afresh).
    for (const other of this.slots.values()) {
      if (other === slot || other.state === 'down') continue;
      this.schedule(this.now + randomInt(this.random, 1, 50), other.owner(), () => other.shell?.reportUnreachable(id));
    }
    if (options.power) {
      slot.disk.crash({ tear: options.tear });
      slot.stateStore.crash();
    } else {
      slot.disk.killProcess();
      slot.stateStore.killProcess();
    }
  }

  /** corrupt flips a bit in, or truncates, one file of a node that is down (bit rot, a lost tail). */
  corrupt(id: NodeId, how: 'flip' | 'truncate', pick: number): void {
    const slot = this.slot(id);
    if (slot.state !== 'down') return;
    // Damage lands in what a file holds: the zeros a log grows its files by ahead hold nothing.
    const files = slot.disk.paths().filter((path) => path.startsWith(`${slot.dataDir}/`) && slot.disk.contentBytes(path) > 0);
    if (files.length === 0) return;
    const path = files[Math.floor(pick * files.length) % files.length]!;
    const size = slot.disk.contentBytes(path);
    const at = randomInt(this.random, 0, size - 1);
    this.counts.corruptions++;
    if (how === 'flip') slot.disk.flipBit(path, at, randomInt(this.random, 0, 7));
    else slot.disk.truncateFile(path, at);
    this.note(() => `corrupt node ${id}: ${how} ${path} at byte ${at} of ${size}`);
  }

  pause(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== 'up') return;
    this.counts.pauses++;
    slot.state = 'paused';
    this.note(() => `pause node ${id}`);
  }

  resume(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== 'paused') return;
    slot.state = 'up';
    const held = slot.held.splice(0);
    this.note(() => `resume node ${id} with ${held.length} events held`);
    for (const event of held) this.schedule(this.now, event.owner, event.fire);
  }

  private loggerFor(id: NodeId): Logger {
    if (!this.options.trace) return createLogger({ nodeId: id, level: 'silent' });
    // The trace keeps virtual time only: pino's wall-clock time would differ between replays.
    const write = (line: string): void => {
      const { time: _time, level, node, msg, err, ...fields } = JSON.parse(line) as Record<string, unknown>;
      if (err !== undefined) fields['err'] = `${String((err as { type?: unknown }).type)}: ${String((err as { message?: unknown }).message)}`;
      this.trace.push(`${this.now} node ${String(node)} [${String(level)}] ${String(msg)} ${JSON.stringify(fields)}`);
    };
    return createLogger({ nodeId: id, level: 'info', destination: { write } });
  }

  private environment(slot: NodeSlot, owner: Owner): ShellEnvironment {
    const alive = (): boolean => slot.incarnation === owner.incarnation;
    const id = slot.id;
    return {
      clock: this.clockFor(owner),
      disk: new IncarnationDisk(slot.disk, alive, () => this.afterSyncLatency(slot)),
      random: seededRandom((this.options.seed ^ (id * 0x9e3779b1) ^ (owner.incarnation * 0x85ebca6b)) >>> 0),
      newId: () => `n${id}i${owner.incarnation}-${++this.ids}`,
      dataDir: slot.dataDir,
      stateStore: slot.stateStore,
      send: (messages) => this.sendPeer(id, messages),
      connectController: (node) => this.controllerLink(slot, node.id),
      createTopic: (request) => this.callController(slot, (shell) => shell.controllerRuntime()?.createTopic({ ...request, requestId: `offsets-${id}-${this.ids++}` })),
    };
  }

  private clockFor(owner: Owner): Clock {
    const schedule = (at: number, fire: () => boolean | void): void => this.schedule(at, owner, fire);
    const sim = this;
    return {
      now: () => sim.now,
      elapsedMs: () => sim.now,
      after(ms: number, fn: () => void): Timer {
        let cancelled = false;
        schedule(sim.now + ms, () => (cancelled ? false : fn()));
        return { cancel: () => void (cancelled = true) };
      },
      every(ms: number, fn: () => void): Timer {
        let cancelled = false;
        const loop = (): boolean => {
          if (cancelled) return false;
          schedule(sim.now + ms, loop);
          fn();
          return true;
        };
        schedule(sim.now + ms, loop);
        return { cancel: () => void (cancelled = true) };
      },
      soon(fn: () => void): void {
        schedule(sim.now, fn);
      },
      sleep: (ms: number) => new Promise<void>((resolve) => schedule(sim.now + ms, resolve)),
    };
  }

  // ---- the peer network ----

  private sendPeer(from: NodeId, messages: readonly Message[]): void {
    const sender = this.slot(from);
    for (const message of messages) {
      this.countMessage();
      const target = this.slots.get(message.to);
      const delays = target === undefined || target.state === 'down' ? [] : this.network.deliveries(message);
      if (delays.length === 0) this.counts.messagesLost++;
      const bytes = encodeMessage(message);
      // The transport reports a snapshot delivered when the receiver acknowledges it, failed when the stream breaks first.
      const report = message.type === 'installSnapshot' ? this.snapshotReporter(sender, message.group, message.to) : undefined;
      for (const delay of delays) {
        this.schedule(this.now + delay, target!.owner(), () => {
          const shell = target!.shell;
          if (shell === undefined) return false;
          shell.receive(from, [decodeMessage(bytes)]);
          if (report !== undefined && !this.network.isCut(message.to, from)) this.schedule(this.now + randomInt(this.random, 1, 3), undefined, () => report('finished'));
          return true;
        });
      }
    }
  }

  /** snapshotReporter returns a once-only report of a snapshot's fate to its sender's incarnation; without one, it fails after snapshotAckTimeoutMs. */
  private snapshotReporter(sender: NodeSlot, group: number, to: NodeId): (outcome: 'finished' | 'failed') => boolean {
    const owner = sender.owner();
    let reported = false;
    const report = (outcome: 'finished' | 'failed'): boolean => {
      if (reported || sender.incarnation !== owner.incarnation) return false;
      reported = true;
      sender.shell?.reportSnapshot({ group, to, outcome });
      return true;
    };
    this.schedule(this.now + snapshotAckTimeoutMs, owner, () => report('failed'));
    return report;
  }

  /** countMessage counts a peer message, also in the current virtual second (storms show as peaks). */
  private countMessage(): void {
    this.counts.messages++;
    const second = Math.floor(this.now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.messagesThisSecond = 0;
    }
    this.messagesThisSecond++;
    this.counts.messagesInOneSecondMax = Math.max(this.counts.messagesInOneSecondMax, this.messagesThisSecond);
  }

  // ---- calls: brokers to the controller, clients to brokers ----

  /**
   * call sends a request over the FIFO link from `from` to node `to`, runs serve on that node's shell
   * when it arrives, and carries the answer (or the typed error it threw) back. It rejects with
   * RequestTimeoutError at the deadline when the request or the answer is lost, or the node is down.
   * `fromOwner`: the caller's incarnation when the caller is a node (its answers die with it).
   */
  call<T>(from: string, to: NodeId, deadlineMs: number, serve: (shell: NodeShell) => Promise<T> | T, fromOwner?: Owner): Promise<T> {
    this.counts.calls++;
    const target = this.slot(to);
    return new Promise<T>((resolve, reject) => {
      const settle = firstOnly();
      this.schedule(this.now + deadlineMs, fromOwner, () => settle(() => reject(new RequestTimeoutError(`${from} -> node ${to}`))));
      const arrival = this.transit(from, `n${to}`);
      if (arrival === undefined || target.state === 'down') {
        this.counts.callsLost++;
        return;
      }
      this.schedule(arrival, target.owner(), () => {
        const shell = target.shell;
        if (shell === undefined) return false;
        let answer: Promise<T>;
        try {
          answer = Promise.resolve(serve(shell));
        } catch (error) {
          answer = Promise.reject(error as Error);
        }
        const back = (outcome: () => void): void => {
          const at = this.transit(`n${to}`, from);
          if (at === undefined) {
            this.counts.callsLost++;
            return;
          }
          this.schedule(at, fromOwner, () => settle(outcome));
        };
        answer.then(
          (value) => back(() => resolve(value)),
          (error: unknown) => {
            if (!(error instanceof RaftbusError)) this.fail(new Error(`node ${to} answered ${from} with an untyped error: ${String(error)}`, { cause: error }));
            else back(() => reject(error));
          },
        );
        return true;
      });
    });
  }

  /**
   * transit returns when a message sent now from `from` to `to` arrives (FIFO per link), or undefined
   * when it is lost. Endpoints: `n<id>` is a node; anything else (p0, c1, admin, metadata) a client.
   */
  private transit(from: string, to: string): number | undefined {
    const nodes = [from, to].filter((end) => end.startsWith('n')).map((end) => Number(end.slice(1)));
    let faults: LinkFaults;
    if (nodes.length === 2) {
      if (this.network.isCut(nodes[0]!, nodes[1]!)) return undefined;
      faults = this.network.faults;
    } else {
      if (nodes.some((node) => this.clientCuts.has(node))) return undefined;
      faults = this.clientFaults;
    }
    if (this.random() < faults.dropRate) return undefined;
    const link = `${from}>${to}`;
    const at = Math.max(this.now + randomInt(this.random, faults.delayMinMs, faults.delayMaxMs), this.linkFree.get(link) ?? 0);
    this.linkFree.set(link, at);
    return at;
  }

  private controllerLink(slot: NodeSlot, to: NodeId): ControllerApi {
    const owner = slot.owner();
    const serve = <T>(run: (controller: NonNullable<ReturnType<NodeShell['controllerRuntime']>>) => Promise<T>) => (shell: NodeShell) => {
      const controller = shell.controllerRuntime();
      if (controller === undefined) throw new NotControllerError(0);
      return run(controller);
    };
    return {
      registerBroker: (request) => this.call(`n${slot.id}`, to, controllerDefaults.callDeadlineMs, serve((controller) => controller.registerBroker(request)), owner),
      brokerHeartbeat: (request) => this.call(`n${slot.id}`, to, controllerDefaults.callDeadlineMs, serve((controller) => controller.brokerHeartbeat(request)), owner),
      close: () => undefined,
    };
  }

  /** callController asks the controller from a node (offsets topic creation): the node it believes leads, else any; the caller retries. */
  private async callController<T>(slot: NodeSlot, run: (shell: NodeShell) => Promise<T> | undefined): Promise<T> {
    const owner = slot.owner();
    const hint = slot.shell?.host.status(metadataGroup)?.leader ?? 0;
    const to = hint !== 0 ? hint : randomInt(this.random, 1, this.options.nodes);
    return this.call(
      `n${slot.id}`,
      to,
      controllerDefaults.callDeadlineMs,
      (shell) => {
        const answer = run(shell);
        if (answer === undefined) throw new NotControllerError(0);
        return answer;
      },
      owner,
    );
  }
}

/**
 * IncarnationDisk is one incarnation's view of its node's MemoryDisk: every operation of a crashed
 * incarnation is refused (it must never run again; this catches the simulator if it does), and
 * fdatasync completes after a simulated latency.
 */
class IncarnationDisk implements Disk {
  constructor(
    private readonly disk: MemoryDisk,
    private readonly alive: () => boolean,
    private readonly latency: () => Promise<void>,
  ) {}

  get preallocateBytes(): number {
    return this.disk.preallocateBytes;
  }

  private check(): MemoryDisk {
    if (!this.alive()) throw new Error('a crashed incarnation used its disk');
    return this.disk;
  }

  mkdirp(dir: string): void {
    this.check().mkdirp(dir);
  }
  list(dir: string): string[] {
    return this.check().list(dir);
  }
  exists(path: string): boolean {
    return this.check().exists(path);
  }
  open(path: string, options: { create: boolean }): DiskFile {
    return this.check().open(path, options);
  }
  size(file: DiskFile): number {
    return this.check().size(file);
  }
  read(file: DiskFile, position: number, length: number): Uint8Array {
    return this.check().read(file, position, length);
  }
  write(file: DiskFile, position: number, data: Uint8Array): void {
    this.check().write(file, position, data);
  }
  truncate(file: DiskFile, length: number): void {
    this.check().truncate(file, length);
  }
  close(file: DiskFile): void {
    this.check().close(file);
  }
  rename(from: string, to: string): void {
    this.check().rename(from, to);
  }
  unlink(path: string): void {
    this.check().unlink(path);
  }
  removeTree(dir: string): Promise<void> {
    return this.check().removeTree(dir);
  }
  fdatasync(file: DiskFile): Promise<void> {
    const synced = this.check().fdatasync(file);
    void this.latency().then(() => this.disk.completeNextSync());
    return synced;
  }
  syncDirectory(dir: string): Promise<void> {
    return this.check().syncDirectory(dir);
  }
}
