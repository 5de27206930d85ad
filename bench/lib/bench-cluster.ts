// BenchCluster runs a local raftbus cluster as real `raftbus node` processes on 127.0.0.1, each
// with its data directory in one fresh temporary directory, for benchmarks. Its processes and
// directory are registered with bench/lib/guards.ts, which kills and removes them on any exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from '../../src/client/admin-client.js';
import type { QuorumDescription } from '../../src/rpc/admin-service.js';
import { nodePorts } from '../../src/cluster/free-port.js';
import { guardChild, guardDir, releaseDir } from './guards.js';


/** cliPath is the compiled raftbus CLI (dist/src/cli/main.js) next to dist/bench/. */
export const cliPath = join(import.meta.dirname, '../../src/cli/main.js');

export interface BenchNode {
  readonly id: number;
  readonly clientAddress: string;
  readonly logPath: string;
  readonly cpuProfileDir: string | undefined;
  process: ChildProcess | undefined;
  exitCode: number | null | undefined;
}

export interface BenchClusterOptions {
  readonly nodes: number;
  /** logLevel is passed to every node (`--log-level`). */
  readonly logLevel: string;
  /** cpuProfile makes every node write a V8 CPU profile into its directory when it exits. */
  readonly cpuProfile: boolean;
  /** clientDeadlineMs bounds every Admin call. */
  readonly clientDeadlineMs: number;
}

export class BenchCluster {
  readonly nodes = new Map<number, BenchNode>();
  private readonly clients = new Map<number, AdminClient>();

  private constructor(
    readonly dir: string,
    readonly clusterFile: string,
    private readonly options: BenchClusterOptions,
  ) {}

  /** create writes the cluster file for options.nodes nodes on free loopback ports; nothing runs yet. */
  static async create(options: BenchClusterOptions): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'raftbus-bench-'));
    guardDir(dir);
    const nodes = [];
    const ports = await nodePorts(options.nodes);
    for (let id = 1; id <= options.nodes; id++) {
      nodes.push({ id, host: '127.0.0.1', ...ports[id - 1]!, roles: ['controller', 'broker'], dataDir: `node-${id}` });
    }
    const clusterFile = join(dir, 'cluster.json');
    writeFileSync(clusterFile, JSON.stringify({ clusterId: 'bench-cluster', nodes }, null, 2));
    const cluster = new BenchCluster(dir, clusterFile, options);
    for (const node of nodes) {
      cluster.nodes.set(node.id, {
        id: node.id,
        clientAddress: `127.0.0.1:${node.clientPort}`,
        logPath: join(dir, `node-${node.id}.log`),
        cpuProfileDir: options.cpuProfile ? join(dir, `cpuprof-node-${node.id}`) : undefined,
        process: undefined,
        exitCode: undefined,
      });
    }
    return cluster;
  }

  /** startAll spawns every node; their output goes to node-N.log in the cluster directory. */
  startAll(): void {
    for (const id of this.nodes.keys()) this.start(id);
  }

  /** start spawns node id (appending to its node-N.log). */
  start(id: number): void {
    const node = this.nodes.get(id)!;
    const nodeArgs = node.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', node.cpuProfileDir];
    const out = openSync(node.logPath, 'a');
    const child = spawn(process.execPath, [...nodeArgs, cliPath, 'node', '--cluster', this.clusterFile, '--id', String(node.id), '--log-level', this.options.logLevel], {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    guardChild(child);
    node.process = child;
    node.exitCode = undefined;
    child.once('exit', (code) => {
      node.exitCode = code;
      if (node.process === child) node.process = undefined;
    });
  }

  /** kill sends SIGKILL to node id and resolves once it has exited. */
  async kill(id: number): Promise<void> {
    const child = this.nodes.get(id)?.process;
    if (child === undefined) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  pid(id: number): number | undefined {
    return this.nodes.get(id)?.process?.pid;
  }

  client(id: number): AdminClient {
    let client = this.clients.get(id);
    if (client === undefined) {
      client = new AdminClient(this.nodes.get(id)!.clientAddress, { deadlineMs: this.options.clientDeadlineMs });
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

  async describeAll(): Promise<Map<number, QuorumDescription | undefined>> {
    const ids = [...this.nodes.keys()];
    const views = await Promise.all(ids.map((id) => this.describe(id)));
    return new Map(ids.map((id, i) => [id, views[i]]));
  }

  /** waitForLeader polls every 50 ms until one node leads and every node follows it in its term. */
  async waitForLeader(timeoutMs: number): Promise<QuorumDescription> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dead = [...this.nodes.values()].filter((node) => node.process === undefined);
      if (dead.length > 0) {
        throw new Error(`node ${dead.map((node) => `${node.id} (exit ${String(node.exitCode)})`).join(', ')} exited during startup; log tail:\n${this.logTail(dead[0]!.id)}`);
      }
      const views = [...(await this.describeAll()).values()];
      const leader = views.find((view) => view?.role === 'leader');
      if (leader !== undefined && views.every((view) => view !== undefined && view.leaderId === leader.nodeId && view.term === leader.term)) return leader;
      if (Date.now() > deadline) throw new Error(`no leader followed by every node after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  logTail(id: number, lines = 20): string {
    try {
      return readFileSync(this.nodes.get(id)!.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * stop closes the clients and stops every node: SIGTERM (a graceful stop, which lets --cpu-prof
   * write its profile), then SIGKILL for any node still running after graceMs.
   */
  async stop(graceMs: number): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    await Promise.all(
      [...this.nodes.values()].map(async (node) => {
        const child = node.process;
        if (child === undefined) return;
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await gone;
        clearTimeout(timer);
      }),
    );
  }

  /** remove deletes the cluster directory (data, logs, profiles). */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    releaseDir(this.dir);
  }
}
