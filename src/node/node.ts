// RaftbusNode is one process of the cluster: it opens its data directory, recovers its Raft
// groups from disk, joins its peers over the peer transport and serves clients over gRPC.
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { seededRandom } from '../raft/prng.js';
import type { ConfState, NodeId, Snapshot } from '../raft/types.js';
import { PeerTransport } from '../rpc/peer-transport.js';
import type { SnapshotStore } from '../storage/snapshot-store.js';
import { StateStore } from '../storage/state-store.js';
import { encodeRecordBatch } from '../rpc/metadata-codec.js';
import { registerAdminService, type AdminBackend, type ClusterDescription, type MetadataLogPage, type QuorumDescription, type TopicDescription } from '../rpc/admin-service.js';
import { registerControllerService } from '../rpc/controller-service.js';
import { brokerServerOptions, registerBrokerService, type BrokerBackend, type BrokerMetadata, type BrokerPartition } from '../rpc/broker-service.js';
import { PartitionReplicas } from './partition-replicas.js';
import { GroupCoordinators, offsetsTopic } from './group-coordinators.js';
import { registerGroupsService, type GroupsBackend } from '../rpc/groups-service.js';
import type { GroupCoordinator } from '../groups/coordinator.js';
import { CoordinatorLoadingError, NotControllerError, NotCoordinatorError, NotLeaderError } from '../errors.js';
import { describeTopic } from '../metadata/image.js';
import { BrokerLifecycle } from './broker-lifecycle.js';
import { ControllerRuntime } from './controller-runtime.js';
import type { ClusterConfig, ClusterNode } from './cluster-file.js';
import { openDataDir, type DataDir } from './data-dir.js';
import { MetadataStateMachine, emptyMetadataSnapshotData } from './metadata-state-machine.js';
import type { DurableRaftStorage } from './durable-raft-storage.js';
import { openGroupStorage } from './group-storage.js';
import { RaftHost, type RaftTiming } from './raft-host.js';
import { controllerDefaults, metadataGroup, nodeDefaults } from './limits.js';

export interface NodeOptions {
  readonly cluster: ClusterConfig;
  readonly nodeId: NodeId;
  readonly logger: Logger;
  readonly timing?: Partial<RaftTiming>;
  readonly snapshotEveryEntries?: number;
  /** sessionTimeoutMs: the controller fences a broker silent for this long. */
  readonly sessionTimeoutMs?: number;
  /** advertisedClientPort: the client port this broker registers for clients (a proxy in front of it); default its clientPort. */
  readonly advertisedClientPort?: number;
  /** onFailure is called when the node stops serving after a storage failure; the process should exit. */
  readonly onFailure?: (error: Error) => void;
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

export class RaftbusNode implements AdminBackend, BrokerBackend, GroupsBackend {
  readonly startedAtMs = Date.now();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly cluster: ClusterConfig,
    readonly self: ClusterNode,
    readonly host: RaftHost,
    readonly metadata: { storage: DurableRaftStorage; machine: MetadataStateMachine },
    private readonly parts: {
      dataDir: DataDir;
      stateStore: StateStore;
      transport: PeerTransport;
      server: grpc.Server;
      logger: Logger;
      lastHeard: Map<NodeId, number>;
      controller: ControllerRuntime | undefined;
      broker: BrokerLifecycle | undefined;
      replicas: PartitionReplicas | undefined;
      groups: GroupCoordinators | undefined;
    },
    readonly ports: { peer: number; client: number; advertisedClient?: number },
  ) {}

