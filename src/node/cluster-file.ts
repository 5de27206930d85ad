// The cluster file: one JSON file that every node reads, naming the cluster and, for each node, its id,
// address, roles and data directory. Loading it either yields a validated ClusterConfig or throws a
// ClusterFileError that lists every problem at once, each under the path of the field it concerns.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';

export const nodeRoles = ['controller', 'broker'] as const;
export type NodeRole = (typeof nodeRoles)[number];

/** Bounds on what a cluster file may hold. */
export const clusterFileBytesMax = 1024 * 1024;
export const clusterIdCharsMax = 64;
export const nodesCountMax = 1024;
/** nodeIdMax keeps ids within a signed 32-bit integer, as Kafka's node.id is. */
export const nodeIdMax = 2_147_483_647;
export const hostCharsMax = 253;
export const rackCharsMax = 255;
export const dataDirCharsMax = 4096;
export const portMin = 1;
export const portMax = 65_535;
/** ephemeralPort asks the operating system for a free port; allowed only when the caller says so. */
export const ephemeralPort = 0;
/** shownValueCharsMax bounds how much of a bad value an error message repeats. */
export const shownValueCharsMax = 40;

const byteOrderMark = '\uFEFF';
const clusterIdPattern = /^[A-Za-z0-9_-]+$/;
const hostnameLabelPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const clusterFields = ['clusterId', 'nodes'] as const;
const nodeFields = ['id', 'host', 'peerPort', 'clientPort', 'roles', 'dataDir', 'rack'] as const;
const portFields = ['peerPort', 'clientPort'] as const;

/** ClusterNode is one node of a validated cluster file. dataDir is always absolute. */
export interface ClusterNode {
  readonly id: number;
  readonly host: string;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly roles: readonly NodeRole[];
  readonly dataDir: string;
  readonly rack: string | undefined;
}

/** ClusterConfig is a validated cluster file. Invariant: node ids, host:port pairs and dataDirs are unique. */
export interface ClusterConfig {
  readonly clusterId: string;
  readonly nodes: readonly ClusterNode[];
}

/**
 * ClusterFileIssue is one problem (or warning) found in a cluster file. path names the field the way a
 * person would write it (`nodes[1].peerPort`; `$` is the whole file); message says what is wrong and
 * what is allowed.
 */
export interface ClusterFileIssue {
  readonly path: string;
  readonly message: string;
}

export interface ValidateOptions {
  /** baseDir is what a relative dataDir is resolved against: the cluster file's directory. */
  readonly baseDir: string;
  /** allowEphemeralPorts lets a port be 0 (in-process test clusters); default false. */
  readonly allowEphemeralPorts?: boolean;
}

export type ValidationResult =
  | { readonly kind: 'valid'; readonly cluster: ClusterConfig; readonly warnings: readonly ClusterFileIssue[] }
  | {
      readonly kind: 'invalid';
      readonly problems: readonly ClusterFileIssue[];
      readonly warnings: readonly ClusterFileIssue[];
    };

/** LoadedClusterFile is a validated cluster file, where it came from, and what deserves a warning. */
export interface LoadedClusterFile {
  readonly filePath: string;
  readonly cluster: ClusterConfig;
  readonly warnings: readonly ClusterFileIssue[];
}

export const clusterFileErrorKinds = ['notFound', 'unreadable', 'tooLarge', 'notJson', 'invalid'] as const;
export type ClusterFileErrorKind = (typeof clusterFileErrorKinds)[number];

/** JsonPosition locates a JSON syntax error: offset counts UTF-16 units from 0, line and column from 1. */
export interface JsonPosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/**
 * ClusterFileError says why a cluster file cannot be used. problems is never empty; for a file that
 * is missing, unreadable or not JSON it holds one issue at path `$`. The message names the file and
 * lists every problem, one per line.
 */
export class ClusterFileError extends Error {
  override readonly name = 'ClusterFileError';
  readonly kind: ClusterFileErrorKind;
  readonly filePath: string;
  readonly problems: readonly ClusterFileIssue[];
  /** jsonPosition is set when kind is 'notJson' and the position of the error is known. */
  readonly jsonPosition: JsonPosition | undefined;

