import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterFileError,
  jsonSyntaxErrorOffset,
  loadClusterFile,
  parseClusterFile,
  validateCluster,
} from './cluster-file.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const filePath = '/etc/raftbus/cluster.json';

type RawNode = Record<string, unknown>;
type RawFile = { clusterId?: unknown; nodes: RawNode[] } & Record<string, unknown>;

function goodFile(): RawFile {
  const node = (id: number): RawNode => ({
    id,
    host: '127.0.0.1',
    peerPort: 9100 + id,
    clientPort: 9090 + id,
    roles: ['controller', 'broker'],
    dataDir: `.data/node-${id}`,
  });
  return { clusterId: 'test-cluster', nodes: [node(1), node(2), node(3)] };
}

function nodeAt(file: RawFile, index: number): RawNode {
  const node = file.nodes[index];
  if (node === undefined) throw new Error(`no node ${index}`);
  return node;
}

/** parseError parses file and returns the ClusterFileError it must throw. */
function parseError(file: unknown, options: { allowEphemeralPorts?: boolean } = {}): ClusterFileError {
  try {
    parseClusterFile(JSON.stringify(file), { filePath, ...options });
  } catch (error) {
    if (error instanceof ClusterFileError) return error;
    throw error;
  }
  throw new Error('expected a ClusterFileError');
}

/** expectProblemAt asserts that the error lists a problem at exactly fieldPath and names it in its message. */
function expectProblemAt(error: ClusterFileError, fieldPath: string, messagePart?: string): void {
  const issue = error.problems.find((problem) => problem.path === fieldPath);
  expect(issue, `problems: ${JSON.stringify(error.problems)}`).toBeDefined();
  if (messagePart !== undefined) expect(issue?.message).toContain(messagePart);
  expect(error.message).toContain(`${fieldPath}: `);
  expect(error.message).toContain(filePath);
  expect(error.kind).toBe('invalid');
  expect(error.name).toBe('ClusterFileError');
}

function withNode(index: number, change: (node: RawNode) => void): RawFile {
  const file = goodFile();
  change(nodeAt(file, index));
  return file;
}

