// End to end: `raftbus consume --group` and `raftbus groups …` (the built CLI, run as child
// processes as a user runs them) against a 3-node cluster started in this process by startCluster.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { GroupsAdmin, type GroupDescription } from '../../src/client/groups-admin.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';

const cliPath = join(import.meta.dirname, '../../dist/src/cli/main.js');
const partitions = 3;
const recordsPerPartition = 10;

let cluster: RunningCluster;
let groupsAdmin: GroupsAdmin;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  const admin = new Admin({ bootstrap: cluster.bootstrap });
  await admin.createTopic({ name: 'jobs', partitions, replicationFactor: 3 });
  admin.close();
  const producer = new Producer({ bootstrap: cluster.bootstrap });
  await Promise.all(Array.from({ length: partitions * recordsPerPartition }, (_, i) => producer.send({ topic: 'jobs', partition: i % partitions, value: `job-${i}` })));
  await producer.close();
  groupsAdmin = new GroupsAdmin({ bootstrap: cluster.bootstrap });
}, 60_000);

afterAll(async () => {
  groupsAdmin?.close();
  await cluster?.close();
});

interface CliRun {
  readonly child: ChildProcessWithoutNullStreams;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startCli(args: string[], timeoutMs = 20_000): CliRun {
  const child = spawn(process.execPath, [cliPath, ...args, '--bootstrap-server', cluster.bootstrap.join(',')], { stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end();
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
  return { child, done };
}

const runCli = (...args: string[]) => startCli(args).done;

/** consumed reads `--print-offset` lines as "partition:offset" for each printed record. */
function consumed(stdout: string): string[] {
  return stdout
    .trimEnd()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [partition, offset] = line.split('\t');
      return `${partition!.slice('Partition:'.length)}:${offset!.slice('Offset:'.length)}`;
    });
}

const everyRecord = Array.from({ length: partitions }, (_, partition) => Array.from({ length: recordsPerPartition }, (_, offset) => `${partition}:${offset}`)).flat();

async function describeJson(group: string): Promise<GroupDescription> {
  const run = await runCli('groups', 'describe', group, '--json');
  expect(run).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(run.stdout) as GroupDescription;
}

describe('raftbus consume --group and raftbus groups', () => {
  it('two runs of a group read disjoint ranges; describe then shows the committed offsets and lag 0', async () => {
    const first = await runCli('consume', 'jobs', '--group', 'billing', '--from-beginning', '--max-messages', '10', '--print-offset');
    expect(first).toMatchObject({ code: 0, stderr: 'Processed a total of 10 messages\n' });
    const second = await runCli('consume', 'jobs', '--group', 'billing', '--from-beginning', '--max-messages', '20', '--print-offset');
    expect(second).toMatchObject({ code: 0, stderr: 'Processed a total of 20 messages\n' });
    const read = [...consumed(first.stdout), ...consumed(second.stdout)];
    expect(read).toHaveLength(everyRecord.length);
    expect([...read].sort()).toEqual([...everyRecord].sort());

    const [described, listed, listedText] = await Promise.all([runCli('groups', 'describe', 'billing'), runCli('groups', 'list', '--json'), runCli('groups', 'list')]);
    expect(described).toMatchObject({ code: 0, stderr: '' });
    const lines = described.stdout.trimEnd().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'CLIENT-ID']);
    expect(lines.slice(1, 1 + partitions).map((line) => line.split(/\s+/))).toEqual([0, 1, 2].map((partition) => ['billing', 'jobs', String(partition), '10', '10', '0', '-', '-']));
    expect(lines.at(-1)).toMatch(/^Group billing is Empty, generation \d+, assignor [a-z-]+, coordinator node \d, no active members\.$/);

    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ group: 'billing', state: 'Empty', members: 0 }));
    expect(listedText.stdout).toMatch(/^GROUP\s+STATE\s+MEMBERS\s+COORDINATOR\n(.*\n)*billing\s+Empty\s+0\s+\d\n/);
  });

  it('reset-offsets is a dry run unless --execute; --to-earliest --execute lets the group read everything again', async () => {
    const [dryRun, shift] = await Promise.all([
      runCli('groups', 'reset-offsets', 'billing', '--topic', 'jobs', '--to-earliest'),
      runCli('groups', 'reset-offsets', 'billing', '--topic', 'jobs', '--partition', '1', '--shift-by', '-3', '--json'),
    ]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/^GROUP\s+TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET\nbilling\s+jobs\s+0\s+10\s+0\n/);
    expect(dryRun.stdout).toContain('Dry run: nothing was changed. Add --execute to set these offsets.');
    expect((await describeJson('billing')).partitions.map((p) => p.committedOffset)).toEqual([10, 10, 10]);

    expect(JSON.parse(shift.stdout)).toEqual({ group: 'billing', applied: false, offsets: [{ topic: 'jobs', partition: 1, currentOffset: 10, newOffset: 7, logStartOffset: 0, logEndOffset: 10 }] });

    const executed = await runCli('groups', 'reset-offsets', 'billing', '--topic', 'jobs', '--to-earliest', '--execute');
    expect(executed).toMatchObject({ code: 0, stderr: '' });
    expect(executed.stdout).toContain('Group billing now starts from the new offsets.');
    const reset = await describeJson('billing');
    expect(reset.partitions.map((p) => [p.committedOffset, p.logEndOffset, p.lag])).toEqual([[0, 10, 10], [0, 10, 10], [0, 10, 10]]);

    // Without --from-beginning: the committed offsets say where to start.
    const again = await runCli('consume', 'jobs', '--group', 'billing', '--max-messages', String(everyRecord.length), '--print-offset');
    expect(again).toMatchObject({ code: 0, stderr: `Processed a total of ${everyRecord.length} messages\n` });
    expect(consumed(again.stdout).sort()).toEqual([...everyRecord].sort());
  });

  it('reset and delete are refused while a member is active; delete then removes the group', async () => {
    const member = startCli(['consume', 'jobs', '--group', 'billing']);
    try {
      const deadline = Date.now() + 15_000;
      for (let described = await groupsAdmin.describeGroup('billing'); described.state !== 'Stable'; described = await groupsAdmin.describeGroup('billing')) {
        if (Date.now() > deadline) throw new Error(`the console consumer did not join: ${JSON.stringify(described)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const [reset, deleted, described] = await Promise.all([
        runCli('groups', 'reset-offsets', 'billing', '--topic', 'jobs', '--to-earliest', '--execute'),
        runCli('groups', 'delete', 'billing'),
        runCli('groups', 'describe', 'billing'),
      ]);
      const refusal = 'error: group billing has 1 active member; stop its consumers first\n';
      expect(reset).toMatchObject({ code: 1, stdout: '', stderr: refusal });
      expect(deleted).toMatchObject({ code: 1, stdout: '', stderr: refusal });
      expect(described.stdout).toMatch(/billing\s+jobs\s+0\s+10\s+10\s+0\s+raftbus-console-consumer-\S+\s+raftbus-console-consumer\n/);
      expect(described.stdout).toMatch(/Group billing is Stable, .*, 1 member:\nCONSUMER-ID\s+CLIENT-ID\s+INSTANCE-ID\s+ASSIGNMENT\nraftbus-console-consumer-\S+\s+raftbus-console-consumer\s+-\s+jobs\(0,1,2\)\n$/);
    } catch (error) {
      member.child.kill('SIGKILL'); // no consumer outlives a failed test
      throw error;
    }
    member.child.kill('SIGINT');
    expect(await member.done).toMatchObject({ code: 0, stderr: 'Processed a total of 0 messages\n' });
    expect(await runCli('groups', 'delete', 'billing')).toMatchObject({ code: 0, stdout: 'Deleted group billing.\n', stderr: '' });
    expect(await runCli('groups', 'describe', 'billing')).toMatchObject({ code: 1, stdout: '', stderr: 'error: group billing does not exist; list the groups with: raftbus groups list\n' });
    expect(JSON.parse((await runCli('groups', 'list', '--json')).stdout)).not.toContainEqual(expect.objectContaining({ group: 'billing' }));
  });

  it('mistakes get one line on stderr that says what to fix, and exit code 1', async () => {
    const cases: { args: string[]; message: string }[] = [
      { args: ['groups', 'reset-offsets', 'billing', '--topic', 'jobs'], message: 'error: give one of --to-earliest, --to-latest, --to-offset N, --shift-by N or --to-datetime TIME' },
      { args: ['groups', 'reset-offsets', 'nobody', '--topic', 'jobs', '--to-latest'], message: 'error: group nobody does not exist; list the groups with: raftbus groups list' },
      { args: ['consume', 'jobs', '--group', 'billing', '--partition', '0'], message: 'error: --group reads the partitions the group assigns, from its committed offsets: drop --partition and --offset (to move them: raftbus groups reset-offsets billing --topic jobs)' },
      { args: ['groups', 'delete', 'nobody'], message: 'error: group nobody does not exist; list the groups with: raftbus groups list' },
    ];
    const results = await Promise.all(cases.map((c) => runCli(...c.args)));
    for (const [i, result] of results.entries()) {
      expect({ args: cases[i]!.args, code: result.code, stderr: result.stderr }).toEqual({ args: cases[i]!.args, code: 1, stderr: `${cases[i]!.message}\n` });
    }
  });
});
