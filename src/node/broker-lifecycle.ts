// BrokerLifecycle is the broker side of KRaft membership: register with the active controller,
// heartbeat to it (carrying how far this broker has applied the metadata log, so the controller
// unfences it once it has caught up), register again when told its epoch is stale, and on a
// graceful shutdown ask to be released (the controller moves its leaderships away first).
import type { Logger } from 'pino';
import { NotControllerError, StaleBrokerEpochError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import type { BrokerHeartbeatRequest, BrokerHeartbeatResponse, RegisterBrokerRequest } from '../controller/operations.js';
import type { ClusterConfig, ClusterNode } from './cluster-file.js';
import { controllerDefaults } from './limits.js';
import type { Clock, Timer } from './runtime.js';

/** ControllerApi is the active controller's side of broker membership, as a broker reaches it (gRPC in a process). */
export interface ControllerApi {
  registerBroker(request: RegisterBrokerRequest): Promise<{ brokerEpoch: number }>;
  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse>;
  close(): void;
}

export interface BrokerLifecycleRuntime {
  readonly clock: Clock;
  readonly newId: () => string;
  /** connect opens a connection to the controller on node. */
  readonly connect: (node: ClusterNode) => ControllerApi;
}

export type BrokerState = 'unregistered' | 'fenced' | 'active' | 'shuttingDown' | 'stopped';

export class BrokerLifecycle {
  readonly incarnationId: string;
  state: BrokerState = 'unregistered';
  brokerEpoch = 0;
  private controllerHint: NodeId = 0;
  private timer: Timer | undefined;
  private beating = false;
  private wantShutdown = false;
  private readonly clients = new Map<NodeId, ControllerApi>();

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly self: ClusterNode,
    private readonly metadata: { appliedIndex(): number; leaderHint(): NodeId },
    private readonly logger: Logger,
    private readonly runtime: BrokerLifecycleRuntime,
  ) {
    this.incarnationId = runtime.newId();
  }

  start(): void {
    this.timer = this.runtime.clock.every(controllerDefaults.heartbeatIntervalMs, () => void this.beat());
    void this.beat();
  }

  /** shutdown asks the controller to release this broker; resolves when released or after the bound. */
  async shutdown(): Promise<void> {
    if (this.state === 'unregistered' || this.state === 'stopped') return this.stop();
    this.wantShutdown = true;
    const { clock } = this.runtime;
    const deadline = clock.now() + controllerDefaults.controlledShutdownMs;
    while (!this.released() && clock.now() < deadline) {
      await this.beat();
      if (!this.released()) await clock.sleep(100);
    }
    if (!this.released()) this.logger.warn('the controller did not release this broker in time; stopping anyway');
    this.stop();
  }

  private released(): boolean {
    return this.state === 'stopped';
  }

  stop(): void {
    this.state = 'stopped';
    this.timer?.cancel();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private controller(): ControllerApi | undefined {
    const id = this.metadata.leaderHint() || this.controllerHint;
    const node = this.cluster.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) return undefined;
    let client = this.clients.get(id);
    if (client === undefined) {
      client = this.runtime.connect(node);
      this.clients.set(id, client);
    }
    return client;
  }

  private async beat(): Promise<void> {
    if (this.beating || this.state === 'stopped') return;
    this.beating = true;
    try {
      const controller = this.controller();
      if (controller === undefined) return;
      if (this.state === 'unregistered') await this.register(controller);
      else await this.heartbeat(controller);
    } catch (error) {
      this.onError(error);
    } finally {
      this.beating = false;
    }
  }

  private async register(controller: ControllerApi): Promise<void> {
    const { brokerEpoch } = await controller.registerBroker({
      brokerId: this.self.id,
      incarnationId: this.incarnationId,
      endpoint: { host: this.self.host, port: this.self.clientPort },
      rack: this.self.rack,
    });
    this.brokerEpoch = brokerEpoch;
    this.state = 'fenced';
    this.logger.info({ brokerEpoch }, 'registered with the controller');
  }

  private async heartbeat(controller: ControllerApi): Promise<void> {
    const response = await controller.brokerHeartbeat({
      brokerId: this.self.id,
      brokerEpoch: this.brokerEpoch,
      metadataOffset: this.metadata.appliedIndex(),
      wantShutdown: this.wantShutdown,
    });
    if (response.shouldShutdown) {
      this.state = 'stopped';
      this.logger.info('the controller released this broker');
      return;
    }
    const next: BrokerState = response.fenced ? 'fenced' : 'active';
    if (next !== this.state) this.logger.info({ brokerEpoch: this.brokerEpoch }, next === 'active' ? 'unfenced' : 'fenced');
    this.state = next;
  }

  private onError(error: unknown): void {
    if (error instanceof StaleBrokerEpochError) {
      this.logger.warn({ brokerEpoch: this.brokerEpoch }, 'the controller no longer knows this registration; registering again');
      this.state = 'unregistered';
    } else if (error instanceof NotControllerError) {
      this.controllerHint = error.controllerHint;
    } else {
      this.logger.debug({ err: error }, 'heartbeat to the controller failed; retrying');
    }
  }
}
