// startCluster runs a whole raftbus cluster inside the calling process: every node on loopback
// with its own ports and a temporary data directory. It is for tests of services that use
// raftbus: a real cluster (real Raft, real fsync, real gRPC), started and removed in seconds.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { pollUntil } from './poll.js';
import { Admin } from '../client/admin.js';
import type { ClusterConfig } from '../node/cluster-file.js';
import { RaftbusNode } from '../node/node.js';
import { nodePorts } from './free-port.js';

export interface StartClusterOptions {
  /** nodes: how many nodes, each controller and broker; default 3. */
  readonly nodes?: number;
  /** logger: default silent. */
  readonly logger?: Logger;
  /** readyTimeoutMs: how long to wait for every broker to be registered and unfenced; default 30 s. */
  readonly readyTimeoutMs?: number;
}

export interface RunningCluster {
  /** bootstrap: the client addresses of the nodes, for Producer, Consumer and Admin. */
  readonly bootstrap: string[];
  readonly nodes: readonly RaftbusNode[];
  readonly config: ClusterConfig;
  /** close stops every node and deletes the data directories. */
  close(): Promise<void>;
}

const nodesMax = 9;

/** startCluster starts the nodes and resolves once every broker is unfenced. */
export async function startCluster(options: StartClusterOptions = {}): Promise<RunningCluster> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > nodesMax) throw new RangeError(`nodes: must be 1..${nodesMax}, got ${count}`);
  const logger = options.logger ?? pino({ level: 'silent' });
  const root = await mkdtemp(join(tmpdir(), 'raftbus-cluster-'));
  const nodes = [];
  const ports = await nodePorts(count);
  for (let id = 1; id <= count; id++) {
    nodes.push({ id, host: '127.0.0.1', ...ports[id - 1]!, roles: ['controller', 'broker'] as const, dataDir: join(root, `node-${id}`), rack: undefined });
  }
  const config: ClusterConfig = { clusterId: `test-${root.slice(-6)}`, nodes };
  const started: RaftbusNode[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(started.map((node) => node.close()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    started.push(...(await Promise.all(config.nodes.map((node) => RaftbusNode.start({ cluster: config, nodeId: node.id, logger: logger.child({ node: node.id }) })))));
    const bootstrap = config.nodes.map((node) => `${node.host}:${node.clientPort}`);
    await waitForBrokers({ bootstrap, count, timeoutMs: options.readyTimeoutMs ?? 30_000 });
    return { bootstrap, nodes: started, config, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** waitForBrokers resolves once `count` brokers are registered and unfenced; throws after timeoutMs. */
export async function waitForBrokers(options: { bootstrap: readonly string[]; count: number; timeoutMs: number }): Promise<void> {
  const admin = new Admin({ bootstrap: options.bootstrap, retryForMs: options.timeoutMs });
  try {
    await pollUntil(
      async () => {
        const cluster = await admin.describeCluster().catch(() => undefined);
        return cluster !== undefined && cluster.brokers.filter((broker) => !broker.fenced).length >= options.count;
      },
      { what: `${options.count} unfenced brokers`, timeoutMs: options.timeoutMs },
    );
  } finally {
    admin.close();
  }
}