describe('cluster file: the good case', () => {
  it('accepts cluster.example.json and resolves its dataDirs next to it', async () => {
    const loaded = await loadClusterFile(path.join(repoRoot, 'cluster.example.json'));
    expect(loaded.warnings).toEqual([]);
    expect(loaded.cluster.clusterId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(loaded.cluster.nodes.map((node) => [node.id, node.peerPort, node.clientPort])).toEqual([
      [1, 9101, 9091],
      [2, 9102, 9092],
      [3, 9103, 9093],
    ]);
    expect(loaded.cluster.nodes.map((node) => node.dataDir)).toEqual([1, 2, 3].map((id) => path.join(repoRoot, '.data', `node-${id}`)));
    for (const node of loaded.cluster.nodes) expect(node.roles).toEqual(['controller', 'broker']);
  });

  it('resolves a relative dataDir against the file directory and keeps an absolute one', () => {
    const file = goodFile();
    nodeAt(file, 0)['dataDir'] = '../var/n1';
    nodeAt(file, 1)['dataDir'] = '/srv/raftbus/n2';
    nodeAt(file, 2)['rack'] = 'rack-a';
    const { cluster } = parseClusterFile(JSON.stringify(file), { filePath: '/etc/raftbus/cluster.json' });
    expect(cluster.nodes.map((node) => node.dataDir)).toEqual(['/etc/var/n1', '/srv/raftbus/n2', '/etc/raftbus/.data/node-3']);
    expect(cluster.nodes.map((node) => node.rack)).toEqual([undefined, undefined, 'rack-a']);
  });

  it('allows port 0 only when the caller allows ephemeral ports, and then more than once', () => {
    const file = goodFile();
    for (const node of file.nodes) {
      node['peerPort'] = 0;
      node['clientPort'] = 0;
    }
    expect(() => parseClusterFile(JSON.stringify(file), { filePath, allowEphemeralPorts: true })).not.toThrow();
    const error = parseError(file);
    expectProblemAt(error, 'nodes[0].peerPort', 'ephemeral');
    expectProblemAt(error, 'nodes[2].clientPort', 'from 1 to 65535');
    expect(error.problems).toHaveLength(6);
  });

  it('accepts an IPv6 address and a hostname', () => {
    const file = withNode(0, (node) => (node['host'] = '::1'));
    nodeAt(file, 1)['host'] = 'broker-2.internal';
    expect(validateCluster(file, { baseDir: '/' }).kind).toBe('valid');
  });
});

describe('cluster file: each rule names its field', () => {
  it('requires the file to be an object', () => {
    expectProblemAt(parseError([1, 2]), '$', 'must be an object');
  });

  it.each([
    ['missing', undefined, 'is required'],
    ['empty', '', 'letters, digits'],
    ['too long', 'a'.repeat(65), '1 to 64'],
    ['bad characters', 'my cluster!', "'-' or '_'"],
    ['not a string', 42, 'got 42'],
  ])('rejects a clusterId that is %s', (_case, clusterId, messagePart) => {
    const file = goodFile();
    if (clusterId === undefined) delete file.clusterId;
    else file.clusterId = clusterId;
    expectProblemAt(parseError(file), 'clusterId', messagePart);
  });

  it('accepts a clusterId of exactly 64 allowed characters', () => {
    const file = goodFile();
    file.clusterId = 'A-_9'.repeat(16);
    expect(validateCluster(file, { baseDir: '/' }).kind).toBe('valid');
  });

  it.each([
    ['missing', undefined],
    ['empty', []],
    ['not an array', { id: 1 }],
  ])('rejects nodes that is %s', (_case, nodes) => {
    const file: Record<string, unknown> = { clusterId: 'c' };
    if (nodes !== undefined) file['nodes'] = nodes;
    expectProblemAt(parseError(file), 'nodes', 'non-empty array');
  });

  it('rejects a node that is not an object', () => {
    const file = goodFile() as Record<string, unknown> & RawFile;
    (file.nodes as unknown[])[1] = 'node-2';
    expectProblemAt(parseError(file), 'nodes[1]', 'must be a node object');
  });

  it.each([
    ['zero', 0],
    ['negative', -3],
    ['fractional', 1.5],
    ['a string', '1'],
    ['too large', 2 ** 31],
  ])('rejects an id that is %s', (_case, id) => {
    expectProblemAt(parseError(withNode(1, (node) => (node['id'] = id))), 'nodes[1].id', 'positive integer');
  });

  it('rejects a missing id', () => {
    expectProblemAt(parseError(withNode(2, (node) => delete node['id'])), 'nodes[2].id', 'is required');
  });

  it('rejects a duplicate id at the later node, naming the earlier one', () => {
    expectProblemAt(parseError(withNode(2, (node) => (node['id'] = 1))), 'nodes[2].id', 'nodes[0]');
  });

  it.each([
    ['empty', ''],
    ['with a space', 'my host'],
    ['with a port', '127.0.0.1:9101'],
    ['not a string', 127],
  ])('rejects a host that is %s', (_case, host) => {
    expectProblemAt(parseError(withNode(0, (node) => (node['host'] = host))), 'nodes[0].host', 'hostname or an IP address');
  });

  it.each([
    ['peerPort', 70000],
    ['peerPort', -1],
    ['clientPort', 9091.5],
    ['clientPort', '9091'],
    ['peerPort', 65536],
  ])('rejects %s %j', (field, port) => {
    const error = parseError(withNode(1, (node) => (node[field] = port)));
    expectProblemAt(error, `nodes[1].${field}`, 'an integer from 1 to 65535');
  });

  it('rejects port 0 by default and says when it is allowed', () => {
    expectProblemAt(parseError(withNode(1, (node) => (node['clientPort'] = 0))), 'nodes[1].clientPort', 'in-process test clusters');
  });

  it('rejects a host:port pair used twice across nodes and port kinds', () => {
    const error = parseError(withNode(1, (node) => (node['clientPort'] = 9101)));
    expectProblemAt(error, 'nodes[1].clientPort', '127.0.0.1:9101 is already used by nodes[0].peerPort');
  });

  it('rejects a node whose peer and client ports are the same', () => {
    const error = parseError(withNode(0, (node) => (node['clientPort'] = 9101)));
    expectProblemAt(error, 'nodes[0].clientPort', 'nodes[0].peerPort');
  });

  it('accepts the same port on different hosts', () => {
    const file = withNode(1, (node) => {
      node['host'] = '127.0.0.2';
      node['peerPort'] = 9101;
    });
    expect(validateCluster(file, { baseDir: '/' }).kind).toBe('valid');
  });

  it.each([
    ['missing', undefined, 'nodes[0].roles', 'is required'],
    ['empty', [], 'nodes[0].roles', 'non-empty array'],
    ['a string', 'broker', 'nodes[0].roles', 'non-empty array'],
    ['unknown', ['broker', 'leader'], 'nodes[0].roles[1]', '"controller", "broker"'],
    ['repeated', ['broker', 'controller', 'broker'], 'nodes[0].roles[2]', 'listed twice'],
  ])('rejects roles that are %s', (_case, roles, fieldPath, messagePart) => {
    const file = withNode(0, (node) => (roles === undefined ? delete node['roles'] : (node['roles'] = roles)));
    expectProblemAt(parseError(file), fieldPath, messagePart);
  });

  it('requires at least one controller', () => {
    const file = goodFile();
    for (const node of file.nodes) node['roles'] = ['broker'];
    expectProblemAt(parseError(file), 'nodes', 'at least one controller');
  });

  it('warns, without failing, about an even number of controllers', () => {
    const file = withNode(2, (node) => (node['roles'] = ['broker']));
    const loaded = parseClusterFile(JSON.stringify(file), { filePath });
    expect(loaded.warnings).toHaveLength(1);
    expect(loaded.warnings[0]?.path).toBe('nodes');
    expect(loaded.warnings[0]?.message).toContain('odd number of controllers');
  });

  it('warns when no node is a broker', () => {
    const file = goodFile();
    for (const node of file.nodes) node['roles'] = ['controller'];
    const loaded = parseClusterFile(JSON.stringify(file), { filePath });
    expect(loaded.warnings.map((warning) => warning.message).join()).toContain('no broker');
  });

  it.each([
    ['missing', undefined, 'is required'],
    ['empty', '', 'non-empty path'],
    ['not a string', 5, 'got 5'],
  ])('rejects a dataDir that is %s', (_case, dataDir, messagePart) => {
    const file = withNode(1, (node) => (dataDir === undefined ? delete node['dataDir'] : (node['dataDir'] = dataDir)));
    expectProblemAt(parseError(file), 'nodes[1].dataDir', messagePart);
  });

  it('rejects two dataDirs that resolve to the same directory', () => {
    const error = parseError(withNode(2, (node) => (node['dataDir'] = './.data/../.data/node-1/')));
    expectProblemAt(error, 'nodes[2].dataDir', 'same directory as nodes[0].dataDir');
    expect(error.message).toContain('/etc/raftbus/.data/node-1');
  });

  it('rejects a dataDir nested inside another node', () => {
    const error = parseError(withNode(1, (node) => (node['dataDir'] = '.data/node-1/inner')));
    expectProblemAt(error, 'nodes[1].dataDir', 'nested with nodes[0].dataDir');
  });

  it('rejects a rack that is empty or not a string', () => {
    expectProblemAt(parseError(withNode(0, (node) => (node['rack'] = ''))), 'nodes[0].rack', 'non-empty string');
    expectProblemAt(parseError(withNode(0, (node) => (node['rack'] = 3))), 'nodes[0].rack', 'got 3');
  });

  it('rejects unknown fields by name, at the top and in a node', () => {
    const file = goodFile();
    file['clusterName'] = 'x';
    nodeAt(file, 1)['port'] = 9000;
    const error = parseError(file);
    expectProblemAt(error, 'clusterName', 'unknown field "clusterName"');
    expectProblemAt(error, 'nodes[1].port', 'unknown field "port"; allowed fields are id, host');
  });

  it('reports every problem at once', () => {
    const file = goodFile();
    file.clusterId = '';
    nodeAt(file, 0)['peerPort'] = 0;
    nodeAt(file, 1)['id'] = 1;
    nodeAt(file, 2)['roles'] = ['router'];
    nodeAt(file, 2)['extra'] = true;
    const error = parseError(file);
    expect(error.problems.map((problem) => problem.path)).toEqual([
      'clusterId',
      'nodes[0].peerPort',
      'nodes[2].extra',
      'nodes[2].roles[0]',
      'nodes[1].id',
    ]);
    expect(error.message.split('\n')[0]).toBe(`Cluster file ${filePath} is invalid (5 problems):`);
  });

  it('cuts long bad values short in messages', () => {
    const error = parseError(withNode(0, (node) => (node['host'] = `bad host ${'x'.repeat(200)}`)));
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).toContain('…');
  });
});

