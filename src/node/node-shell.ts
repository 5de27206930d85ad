// NodeShell is everything of a node above its disk and below its sockets: the Raft host with the
// metadata quorum and every partition's group, the controller, the broker's membership, the
// partition replicas and the group coordinators, and the backends the gRPC services call. It takes
// the world through ShellEnvironment (time, disk, state store, peers, the controller's address), so
// a process (RaftbusNode: real files, LevelDB, gRPC) and the whole-cluster simulation (virtual time,
// a memory disk that loses unsynced writes, a simulated network) run the same code.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConfState, GroupId, Message, NodeId, Snapshot } from '../raft/types.js';
import type { SnapshotStore } from '../storage/snapshot-store.js';
import type { NodeStateStore } from '../storage/state-store.js';
import { encodeRecordBatch } from '../rpc/metadata-codec.js';
import type { AdminBackend, ClusterDescription, MetadataLogPage, QuorumDescription, TopicDescription } from '../rpc/admin-service.js';
import type { BrokerBackend, BrokerMetadata, BrokerPartition } from '../rpc/broker-service.js';
import type { GroupsBackend } from '../rpc/groups-service.js';
import type { GroupCoordinator } from '../groups/coordinator.js';
import { CoordinatorLoadingError, NotControllerError, NotCoordinatorError, NotLeaderError } from '../errors.js';
import { describeTopic } from '../metadata/image.js';
import { PartitionReplicas } from './partition-replicas.js';
import { GroupCoordinators, offsetsTopic } from './group-coordinators.js';
import { BrokerLifecycle, type ControllerApi } from './broker-lifecycle.js';
import { ControllerRuntime } from './controller-runtime.js';
import type { ClusterConfig, ClusterNode } from './cluster-file.js';
import { MetadataStateMachine, emptyMetadataSnapshotData } from './metadata-state-machine.js';
import type { DurableRaftStorage } from './durable-raft-storage.js';
import { openGroupStorage } from './group-storage.js';
import { dataSubdirectories } from './data-dir.js';
import { latencyBucketBoundsMicros } from './latency-histogram.js';
import { RaftHost, type RaftTiming } from './raft-host.js';
import { controllerDefaults, metadataGroup, nodeDefaults } from './limits.js';
import type { NodeRuntime } from './runtime.js';

export interface ShellOptions {
  readonly cluster: ClusterConfig;
  readonly nodeId: NodeId;
  readonly logger: Logger;
  readonly timing?: Partial<RaftTiming>;
  readonly snapshotEveryEntries?: number;
  /** sessionTimeoutMs: the controller fences a broker silent for this long. */
  readonly sessionTimeoutMs?: number;
  /** clientPort: the port this node serves clients on (bound; the cluster file's may be 0). */
  readonly clientPort: number;
  /** advertisedClientPort: the client port this broker registers for clients (a proxy in front of it); default clientPort. */
  readonly advertisedClientPort?: number;
  /** onFailure is called when the node stops serving after a storage failure; the process should exit. */
  readonly onFailure?: (error: Error) => void;
  /** offsetsTopicPartitions: the partitions of __consumer_offsets when this node creates it (default 6). */
  readonly offsetsTopicPartitions?: number;
  /** offsetsCompactBytes: how many bytes of batches an offsets partition holds before it is compacted (default offsetsCompactBytes). */
  readonly offsetsCompactBytes?: number;
  /** offsetsRetentionMs: how long a group without members keeps its offsets (Kafka's offsets.retention.minutes; default 7 days). */
  readonly offsetsRetentionMs?: number;
}

/** ShellEnvironment is the world a shell runs in: see the file comment. */
export interface ShellEnvironment extends NodeRuntime {
  /** dataDir is the node's data directory on `disk` (already checked to be this node's). */
  readonly dataDir: string;
  readonly stateStore: NodeStateStore;
  /** send hands Raft messages to the peer transport (best effort: Raft retries what is lost). */
  readonly send: (messages: readonly Message[]) => void;
  /** connectController opens a connection to the controller service on node (broker membership). */
  readonly connectController: (node: ClusterNode) => ControllerApi;
  /** createTopic asks the active controller, wherever it is, to create a topic; rejects with its error. */
  readonly createTopic: (request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string> }) => Promise<unknown>;
}

/** NodeStartError: the node could not start; message says what to fix. Nothing was served. */
export class NodeStartError extends Error {
  override readonly name = 'NodeStartError';
}

/** bootstrapMembership is the metadata quorum every node derives from the same cluster file. */
export function bootstrapMembership(cluster: ClusterConfig): ConfState {
  const voters = cluster.nodes.filter((node) => node.roles.includes('controller')).map((node) => node.id);
  const learners = cluster.nodes.filter((node) => !node.roles.includes('controller')).map((node) => node.id);
  return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
}

