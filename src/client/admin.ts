// Admin is the SDK's administrative client, as Kafka's Admin: topics and the cluster. It finds the
// cluster's nodes from any bootstrap address, sends changes to the active controller (following
// its hints), and retries only what is retriable, with the same request id, so that a retry
// after a controller failover neither creates twice nor fails confusingly.
import { randomUUID } from 'node:crypto';
import { NotControllerError, RaftbusError, StaleMetadataError } from '../errors.js';
import type { ClusterDescription, NodeAddress, TopicDescription } from '../rpc/admin-service.js';
import { AdminClient } from './admin-client.js';

export type { BrokerDescription, ClusterDescription, PartitionDescription, TopicDescription } from '../rpc/admin-service.js';

export interface AdminOptions {
  /** bootstrap: host:port client addresses of some nodes; one answering is enough. */
  readonly bootstrap: readonly string[];
  /** requestTimeoutMs bounds one call to one node; default 5 s. */
  readonly requestTimeoutMs?: number;
  /** retryForMs bounds all retries of one operation; default 30 s. */
  readonly retryForMs?: number;
}

export interface NewTopic {
  readonly name: string;
  /** partitions: default 1. */
  readonly partitions?: number;
  /** replicationFactor: default min(3, the unfenced brokers). */
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
}

const backoffStartMs = 50;
const backoffMaxMs = 1000;

export class Admin {
  private readonly clients = new Map<string, AdminClient>();
  private nodes = new Map<number, string>();
  private controllerId = 0;
  /** metadataOffsetSeen: the newest metadata a read of this Admin was answered from; no later read is answered from older (monotonic reads). */
  private metadataOffsetSeen = 0;
  private readonly requestTimeoutMs: number;
  private readonly retryForMs: number;

  constructor(private readonly options: AdminOptions) {
    if (options.bootstrap.length === 0) throw new RangeError('bootstrap: give at least one host:port');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.retryForMs = options.retryForMs ?? 30_000;
  }