describe('cluster file: reading the file', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'raftbus-cluster-file-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('says when the file does not exist', async () => {
    const missing = path.join(dir, 'nope.json');
    const error = await loadClusterFile(missing).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClusterFileError);
    expect(error).toMatchObject({ kind: 'notFound', filePath: missing });
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain('not found');
  });

  it('says when the path cannot be read as a file', async () => {
    const error = await loadClusterFile(dir).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'ClusterFileError', kind: 'unreadable' });
  });

  it('gives the line and column of a JSON syntax error', async () => {
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{\n  "clusterId": "c",\n  "nodes": [}\n');
    const error = await loadClusterFile(broken).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClusterFileError);
    const clusterFileError = error as ClusterFileError;
    expect(clusterFileError.kind).toBe('notJson');
    expect(clusterFileError.jsonPosition).toEqual({ offset: 34, line: 3, column: 13 });
    expect(clusterFileError.message).toContain(broken);
    expect(clusterFileError.message).toContain('line 3, column 13');
  });

  it('loads a file with relative dataDirs resolved against its own directory', async () => {
    const good = path.join(dir, 'sub', 'cluster.json');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(good)));
    await writeFile(good, JSON.stringify(goodFile()));
    const loaded = await loadClusterFile(path.relative(process.cwd(), good));
    expect(loaded.filePath).toBe(good);
    expect(loaded.cluster.nodes[0]?.dataDir).toBe(path.join(dir, 'sub', '.data', 'node-1'));
  });
});

describe('jsonSyntaxErrorOffset', () => {
  it.each([
    ['{"a": 1}', undefined],
    ['  [1, -2.5e+3, "x\\u00e9\\n", true, false, null, {}, []] ', undefined],
    ['', 0],
    ['{"a": 1', 7],
    ['{"a" 1}', 5],
    ['{"a": 1,}', 8],
    ['[1, 2,]', 6],
    ['[01]', 2],
    ['[1.]', 3],
    ['[tru]', 4],
    ['{"a": "x\ny"}', 8],
    ['{"a": "\\q"}', 8],
    ['{} {}', 3],
    ["{'a': 1}", 1],
  ])('finds the error in %j at %j', (text, offset) => {
    expect(jsonSyntaxErrorOffset(text)).toBe(offset);
    if (offset === undefined) expect(() => JSON.parse(text)).not.toThrow();
    else expect(() => JSON.parse(text)).toThrow();
  });
});
