// Summarizes V8 CPU profiles (.cpuprofile, as written by `node --cpu-prof`, e.g. by
// `node dist/bench/raft-commit.js --cpu-prof`): where a node process spent its samples, by area
// (idle, GC, grpc-js, http2, raft core, storage, LevelDB, logging, ...) as self time, and the
// functions with the most self and inclusive time.
//
//   node dist/bench/cpuprofile-summary.js FILE_OR_DIR... [--top 25] [--skip-ms 0]
// --skip-ms leaves out the first milliseconds of each profile (process start-up, module loading).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** areaOf names the part of the process a frame belongs to. */
export function areaOf(frame: CallFrame): string {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'gc';
  if (name === '(program)') return 'program (native, unattributed)';
  if (name === '(root)') return 'root';
  if (url.includes('/@grpc/grpc-js/')) return 'grpc-js';
  if (url.includes('/protobufjs/') || url.includes('/@protobufjs/')) return 'protobufjs';
  if (url.includes('/pino') || url.includes('/sonic-boom/') || url.includes('/thread-stream/')) return 'logging (pino)';
  if (url.includes('/classic-level/') || url.includes('/abstract-level/') || url.includes('/level') || url.includes('/level-transcoder/')) return 'leveldb (level)';
  if (url.includes('/@node-rs/crc32')) return 'crc32';
  if (url.includes('/dist/src/raft/')) return 'raftbus raft core';
  if (url.includes('/dist/src/storage/')) return 'raftbus storage';
  if (url.includes('/dist/src/rpc/')) return 'raftbus rpc (admin + peer transport)';
  if (url.includes('/dist/src/node/')) return 'raftbus node (host, state machine)';
  if (url.includes('/dist/src/')) return 'raftbus other';
  if (url.startsWith('node:internal/http2') || url === 'node:http2') return 'node http2';
  if (url.startsWith('node:internal/fs') || url === 'node:fs') return 'node fs';
  if (url === 'node:net' || url.includes('stream_base_commons') || url.startsWith('node:internal/streams') || url === 'node:stream') return 'node net/streams';
  if (url.includes('timers') || url.includes('task_queues') || url.includes('async_hooks')) return 'node event loop (timers, microtasks)';
  if (url.startsWith('node:')) return 'node core other';
  if (url === '') return `native: ${name}`;
  return 'other js';
}

function label(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

function summarize(path: string, top: number, skipMs: number): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfByArea = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const inclusiveByFunction = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let at = profile.startTime;
  const from = profile.startTime + skipMs * 1000;
  profile.samples.forEach((sample, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const node = byId.get(sample);
    if (node === undefined || at < from) return;
    total += delta;
    const area = areaOf(node.callFrame);
    if (area === 'idle') idle += delta;
    selfByArea.set(area, (selfByArea.get(area) ?? 0) + delta);
    const key = label(node.callFrame);
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const frameKey = label(frame);
      if (seen.has(frameKey)) continue;
      seen.add(frameKey);
      inclusiveByFunction.set(frameKey, (inclusiveByFunction.get(frameKey) ?? 0) + delta);
    }
  });
  const busy = total - idle;
  const ms = (micros: number): string => (micros / 1000).toFixed(0).padStart(7);
  const pctOfBusy = (micros: number): string => `${((micros / Math.max(1, busy)) * 100).toFixed(1).padStart(5)} %`;
  const lines = [`## ${path}`, `wall ${ms(total)} ms sampled (after skipping ${skipMs} ms), busy (not idle) ${ms(busy)} ms`, '', '### self time by area (% of busy)'];
  for (const [area, micros] of [...selfByArea].sort((a, b) => b[1] - a[1])) if (area !== 'idle') lines.push(`${ms(micros)} ms ${pctOfBusy(micros)}  ${area}`);
  lines.push('', `### top ${top} functions by self time`);
  for (const [key, micros] of [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, top + 1)) if (!key.startsWith('(idle)')) lines.push(`${ms(micros)} ms ${pctOfBusy(micros)}  ${key}`);
  lines.push('', `### top ${top} functions by inclusive time`);
  const skip = new Set(['(root)', '(idle)', '(program)', '(garbage collector)']);
  for (const [key, micros] of [...inclusiveByFunction]
    .filter(([key]) => !skip.has(key.split(' ')[0]!))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    lines.push(`${ms(micros)} ms ${pctOfBusy(micros)}  ${key}`);
  }
  return lines.join('\n');
}

function profilesIn(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort()
    .map((name) => join(path, name));
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, 'skip-ms': { type: 'string', default: '0' } }, allowPositionals: true });
if (positionals.length === 0) {
  console.error('usage: node dist/bench/cpuprofile-summary.js FILE_OR_DIR... [--top 25] [--skip-ms 0]');
  process.exit(2);
}
for (const path of positionals.flatMap(profilesIn)) console.log(`${summarize(path, Number(values.top), Number(values['skip-ms']))}\n`);
