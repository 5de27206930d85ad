// Bad input to a node process gets a clear error and touches no data.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster, cliPath } from './process-cluster.js';

/** runCli runs the CLI to completion and returns its exit code and output. */
function runCli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`raftbus ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raftbus-bad-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('bad input to a node', () => {
  it('a malformed cluster file is refused with the field and what is wrong, exit code 2', async () => {
    const dir = tempDir();
    const file = join(dir, 'cluster.json');
    writeFileSync(file, JSON.stringify({ clusterId: 'c', nodes: [{ id: 1, host: '127.0.0.1', peerPort: 70000, clientPort: 9999, roles: ['controller'], dataDir: 'n1' }] }));
    const result = await runCli(['node', '--cluster', file, '--id', '1']);
    expect(result.code).toBe(2);
    expect(result.output).toContain('nodes[0].peerPort');
    expect(readdirSync(dir)).toEqual(['cluster.json']);
  });

  it('a node option out of its range is refused with the range, before anything is created', async () => {
    const dir = tempDir();
    const cases: [string, string, string][] = [
      ['--offsets-retention-minutes', '0', 'expected an integer from 1 to 2147483647'],
      ['--offsets-compact-bytes', '100', 'expected an integer from 1024 to 1073741824'],
      ['--offsets-compact-bytes', '1e3', 'expected an integer from 1024 to 1073741824'],
    ];
    for (const [option, value, message] of cases) {
      const result = await runCli(['node', '--cluster', join(dir, 'cluster.json'), '--id', '1', option, value]);
      expect(result.code, `${option} ${value}`).toBe(1);
      expect(result.output).toContain(`option '${option} <n>' argument '${value}' is invalid. ${message}`);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a cluster file that is not JSON is refused with the position of the error', async () => {
    const dir = tempDir();
    const file = join(dir, 'cluster.json');
    writeFileSync(file, '{ "clusterId": "c",\n  "nodes": [ }');
    const result = await runCli(['node', '--cluster', file, '--id', '1']);
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/line 2/);
  });

  it('a client port in use is refused with the port and the fix, exit code 1', async () => {
    const cluster = await ProcessCluster.create({ nodes: 1 });
    cleanups.push(() => cluster.close());
    const [, port] = cluster.nodes.get(1)!.clientAddress.split(':');
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(port), '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const result = await runCli(['node', '--cluster', cluster.clusterFile, '--id', '1']);
    expect(result.code).toBe(1);
    expect(result.output).toContain(`client port 127.0.0.1:${port}`);
    expect(result.output).toContain('change clientPort of node 1');
  });

  it('a data directory of another cluster is refused and left untouched', async () => {
    const cluster = await ProcessCluster.create({ nodes: 1 });
    cleanups.push(() => cluster.close());
    cluster.start(1);
    await cluster.waitForLeader();
    await cluster.appendNoOps(3, 'mine');
    await cluster.kill(1);
    const dataDir = cluster.nodes.get(1)!.dataDir;
    const before = readFileSync(join(dataDir, 'meta.json'), 'utf8');
    const listing = readdirSync(dataDir).sort();
    const other = JSON.parse(readFileSync(cluster.clusterFile, 'utf8')) as { clusterId: string };
    other.clusterId = 'another-cluster';
    const otherFile = join(cluster.dir, 'other.json');
    writeFileSync(otherFile, JSON.stringify(other));
    const result = await runCli(['node', '--cluster', otherFile, '--id', '1']);
    expect(result.code).toBe(1);
    expect(result.output).toContain('another-cluster');
    expect(result.output).toContain('test-cluster');
    expect(readFileSync(join(dataDir, 'meta.json'), 'utf8')).toBe(before);
    expect(readdirSync(dataDir).sort()).toEqual(listing);
  });

  it('a peer speaking garbage on the peer port is turned away while the quorum keeps committing', async () => {
    const cluster = await ProcessCluster.create({ nodes: 3 });
    cleanups.push(() => cluster.close());
    cluster.startAll();
    await cluster.waitForLeader();
    for (const node of cluster.nodes.values()) {
      await new Promise<void>((resolve) => {
        const socket = connect(node.peerPort, '127.0.0.1', () => {
          socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04garbage garbage garbage'));
          socket.write(Buffer.alloc(4096, 0xab));
        });
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 500);
      });
    }
    const written = await cluster.appendNoOps(10, 'after-garbage');
    expect(written.size).toBe(10);
    for (const id of cluster.nodes.keys()) expect(cluster.nodes.get(id)!.process).toBeDefined();
  });
});
