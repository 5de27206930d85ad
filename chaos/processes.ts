// NodeProcesses runs the nodes of a chaos run as real `raftbus node` processes: started, killed
// with SIGKILL, paused with SIGSTOP and resumed with SIGCONT, stopped with SIGTERM. Each node's
// output goes to its own log file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export const cliPath = join(import.meta.dirname, '../src/cli/main.js');

interface Running {
  readonly child: ChildProcess;
  paused: boolean;
}

export interface NodeLaunch {
  readonly clusterFile: string;
  readonly advertisedClientPort: number;
  /** dataDir is the node's data directory (faults that lose it move it aside and back). */
  readonly dataDir: string;
}

export class NodeProcesses {
  private readonly running = new Map<number, Running>();
  private readonly logs = new Map<number, WriteStream>();

  constructor(
    private readonly launches: ReadonlyMap<number, NodeLaunch>,
    private readonly logDir: string,
    private readonly extraArgs: readonly string[],
  ) {}

  get ids(): number[] {
    return [...this.launches.keys()];
  }

  isRunning(id: number): boolean {
    return this.running.has(id);
  }

  isPaused(id: number): boolean {
    return this.running.get(id)?.paused ?? false;
  }

  start(id: number): void {
    if (this.running.has(id)) return;
    const launch = this.launches.get(id)!;
    let log = this.logs.get(id);
    if (log === undefined) this.logs.set(id, (log = createWriteStream(join(this.logDir, `node-${id}.log`), { flags: 'a' })));
    const child = spawn(process.execPath, [cliPath, 'node', '--cluster', launch.clusterFile, '--id', String(id), '--advertised-client-port', String(launch.advertisedClientPort), '--log-level', 'info', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.running.set(id, { child, paused: false });
    child.on('exit', () => {
      if (this.running.get(id)?.child === child) this.running.delete(id);
    });
  }

  dataDirOf(id: number): string {
    return this.launches.get(id)!.dataDir;
  }

  /** waitExit waits up to timeoutMs for node id to exit by itself: its exit code, or 'running'. */
  async waitExit(id: number, timeoutMs: number): Promise<number | null | 'running'> {
    const running = this.running.get(id);
    if (running === undefined) return null;
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
    const timedOut = new Promise<'running'>((resolve) => (timer = setTimeout(() => resolve('running'), timeoutMs)));
    try {
      return await Promise.race([exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** kill sends SIGKILL (a crash: nothing is flushed) and waits for the process to be gone. */
  async kill(id: number): Promise<void> {
    const running = this.running.get(id);
    if (running === undefined) return;
    const exited = new Promise((resolve) => running.child.once('exit', resolve));
    running.child.kill('SIGKILL');
    await exited;
  }

  pause(id: number): void {
    const running = this.running.get(id);
    if (running === undefined || running.paused) return;
    running.child.kill('SIGSTOP');
    running.paused = true;
  }

  resume(id: number): void {
    const running = this.running.get(id);
    if (running === undefined || !running.paused) return;
    running.child.kill('SIGCONT');
    running.paused = false;
  }

  /** stopAll resumes paused nodes, asks every node to stop (SIGTERM), and kills those still up after graceMs. */
  async stopAll(graceMs: number): Promise<void> {
    const all = [...this.running.entries()];
    await Promise.all(
      all.map(async ([id, running]) => {
        if (running.paused) this.resume(id);
        const exited = new Promise((resolve) => running.child.once('exit', resolve));
        running.child.kill('SIGTERM');
        const timer = setTimeout(() => running.child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
    for (const log of this.logs.values()) log.end();
  }
}
