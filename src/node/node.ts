// RaftbusNode is one process of the cluster: it opens its data directory, recovers its Raft
// groups from disk (NodeShell), joins its peers over the peer transport and serves clients over gRPC.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PeerTransport, type PeerRefusal } from '../rpc/peer-transport.js';
import { stopServer } from '../rpc/server-stop.js';
import { StateStore } from '../storage/state-store.js';
import { Admin } from '../client/admin.js';
import { registerAdminService } from '../rpc/admin-service.js';
import { ControllerClient, registerControllerService } from '../rpc/controller-service.js';
import { brokerServerOptions, registerBrokerService } from '../rpc/broker-service.js';
import { registerGroupsService } from '../rpc/groups-service.js';
import type { ClusterConfig, ClusterNode } from './cluster-file.js';
import { DataDirError, dataSubdirectories, openDataDir, type DataDir } from './data-dir.js';
import { controllerDefaults, nodeDefaults } from './limits.js';
import { systemRuntime } from './runtime.js';
import { NodeShell, NodeStartError, type ShellEnvironment, type ShellOptions, type ShellParts } from './node-shell.js';

export { NodeStartError, bootstrapMembership, bootstrapSnapshot } from './node-shell.js';

/** NodeOptions: the shell's, but the client port is the one the node binds (from the cluster file). */
export type NodeOptions = Omit<ShellOptions, 'clientPort'>;


interface ProcessParts {
  readonly dataDir: DataDir;
  readonly stateStore: StateStore;
  readonly transport: PeerTransport;
  readonly server: grpc.Server;
  /** clientAddress is where server is bound, with its real port. */
  readonly clientAddress: string;
}

export class RaftbusNode extends NodeShell {
  private closing: Promise<void> | undefined;
  private dataDirWatch: NodeJS.Timeout | undefined;
  private refused = false;

  private constructor(
    parts: ShellParts,
    private readonly process: ProcessParts,
    readonly ports: { peer: number; client: number; advertisedClient?: number },
  ) {
    super(parts);
  }

  /** start opens everything and serves; throws NodeStartError (or a storage error) if it cannot. */
  static async start(options: NodeOptions): Promise<RaftbusNode> {
    const { cluster, nodeId, logger } = options;
    const self = cluster.nodes.find((node) => node.id === nodeId);
    if (self === undefined) {
      throw new NodeStartError(`node id ${nodeId} is not in the cluster file; its nodes are ${cluster.nodes.map((node) => node.id).join(', ')}`);
    }
    const dataDir = await openDataDir({ path: self.dataDir, clusterId: cluster.clusterId, nodeId });
    const cleanup: (() => Promise<unknown> | unknown)[] = [() => dataDir.close()];
    try {
      const stateStore = await StateStore.open(join(dataDir.path, dataSubdirectories.state));
      cleanup.push(() => stateStore.close());
      let shell: RaftbusNode | undefined;
      const transport = new PeerTransport({
        clusterId: cluster.clusterId,
        nodeId,
        peers: new Map(cluster.nodes.map((node) => [node.id, { host: node.host, port: node.peerPort }])),
        logger,
        onMessages: (from, messages) => shell?.receive(from, messages),
        onUnreachable: (peer) => shell?.reportUnreachable(peer),
        onSnapshotStatus: ({ to, group, outcome }) => shell?.reportSnapshot({ group, to, outcome: outcome === 'delivered' ? 'finished' : 'failed' }),
        directoryId: dataDir.meta.directoryId,
        peerDirectories: { recorded: await stateStore.peerDirectories(), save: (peer, directoryId) => stateStore.savePeerDirectory(peer, directoryId) },
        onRefused: (refusal) => shell?.stopRefused(refusal, options.onFailure),
      });
      const peerPort = await startOrExplain(() => transport.start(), `peer port ${self.host}:${self.peerPort}`);
      cleanup.push(() => transport.close());
      const server = new grpc.Server(brokerServerOptions);
      const clientPort = await bindOrExplain(server, self);
      cleanup.push(() => stopServer(server, `${self.host}:${clientPort}`, 0));
      const env: ShellEnvironment = {
        ...systemRuntime(),
        dataDir: dataDir.path,
        stateStore,
        send: (messages) => transport.send(messages),
        connectController: (node: ClusterNode) => new ControllerClient(`${node.host}:${node.clientPort}`, controllerDefaults.callDeadlineMs),
        createTopic: (request) => createTopicThroughAdmin(cluster, request),
      };
      const parts = await NodeShell.assemble({ ...options, clientPort }, env);
      const node = new RaftbusNode(parts, { dataDir, stateStore, transport, server, clientAddress: `${self.host}:${clientPort}` }, { peer: peerPort.port, client: clientPort, ...(options.advertisedClientPort === undefined ? {} : { advertisedClient: options.advertisedClientPort }) });
      shell = node;
      cleanup.push(() => node.closeShell());
      registerAdminService(server, node);
      if (parts.replicas !== undefined) registerBrokerService(server, node);
      if (parts.groups !== undefined) registerGroupsService(server, node);
      if (parts.controller !== undefined) registerControllerService(server, parts.controller);
      node.start();
      node.watchDataDir(options.onFailure);
      logger.info({ peerPort: peerPort.port, clientPort, dataDir: dataDir.path }, 'node started');
      return node;
    } catch (error) {
      for (const close of cleanup.reverse()) await Promise.resolve(close()).catch(() => undefined);
      throw error;
    }
  }