  private client(address: string): AdminClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new AdminClient(address, { deadlineMs: this.requestTimeoutMs });
      this.clients.set(address, client);
    }
    return client;
  }

  /** describeCluster asks any reachable node for the brokers, the controller and every node's address. */
  async describeCluster(): Promise<ClusterDescription> {
    return this.withRetries(() => this.describeClusterOnce());
  }

  /** describeClusterOnce asks each known node once (the callers' own retries cover it). */
  private async describeClusterOnce(): Promise<ClusterDescription> {
    const addresses = [...new Set([...this.nodes.values(), ...this.options.bootstrap])];
    let lastError: unknown;
    for (const address of addresses) {
      try {
        const cluster = await this.client(address).call<ClusterDescription>('DescribeCluster', {});
        const stale = this.staleness(cluster.metadataOffset); // a stale answer may name a controller long gone
        if (stale !== undefined) {
          lastError = stale;
          continue;
        }
        this.learn(cluster.nodes, cluster.controllerId);
        return cluster;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** staleness refuses an answer read from metadata older than one already taken, and otherwise notes how new it is. */
  private staleness(metadataOffset: number): StaleMetadataError | undefined {
    if (metadataOffset < this.metadataOffsetSeen) return new StaleMetadataError(metadataOffset, this.metadataOffsetSeen);
    this.metadataOffsetSeen = metadataOffset;
    return undefined;
  }

  private learn(nodes: readonly NodeAddress[], controllerId: number): void {
    this.nodes = new Map(nodes.map((node) => [node.id, `${node.host}:${node.port}`]));
    this.controllerId = controllerId;
  }

  async createTopic(topic: NewTopic): Promise<TopicDescription> {
    const requestId = randomUUID();
    return this.toController(async (client) => {
      let replicationFactor = topic.replicationFactor;
      if (replicationFactor === undefined) {
        const cluster = await this.describeClusterOnce();
        replicationFactor = Math.max(1, Math.min(3, cluster.brokers.filter((broker) => !broker.fenced).length));
      }
      return client.call<TopicDescription>('CreateTopic', { name: topic.name, partitions: topic.partitions ?? 1, replicationFactor, configs: topic.configs ?? {}, requestId });
    });
  }

  /**
   * createTopics creates several topics, each on its own (as Kafka's Admin.createTopics): the
   * result for each is its description or the error that refused it.
   */
  createTopics(topics: readonly NewTopic[]): Promise<PromiseSettledResult<TopicDescription>[]> {
    return Promise.allSettled(topics.map((topic) => this.createTopic(topic)));
  }

  /** deleteTopics deletes several topics, each on its own; the result for each says whether it went. */
  deleteTopics(names: readonly string[]): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(names.map((name) => this.deleteTopic(name)));
  }

  async deleteTopic(name: string): Promise<void> {
    const requestId = randomUUID();
    await this.toController((client) => client.call('DeleteTopic', { name, requestId }));
  }

  /** createPartitions grows a topic to `partitions` in all (Kafka never shrinks a topic). */
  createPartitions(name: string, partitions: number): Promise<TopicDescription> {
    return this.toController((client) => client.call('CreatePartitions', { name, partitions }));
  }

  /** alterConfigs sets configs, and resets those in `remove` to their defaults. */
  alterConfigs(name: string, change: { set?: Readonly<Record<string, string>>; remove?: readonly string[] }): Promise<TopicDescription> {
    return this.toController((client) => client.call('AlterConfigs', { name, set: change.set ?? {}, remove: change.remove ?? [] }));
  }

  /** allocateProducerIds takes `count` producer ids (1..1000) no one else was given. */
  allocateProducerIds(count: number): Promise<{ firstProducerId: number; count: number }> {
    return this.toController((client) => client.call('AllocateProducerIds', { count }));
  }

  async listTopics(): Promise<string[]> {
    const response = await this.anyNode((client) => client.call<{ names: string[]; metadataOffset: number }>('ListTopics', {}));
    return response.names;
  }

  /** describeTopics describes the named topics (all when none are named); unknown names are listed apart. */
  async describeTopics(names: readonly string[] = []): Promise<{ topics: TopicDescription[]; unknown: string[] }> {
    const { topics, unknown } = await this.anyNode((client) => client.call<{ topics: TopicDescription[]; unknown: string[]; metadataOffset: number }>('DescribeTopics', { names }));
    return { topics, unknown };
  }

  /**
   * anyNode asks the known nodes in turn (the controller first: its metadata is the freshest). Every
   * node answers from its own copy of the metadata, which may lag; an answer older than one this
   * Admin has already read is passed over, so a read never goes back in time (a topic it saw deleted
   * does not come back because a lagging node answered after a failover).
   */
  private anyNode<T extends { metadataOffset: number }>(call: (client: AdminClient) => Promise<T>): Promise<T> {
    return this.withRetries(async () => {
      if (this.nodes.size === 0) await this.describeClusterOnce();
      const controller = this.nodes.get(this.controllerId);
      const addresses = [...new Set([...(controller === undefined ? [] : [controller]), ...this.nodes.values(), ...this.options.bootstrap])];
      let lastError: unknown;
      for (const address of addresses) {
        try {
          const answer = await call(this.client(address));
          const stale = this.staleness(answer.metadataOffset);
          if (stale === undefined) return answer;
          lastError = stale;
        } catch (error) {
          if (!(error instanceof RaftbusError && error.retriable)) throw error;
          lastError = error;
        }
      }
      this.controllerId = 0;
      throw lastError;
    });
  }

  private toController<T>(call: (client: AdminClient) => Promise<T>): Promise<T> {
    return this.withRetries(async () => {
      if (this.controllerId === 0 || !this.nodes.has(this.controllerId)) await this.describeClusterOnce();
      const address = this.nodes.get(this.controllerId);
      if (address === undefined) throw new NotControllerError(0);
      try {
        return await call(this.client(address));
      } catch (error) {
        if (error instanceof NotControllerError) this.controllerId = error.controllerHint;
        else if (error instanceof RaftbusError && error.retriable) this.controllerId = 0;
        throw error;
      }
    });
  }

  /** withRetries retries retriable failures with exponential backoff until retryForMs passes. */
  private async withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    let backoffMs = backoffStartMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        const retriable = error instanceof RaftbusError && error.retriable;
        if (!retriable || Date.now() + backoffMs > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, backoffMaxMs);
      }
    }
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