  /** start opens everything and serves; throws NodeStartError (or a storage error) if it cannot. */
  static async start(options: NodeOptions): Promise<RaftbusNode> {
    const { cluster, nodeId, logger } = options;
    const self = cluster.nodes.find((node) => node.id === nodeId);
    if (self === undefined) {
      throw new NodeStartError(`node id ${nodeId} is not in the cluster file; its nodes are ${cluster.nodes.map((node) => node.id).join(', ')}`);
    }
    const timing: RaftTiming = { ...nodeDefaults.timing, ...options.timing };
    const dataDir = await openDataDir({ path: self.dataDir, clusterId: cluster.clusterId, nodeId });
    const cleanup: (() => Promise<unknown> | unknown)[] = [() => dataDir.close()];
    try {
      const stateStore = await StateStore.open(join(dataDir.path, 'state'));
      cleanup.push(() => stateStore.close());
      const metadata = await openMetadataGroup({ cluster, dataDir, stateStore, logger });
      cleanup.push(() => metadata.storage.log.close());
      let transport: PeerTransport | undefined;
      const host = new RaftHost({
        nodeId,
        timing,
        random: seededRandom(randomInt(1, 2 ** 31 - 1)),
        hardStates: stateStore,
        send: (messages) => transport?.send(messages),
        logger: logger.child({ group: metadataGroup }),
        onFailure: options.onFailure ?? (() => undefined),
      });
      cleanup.push(() => host.close());
      const lastHeard = new Map<NodeId, number>();
      transport = new PeerTransport({
        clusterId: cluster.clusterId,
        nodeId,
        peers: new Map(cluster.nodes.map((node) => [node.id, { host: node.host, port: node.peerPort }])),
        logger,
        onMessages: (from, messages) => {
          lastHeard.set(from, Date.now());
          host.receive(messages);
        },
        onUnreachable: (peer) => host.reportUnreachable(peer),
        onSnapshotStatus: ({ to, group, outcome }) => host.reportSnapshot({ group, to, outcome: outcome === 'delivered' ? 'finished' : 'failed' }),
      });
      const peerPort = await startOrExplain(() => transport!.start(), `peer port ${self.host}:${self.peerPort}`);
      cleanup.push(() => transport!.close());
      host.addGroup({
        group: metadataGroup,
        storage: metadata.storage,
        snapshots: metadata.snapshots,
        machine: metadata.machine,
        snapshotEveryEntries: options.snapshotEveryEntries ?? nodeDefaults.snapshotEveryEntries,
        logger: logger.child({ group: metadataGroup }),
      });
      const server = new grpc.Server(brokerServerOptions);
      const clientPort = await bindOrExplain(server, self);
      const controller = self.roles.includes('controller')
        ? new ControllerRuntime(host, metadata.machine, { sessionTimeoutMs: options.sessionTimeoutMs ?? controllerDefaults.sessionTimeoutMs, fenceCheckMs: controllerDefaults.fenceCheckMs }, logger.child({ component: 'controller' }))
        : undefined;
      const broker = self.roles.includes('broker')
        ? new BrokerLifecycle(cluster, { ...self, clientPort: options.advertisedClientPort ?? self.clientPort }, { appliedIndex: () => metadata.machine.appliedIndex, leaderHint: () => host.status(metadataGroup)?.leader ?? 0 }, logger.child({ component: 'broker' }))
        : undefined;
      const groups = self.roles.includes('broker')
        ? new GroupCoordinators({ self: nodeId, host, image: () => metadata.machine.image, bootstrap: cluster.nodes.map((node) => `${node.host}:${node.clientPort}`), logger: logger.child({ component: 'groups' }) })
        : undefined;
      const replicas =
        groups === undefined
          ? undefined
          : new PartitionReplicas({
              self: nodeId,
              dataDir: dataDir.path,
              host,
              stateStore,
              image: () => metadata.machine.image,
              logger: logger.child({ component: 'partitions' }),
              attach: (partition) => (partition.id.topic === offsetsTopic ? groups.attach(partition) : undefined),
              detach: (partition) => groups.detach(partition),
            });
      if (replicas !== undefined) {
        metadata.machine.onImage((image) => replicas.onImage(image));
        replicas.onImage(metadata.machine.image);
        cleanup.push(async () => {
          groups?.close();
          await replicas.close();
          replicas.closeLogs();
        });
      }
      const node = new RaftbusNode(cluster, self, host, metadata, { dataDir, stateStore, transport, server, logger, lastHeard, controller, broker, replicas, groups }, { peer: peerPort.port, client: clientPort, ...(options.advertisedClientPort === undefined ? {} : { advertisedClient: options.advertisedClientPort }) });
      registerAdminService(server, node);
      if (replicas !== undefined) registerBrokerService(server, node);
      if (groups !== undefined) registerGroupsService(server, node);
      if (controller !== undefined) registerControllerService(server, controller);
      host.start();
      controller?.start();
      broker?.start();
      replicas?.start();
      groups?.start();
      logger.info({ peerPort: peerPort.port, clientPort, dataDir: dataDir.path }, 'node started');
      return node;
    } catch (error) {
      for (const close of cleanup.reverse()) await Promise.resolve(close()).catch(() => undefined);
      throw error;
    }
  }

