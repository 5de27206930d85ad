// The controller side of the controller simulation: on every node, a controller run the way
// src/node/controller-runtime.ts runs it (active only while leader and after applying an entry of
// its own term; one operation at a time against the node's current image; the records proposed as
// one batch; the answer given once that node applies the batch), a broker that registers and
// heartbeats the way src/node/broker-lifecycle.ts does, and an admin client that retries with the
// same request id. Every node's metadata image is a real MetadataStateMachine fed by the
// simulation's extension hooks, so snapshots, compaction and restarts rebuild it.
import * as operations from '../../src/controller/operations.js';
import { NotControllerError, ProposalDroppedError, ProposalRejectedError, RaftbusError, StaleBrokerEpochError } from '../../src/errors.js';
import { ImpossibleRecordError } from '../../src/metadata/delta.js';
import type { MetadataImage } from '../../src/metadata/image.js';
import { MetadataStateMachine, emptyMetadataSnapshotData } from '../../src/node/metadata-state-machine.js';
import { seededRandom, type Random } from '../../src/raft/prng.js';
import type { Entry, NodeId, Snapshot } from '../../src/raft/types.js';
import { MetadataDecodeError, encodeRecordBatch } from '../../src/rpc/metadata-codec.js';
import { ControllerChecker } from './controller-checker.js';
import { InvariantViolation } from './raft-checker.js';
import { simGroup, type RaftSimulation, type SimExtension, type SimMachine } from './raft-simulation.js';

/** SimMetadataMachine is a node's MetadataStateMachine; a batch that does not replay is a violation, not a crash. */
class SimMetadataMachine implements SimMachine {
  readonly state = new MetadataStateMachine();

  constructor(readonly node: NodeId) {}

  apply(entries: readonly Entry[]): void {
    try {
      this.state.apply(entries);
    } catch (error) {
      if (error instanceof ImpossibleRecordError || error instanceof MetadataDecodeError) {
        throw new InvariantViolation('every committed batch replays on every image', `node ${this.node}: ${error.message}`);
      }
      throw error;
    }
  }

  snapshotData(): Uint8Array {
    return this.state.snapshotData();
  }

  restore(snapshot: Snapshot): void {
    this.state.restore(snapshot);
  }
}

/** UnreachableError: the request did not reach a controller, or the node died before answering. */
export class UnreachableError extends RaftbusError {
  override readonly name = 'UnreachableError';
  readonly retriable = true;
}

export interface ModelTiming {
  /** Virtual milliseconds. */
  readonly sessionTimeoutMs: number;
  readonly fenceCheckMs: number;
  readonly heartbeatIntervalMs: number;
  /** callDeadlineMs: a broker gives up on a call after this long (and may beat again). */
  readonly callDeadlineMs: number;
}

type Done = (result: { ok: true; response: unknown } | { ok: false; error: unknown }) => void;

interface Queued {
  readonly what: string;
  readonly run: (image: MetadataImage) => operations.Outcome<unknown>;
  readonly done: Done;
}

/** One node's controller: ControllerRuntime's state. Lost when the node crashes. */
interface NodeController {
  readonly incarnation: number;
  readonly queue: Queued[];
  inFlight: { readonly index: number; readonly term: number; readonly queued: Queued; readonly response: unknown } | undefined;
  readonly lastHeardMs: Map<NodeId, number>;
  activeTerm: number;
  drainScheduled: boolean;
}

type BrokerState = 'unregistered' | 'fenced' | 'active' | 'stopped';

/** One node's broker: BrokerLifecycle's state. A fresh incarnation at every start of the node. */
interface NodeBroker {
  incarnationId: string;
  state: BrokerState;
  brokerEpoch: number;
  wantShutdown: boolean;
  /** callSince: when the outstanding call started (a broker has at most one). */
  callSince: number | undefined;
  /** generation: bumped on a new incarnation, so a late answer to an older one is ignored. */
  generation: number;
}

