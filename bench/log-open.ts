// What opening one Raft group's log costs a node: the time to open it (recovery takes each sealed
// segment from its index file and scans the last one; with --scan, the index files are removed
// before each open, so that it reads and checks every frame of every segment, as for a log whose
// index files were lost) and the memory its index then holds (heap and array buffers, after a full
// GC). With --group, each open also starts a Raft group on the log, as a node's start does before it
// replays what the group's snapshot does not cover (the membership changes are found in the log's
// index, not by reading the log). It writes one log of --entries entries of --entry-bytes bytes each on the real disk
// (NodeDisk, the default 64 MiB segments), then opens it --runs times, each in a fresh child process
// so that nothing from the writing or an earlier open stays in memory, and prints median (min–max).
//
//   node dist/bench/log-open.js [--entries 3000000] [--entry-bytes 100] [--runs 3] [--scan] [--group]
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerArg, printHeaderHelp } from './lib/args.js';
import { guardChild, guardDir, releaseDir } from './lib/guards.js';
import { formatSpread, spreadOf } from './lib/stats.js';
import { DurableRaftStorage } from '../src/node/durable-raft-storage.js';
import { seededRandom } from '../src/raft/prng.js';
import { RawNode } from '../src/raft/rawnode.js';
import { emptyHardState, emptySnapshot } from '../src/raft/types.js';
import { NodeDisk } from '../src/storage/node-disk.js';
import { SegmentedLog } from '../src/storage/segmented-log.js';

interface Opened {
  readonly openMs: number;
  readonly heapBytes: number;
  readonly arrayBufferBytes: number;
  /** peakRssBytes is the open process's peak resident set: its start, the open, and the read buffers. */
  readonly peakRssBytes: number;
  readonly lastIndex: number;
}

const syncEveryEntries = 100_000;
const appendBatch = 1000;

async function write(dir: string, entries: number, entryBytes: number): Promise<void> {
  const log = await SegmentedLog.open({ disk: new NodeDisk(), dir });
  const data = new Uint8Array(entryBytes).fill(7);
  for (let first = 1; first <= entries; first += appendBatch) {
    const count = Math.min(appendBatch, entries - first + 1);
    // A new term every 300,000 entries: a log of a group that saw a few elections.
    log.append(Array.from({ length: count }, (_, i) => ({ index: first + i, term: 1 + Math.floor((first + i) / 300_000), type: 'normal' as const, data })));
    if (Math.floor((first + count - 1) / syncEveryEntries) > Math.floor((first - 1) / syncEveryEntries)) await log.sync();
  }
  await log.sync();
  log.close();
}

/** openHere opens the log in this (child) process (and a group on it) and measures what it holds; needs --expose-gc. */
async function openHere(dir: string, withGroup: boolean): Promise<Opened> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the open child needs --expose-gc');
  gc();
  const before = process.memoryUsage();
  const started = performance.now();
  const log = await SegmentedLog.open({ disk: new NodeDisk(), dir });
  const group = withGroup ? new RawNode({ id: 1, group: 1, storage: new DurableRaftStorage(log, emptySnapshot, emptyHardState), random: seededRandom(1), electionTicks: 10, heartbeatTicks: 1 }) : undefined;
  const openMs = performance.now() - started;
  // Twice, a turn apart: the last segment's read buffer can outlive the first collection.
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  const after = process.memoryUsage();
  if (group !== undefined && group.status().lastIndex !== log.lastIndex()) throw new Error('the group does not see the whole log');
  const opened = { openMs, heapBytes: after.heapUsed - before.heapUsed, arrayBufferBytes: after.arrayBuffers - before.arrayBuffers, peakRssBytes: process.resourceUsage().maxRSS * 1024, lastIndex: log.lastIndex() };
  log.close();
  return opened;
}

function openInChild(dir: string, withGroup: boolean): Promise<Opened> {
  const child = fork(new URL(import.meta.url).pathname, ['--open', dir, ...(withGroup ? ['--group'] : [])], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  guardChild(child);
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as Opened));
    child.once('exit', (code) => reject(new Error(`open child exited with code ${code} before it reported`)));
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--open') {
    process.send!(await openHere(process.argv[3]!, process.argv[4] === '--group'));
    return;
  }
  const { values } = parseArgs({
    options: { entries: { type: 'string', default: '3000000' }, 'entry-bytes': { type: 'string', default: '100' }, runs: { type: 'string', default: '3' }, scan: { type: 'boolean', default: false }, group: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
    strict: true,
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const entries = integerArg('entries', values.entries, 1, 100_000_000);
  const entryBytes = integerArg('entry-bytes', values['entry-bytes'], 1, 1024 * 1024);
  const runs = integerArg('runs', values.runs, 1, 20);
  const root = mkdtempSync(join(tmpdir(), 'raftbus-log-open-'));
  guardDir(root);
  try {
    const dir = join(root, 'log');
    console.error(`writing ${entries.toLocaleString('en-US')} entries of ${entryBytes} B ...`);
    await write(dir, entries, entryBytes);
    const opened: Opened[] = [];
    for (let run = 1; run <= runs; run++) {
      // An open that scans writes the index files again: remove them before every run.
      if (values.scan) for (const name of readdirSync(dir).filter((file) => file.endsWith('.index'))) rmSync(join(dir, name));
      const result = await openInChild(dir, values.group);
      if (result.lastIndex !== entries) throw new Error(`the log reopened with ${result.lastIndex} entries, not ${entries}`);
      console.error(`run ${run}/${runs}: open ${result.openMs.toFixed(0)} ms, heap ${(result.heapBytes / 2 ** 20).toFixed(1)} MiB, array buffers ${(result.arrayBufferBytes / 2 ** 20).toFixed(1)} MiB, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
      opened.push(result);
    }
    const how = (values.scan ? 'every segment scanned (index files removed)' : 'sealed segments from their index files') + (values.group ? ', a Raft group started on it' : '');
    console.log(`Opening one log of ${entries.toLocaleString('en-US')} entries of ${entryBytes} B (NodeDisk, 64 MiB segments, ${how}); median (min–max) of ${runs} run(s), each in a fresh process`);
    console.log('');
    console.log('| open ms | µs per entry | memory held, MiB (heap + array buffers) | bytes per entry | peak RSS of the process, MiB |');
    console.log('|---|---|---|---|---|');
    const held = opened.map((o) => o.heapBytes + o.arrayBufferBytes);
    const cells = [opened.map((o) => o.openMs), opened.map((o) => (o.openMs * 1000) / entries), held.map((bytes) => bytes / 2 ** 20), held.map((bytes) => bytes / entries), opened.map((o) => o.peakRssBytes / 2 ** 20)];
    console.log(`| ${cells.map((values) => formatSpread(spreadOf(values))).join(' | ')} |`);
  } finally {
    rmSync(root, { recursive: true, force: true });
    releaseDir(root);
  }
}

await main();