  /** lastHeardMsAgo is how long ago any message came from peer, or undefined if never. */
  lastHeardMsAgo(peer: NodeId): number | undefined {
    const at = this.parts.lastHeard.get(peer);
    return at === undefined ? undefined : Date.now() - at;
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
      uptimeMs: Date.now() - this.startedAtMs,
      rounds: this.host.rounds,
      syncs: this.host.syncs,
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
    const entries = lo < hi ? storage.entries(lo, hi, Number.MAX_SAFE_INTEGER) : [];
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
    if (node.id === this.self.id) return this.ports.advertisedClient ?? this.ports.client;
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
    const deadline = Date.now() + controllerDefaults.controlledShutdownMs;
    while (this.host.status(metadataGroup)?.role === 'leader' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** close stops serving, finishes the round on disk and releases the data directory. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    const { server, transport, stateStore, dataDir, logger, controller, broker, replicas, groups } = this.parts;
    await broker?.shutdown();
    groups?.close();
    await replicas?.close();
    await replicas?.handOffLeaderships(controllerDefaults.controlledShutdownMs);
    await this.handOffLeadership();
    controller?.stop();
    await shutdownServer(server, nodeDefaults.serverDrainMs);
    await this.host.close();
    await transport.close();
    this.metadata.storage.log.close();
    replicas?.closeLogs();
    await stateStore.close();
    await dataDir.close();
    logger.info('node stopped');
  }
}

async function openMetadataGroup(options: { cluster: ClusterConfig; dataDir: DataDir; stateStore: StateStore; logger: Logger }): Promise<{
  storage: DurableRaftStorage;
  snapshots: SnapshotStore;
  machine: MetadataStateMachine;
}> {
  const { cluster, dataDir, stateStore, logger } = options;
  const bootstrap = (): Snapshot => bootstrapSnapshot(cluster);
  const groupLogger = logger.child({ group: metadataGroup });
  const { storage, snapshots, fresh } = await openGroupStorage({ group: metadataGroup, dir: join(dataDir.path, 'raft', `group-${metadataGroup}`), stateStore, logger: groupLogger, bootstrap });
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

/**
 * shutdownServer stops taking calls and lets those running finish for up to drainMs; then it
 * cancels the rest (long-lived produce and subscribe streams never finish on their own).
 */
function shutdownServer(server: grpc.Server, drainMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, drainMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function startOrExplain<T>(start: () => Promise<T>, what: string): Promise<T> {
  try {
    return await start();
  } catch (error) {
    throw new NodeStartError(`cannot listen on ${what}: ${(error as Error).message}. Is another process using it? Stop it or change the port in the cluster file.`, { cause: error });
  }
}

function bindOrExplain(server: grpc.Server, self: ClusterNode): Promise<number> {
  const address = `${self.host}:${self.clientPort}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) resolve(port);
      else reject(new NodeStartError(`cannot listen on client port ${address}: ${error.message}. Is another process using it? Stop it or change clientPort of node ${self.id} in the cluster file.`, { cause: error }));
    });
  });
}
