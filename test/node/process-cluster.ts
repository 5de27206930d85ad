// ProcessCluster runs nodes of a cluster as real `raftbus node` processes on loopback, each in a
// temporary data directory, for tests that kill -9, pause and restart them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin, type AdminOptions } from '../../src/client/admin.js';
import { AdminClient } from '../../src/client/admin-client.js';
import type { QuorumDescription } from '../../src/rpc/admin-service.js';
import { nodePorts } from '../../src/cluster/free-port.js';
import { pollUntil } from '../../src/cluster/poll.js';


export const cliPath = join(import.meta.dirname, '../../dist/src/cli/main.js');

export interface ProcessNode {
  readonly id: number;
  readonly clientAddress: string;
  readonly peerPort: number;
  readonly dataDir: string;
  process: ChildProcess | undefined;
  output: string[];
}

export class ProcessCluster {
  readonly nodes = new Map<number, ProcessNode>();
  private readonly clients = new Map<number, AdminClient>();
  private readonly admins: Admin[] = [];

  private constructor(
    readonly dir: string,
    readonly clusterFile: string,
    private readonly extraArgs: string[],
  ) {}

  /** create writes a cluster file; roles[i] gives node i+1's roles (default: controller and broker). */
  static async create(options: { nodes: number; extraArgs?: string[]; roles?: readonly (readonly string[])[] }): Promise<ProcessCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'raftbus-test-'));
    const nodes = [];
    const ports = await nodePorts(options.nodes);
    for (let id = 1; id <= options.nodes; id++) {
      const roles = options.roles?.[id - 1] ?? ['controller', 'broker'];
      nodes.push({ id, host: '127.0.0.1', ...ports[id - 1]!, roles, dataDir: `node-${id}` });
    }
    const clusterFile = join(dir, 'cluster.json');
    writeFileSync(clusterFile, JSON.stringify({ clusterId: 'test-cluster', nodes }, null, 2));
    const cluster = new ProcessCluster(dir, clusterFile, options.extraArgs ?? []);
    for (const node of nodes) {
      cluster.nodes.set(node.id, { id: node.id, clientAddress: `127.0.0.1:${node.clientPort}`, peerPort: node.peerPort, dataDir: join(dir, node.dataDir), process: undefined, output: [] });
    }
    return cluster;
  }

  start(id: number): void {
    const node = this.nodes.get(id)!;
    const child = spawn(process.execPath, [cliPath, 'node', '--cluster', this.clusterFile, '--id', String(id), '--log-level', 'info', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    node.process = child;
    const keep = (chunk: Buffer): void => {
      node.output.push(chunk.toString());
      if (node.output.length > 2000) node.output.splice(0, 1000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('exit', () => {
      if (node.process === child) node.process = undefined;
    });
  }

  startAll(): void {
    for (const id of this.nodes.keys()) this.start(id);
  }

  /** kill sends SIGKILL and waits for the process to be gone. */
  async kill(id: number): Promise<void> {
    const child = this.nodes.get(id)!.process;
    if (child === undefined) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  /**
   * stop sends a signal (SIGTERM: a graceful stop) and waits up to timeoutMs for the process to
   * exit; it returns the exit code (null when killed by a signal) and how long the exit took.
   * Throws if the process is still running after timeoutMs (close() kills it).
   */
  async stop(id: number, options: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }> {
    const signal = options.signal ?? 'SIGTERM';
    const startedMs = Date.now();
    const exit = this.exitWithin(id, options.timeoutMs ?? 10_000, ` of ${signal}`);
    this.nodes.get(id)!.process!.kill(signal);
    return { ...(await exit), elapsedMs: Date.now() - startedMs };
  }

  /** waitExit waits up to timeoutMs for node id's running process to exit by itself; returns its exit code. */
  async waitExit(id: number, timeoutMs: number): Promise<number | null> {
    return (await this.exitWithin(id, timeoutMs, '')).code;
  }

  /** exitWithin resolves with how node id's running process exits; rejects if it runs on past timeoutMs. */
  private exitWithin(id: number, timeoutMs: number, cause: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.nodes.get(id)!.process;
    if (child === undefined) return Promise.reject(new Error(`node ${id} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} did not exit within ${timeoutMs} ms${cause}`)), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  }

  /** liveIds lists the nodes whose process is running. */
  liveIds(): number[] {
    return [...this.nodes.keys()].filter((id) => this.nodes.get(id)!.process !== undefined);
  }

  /** admin returns an SDK Admin bootstrapped with every node's client address; close() closes it. */
  admin(options: Partial<AdminOptions> = {}): Admin {
    const admin = new Admin({ bootstrap: [...this.nodes.values()].map((node) => node.clientAddress), requestTimeoutMs: 2000, ...options });
    this.admins.push(admin);
    return admin;
  }

  /** clientAddresses lists every node's client address (host:port), as an SDK bootstrap list. */
  clientAddresses(): string[] {
    return [...this.nodes.values()].map((node) => node.clientAddress);
  }

  client(id: number): AdminClient {
    let client = this.clients.get(id);
    if (client === undefined) {
      client = new AdminClient(this.nodes.get(id)!.clientAddress, { deadlineMs: 2000 });
      this.clients.set(id, client);
    }
    return client;
  }

  async describe(id: number): Promise<QuorumDescription | undefined> {
    try {
      return await this.client(id).describeQuorum();
    } catch {
      return undefined;
    }
  }

  /** waitForLeader polls until a live node leads and every other live node follows it. */
  async waitForLeader(options: { among?: number[]; timeoutMs?: number; notTerm?: number } = {}): Promise<QuorumDescription> {
    return this.waitFor(async () => {
      const among = options.among ?? [...this.nodes.keys()].filter((id) => this.nodes.get(id)!.process !== undefined);
      const views = await Promise.all(among.map((id) => this.describe(id)));
      const leader = views.find((view) => view?.role === 'leader');
      if (leader === undefined || leader.term === options.notTerm) return undefined;
      return views.every((view) => view !== undefined && view.leaderId === leader.nodeId && view.term === leader.term) ? leader : undefined;
    }, options.timeoutMs ?? 20_000, 'a leader followed by every live node');
  }

  /** waitFor polls check every 50 ms until it returns a value, or throws after timeoutMs. */
  waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
    return pollUntil(check, { what, timeoutMs });
  }

  /** appendNoOps writes count payloads through the current leader, retrying on leader changes. */
  async appendNoOps(count: number, prefix: string): Promise<Map<number, string>> {
    const written = new Map<number, string>();
    for (let i = 0; i < count; i++) {
      const payload = `${prefix}-${i}`;
      const position = await this.waitFor(async () => {
        const leader = await this.waitForLeader();
        try {
          return await this.client(leader.nodeId).appendNoOp(Buffer.from(payload));
        } catch {
          return undefined;
        }
      }, 20_000, `append of ${payload}`);
      written.set(position.index, payload);
    }
    return written;
  }

  output(id: number): string {
    return this.nodes.get(id)!.output.join('');
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    for (const admin of this.admins.splice(0)) admin.close();
    await Promise.all([...this.nodes.keys()].map((id) => this.kill(id)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
