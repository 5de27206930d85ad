// Exit guards shared by the benchmarks: every child process they start and every temp directory
// they make is registered here, and killed or removed on exit, Ctrl-C, SIGTERM, SIGHUP and any
// uncaught error, so that no benchmark leaves processes or files behind.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let installed = false;

/** guardChild registers a child; it leaves the registry when it exits. Installs the guards. */
export function guardChild(child: ChildProcess): void {
  installGuards();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** guardDir registers a directory to remove on exit; releaseDir once it was removed or handed on. */
export function guardDir(dir: string): void {
  installGuards();
  dirs.add(dir);
}

export function releaseDir(dir: string): void {
  dirs.delete(dir);
}

/** killEverything sends SIGKILL to every registered child still running. Synchronous. */
export function killEverything(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

function removeLeftovers(): void {
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: a child killed a moment ago may still hold a file
    }
  }
  dirs.clear();
}

function installGuards(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    killEverything();
    removeLeftovers();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: killing ${live.size} child process(es)\n`);
      killEverything();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`uncaught: ${error.stack ?? String(error)}\n`);
    killEverything();
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`unhandled rejection: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killEverything();
    process.exit(1);
  });
}