  constructor(options: {
    kind: ClusterFileErrorKind;
    filePath: string;
    problems: readonly ClusterFileIssue[];
    jsonPosition?: JsonPosition;
    cause?: unknown;
  }) {
    super(formatErrorMessage(options.kind, options.filePath, options.problems), { cause: options.cause });
    this.kind = options.kind;
    this.filePath = options.filePath;
    this.problems = options.problems;
    this.jsonPosition = options.jsonPosition;
  }
}

function formatErrorMessage(kind: ClusterFileErrorKind, filePath: string, problems: readonly ClusterFileIssue[]): string {
  const lines = problems.map((issue) => `  - ${formatIssue(issue)}`);
  if (kind !== 'invalid') return `Cluster file ${filePath}: ${problems[0]?.message ?? kind}`;
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return [`Cluster file ${filePath} is invalid (${count}):`, ...lines].join('\n');
}

/** formatIssue renders an issue as `path: message`. */
export function formatIssue(issue: ClusterFileIssue): string {
  return `${issue.path}: ${issue.message}`;
}

/**
 * loadClusterFile reads, parses and validates the cluster file at filePath (made absolute against the
 * working directory). Relative dataDirs are resolved against the file's directory.
 * Throws ClusterFileError: notFound, unreadable, tooLarge, notJson or invalid.
 */
export async function loadClusterFile(
  filePath: string,
  options: { allowEphemeralPorts?: boolean } = {},
): Promise<LoadedClusterFile> {
  const absolutePath = path.resolve(filePath);
  const text = await readClusterFileText(absolutePath);
  return parseClusterFile(text, { filePath: absolutePath, allowEphemeralPorts: options.allowEphemeralPorts });
}

async function readClusterFileText(filePath: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(filePath);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const message = 'file not found; pass the path of an existing cluster file (see cluster.example.json)';
      throw fileError('notFound', filePath, message, cause);
    }
    throw fileError('unreadable', filePath, `cannot read the file (${code ?? String(cause)})`, cause);
  }
  if (bytes.length > clusterFileBytesMax) {
    const message = `file is ${bytes.length} bytes; a cluster file may hold at most ${clusterFileBytesMax} bytes`;
    throw fileError('tooLarge', filePath, message, undefined);
  }
  return bytes.toString('utf8');
}

function fileError(kind: ClusterFileErrorKind, filePath: string, message: string, cause: unknown): ClusterFileError {
  return new ClusterFileError({ kind, filePath, problems: [{ path: '$', message }], cause });
}

/**
 * parseClusterFile parses and validates the text of a cluster file. filePath must be absolute: its
 * directory is what relative dataDirs resolve against, and it names the file in errors.
 * Throws ClusterFileError (notJson or invalid).
 */
export function parseClusterFile(
  text: string,
  options: { filePath: string; allowEphemeralPorts?: boolean | undefined },
): LoadedClusterFile {
  const { filePath } = options;
  const raw = parseJson(text.startsWith(byteOrderMark) ? text.slice(1) : text, filePath);
  const result = validateCluster(raw, {
    baseDir: path.dirname(filePath),
    allowEphemeralPorts: options.allowEphemeralPorts ?? false,
  });
  if (result.kind === 'invalid') throw new ClusterFileError({ kind: 'invalid', filePath, problems: result.problems });
  return { filePath, cluster: result.cluster, warnings: result.warnings };
}

function parseJson(text: string, filePath: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const offset = jsonSyntaxErrorOffset(text) ?? offsetFromParseMessage(cause);
    const reason = (cause instanceof Error ? cause.message : String(cause)).replace(/\s+/g, ' ');
    if (offset === undefined) throw fileError('notJson', filePath, `not valid JSON: ${reason}`, cause);
    const position = jsonPositionAt(text, offset);
    const where = `line ${position.line}, column ${position.column} (offset ${position.offset})`;
    const problems = [{ path: '$', message: `not valid JSON at ${where}: ${reason}` }];
    throw new ClusterFileError({ kind: 'notJson', filePath, problems, jsonPosition: position, cause });
  }
}