  /** close stops serving, finishes the round on disk and releases the data directory. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  /**
   * watchDataDir checks every dataDirCheckMs that the data directory is still the one opened. One
   * removed or replaced under the node (rm -rf, a restore over it) means that what the node makes
   * durable from then on goes to deleted files or mixes with another directory's: it would ack
   * writes it cannot keep. It then reports a DataDirError through onFailure (the process exits)
   * and closes the node.
   */
  private watchDataDir(onFailure: ((error: Error) => void) | undefined): void {
    const { dataDir } = this.process;
    let checking = false;
    this.dataDirWatch = setInterval(() => {
      if (checking) return;
      checking = true;
      void dataDir
        .check()
        .catch((error: unknown) => `${dataDir.path} cannot be checked: ${(error as Error).message}`)
        .then((change) => {
          checking = false;
          if (change === undefined || this.dataDirWatch === undefined) return;
          clearInterval(this.dataDirWatch);
          this.dataDirWatch = undefined;
          const message = `${change} while the node ran; stopping rather than acknowledge writes it cannot keep. Put the directory back (from a backup) before this node starts again`;
          const error = new DataDirError({ kind: 'lost', dataDir: dataDir.path, message });
          this.logger.fatal({ err: error }, 'data directory lost');
          onFailure?.(error);
          void this.close().catch(() => undefined); // stop acknowledging now, also where no onFailure was given; a failed close surfaces to whoever awaits close()
        });
    }, nodeDefaults.dataDirCheckMs);
  }

  /**
   * stopRefused stops a node that a peer refuses: the peer knows this node on another data
   * directory, so this one is not the node's data (see peer.proto's Hello). It reports a
   * DataDirError through onFailure (the process exits) and closes the node.
   */
  private stopRefused(refusal: PeerRefusal, onFailure: ((error: Error) => void) | undefined): void {
    if (this.refused) return;
    this.refused = true;
    const { dataDir } = this.process;
    const message = `node ${refusal.peer} refuses it: ${refusal.details}. This node stops without taking part`;
    const error = new DataDirError({ kind: 'replaced', dataDir: dataDir.path, message });
    this.logger.fatal({ err: error }, 'data directory refused by a peer');
    this.abandonServing();
    onFailure?.(error);
    void this.close().catch(() => undefined);
  }

  private async closeOnce(): Promise<void> {
    clearInterval(this.dataDirWatch);
    this.dataDirWatch = undefined;
    const { server, transport, stateStore, dataDir } = this.process;
    await this.stopServing();
    await stopServer(server, this.process.clientAddress, nodeDefaults.serverDrainMs);
    await this.closeShell();
    await transport.close();
    await stateStore.close();
    await dataDir.close();
    this.logger.info('node stopped');
  }
}

/** createTopicThroughAdmin asks whichever node is the active controller, as a client would. */
async function createTopicThroughAdmin(cluster: ClusterConfig, request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string> }): Promise<unknown> {
  const admin = new Admin({ bootstrap: cluster.nodes.map((node) => `${node.host}:${node.clientPort}`), retryForMs: controllerDefaults.createTopicRetryForMs });
  try {
    return await admin.createTopic(request);
  } finally {
    admin.close();
  }
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
