// What one sync of a Raft group's log costs on the real disk, and what a roll to a new segment adds
// to the sync that follows it: the log trims the segment it leaves, writes that segment's index
// file, and, once the new segment is durable, names it in synced-segment (a file written with
// tmp + fdatasync + rename + a directory sync). One process appends --entries entries of
// --entry-bytes bytes, one at a time, each followed by an awaited sync (as a group persists a round),
// into segments of --segment-bytes, and times every sync. It prints, per run and as median (min–max)
// over --runs runs (each on a fresh log): the median and p99 of syncs after a roll and of the others,
// and syncs per second overall.
//
//   node dist/bench/log-sync.js [--entries 20000] [--entry-bytes 1024] [--segment-bytes 1048576] [--runs 3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerArg, printHeaderHelp } from './lib/args.js';
import { guardDir, releaseDir } from './lib/guards.js';
import { formatSpread, spreadOf, summarizeLatencies } from './lib/stats.js';
import { NodeDisk } from '../src/storage/node-disk.js';
import { segmentHeaderBytes } from '../src/storage/limits.js';
import { SegmentedLog } from '../src/storage/segmented-log.js';

interface RunResult {
  readonly rolls: number;
  readonly rollP50Ms: number;
  readonly rollP99Ms: number;
  readonly otherP50Ms: number;
  readonly otherP99Ms: number;
  readonly syncsPerSecond: number;
}

async function runOnce(dir: string, options: { entries: number; entryBytes: number; segmentBytes: number }): Promise<RunResult> {
  const log = await SegmentedLog.open({ disk: new NodeDisk(), dir, segmentBytesMax: options.segmentBytes, entryBytesMax: options.entryBytes });
  const data = new Uint8Array(options.entryBytes).fill(7);
  const afterRoll: number[] = [];
  const other: number[] = [];
  const started = performance.now();
  for (let index = 1; index <= options.entries; index++) {
    const segments = log.segmentBaseIndexes().length;
    log.append([{ index, term: 1, type: 'normal', data }]);
    const rolled = log.segmentBaseIndexes().length !== segments;
    const before = performance.now();
    await log.sync();
    (rolled ? afterRoll : other).push(performance.now() - before);
  }
  const seconds = (performance.now() - started) / 1000;
  log.close();
  const rolls = summarizeLatencies(Float64Array.from(afterRoll), afterRoll.length);
  const rest = summarizeLatencies(Float64Array.from(other), other.length);
  return { rolls: afterRoll.length, rollP50Ms: rolls.p50Ms, rollP99Ms: rolls.p99Ms, otherP50Ms: rest.p50Ms, otherP99Ms: rest.p99Ms, syncsPerSecond: options.entries / seconds };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string', default: '20000' },
      'entry-bytes': { type: 'string', default: '1024' },
      'segment-bytes': { type: 'string', default: String(1024 * 1024) },
      runs: { type: 'string', default: '3' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const entries = integerArg('entries', values.entries, 1, 10_000_000);
  const entryBytes = integerArg('entry-bytes', values['entry-bytes'], 1, 1024 * 1024);
  const segmentBytes = integerArg('segment-bytes', values['segment-bytes'], segmentHeaderBytes + 2 * entryBytes, 2 ** 31);
  const runs = integerArg('runs', values.runs, 1, 20);
  const results: RunResult[] = [];
  for (let run = 1; run <= runs; run++) {
    const root = mkdtempSync(join(tmpdir(), 'raftbus-log-sync-'));
    guardDir(root);
    try {
      const result = await runOnce(join(root, 'log'), { entries, entryBytes, segmentBytes });
      const ms = (value: number): string => value.toFixed(3);
      console.error(`run ${run}/${runs}: ${result.rolls} rolls, after a roll p50 ${ms(result.rollP50Ms)} p99 ${ms(result.rollP99Ms)} ms, others p50 ${ms(result.otherP50Ms)} p99 ${ms(result.otherP99Ms)} ms, ${result.syncsPerSecond.toFixed(0)} syncs/s`);
      results.push(result);
    } finally {
      rmSync(root, { recursive: true, force: true });
      releaseDir(root);
    }
  }
  console.log(`One log (NodeDisk), ${entries.toLocaleString('en-US')} entries of ${entryBytes} B appended one at a time, each followed by an awaited sync, segments of ${segmentBytes.toLocaleString('en-US')} B; median (min–max) of ${runs} run(s)`);
  console.log('');
  console.log('| rolls | sync after a roll, p50 ms | p99 ms | other syncs, p50 ms | p99 ms | syncs/s |');
  console.log('|---|---|---|---|---|---|');
  const cells = [results.map((r) => r.rolls), results.map((r) => r.rollP50Ms), results.map((r) => r.rollP99Ms), results.map((r) => r.otherP50Ms), results.map((r) => r.otherP99Ms), results.map((r) => r.syncsPerSecond)];
  console.log(`| ${cells.map((column) => formatSpread(spreadOf(column))).join(' | ')} |`);
}

await main();