function offsetFromParseMessage(cause: unknown): number | undefined {
  const match = cause instanceof Error ? /at position (\d+)/.exec(cause.message) : null;
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** jsonPositionAt converts an offset into text to a 1-based line and column. */
export function jsonPositionAt(text: string, offset: number): JsonPosition {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------------------------
// Locating a JSON syntax error. Node 20's JSON.parse does not always say where it failed, so a small
// scanner walks the text by the grammar of RFC 8259 and returns the offset of the first character
// that cannot continue a valid document (text.length when the document ends too soon).

type Expecting = 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'colon' | 'separatorOrClose';

/** jsonSyntaxErrorOffset returns the offset of the first syntax error in text, or undefined if it is valid JSON. */
export function jsonSyntaxErrorOffset(text: string): number | undefined {
  const containers: ('{' | '[')[] = [];
  let expecting: Expecting = 'value';
  let i = skipWhitespace(text, 0);
  while (i < text.length) {
    const step = scanStep(text, i, expecting, containers);
    if (step.kind === 'error') return step.offset;
    expecting = step.expecting;
    i = skipWhitespace(text, step.offset);
    if (containers.length === 0 && expecting === 'separatorOrClose' && i < text.length) return i;
  }
  return containers.length === 0 && expecting === 'separatorOrClose' ? undefined : text.length;
}

type Step = { kind: 'ok'; offset: number; expecting: Expecting } | { kind: 'error'; offset: number };

function scanStep(text: string, i: number, expecting: Expecting, containers: ('{' | '[')[]): Step {
  const c = text[i];
  const top = containers[containers.length - 1];
  const closer = top === '{' ? '}' : ']';
  const canClose = expecting === 'keyOrClose' || expecting === 'valueOrClose' || expecting === 'separatorOrClose';
  if (canClose && top !== undefined && c === closer) {
    containers.pop();
    return { kind: 'ok', offset: i + 1, expecting: 'separatorOrClose' };
  }
  if (expecting === 'separatorOrClose') {
    if (c !== ',' || top === undefined) return { kind: 'error', offset: i };
    return { kind: 'ok', offset: i + 1, expecting: top === '{' ? 'key' : 'value' };
  }
  if (expecting === 'colon') {
    return c === ':' ? { kind: 'ok', offset: i + 1, expecting: 'value' } : { kind: 'error', offset: i };
  }
  if (expecting === 'key' || expecting === 'keyOrClose') {
    if (c !== '"') return { kind: 'error', offset: i };
    return after(scanString(text, i), 'colon');
  }
  return scanValueStart(text, i, containers);
}

function scanValueStart(text: string, i: number, containers: ('{' | '[')[]): Step {
  const c = text[i] ?? '';
  if (c === '{' || c === '[') {
    containers.push(c);
    return { kind: 'ok', offset: i + 1, expecting: c === '{' ? 'keyOrClose' : 'valueOrClose' };
  }
  if (c === '"') return after(scanString(text, i), 'separatorOrClose');
  if (c === '-' || (c >= '0' && c <= '9')) return after(scanNumber(text, i), 'separatorOrClose');
  for (const literal of ['true', 'false', 'null']) {
    if (c === literal[0]) return after(scanLiteral(text, i, literal), 'separatorOrClose');
  }
  return { kind: 'error', offset: i };
}

/** A scan returns the offset just past the token, or the offset of the bad character negated minus one. */
function after(scanned: number, expecting: Expecting): Step {
  return scanned >= 0 ? { kind: 'ok', offset: scanned, expecting } : { kind: 'error', offset: -scanned - 1 };
}

function scanString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return -i - 1;
    if (code !== 0x5c) {
      i++;
      continue;
    }
    const escape = text[i + 1];
    if (escape === undefined) return -(i + 1) - 1;
    if (escape === 'u') {
      for (let k = 2; k < 6; k++) if (!/[0-9A-Fa-f]/.test(text[i + k] ?? '')) return -(i + k) - 1;
      i += 6;
    } else if ('"\\/bfnrt'.includes(escape)) {
      i += 2;
    } else {
      return -(i + 1) - 1;
    }
  }
  return -text.length - 1;
}