/** offsetsReplicationFactor: 3, or every broker of a smaller cluster (Kafka's offsets.topic.replication.factor). */
export function offsetsReplicationFactor(cluster: ClusterConfig): number {
  return Math.max(1, Math.min(3, cluster.nodes.filter((node) => node.roles.includes('broker')).length));
}

/** ShellParts: what NodeShell.assemble opened, handed to the constructor. */
export interface ShellParts {
  readonly options: ShellOptions;
  readonly runtime: ShellEnvironment;
  readonly self: ClusterNode;
  readonly host: RaftHost;
  readonly metadata: { storage: DurableRaftStorage; machine: MetadataStateMachine };
  readonly lastHeard: Map<NodeId, number>;
  readonly logger: Logger;
  readonly controller: ControllerRuntime | undefined;
  readonly broker: BrokerLifecycle | undefined;
  readonly replicas: PartitionReplicas | undefined;
  readonly groups: GroupCoordinators | undefined;
}

export class NodeShell implements AdminBackend, BrokerBackend, GroupsBackend {
  readonly startedAtMs: number;
  readonly cluster: ClusterConfig;
  readonly self: ClusterNode;
  readonly host: RaftHost;
  readonly metadata: { storage: DurableRaftStorage; machine: MetadataStateMachine };
  protected readonly runtime: ShellEnvironment;
  protected readonly options: ShellOptions;
  private stopping: Promise<void> | undefined;

  protected constructor(protected readonly parts: ShellParts) {
    this.options = parts.options;
    this.runtime = parts.runtime;
    this.cluster = parts.options.cluster;
    this.self = parts.self;
    this.host = parts.host;
    this.metadata = parts.metadata;
    this.startedAtMs = parts.runtime.clock.now();
  }

  /** open assembles a shell in env; start() it to serve. Throws NodeStartError (or a storage error) if it cannot. */
  static async open(options: ShellOptions, env: ShellEnvironment): Promise<NodeShell> {
    return new NodeShell(await NodeShell.assemble(options, env));
  }

  /** assemble recovers the metadata group from the disk and builds every part; on failure it closes what it opened. */
  protected static async assemble(options: ShellOptions, env: ShellEnvironment): Promise<ShellParts> {
    const { cluster, nodeId, logger } = options;
    const self = cluster.nodes.find((node) => node.id === nodeId);
    if (self === undefined) {
      throw new NodeStartError(`node id ${nodeId} is not in the cluster file; its nodes are ${cluster.nodes.map((node) => node.id).join(', ')}`);
    }
    const timing: RaftTiming = { ...nodeDefaults.timing, ...options.timing };
    const metadata = await openMetadataGroup({ cluster, env, logger });
    try {
      const host = new RaftHost({
        nodeId,
        timing,
        random: env.random,
        clock: env.clock,
        hardStates: env.stateStore,
        send: (messages) => env.send(messages),
        logger: logger.child({ group: metadataGroup }),
        onFailure: options.onFailure ?? (() => undefined),
      });
      host.addGroup({
        group: metadataGroup,
        storage: metadata.storage,
        snapshots: metadata.snapshots,
        machine: metadata.machine,
        snapshotEveryEntries: options.snapshotEveryEntries ?? nodeDefaults.snapshotEveryEntries,
        logger: logger.child({ group: metadataGroup }),
      });
      const controller = self.roles.includes('controller')
        ? new ControllerRuntime(host, metadata.machine, { sessionTimeoutMs: options.sessionTimeoutMs ?? controllerDefaults.sessionTimeoutMs, fenceCheckMs: controllerDefaults.fenceCheckMs, clock: env.clock, newId: env.newId }, logger.child({ component: 'controller' }))
        : undefined;
      const isBroker = self.roles.includes('broker');
      const broker = isBroker
        ? new BrokerLifecycle(
            cluster,
            { ...self, clientPort: options.advertisedClientPort ?? options.clientPort },
            { appliedIndex: () => metadata.machine.appliedIndex, leaderHint: () => host.status(metadataGroup)?.leader ?? 0 },
            logger.child({ component: 'broker' }),
            { clock: env.clock, newId: env.newId, connect: env.connectController },
          )
        : undefined;
      const groups = isBroker ? new GroupCoordinators({ self: nodeId, host, image: () => metadata.machine.image, clock: env.clock, newId: env.newId, createTopic: env.createTopic, offsetsReplicationFactor: offsetsReplicationFactor(cluster), ...(options.offsetsTopicPartitions === undefined ? {} : { offsetsPartitions: options.offsetsTopicPartitions }), ...(options.offsetsCompactBytes === undefined ? {} : { offsetsCompactBytes: options.offsetsCompactBytes }), ...(options.offsetsRetentionMs === undefined ? {} : { offsetsRetentionMs: options.offsetsRetentionMs }), logger: logger.child({ component: 'groups' }) }) : undefined;
      const replicas =
        groups === undefined
          ? undefined
          : new PartitionReplicas({
              self: nodeId,
              dataDir: env.dataDir,
              host,
              stateStore: env.stateStore,
              runtime: env,
              image: () => metadata.machine.image,
              logger: logger.child({ component: 'partitions' }),
              attach: (partition) => (partition.id.topic === offsetsTopic ? groups.attach(partition) : undefined),
              detach: (partition) => groups.detach(partition),
            });
      if (replicas !== undefined) {
        metadata.machine.onImage((image) => replicas.onImage(image));
        replicas.onImage(metadata.machine.image);
      }
      return { options, runtime: env, self, host, metadata, lastHeard: new Map(), logger, controller, broker, replicas, groups };
    } catch (error) {
      metadata.storage.log.close();
      throw error;
    }
  }