export interface CreateRequest {
  readonly requestId: string;
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

export type AdminRequest =
  | { readonly kind: 'create'; readonly request: CreateRequest }
  | { readonly kind: 'delete'; readonly requestId: string; readonly name: string }
  | { readonly kind: 'addPartitions'; readonly name: string; readonly partitions: number }
  | { readonly kind: 'alterConfigs'; readonly name: string; readonly set: Readonly<Record<string, string>>; readonly remove: readonly string[] };

/** adminAttemptsMax: an admin client sends a request at most this often while the answers are retriable. */
const adminAttemptsMax = 6;

export class ControllerModel {
  readonly checker: ControllerChecker;
  readonly extension: SimExtension;
  private simulation!: RaftSimulation;
  private readonly controllers = new Map<NodeId, NodeController>();
  private readonly brokers = new Map<NodeId, NodeBroker>();
  private readonly random: Random;
  private nextTopicId = 1;
  private nextRequestId = 1;
  private nextIncarnation = 1;
  /** creates: every create issued, so a schedule can send one again with the same request id. */
  readonly creates: CreateRequest[] = [];
  /** outcomes counts the answers by kind: 'ok' or the error's name, per operation. */
  readonly outcomes = new Map<string, number>();

  constructor(
    seed: number,
    readonly timing: ModelTiming,
  ) {
    this.checker = new ControllerChecker();
    this.random = seededRandom((seed ^ 0x2c1b3c6d) >>> 0);
    const checker = this.checker;
    const machineOf = (machine: SimMachine): MetadataStateMachine => (machine as SimMetadataMachine).state;
    this.extension = {
      bootstrapData: emptyMetadataSnapshotData(),
      machine: (node) => new SimMetadataMachine(node),
      restored: (node, snapshot, simMachine) => {
        const machine = machineOf(simMachine);
        const controller = this.controllers.get(node);
        // At a start, the node's controller is still the previous life's (or none): started() follows.
        const simulation = this.simulation as RaftSimulation | undefined;
        const sameLife = simulation !== undefined && controller !== undefined && controller.incarnation === simulation.incarnation(node);
        checker.restored(node, { offset: snapshot.metadata.index, image: machine.image, digest: machine.digest, sameLife });
        if (sameLife) this.snapshotInstalled(node, snapshot.metadata.index);
      },
      applying: (node, entry) => checker.applying(node, entry),
      applied: (node, entry, simMachine) => {
        const machine = machineOf(simMachine);
        checker.applied(node, entry, machine.image, machine.digest);
        this.entryApplied(node, entry);
      },
    };
  }

  /** attach: the simulation this model drives (built with this.extension); starts every node's controller and broker. */
  attach(simulation: RaftSimulation): void {
    this.simulation = simulation;
    for (const id of simulation.nodes.keys()) this.started(id);
  }

  private get now(): number {
    return this.simulation.now;
  }

  image(node: NodeId): MetadataImage | undefined {
    return (this.simulation.extraMachine(node) as SimMetadataMachine | undefined)?.state.image;
  }

  private machine(node: NodeId): MetadataStateMachine | undefined {
    return (this.simulation.extraMachine(node) as SimMetadataMachine | undefined)?.state;
  }

  private count(what: string, outcome: string): void {
    const key = `${what} ${outcome}`;
    this.outcomes.set(key, (this.outcomes.get(key) ?? 0) + 1);
  }

  // ------------------------------------------------------------------------------------------
  // Node lifecycle.

  /** started: node id (re)started: a new controller, and a broker with a fresh incarnation. */
  started(id: NodeId): void {
    this.controllers.set(id, { incarnation: this.simulation.incarnation(id), queue: [], inFlight: undefined, lastHeardMs: new Map(), activeTerm: 0, drainScheduled: false });
    const broker = this.brokers.get(id);
    this.brokers.set(id, { incarnationId: this.freshIncarnation(id), state: 'unregistered', brokerEpoch: 0, wantShutdown: false, callSince: undefined, generation: (broker?.generation ?? 0) + 1 });
  }