function scanNumber(text: string, start: number): number {
  let i = start;
  if (text[i] === '-') i++;
  if (text[i] === '0') i++;
  else if (isDigit(text[i])) i = skipDigits(text, i);
  else return -i - 1;
  if (text[i] === '.') {
    if (!isDigit(text[i + 1])) return -(i + 1) - 1;
    i = skipDigits(text, i + 1);
  }
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    if (!isDigit(text[i])) return -i - 1;
    i = skipDigits(text, i);
  }
  return i;
}

function scanLiteral(text: string, start: number, literal: string): number {
  for (let k = 0; k < literal.length; k++) if (text[start + k] !== literal[k]) return -(start + k) - 1;
  return start + literal.length;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function skipDigits(text: string, start: number): number {
  let i = start;
  while (isDigit(text[i])) i++;
  return i;
}

function skipWhitespace(text: string, start: number): number {
  let i = start;
  while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  return i;
}

// ---------------------------------------------------------------------------------------------
// Validation. Every check runs; each adds its problems to a shared list rather than stopping.

interface Findings {
  readonly problems: ClusterFileIssue[];
  readonly warnings: ClusterFileIssue[];
}

type JsonObject = Record<string, unknown>;

/**
 * validateCluster checks a parsed cluster file against every rule and returns either the
 * ClusterConfig (with warnings) or all the problems found. It never throws on bad input.
 */
export function validateCluster(raw: unknown, options: ValidateOptions): ValidationResult {
  const findings: Findings = { problems: [], warnings: [] };
  if (!isObject(raw)) {
    findings.problems.push({ path: '$', message: `must be an object with clusterId and nodes, got ${describe(raw)}` });
    return { kind: 'invalid', ...findings };
  }
  rejectUnknownFields(raw, clusterFields, '', findings);
  const clusterId = checkClusterId(raw['clusterId'], findings);
  const nodes = checkNodes(raw['nodes'], options, findings);
  if (findings.problems.length > 0 || clusterId === undefined || nodes === undefined) {
    return { kind: 'invalid', ...findings };
  }
  return { kind: 'valid', cluster: { clusterId, nodes }, warnings: findings.warnings };
}

function checkClusterId(value: unknown, findings: Findings): string | undefined {
  const allowed = `a string of 1 to ${clusterIdCharsMax} letters, digits, '-' or '_'`;
  const ok = typeof value === 'string' && value.length <= clusterIdCharsMax && clusterIdPattern.test(value);
  if (ok) return value;
  rejectValue(findings, 'clusterId', value, allowed);
  return undefined;
}

function checkNodes(value: unknown, options: ValidateOptions, findings: Findings): ClusterNode[] | undefined {
  const allowed = `a non-empty array of at most ${nodesCountMax} node objects`;
  if (!Array.isArray(value) || value.length === 0 || value.length > nodesCountMax) {
    const got = Array.isArray(value) ? `an array of ${value.length}` : describe(value);
    const message = value === undefined ? `is required: ${allowed}` : `must be ${allowed}, got ${got}`;
    findings.problems.push({ path: 'nodes', message });
    return undefined;
  }
  const nodes = value.map((node, index) => checkNode(node, `nodes[${index}]`, options, findings));
  checkUniqueIds(value, findings);
  checkUniqueAddresses(value, findings);
  checkDataDirs(value, options.baseDir, findings);
  checkControllers(value, findings);
  checkBrokers(value, findings);
  return nodes.every((node) => node !== undefined) ? (nodes as ClusterNode[]) : undefined;
}

function checkNode(value: unknown, at: string, options: ValidateOptions, findings: Findings): ClusterNode | undefined {
  if (!isObject(value)) {
    findings.problems.push({ path: at, message: `must be a node object, got ${describe(value)}` });
    return undefined;
  }
  const before = findings.problems.length;
  rejectUnknownFields(value, nodeFields, at, findings);
  const id = checkNodeId(value['id'], `${at}.id`, findings);
  const host = checkHost(value['host'], `${at}.host`, findings);
  const peerPort = checkPort(value['peerPort'], `${at}.peerPort`, options, findings);
  const clientPort = checkPort(value['clientPort'], `${at}.clientPort`, options, findings);
  const roles = checkRoles(value['roles'], `${at}.roles`, findings);
  const dataDir = checkDataDir(value['dataDir'], `${at}.dataDir`, options.baseDir, findings);
  const rack = checkRack(value['rack'], `${at}.rack`, findings);
  if (findings.problems.length > before) return undefined;
  if (id === undefined || host === undefined || peerPort === undefined || clientPort === undefined) return undefined;
  if (roles === undefined || dataDir === undefined) return undefined;
  return { id, host, peerPort, clientPort, roles, dataDir, rack };
}

function checkNodeId(value: unknown, at: string, findings: Findings): number | undefined {
  if (isIntegerIn(value, 1, nodeIdMax)) return value;
  const allowed = `a positive integer (1 to ${nodeIdMax})`;
  rejectValue(findings, at, value, allowed);
  return undefined;
}

function checkHost(value: unknown, at: string, findings: Findings): string | undefined {
  if (typeof value === 'string' && isHost(value)) return value;
  const allowed = `a hostname or an IP address (at most ${hostCharsMax} characters)`;
  rejectValue(findings, at, value, allowed);
  return undefined;
}

function isHost(value: string): boolean {
  if (value.length === 0 || value.length > hostCharsMax) return false;
  if (isIP(value) !== 0) return true;
  return value.split('.').every((label) => hostnameLabelPattern.test(label));
}

function checkPort(value: unknown, at: string, options: ValidateOptions, findings: Findings): number | undefined {
  const allowEphemeral = options.allowEphemeralPorts === true;
  if (isIntegerIn(value, portMin, portMax)) return value;
  if (allowEphemeral && value === ephemeralPort) return value;
  const allowed = allowEphemeral
    ? `an integer from ${portMin} to ${portMax}, or ${ephemeralPort} for an ephemeral port`
    : `an integer from ${portMin} to ${portMax}`;
  const note = value === ephemeralPort ? ' (port 0, "ephemeral", is allowed only for in-process test clusters)' : '';
  rejectValue(findings, at, value, allowed, note);
  return undefined;
}

function checkRoles(value: unknown, at: string, findings: Findings): NodeRole[] | undefined {
  const roleNames = nodeRoles.map((role) => `"${role}"`).join(', ');
  const allowed = `a non-empty array of roles, each one of ${roleNames}`;
  if (!Array.isArray(value) || value.length === 0) {
    rejectValue(findings, at, value, allowed);
    return undefined;
  }
  const roles: NodeRole[] = [];
  value.forEach((role: unknown, index) => {
    if (!isNodeRole(role)) {
      findings.problems.push({ path: `${at}[${index}]`, message: `must be one of ${roleNames}, got ${describe(role)}` });
    } else if (roles.includes(role)) {
      findings.problems.push({ path: `${at}[${index}]`, message: `"${role}" is listed twice; list each role once` });
    } else {
      roles.push(role);
    }
  });
  return roles.length === value.length ? roles : undefined;
}

function isNodeRole(value: unknown): value is NodeRole {
  return typeof value === 'string' && (nodeRoles as readonly string[]).includes(value);
}

function checkDataDir(value: unknown, at: string, baseDir: string, findings: Findings): string | undefined {
  if (typeof value === 'string' && value.length > 0 && value.length <= dataDirCharsMax && !value.includes('\0')) {
    return path.resolve(baseDir, value);
  }
  const allowed = `a non-empty path (at most ${dataDirCharsMax} characters; relative to the cluster file's directory)`;
  rejectValue(findings, at, value, allowed);
  return undefined;
}

function checkRack(value: unknown, at: string, findings: Findings): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.length > 0 && value.length <= rackCharsMax) return value;
  const message = `must be a non-empty string of at most ${rackCharsMax} characters, or be left out; got ${describe(value)}`;
  findings.problems.push({ path: at, message });
  return undefined;
}

