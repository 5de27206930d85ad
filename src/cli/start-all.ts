// `raftbus start`: every node of a cluster file as its own child process, their logs prefixed
// and coloured in this terminal. Ctrl-C stops them all gracefully; nothing is ever restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatPrettyLine } from '../node/logger.js';
import { loadCluster } from './connect.js';

const stopGraceMs = 15_000;
const colours = [36, 33, 35, 32, 34, 91, 92, 93, 94, 95];

function prefixer(id: number): (line: string) => string {
  const label = `node ${id} │ `;
  if (!process.stdout.isTTY) return (line) => `${label}${line}`;
  const colour = colours[(id - 1) % colours.length]!;
  return (line) => `\x1b[${colour}m${label}\x1b[0m${line}`;
}

function readable(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    return formatPrettyLine(line).trimEnd();
  } catch {
    return line;
  }
}

/** startAll returns the exit code: 0 when every node stopped cleanly after Ctrl-C, else 1 (2: bad file). */
export async function startAll(options: { cluster: string; logLevel: string }): Promise<number> {
  const loaded = await loadCluster(options.cluster);
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const file = resolve(options.cluster);
  let stopping = false;
  let failures = 0;
  const children = new Map<number, ChildProcess>();
  const exited = loaded.cluster.nodes.map(
    (node) =>
      new Promise<void>((done) => {
        const child = spawn(process.execPath, [main, 'node', '--cluster', file, '--id', String(node.id), '--log-level', options.logLevel], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.set(node.id, child);
        const prefix = prefixer(node.id);
        createInterface({ input: child.stdout! }).on('line', (line) => console.log(prefix(readable(line))));
        createInterface({ input: child.stderr! }).on('line', (line) => console.error(prefix(line)));
        child.on('exit', (code, signal) => {
          children.delete(node.id);
          if (!stopping || code !== 0) failures++;
          if (!stopping) console.error(prefix(`exited (${signal ?? `code ${code}`}); it is not restarted, the other nodes keep running`));
          done();
        });
      }),
  );
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.error(`stopping ${children.size} node(s)…`);
    for (const child of children.values()) child.kill('SIGTERM');
    setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
    }, stopGraceMs).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await Promise.all(exited);
  return failures === 0 ? 0 : 1;
}