  /** crashed: node id died: its controller's callers see their calls fail; its broker is gone. */
  crashed(id: NodeId): void {
    this.checker.forget(id);
    const controller = this.controllers.get(id);
    this.controllers.delete(id);
    const broker = this.brokers.get(id);
    if (broker !== undefined) this.brokers.set(id, { ...broker, state: 'stopped', callSince: undefined, generation: broker.generation + 1 });
    if (controller === undefined) return;
    const lost = [...(controller.inFlight === undefined ? [] : [controller.inFlight.queued]), ...controller.queue.splice(0)];
    controller.inFlight = undefined;
    for (const queued of lost) queued.done({ ok: false, error: new UnreachableError(`node ${id} crashed`) });
  }

  private freshIncarnation(id: NodeId): string {
    return `b${id}.${this.nextIncarnation++}`;
  }

  private controller(id: NodeId): NodeController | undefined {
    const controller = this.controllers.get(id);
    if (controller === undefined || controller.incarnation !== this.simulation.incarnation(id) || !this.simulation.isUp(id)) return undefined;
    return controller;
  }

  // ------------------------------------------------------------------------------------------
  // The controller on each node (ControllerRuntime).

  /** isActive: as ControllerRuntime.isActive: leads the metadata quorum and applied an entry of its term. */
  isActive(id: NodeId): boolean {
    const status = this.simulation.status(id);
    const machine = this.machine(id);
    return status !== undefined && machine !== undefined && status.role === 'leader' && machine.appliedTerm === status.term;
  }

  private hint(id: NodeId): NodeId {
    return this.simulation.status(id)?.leader ?? 0;
  }

  /** execute: as ControllerRuntime.execute on node id. */
  private execute(id: NodeId, what: string, run: Queued['run'], done: Done): void {
    const controller = this.controller(id);
    if (controller === undefined) return done({ ok: false, error: new UnreachableError(`node ${id} is down`) });
    if (!this.isActive(id)) return done({ ok: false, error: new NotControllerError(this.hint(id)) });
    controller.queue.push({ what, run, done });
    this.drain(id);
  }

  /** drain runs queued operations one at a time: the next starts once the previous batch is applied here or dropped. */
  private drain(id: NodeId): void {
    const controller = this.controller(id);
    if (controller === undefined) return;
    while (controller.inFlight === undefined) {
      const queued = controller.queue.shift();
      if (queued === undefined) return;
      if (!this.isActive(id)) {
        queued.done({ ok: false, error: new NotControllerError(this.hint(id)) });
        continue;
      }
      let outcome: operations.Outcome<unknown>;
      try {
        outcome = queued.run(this.machine(id)!.image);
      } catch (error) {
        queued.done({ ok: false, error });
        continue;
      }
      if (outcome.records.length === 0) {
        queued.done({ ok: true, response: outcome.response });
        continue;
      }
      const result = this.simulation.proposeData(id, encodeRecordBatch(outcome.records));
      this.simulation.note(`controller ${id} ${queued.what}: ${outcome.records.map((record) => record.type).join(',')} -> ${result?.kind ?? 'down'}`);
      if (result === undefined) queued.done({ ok: false, error: new UnreachableError(`node ${id} is down`) });
      else if (result.kind === 'accepted') controller.inFlight = { index: result.index, term: result.term, queued, response: outcome.response };
      else if (result.kind === 'notLeader') queued.done({ ok: false, error: new NotControllerError(result.leaderHint) });
      else queued.done({ ok: false, error: new ProposalRejectedError(simGroup, result) });
    }
  }

  private scheduleDrain(id: NodeId, controller: NodeController): void {
    if (controller.drainScheduled) return;
    controller.drainScheduled = true;
    // As the runtime continues after its await: once the node finished the Ready that applied the batch.
    this.simulation.at(this.now, () => {
      controller.drainScheduled = false;
      this.drain(id);
    });
  }