function checkUniqueIds(nodes: readonly unknown[], findings: Findings): void {
  const firstIndexById = new Map<number, number>();
  nodes.forEach((node, index) => {
    const id = isObject(node) ? node['id'] : undefined;
    if (!isIntegerIn(id, 1, nodeIdMax)) return;
    const first = firstIndexById.get(id);
    if (first === undefined) firstIndexById.set(id, index);
    else findings.problems.push({ path: `nodes[${index}].id`, message: `${id} is already the id of nodes[${first}]; ids must be unique` });
  });
}

/** checkUniqueAddresses requires every host:port pair, peer or client, to be used once. Port 0 is exempt. */
function checkUniqueAddresses(nodes: readonly unknown[], findings: Findings): void {
  const firstUser = new Map<string, string>();
  nodes.forEach((node, index) => {
    if (!isObject(node) || typeof node['host'] !== 'string') return;
    for (const field of portFields) {
      const port = node[field];
      if (!isIntegerIn(port, portMin, portMax)) continue;
      const address = formatAddress(node['host'], port);
      const at = `nodes[${index}].${field}`;
      const first = firstUser.get(address.toLowerCase());
      if (first === undefined) firstUser.set(address.toLowerCase(), at);
      else findings.problems.push({ path: at, message: `${address} is already used by ${first}; every host:port pair must be unique` });
    }
  });
}

