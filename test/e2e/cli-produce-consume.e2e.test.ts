// End to end: the built CLI (`raftbus produce` and `raftbus consume`, run as child processes as a
// user runs them) against a 3-node cluster started in this process by startCluster.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';
import { partitionForKey } from '../../src/partition/partitioner.js';

const cliPath = join(import.meta.dirname, '../../dist/src/cli/main.js');

let cluster: RunningCluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  const admin = new Admin({ bootstrap: cluster.bootstrap });
  await admin.createTopic({ name: 'orders', partitions: 3, replicationFactor: 3 });
  await admin.createTopic({ name: 'bulk', partitions: 1, replicationFactor: 3 });
  await admin.createTopic({ name: 'live', partitions: 2, replicationFactor: 3 });
  admin.close();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

interface CliRun {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: () => string;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** startCli runs the CLI with the cluster's bootstrap addresses, feeding stdin when given. */
function startCli(args: string[], stdin?: string, timeoutMs = 20_000): CliRun {
  const child = spawn(process.execPath, [cliPath, ...args, '--bootstrap-server', cluster.bootstrap.join(',')], { stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  if (stdin === undefined) child.stdin.end();
  else child.stdin.end(stdin);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`raftbus ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, done };
}

const runCli = (args: string[], stdin?: string) => startCli(args, stdin).done;

async function until(condition: () => boolean, timeoutMs: number, step: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await step();
  }
}

describe('raftbus produce and consume', () => {
  it('keyed lines go to the key\'s partition and come back from the beginning with keys, partitions and offsets', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `customer-${i % 4}:order ${i} ☕`);
    const produced = await runCli(['produce', 'orders', '--key-separator', ':'], lines.join('\n') + '\n');
    expect(produced).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const consumed = await runCli(['consume', 'orders', '--from-beginning', '--print-key', '--print-offset', '--timeout-ms', '800']);
    expect(consumed.code).toBe(0);
    expect(consumed.stderr).toBe('Processed a total of 30 messages\n');
    const rows = consumed.stdout.trimEnd().split('\n').map((row) => row.split('\t'));
    expect(rows).toHaveLength(30);
    for (const [partitionField, offsetField, key, value] of rows) {
      expect(partitionField).toBe(`Partition:${partitionForKey(new TextEncoder().encode(key!), 3)}`);
      expect(offsetField).toMatch(/^Offset:\d+$/);
      expect(lines).toContain(`${key}:${value}`);
    }
    for (const partition of [0, 1, 2]) {
      const offsets = rows.filter((row) => row[0] === `Partition:${partition}`).map((row) => Number(row[1]!.slice('Offset:'.length)));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }

    // One partition from an offset, as JSON, a fixed number of records.
    const firstOfPartition = rows.filter((row) => row[0] === rows[0]![0]);
    const partition = rows[0]![0]!.slice('Partition:'.length);
    const json = await runCli(['consume', 'orders', '--partition', partition, '--offset', '1', '--max-messages', '2', '--json']);
    expect(json.code).toBe(0);
    const objects = json.stdout.trimEnd().split('\n').map((row) => JSON.parse(row) as Record<string, unknown>);
    expect(objects.map(({ topic, partition: p, offset, key, value, headers }) => ({ topic, partition: p, offset, key, value, headers }))).toEqual(
      firstOfPartition.slice(1, 3).map((row, i) => ({ topic: 'orders', partition: Number(partition), offset: i + 1, key: row[2], value: row[3], headers: {} })),
    );
    expect(typeof objects[0]!.timestamp).toBe('number');
  });

  it('a run of more than 1,000 records prints its summary; consume returns every line in order; a reader that leaves ends it quietly', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(5, '0')} ${'x'.repeat(1000)}`);
    const produced = await runCli(['produce', 'bulk', '--compression', 'lz4', '--acks', '1', '--linger-ms', '20'], lines.join('\n'));
    expect(produced.code).toBe(0);
    expect(produced.stderr).toMatch(/^Produced 3000 records \(3018000 bytes\) in \d+\.\d\d s, \d+ records\/s; 0 failed\n$/);

    const consumed = await runCli(['consume', 'bulk', '--from-beginning', '--max-messages', '3000']);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe(lines.join('\n') + '\n');
    expect(consumed.stderr).toBe('Processed a total of 3000 messages\n');

    // As with `| head -c 100`: the reader closes the pipe after the first bytes.
    const run = startCli(['consume', 'bulk', '--from-beginning']);
    run.child.stdout.once('data', () => run.child.stdout.destroy());
    const cut = await run.done;
    expect(cut.code).toBe(0);
    expect(cut.stderr).toMatch(/^Processed a total of \d+ messages\n$/);
  });

  it('without --from-beginning only records produced after the start are printed; Ctrl-C ends with the summary and exit code 0', async () => {
    const producer = new Producer({ bootstrap: cluster.bootstrap, lingerMs: 0 });
    await producer.send({ topic: 'live', key: 'old', value: 'before the consumer' });
    const run = startCli(['consume', 'live', '--print-key']);
    let sent = 0;
    await until(() => run.stdout().includes('\n'), 15_000, async () => {
      await producer.send({ topic: 'live', key: 'new', value: `after ${sent++}` });
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    await producer.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    run.child.kill('SIGINT');
    const { code, stdout, stderr } = await run.done;
    expect(code).toBe(0);
    const printed = stdout.trimEnd().split('\n');
    expect(printed.every((row) => /^new\tafter \d+$/.test(row))).toBe(true);
    expect(stderr).toBe(`Processed a total of ${printed.length} messages\n`);
  });

  it('mistakes get one line on stderr that says what to fix, exit code 1 and no stack trace', async () => {
    const cases: { args: string[]; stdin?: string; message: string }[] = [
      { args: ['produce', 'nope', '--partition', '1'], stdin: 'a\n', message: 'error: topic nope does not exist; create it with: raftbus topics create nope' },
      { args: ['consume', 'nope'], message: 'error: topic nope does not exist; create it with: raftbus topics create nope' },
      { args: ['consume', 'orders', '--partition', '3'], message: 'error: topic orders has no partition 3; its partitions are 0..2' },
      { args: ['consume', 'orders', '--offset', '2'], message: 'error: --offset needs --partition N (an offset belongs to one partition)' },
      { args: ['consume', 'bulk', '--partition', '0', '--offset', '5000'], message: 'error: offset 5000 is out of range: bulk-0 holds offsets 0 to 2999; use --offset from 0 to 3000 (3000: the next to come), earliest or latest' },
      { args: ['produce', 'orders', '--acks', '2'], message: "error: option '--acks <acks>' argument '2' is invalid. use all (or -1), 1 or 0" },
      { args: ['produce', 'live', '--key-separator', '=', '--partition', '1'], stdin: 'k=1\nk=2\nno separator\nk=4\n', message: 'error: line 3 has no key separator "=": "no separator"; write each line as KEY=VALUE' },
    ];
    const results = await Promise.all(cases.map((c) => runCli(c.args, c.stdin)));
    for (const [i, result] of results.entries()) {
      expect({ args: cases[i]!.args, code: result.code, stderr: result.stderr }).toEqual({ args: cases[i]!.args, code: 1, stderr: `${cases[i]!.message}\n` });
    }
    // The lines before the bad one were produced.
    const live = await runCli(['consume', 'live', '--partition', '1', '--offset', 'earliest', '--print-key', '--key-separator', '=', '--timeout-ms', '700']);
    expect(live.stdout).toMatch(/k=1\nk=2\n$/);
  });
});
