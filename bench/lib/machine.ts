// machineInfo describes where a benchmark ran and which compiled code it measured.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

/** distSrcHash fingerprints every .js under dist/src: HEAD alone misses uncommitted work. */
export function distSrcHash(projectRoot: string): string {
  const root = join(projectRoot, 'dist/src');
  const hash = createHash('sha256');
  for (const name of readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js')).sort()) {
    hash.update(name).update(readFileSync(join(root, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

export function machineInfo(projectRoot: string): Record<string, unknown> {
  let gitHead: string | undefined;
  try {
    gitHead = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: projectRoot, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    gitHead = undefined;
  }
  const cpuModel = /model name\s*:\s*(.*)/.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? cpus()[0]?.model;
  return { nproc: cpus().length, cpuModel, node: process.version, platform: process.platform, totalMemBytes: totalmem(), loadavgAtStart: loadavg(), gitHead, distSrcSha256: distSrcHash(projectRoot) };
}
