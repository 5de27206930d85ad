// ControllerRuntime runs the controller on a controller node. It is active while this node leads
// the metadata quorum and has applied an entry of its own term (so its image holds everything
// committed before). Operations run one at a time against the current image: the records of one
// are committed and applied before the next one is computed, so none plans on stale metadata.
import type { Logger } from 'pino';
import * as operations from '../controller/operations.js';
import { NotControllerError, ProposalRejectedError } from '../errors.js';
import type { MetadataImage } from '../metadata/image.js';
import type { NodeId } from '../raft/types.js';
import { encodeRecordBatch } from '../rpc/metadata-codec.js';
import { controllerDefaults, metadataGroup } from './limits.js';
import type { MetadataStateMachine } from './metadata-state-machine.js';
import type { RaftHost } from './raft-host.js';
import { everyUnlessHeld } from './held-loop.js';
import type { Clock, Timer } from './runtime.js';

interface QueuedOperation {
  readonly run: (image: MetadataImage) => operations.Outcome<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export interface ControllerOptions {
  readonly sessionTimeoutMs: number;
  readonly fenceCheckMs: number;
  readonly clock: Clock;
  readonly newId: () => string;
}

export class ControllerRuntime {
  private readonly queue: QueuedOperation[] = [];
  private running = false;
  private readonly lastHeardMs = new Map<NodeId, number>();
  private activeTerm = 0;
  private timer: Timer | undefined;

  constructor(
    private readonly host: RaftHost,
    private readonly machine: MetadataStateMachine,
    private readonly options: ControllerOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = everyUnlessHeld(this.options.clock, this.options.fenceCheckMs, () => this.checkSessions());
  }

  stop(): void {
    this.timer?.cancel();
    for (const queued of this.queue.splice(0)) queued.reject(new NotControllerError(0));
  }

  /** isActive: this node leads the metadata quorum and its image includes everything committed. */
  isActive(): boolean {
    const status = this.host.status(metadataGroup);
    return status !== undefined && status.role === 'leader' && this.machine.appliedTerm === status.term;
  }

  /** activeControllerHint is the node this node believes to be the active controller (0: none). */
  activeControllerHint(): NodeId {
    return this.host.status(metadataGroup)?.leader ?? 0;
  }

  /**
   * execute runs an operation on the active controller: computes its records against the current
   * image, commits them, and resolves with its response once applied. Rejects with
   * NotControllerError elsewhere, or with the operation's own typed error.
   */
  execute<T>(run: (image: MetadataImage) => operations.Outcome<T>): Promise<T> {
    if (!this.isActive()) return Promise.reject(new NotControllerError(this.activeControllerHint()));
    if (this.queue.length >= controllerDefaults.queuedOperationsMax) {
      return Promise.reject(new ProposalRejectedError(metadataGroup, { kind: 'queueFull', uncommittedBytes: this.queue.length, limitBytes: controllerDefaults.queuedOperationsMax }));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) await this.runOne(next);
    } finally {
      this.running = false;
    }
  }

  private async runOne(queued: QueuedOperation): Promise<void> {
    try {
      if (!this.isActive()) throw new NotControllerError(this.activeControllerHint());
      const outcome = queued.run(this.machine.image);
      if (outcome.records.length > 0) await this.host.propose(metadataGroup, encodeRecordBatch(outcome.records));
      queued.resolve(outcome.response);
    } catch (error) {
      queued.reject(error);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Brokers.

  registerBroker(request: operations.RegisterBrokerRequest): Promise<{ brokerEpoch: number }> {
    this.lastHeardMs.set(request.brokerId, this.options.clock.now());
    return this.execute((image) => operations.registerBroker(image, request));
  }

  brokerHeartbeat(request: operations.BrokerHeartbeatRequest): Promise<operations.BrokerHeartbeatResponse> {
    this.lastHeardMs.set(request.brokerId, this.options.clock.now());
    return this.execute((image) => operations.brokerHeartbeat(image, request));
  }

  /** checkSessions fences brokers silent for longer than the session timeout, on the active controller. */
  private checkSessions(): void {
    if (!this.isActive()) {
      this.activeTerm = 0;
      return;
    }
    const term = this.host.status(metadataGroup)!.term;
    const nowMs = this.options.clock.now();
    if (term !== this.activeTerm) {
      // A new controller gives every broker a full session before judging it silent.
      this.activeTerm = term;
      for (const id of this.machine.image.brokers.keys()) this.lastHeardMs.set(id, nowMs);
      this.logger.info({ term }, 'active controller');
      return;
    }
    const silent = [...this.machine.image.brokers.values()].some((broker) => !broker.fenced && nowMs - (this.lastHeardMs.get(broker.id) ?? 0) > this.options.sessionTimeoutMs);
    if (!silent) return;
    this.execute((image) => operations.fenceSilentBrokers(image, { nowMs, sessionTimeoutMs: this.options.sessionTimeoutMs, lastHeardMs: this.lastHeardMs })).then(
      (response) => {
        if (response.fenced.length > 0) this.logger.warn({ brokers: response.fenced }, 'fenced brokers silent for longer than the session timeout');
      },
      (error: unknown) => this.logger.debug({ err: error }, 'fencing check did not complete'),
    );
  }

  // ------------------------------------------------------------------------------------------
  // Topics.

  createTopic(request: operations.CreateTopicOperation): Promise<operations.TopicDescription> {
    return this.execute((image) => operations.createTopic(image, request, () => this.options.newId()));
  }

  deleteTopic(request: { name: string; requestId: string }): Promise<{ topicId: string }> {
    return this.execute((image) => operations.deleteTopic(image, request));
  }

  createPartitions(request: { name: string; partitions: number }): Promise<operations.TopicDescription> {
    return this.execute((image) => operations.createPartitions(image, request));
  }

  alterConfigs(request: { name: string; set: Readonly<Record<string, string>>; remove: readonly string[] }): Promise<operations.TopicDescription> {
    return this.execute((image) => operations.alterConfigs(image, request));
  }

  allocateProducerIds(request: { count: number }): Promise<{ firstProducerId: number; count: number }> {
    return this.execute((image) => operations.allocateProducerIds(image, request));
  }
}