  /** start begins ticking, heartbeating and serving. */
  start(): void {
    const { controller, broker, replicas, groups } = this.parts;
    this.host.start();
    controller?.start();
    broker?.start();
    replicas?.start();
    groups?.start();
  }

  /** nowMs is this node's clock. */
  nowMs(): number {
    return this.runtime.clock.now();
  }

  /** controllerRuntime is this node's controller (undefined without the controller role). */
  controllerRuntime(): ControllerRuntime | undefined {
    return this.parts.controller;
  }

  /** receive takes Raft messages from a peer. */
  receive(from: NodeId, messages: readonly Message[]): void {
    this.parts.lastHeard.set(from, this.runtime.clock.now());
    this.host.receive(messages);
  }

  reportUnreachable(peer: NodeId): void {
    this.host.reportUnreachable(peer);
  }

  reportSnapshot(options: { group: GroupId; to: NodeId; outcome: 'finished' | 'failed' }): void {
    this.host.reportSnapshot(options);
  }

  /** lastHeardMsAgo is how long ago any message came from peer, or undefined if never. */
  lastHeardMsAgo(peer: NodeId): number | undefined {
    const at = this.parts.lastHeard.get(peer);
    return at === undefined ? undefined : this.runtime.clock.now() - at;
  }

  /** describeQuorum is this node's view of the metadata quorum. */
  describeQuorum(): QuorumDescription {
    const status = this.host.status(metadataGroup)!;
    const isLeader = status.role === 'leader';
    return {
      clusterId: this.cluster.clusterId,
      nodeId: this.self.id,
      role: status.role,
      term: status.term,
      leaderId: status.leader,
      voters: [...status.confState.voters],
      learners: [...status.confState.learners],
      firstIndex: status.firstIndex,
      lastIndex: status.lastIndex,
      commitIndex: status.commit,
      appliedIndex: this.metadata.machine.appliedIndex,
      stateDigest: this.metadata.machine.digest,
      snapshotIndex: this.metadata.storage.snapshot().metadata.index,
      replicas: !isLeader
        ? []
        : status.progress.map((progress) => ({
            nodeId: progress.id,
            voter: !progress.isLearner,
            matchIndex: progress.match,
            state: progress.state,
            lastHeardMsAgo: progress.id === this.self.id ? 0 : (this.lastHeardMsAgo(progress.id) ?? -1),
          })),
      uptimeMs: this.runtime.clock.now() - this.startedAtMs,
      rounds: this.host.rounds,
      syncs: this.host.syncs,
      syncWaitMicros: this.host.syncWaits.totalMicros,
      syncWaitBuckets: this.host.syncWaits.counts(),
      syncWaitBucketBoundsMicros: latencyBucketBoundsMicros,
    };
  }

  /** appendNoOp appends a no-op record to the metadata log; resolves once committed and applied. */
  appendNoOp(payload: Uint8Array): Promise<{ index: number; term: number }> {
    return this.host.propose(metadataGroup, encodeRecordBatch([{ type: 'noOp', payload }]));
  }

  /** readMetadataLog returns entries still held in this node's metadata log. */
  readMetadataLog(options: { fromIndex: number; maxEntries: number }): MetadataLogPage {
    const storage = this.metadata.storage;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    const lo = Math.max(options.fromIndex, firstIndex);
    const hi = Math.min(lastIndex + 1, lo + options.maxEntries);
    const entries = lo < hi ? this.host.readingLog(() => storage.entries(lo, hi, Number.MAX_SAFE_INTEGER)) : [];
    return { firstIndex, lastIndex, entries };
  }