  /** entryApplied: as RaftHost.settleWaiter: the in-flight batch committed (same term) or its slot went to another entry. */
  private entryApplied(id: NodeId, entry: Entry): void {
    const controller = this.controller(id);
    const inFlight = controller?.inFlight;
    if (controller === undefined || inFlight === undefined || inFlight.index !== entry.index) return;
    controller.inFlight = undefined;
    if (inFlight.term === entry.term) inFlight.queued.done({ ok: true, response: inFlight.response });
    else inFlight.queued.done({ ok: false, error: new ProposalDroppedError(simGroup, inFlight.index) });
    this.scheduleDrain(id, controller);
  }

  /** snapshotInstalled: as RaftHost.failWaitersUpTo: a snapshot over the in-flight slot leaves its outcome unknown. */
  private snapshotInstalled(id: NodeId, index: number): void {
    const controller = this.controller(id);
    const inFlight = controller?.inFlight;
    if (controller === undefined || inFlight === undefined || inFlight.index > index) return;
    controller.inFlight = undefined;
    inFlight.queued.done({ ok: false, error: new ProposalDroppedError(simGroup, inFlight.index) });
    this.scheduleDrain(id, controller);
  }

  /** checkSessions: as ControllerRuntime.checkSessions, on every live node. */
  checkSessions(): void {
    for (const id of this.simulation.nodes.keys()) {
      const controller = this.controller(id);
      if (controller === undefined) continue;
      if (!this.isActive(id)) {
        controller.activeTerm = 0;
        continue;
      }
      const term = this.simulation.status(id)!.term;
      const nowMs = this.now;
      const image = this.machine(id)!.image;
      if (term !== controller.activeTerm) {
        controller.activeTerm = term;
        for (const broker of image.brokers.keys()) controller.lastHeardMs.set(broker, nowMs);
        continue;
      }
      const silent = [...image.brokers.values()].some((broker) => !broker.fenced && nowMs - (controller.lastHeardMs.get(broker.id) ?? 0) > this.timing.sessionTimeoutMs);
      if (!silent) continue;
      const lastHeardMs = controller.lastHeardMs;
      this.execute(
        id,
        'fence',
        (working) => operations.fenceSilentBrokers(working, { nowMs, sessionTimeoutMs: this.timing.sessionTimeoutMs, lastHeardMs }),
        (result) => this.count('fence', result.ok ? 'ok' : errorName(result.error)),
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // Brokers (BrokerLifecycle): each beats to the controller its own node believes in.

  /** beatAll: every live broker registers or heartbeats, unless a call of its is outstanding. */
  beatAll(): void {
    for (const id of this.simulation.nodes.keys()) this.beat(id);
  }

  /** beat: broker id registers if it has no registration, else heartbeats with its node's applied offset. */
  beat(id: NodeId): void {
    const broker = this.brokers.get(id);
    if (broker === undefined || broker.state === 'stopped' || !this.simulation.isUp(id)) return;
    if (broker.callSince !== undefined && this.now - broker.callSince < this.timing.callDeadlineMs) return;
    const target = this.hint(id);
    if (target === 0) return;
    broker.callSince = this.now;
    const generation = broker.generation;
    const current = (): NodeBroker | undefined => {
      const latest = this.brokers.get(id);
      return latest !== undefined && latest.generation === generation ? latest : undefined;
    };
    if (this.simulation.network.isCut(id, target) || this.simulation.network.isCut(target, id)) {
      broker.callSince = undefined;
      return this.count(broker.state === 'unregistered' ? 'register' : 'heartbeat', 'UnreachableError');
    }
    const controller = this.controller(target);
    if (controller !== undefined) controller.lastHeardMs.set(id, this.now);
    if (broker.state === 'unregistered') {
      const request: operations.RegisterBrokerRequest = { brokerId: id, incarnationId: broker.incarnationId, endpoint: { host: `node${id}`, port: 9092 }, rack: id % 3 === 0 ? undefined : `rack${id % 2}` };
      this.execute(target, `register ${id}`, (image) => operations.registerBroker(image, request), (result) => {
        this.count('register', result.ok ? 'ok' : errorName(result.error));
        const latest = current();
        if (latest === undefined) return;
        latest.callSince = undefined;
        if (!result.ok) return;
        const { brokerEpoch } = result.response as { brokerEpoch: number };
        this.checker.registerAnswered(id, request.incarnationId, brokerEpoch);
        if (latest.incarnationId !== request.incarnationId) return;
        latest.brokerEpoch = brokerEpoch;
        latest.state = 'fenced';
      });
      return;
    }
    const request: operations.BrokerHeartbeatRequest = { brokerId: id, brokerEpoch: broker.brokerEpoch, metadataOffset: this.simulation.appliedIndex(id), wantShutdown: broker.wantShutdown };
    const what = request.wantShutdown ? 'shutdown' : 'heartbeat';
    this.execute(target, `${what} ${id}@${request.brokerEpoch}`, (image) => operations.brokerHeartbeat(image, request), (result) => {
      this.count(what, result.ok ? 'ok' : errorName(result.error));
      const latest = current();
      if (latest === undefined) return;
      latest.callSince = undefined;
      if (!result.ok) {
        if (result.error instanceof StaleBrokerEpochError && latest.brokerEpoch === request.brokerEpoch) latest.state = 'unregistered';
        return;
      }
      const response = result.response as operations.BrokerHeartbeatResponse;
      if (response.shouldShutdown) latest.state = 'stopped';
      else latest.state = response.fenced ? 'fenced' : 'active';
    });
  }

  /** reincarnate: broker id starts over with a fresh incarnation (a broker process restart) and registers. */
  reincarnate(id: NodeId): void {
    const broker = this.brokers.get(id);
    if (broker === undefined || !this.simulation.isUp(id)) return;
    this.brokers.set(id, { incarnationId: this.freshIncarnation(id), state: 'unregistered', brokerEpoch: 0, wantShutdown: false, callSince: undefined, generation: broker.generation + 1 });
    this.beat(id);
  }

  /** requestShutdown: broker id asks to be released (a graceful shutdown); it beats with wantShutdown from now on. */
  requestShutdown(id: NodeId): void {
    const broker = this.brokers.get(id);
    if (broker === undefined || broker.state === 'stopped' || broker.state === 'unregistered') return;
    broker.wantShutdown = true;
    broker.callSince = undefined;
    this.beat(id);
  }

  /** reincarnateIfStopped: a broker that was released (or died) starts over, as an operator restarting it would. */
  reincarnateIfStopped(id: NodeId): void {
    if (this.brokers.get(id)?.state === 'stopped') this.reincarnate(id);
  }

  /** describe: each node's raft role, applied offset, controller and broker state, for a liveness failure. */
  describe(ids: readonly NodeId[]): string {
    return ids
      .map((id) => {
        const status = this.simulation.status(id);
        if (status === undefined) return `${id}: down`;
        const controller = this.controller(id);
        const broker = this.brokers.get(id);
        const image = this.image(id);
        const registered = image?.brokers.get(id);
        return (
          `${id}: ${status.role} t${status.term} leader=${status.leader} commit=${status.commit} applied=${this.simulation.appliedIndex(id)} appliedTerm=${this.machine(id)?.appliedTerm}` +
          ` active=${this.isActive(id)} inFlight=${controller?.inFlight?.index ?? '-'} queued=${controller?.queue.length ?? '-'}` +
          ` broker=${broker?.state}@${broker?.brokerEpoch} image=${registered === undefined ? 'unregistered' : `${registered.fenced ? 'fenced' : 'unfenced'}@${registered.epoch}`}`
        );
      })
      .join('; ');
  }

  /** brokersActive: every live broker is registered and unfenced (after healing). */
  brokersActive(): boolean {
    for (const [id, broker] of this.brokers) if (this.simulation.isUp(id) && broker.state !== 'active') return false;
    return true;
  }

  idle(): boolean {
    for (const id of this.simulation.nodes.keys()) {
      const controller = this.controller(id);
      if (controller !== undefined && (controller.inFlight !== undefined || controller.queue.length > 0)) return false;
    }
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // The admin client: sends to the controller that node `via` believes in, retries retriable
  // answers after a short pause with the same request (the same request id).

  newCreate(options: Omit<CreateRequest, 'requestId'>): CreateRequest {
    const request = { ...options, requestId: `r${this.nextRequestId++}` };
    this.creates.push(request);
    return request;
  }

  newDelete(name: string): AdminRequest {
    return { kind: 'delete', requestId: `r${this.nextRequestId++}`, name };
  }

  admin(via: NodeId, request: AdminRequest, onAnswer?: (result: { ok: true; response: unknown } | { ok: false; error: unknown }) => void, attempt = 1): void {
    const target = this.simulation.isUp(via) ? this.hint(via) || via : via;
    const done: Done = (result) => {
      this.count(request.kind, result.ok ? 'ok' : errorName(result.error));
      if (result.ok && request.kind === 'create') this.checker.createAnswered(request.request.requestId, request.request.name, (result.response as operations.TopicDescription).topicId);
      if (!result.ok && retriable(result.error) && attempt < adminAttemptsMax) {
        const pauseMs = 10 + Math.floor(this.random() * 40);
        const next = result.error instanceof NotControllerError && result.error.controllerHint !== 0 ? result.error.controllerHint : this.randomNode();
        this.simulation.at(this.now + pauseMs, () => this.admin(next, request, onAnswer, attempt + 1));
        return;
      }
      onAnswer?.(result);
    };
    const run = this.operation(request);
    this.simulation.note(`admin ${request.kind} via ${via} -> ${target} active=${this.isActive(target)} attempt ${attempt}`);
    this.execute(target, `${request.kind} ${describeAdmin(request)}`, run, done);
  }

  private randomNode(): NodeId {
    const ids = [...this.simulation.nodes.keys()];
    return ids[Math.floor(this.random() * ids.length)]!;
  }

  private operation(request: AdminRequest): Queued['run'] {
    switch (request.kind) {
      case 'create':
        return (image) => operations.createTopic(image, request.request, () => `T${this.nextTopicId++}`);
      case 'delete':
        return (image) => operations.deleteTopic(image, { name: request.name, requestId: request.requestId });
      case 'addPartitions':
        return (image) => operations.createPartitions(image, { name: request.name, partitions: request.partitions });
      case 'alterConfigs':
        return (image) => operations.alterConfigs(image, { name: request.name, set: request.set, remove: request.remove });
    }
  }
}

function retriable(error: unknown): boolean {
  return error instanceof RaftbusError && error.retriable;
}

function errorName(error: unknown): string {
  if (error instanceof InvariantViolation) throw error;
  if (error instanceof RaftbusError) return error.name;
  // An operation that throws something untyped is a bug of the operation, not an answer.
  throw new InvariantViolation('operations answer or throw typed errors', String(error instanceof Error ? (error.stack ?? error.message) : error));
}

function describeAdmin(request: AdminRequest): string {
  switch (request.kind) {
    case 'create':
      return `${request.request.name} ${request.request.requestId} p${request.request.partitions} rf${request.request.replicationFactor}`;
    case 'delete':
      return `${request.name} ${request.requestId}`;
    case 'addPartitions':
      return `${request.name} to ${request.partitions}`;
    case 'alterConfigs':
      return `${request.name} set ${JSON.stringify(request.set)} remove ${JSON.stringify(request.remove)}`;
  }
}