function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** checkDataDirs requires resolved dataDirs to be distinct and not nested inside one another. */
function checkDataDirs(nodes: readonly unknown[], baseDir: string, findings: Findings): void {
  const dataDirs = nodes.map((node) => {
    const value = isObject(node) ? node['dataDir'] : undefined;
    return typeof value === 'string' && value.length > 0 ? path.resolve(baseDir, value) : undefined;
  });
  dataDirs.forEach((dataDir, index) => {
    if (dataDir === undefined) return;
    const earlier = dataDirs.findIndex((other, otherIndex) => otherIndex < index && other !== undefined && overlaps(other, dataDir));
    if (earlier < 0) return;
    const other = dataDirs[earlier] ?? '';
    const relation = other === dataDir ? 'is the same directory as' : 'is nested with';
    const message = `resolves to ${dataDir}, which ${relation} nodes[${earlier}].dataDir (${other}); each node needs its own data directory`;
    findings.problems.push({ path: `nodes[${index}].dataDir`, message });
  });
}

function overlaps(a: string, b: string): boolean {
  return isSameOrInside(a, b) || isSameOrInside(b, a);
}

function isSameOrInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function rawRoles(node: unknown): unknown[] {
  return isObject(node) && Array.isArray(node['roles']) ? (node['roles'] as unknown[]) : [];
}

function checkControllers(nodes: readonly unknown[], findings: Findings): void {
  const controllers = nodes.filter((node) => rawRoles(node).includes('controller')).length;
  if (controllers === 0) {
    const message = 'no node has the "controller" role; at least one controller is needed to form the metadata quorum';
    findings.problems.push({ path: 'nodes', message });
    return;
  }
  if (controllers % 2 === 1) return;
  const tolerated = Math.floor((controllers - 1) / 2);
  const message =
    `${controllers} controllers survive ${tolerated} failed controller(s), no more than ${controllers - 1} would; ` +
    'an odd number of controllers (1, 3 or 5) is recommended';
  findings.warnings.push({ path: 'nodes', message });
}

function checkBrokers(nodes: readonly unknown[], findings: Findings): void {
  if (nodes.some((node) => rawRoles(node).includes('broker'))) return;
  findings.warnings.push({ path: 'nodes', message: 'no node has the "broker" role; clients will have no broker to produce to or consume from' });
}

/** rejectValue records that the value at path is missing or not what is allowed. */
function rejectValue(findings: Findings, at: string, value: unknown, allowed: string, note = ''): void {
  const message = value === undefined ? `is required: ${allowed}` : `must be ${allowed}, got ${describe(value)}${note}`;
  findings.problems.push({ path: at, message });
}

function rejectUnknownFields(value: JsonObject, known: readonly string[], at: string, findings: Findings): void {
  for (const field of Object.keys(value)) {
    if (known.includes(field)) continue;
    const fieldPath = at === '' ? field : `${at}.${field}`;
    findings.problems.push({ path: fieldPath, message: `unknown field "${field}"; allowed fields are ${known.join(', ')}` });
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** describe renders a bad value for a message: short values as JSON, long ones cut, containers by kind. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  if (isObject(value)) return 'an object';
  const shown = JSON.stringify(value);
  return shown.length <= shownValueCharsMax ? shown : `${shown.slice(0, shownValueCharsMax)}…`;
}