  /** partitions is this node's partition replicas (undefined on a node without the broker role). */
  get partitions(): PartitionReplicas | undefined {
    return this.parts.replicas;
  }

  partition(topic: string, partition: number): BrokerPartition {
    const replicas = this.parts.replicas;
    if (replicas === undefined) throw new NotLeaderError(0, 0);
    return replicas.partition(topic, partition);
  }

  brokerMetadata(topics: readonly string[]): BrokerMetadata {
    const image = this.metadata.machine.image;
    const brokers = [...image.brokers.values()].sort((a, b) => a.id - b.id).map((broker) => ({ id: broker.id, host: broker.endpoint.host, port: broker.endpoint.port, fenced: broker.fenced }));
    const names = topics.length > 0 ? topics : [...image.topicIds.keys()].sort();
    const described: BrokerMetadata['topics'] = [];
    const unknownTopics: string[] = [];
    for (const name of names) {
      const topic = image.topicByName(name);
      if (topic === undefined) {
        unknownTopics.push(name);
        continue;
      }
      const partitions = topic.partitions.map((registration, partition) => {
        // A replica knows the Raft leader (0 while an election runs); other brokers only the controller's choice.
        const leader = this.parts.replicas?.raftLeader(registration.groupId) ?? registration.leader;
        return { partition, leader, replicas: [...registration.replicas], groupId: registration.groupId, leaderEpoch: registration.leaderEpoch };
      });
      described.push({ name: topic.name, topicId: topic.id, partitions, configs: Object.fromEntries(topic.configs) });
    }
    return { brokers, topics: described, unknownTopics, metadataOffset: image.offset };
  }

  private requireGroups(): GroupCoordinators {
    const groups = this.parts.groups;
    if (groups === undefined) throw new NotCoordinatorError('', 0);
    return groups;
  }

  async findCoordinator(group: string): Promise<{ nodeId: number; host: string; port: number }> {
    const nodeId = await this.requireGroups().findCoordinator(group);
    const broker = this.metadata.machine.image.brokers.get(nodeId);
    if (broker === undefined) throw new CoordinatorLoadingError(group);
    return { nodeId, host: broker.endpoint.host, port: broker.endpoint.port };
  }

  coordinator(group: string): GroupCoordinator {
    return this.requireGroups().coordinator(group);
  }

  listGroups(): { group: string; state: string; members: number }[] {
    return this.requireGroups().listGroups();
  }

  private requireController(): ControllerRuntime {
    const controller = this.parts.controller;
    if (controller === undefined) throw new NotControllerError(this.host.status(metadataGroup)?.leader ?? 0);
    return controller;
  }

