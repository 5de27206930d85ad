// ClusterRouting is the SDK's picture of the cluster: the brokers' addresses and, per topic, each
// partition's replicas and leader, learned from any broker's Metadata answer and corrected by the
// leader hints that come back with NotLeaderError. It owns one BrokerClient per broker.
import { RaftbusError, UnknownTopicError } from '../errors.js';
import type { BrokerMetadata } from '../rpc/broker-service.js';
import { BrokerClient } from './broker-client.js';

export interface PartitionRoute {
  readonly partition: number;
  leader: number;
  readonly replicas: readonly number[];
}

export interface TopicRoute {
  readonly name: string;
  readonly partitions: PartitionRoute[];
  /** maxMessageBytes: the topic's max.message.bytes (the largest batch its brokers accept). */
  readonly maxMessageBytes: number;
}

/** defaultMaxMessageBytes: Kafka's default max.message.bytes, for topics that do not set it. */
const defaultMaxMessageBytes = 1024 * 1024 + 12;

/** metadataRefreshMinMs: refreshes closer together than this reuse the answer in flight or just received. */
const metadataRefreshMinMs = 100;
/** topicWaitMs: how long a client waits for a topic it was told of to appear in metadata. */
const topicWaitMs = 5000;

export class ClusterRouting {
  private readonly clients = new Map<string, BrokerClient>();
  private readonly brokers = new Map<number, string>();
  private readonly topics = new Map<string, TopicRoute>();
  private refreshing: Promise<void> | undefined;
  private refreshedAtMs = 0;

  constructor(
    private readonly bootstrap: readonly string[],
    private readonly deadlineMs: number,
  ) {
    if (bootstrap.length === 0) throw new RangeError('bootstrap: give at least one host:port');
  }

  clientAt(address: string): BrokerClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new BrokerClient(address, this.deadlineMs);
      this.clients.set(address, client);
    }
    return client;
  }

  /** client returns the client of a broker by id, or undefined when its address is unknown. */
  client(brokerId: number): BrokerClient | undefined {
    const address = this.brokers.get(brokerId);
    return address === undefined ? undefined : this.clientAt(address);
  }

  topic(name: string): TopicRoute | undefined {
    return this.topics.get(name);
  }

  /** noteLeader records a leader hint (0 means: unknown, ask again). */
  noteLeader(topic: string, partition: number, leader: number): void {
    const route = this.topics.get(topic)?.partitions[partition];
    if (route !== undefined) route.leader = leader;
  }

  /**
   * refresh asks a broker (the known ones, then the bootstrap addresses) for the metadata of the
   * given topics (and keeps the others). Throws the last retriable error when none answers.
   */
  refresh(topics: readonly string[]): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    const wait = Math.max(0, this.refreshedAtMs + metadataRefreshMinMs - Date.now());
    this.refreshing = new Promise<void>((resolve) => setTimeout(resolve, wait))
      .then(() => this.refreshNow(topics))
      .finally(() => {
        this.refreshing = undefined;
        this.refreshedAtMs = Date.now();
      });
    return this.refreshing;
  }

  private async refreshNow(topics: readonly string[]): Promise<void> {
    await this.ask([...new Set([...topics, ...this.topics.keys()])]);
  }

  /** ask asks a broker (the known ones, then the bootstrap addresses) for metadata and learns it. Throws the last retriable error when none answers. */
  private async ask(topics: readonly string[]): Promise<BrokerMetadata> {
    const addresses = [...new Set([...this.brokers.values(), ...this.bootstrap])];
    let lastError: unknown;
    for (const address of addresses) {
      try {
        const metadata = await this.clientAt(address).metadata(topics);
        this.learn(metadata);
        return metadata;
      } catch (error) {
        if (!(error instanceof RaftbusError && error.retriable)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  private learn(metadata: BrokerMetadata): void {
    this.brokers.clear();
    for (const broker of metadata.brokers) this.brokers.set(broker.id, `${broker.host}:${broker.port}`);
    for (const topic of metadata.topics) {
      const configured = Number.parseInt(topic.configs['max.message.bytes'] ?? '', 10);
      const maxMessageBytes = Number.isSafeInteger(configured) && configured > 0 ? configured : defaultMaxMessageBytes;
      this.topics.set(topic.name, { name: topic.name, partitions: topic.partitions.map((partition) => ({ partition: partition.partition, leader: partition.leader, replicas: partition.replicas })), maxMessageBytes });
    }
    for (const name of metadata.unknownTopics) this.topics.delete(name);
  }

  /**
   * requireTopic returns a topic's route, refreshing while it is not known for up to
   * topicWaitMs (a topic just created may not have reached every broker yet, as in Kafka).
   * Throws UnknownTopicError then.
   */
  async requireTopic(name: string): Promise<TopicRoute> {
    const deadline = Date.now() + topicWaitMs;
    for (;;) {
      const known = this.topics.get(name);
      if (known !== undefined) return known;
      if (Date.now() > deadline) throw new UnknownTopicError(name);
      await this.refresh([name]);
    }
  }

  /** allTopics refreshes the metadata of every topic and returns their names. */
  async allTopics(): Promise<string[]> {
    return (await this.ask([])).topics.map((topic) => topic.name);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
