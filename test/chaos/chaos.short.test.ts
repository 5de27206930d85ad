// The short chaos pass CI runs: npm run chaos for 40 s of faults on a generated 3-node cluster
// (real processes behind fault-injecting proxies), judged by the history checker. The seed is
// printed; a failure replays its fault schedule with RAFTBUS_SEED=<seed> (the processes' timing
// still varies, so a replay is likely, not certain, to fail the same way).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const runPath = join(import.meta.dirname, '../../dist/chaos/run.js');
/** exitGraceMs: how long the run may take to exit after it printed its verdict. */
const exitGraceMs = 15_000;

describe('npm run chaos (short pass)', () => {
  it('finds no lost, duplicated or reordered record under kills, pauses and partitions', async () => {
    const seed = Number(process.env['RAFTBUS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    const out = mkdtempSync(join(tmpdir(), 'raftbus-chaos-'));
    console.log(`chaos short pass: seed=${seed} (replay: RAFTBUS_SEED=${seed} npx vitest run test/chaos), results in ${out}`);
    const run = await runToEnd([runPath, '--duration', '40', '--seed', String(seed), '--out', out], 400_000);
    const verdict = existsSync(join(out, 'verdict.json')) ? (JSON.parse(readFileSync(join(out, 'verdict.json'), 'utf8')) as { ok: boolean; counts: Record<string, number>; examples: Record<string, unknown[]> }) : undefined;
    if (run.status !== 0) console.log(`exit ${run.status} signal ${run.signal}`, run.stdout, run.stderr, JSON.stringify(verdict?.examples ?? {}, null, 2));
    expect(run.status, `${run.stderr} (signal ${run.signal})`).toBe(0);
    expect(verdict?.ok).toBe(true);
    expect(verdict!.counts['acknowledged']).toBeGreaterThan(100);
    expect(verdict!.counts['faults']).toBeGreaterThan(0);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
    rmSync(out, { recursive: true, force: true });
  }, 420_000);
});

/** runToEnd runs node with args, collecting its output, and kills it after timeoutMs. */
function runToEnd(args: string[], timeoutMs: number): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // Known issue: about one run in ten, Node hangs in its exit cleanup after the run has written
    // its verdict and called process.exit. The verdict stands; end the process once it is printed.
    const hung = setInterval(() => {
      const printed = /chaos: replay with: /.exec(stdout);
      if (printed !== null && Date.now() - printedAt.at >= exitGraceMs) child.kill('SIGKILL');
      if (printed !== null && printedAt.at === Infinity) printedAt.at = Date.now();
    }, 1000);
    const printedAt = { at: Infinity };
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      clearInterval(hung);
      const verdictCode = /chaos: (PASS|FAIL) /.exec(stdout)?.[1];
      // Killed after printing its verdict: report the code the run chose.
      const code = status ?? (printedAt.at !== Infinity && verdictCode !== undefined ? (verdictCode === 'PASS' ? 0 : 1) : null);
      resolve({ status: code, signal, stdout, stderr });
    });
  });
}