  createTopic(request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string>; requestId: string }): Promise<TopicDescription> {
    return this.requireController().createTopic(request);
  }

  deleteTopic(request: { name: string; requestId: string }): Promise<{ topicId: string }> {
    return this.requireController().deleteTopic(request);
  }

  createPartitions(request: { name: string; partitions: number }): Promise<TopicDescription> {
    return this.requireController().createPartitions(request);
  }

  alterConfigs(request: { name: string; set: Record<string, string>; remove: string[] }): Promise<TopicDescription> {
    return this.requireController().alterConfigs(request);
  }

  allocateProducerIds(request: { count: number }): Promise<{ firstProducerId: number; count: number }> {
    return this.requireController().allocateProducerIds(request);
  }

  listTopics(): { names: string[]; metadataOffset: number } {
    const image = this.metadata.machine.image;
    return { names: [...image.topicIds.keys()].sort(), metadataOffset: image.offset };
  }

  describeTopics(names: readonly string[]): { topics: TopicDescription[]; unknown: string[]; metadataOffset: number } {
    const image = this.metadata.machine.image;
    const wanted = names.length > 0 ? names : [...image.topicIds.keys()].sort();
    const topics: TopicDescription[] = [];
    const unknown: string[] = [];
    for (const name of wanted) {
      const topic = image.topicByName(name);
      if (topic === undefined) unknown.push(name);
      else topics.push(describeTopic(topic));
    }
    return { topics, unknown, metadataOffset: image.offset };
  }

  describeCluster(): ClusterDescription {
    const image = this.metadata.machine.image;
    const status = this.host.status(metadataGroup)!;
    const brokers = [...image.brokers.values()]
      .sort((a, b) => a.id - b.id)
      .map((broker) => {
        const hosted = image.partitionsHostedBy(broker.id);
        return {
          id: broker.id,
          host: broker.endpoint.host,
          port: broker.endpoint.port,
          rack: broker.rack ?? '',
          fenced: broker.fenced,
          inControlledShutdown: broker.inControlledShutdown,
          epoch: broker.epoch,
          partitions: hosted.length,
          leaders: hosted.filter((partition) => partition.leader).length,
        };
      });
    const nodes = this.cluster.nodes.map((node) => ({ id: node.id, host: node.host, port: this.addressPort(node), roles: [...node.roles] }));
    return { clusterId: this.cluster.clusterId, controllerId: status.leader, brokers, metadataOffset: image.offset, nodes };
  }

  /** addressPort is the client port clients should use for a node: what it registered as a broker, else the cluster file's. */
  private addressPort(node: ClusterNode): number {
    if (node.id === this.self.id) return this.options.advertisedClientPort ?? this.options.clientPort;
    return this.metadata.machine.image.brokers.get(node.id)?.endpoint.port ?? node.clientPort;
  }

  get logger(): Logger {
    return this.parts.logger;
  }

  /**
   * handOffLeadership moves leadership of the metadata quorum to the most caught-up other voter
   * before this node stops, so the cluster does not wait out an election timeout.
   */
  private async handOffLeadership(): Promise<void> {
    const status = this.host.status(metadataGroup);
    if (status?.role !== 'leader') return;
    const candidates = status.progress.filter((progress) => progress.id !== this.self.id && !progress.isLearner).sort((a, b) => b.match - a.match);
    const target = candidates[0];
    if (target === undefined) return;
    this.parts.logger.info({ target: target.id }, 'handing metadata leadership over before stopping');
    this.host.transferLeadership(metadataGroup, target.id);
    const { clock } = this.runtime;
    const deadline = clock.now() + controllerDefaults.controlledShutdownMs;
    while (this.host.status(metadataGroup)?.role === 'leader' && clock.now() < deadline) await clock.sleep(20);
  }

  /**
   * stopServing is the graceful first half of a stop: the broker asks to be released, leaderships
   * move to other nodes and the controller stops. Idempotent.
   */
  stopServing(): Promise<void> {
    this.stopping ??= this.stopServingOnce();
    return this.stopping;
  }

  /**
   * abandonServing makes stopServing skip its graceful steps, for a node that must not take part
   * any more (its peers refuse its data directory): nothing it asks of the cluster would be
   * answered, so each step would only wait out its timeout.
   */
  protected abandonServing(): void {
    this.stopping ??= Promise.resolve();
  }

  private async stopServingOnce(): Promise<void> {
    const { controller, broker, replicas, groups } = this.parts;
    await broker?.shutdown();
    groups?.close();
    await replicas?.close();
    await replicas?.handOffLeaderships(controllerDefaults.controlledShutdownMs);
    await this.handOffLeadership();
    controller?.stop();
  }

  /**
   * closeShell finishes the round on disk and closes the logs: after stopServing and the servers,
   * or alone when a start fails half way (so it stops the timers stopServing would have stopped).
   */
  protected async closeShell(): Promise<void> {
    const { replicas, groups, broker, controller } = this.parts;
    broker?.stop();
    groups?.close();
    controller?.stop();
    await replicas?.close();
    await this.host.close();
    this.metadata.storage.log.close();
    replicas?.closeLogs();
  }
}

async function openMetadataGroup(options: { cluster: ClusterConfig; env: ShellEnvironment; logger: Logger }): Promise<{
  storage: DurableRaftStorage;
  snapshots: SnapshotStore;
  machine: MetadataStateMachine;
}> {
  const { cluster, env, logger } = options;
  const bootstrap = (): Snapshot => bootstrapSnapshot(cluster);
  const groupLogger = logger.child({ group: metadataGroup });
  const { storage, snapshots, fresh } = await openGroupStorage({ group: metadataGroup, dir: join(env.dataDir, dataSubdirectories.raft, `group-${metadataGroup}`), disk: env.disk, stateStore: env.stateStore, logger: groupLogger, bootstrap });
  if (fresh) {
    const { voters, learners } = storage.snapshot().metadata.confState;
    logger.info({ voters, learners }, 'bootstrapped the metadata quorum from the cluster file');
  }
  return { storage, snapshots, machine: new MetadataStateMachine() };
}

/** bootstrapSnapshot is the empty state at index 1 with the membership from the cluster file. */
export function bootstrapSnapshot(cluster: ClusterConfig): Snapshot {
  return { metadata: { index: 1, term: 1, confState: bootstrapMembership(cluster) }, data: emptyMetadataSnapshotData() };
}
