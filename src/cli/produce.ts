// `raftbus produce TOPIC`: what kafka-console-producer.sh does. Every line of stdin becomes one
// record (KEY SEP VALUE with --key-separator), sent through the SDK's Producer. stdin is read as
// it arrives, never whole: at most recordsOutstandingMax records (and outstandingBytesMax bytes)
// are sent and not yet answered, so a slow cluster slows the reading instead of filling memory.
import { addAbortSignal } from 'node:stream';
import { InvalidArgumentError } from 'commander';
import { Admin } from '../client/admin.js';
import { Producer, type Acks } from '../client/producer.js';
import { InvalidRequestError } from '../errors.js';
import type { SupportedCompression } from '../partition/compression.js';
import { AssertionError, assert } from '../raft/assert.js';
import { CliError, bootstrapAddresses, type ConnectOptions } from './connect.js';

/** consoleProducerLimits: the bounds of `raftbus produce`. */
export const consoleProducerLimits = Object.freeze({
  /** recordsOutstandingMax: records sent and not yet acknowledged (or failed). */
  recordsOutstandingMax: 5000,
  /** outstandingBytesMax: the key and value bytes of those records. */
  outstandingBytesMax: 32 * 1024 * 1024,
  /** lineBytesMax: one line of input; a longer line stops the run (no topic takes such a record). */
  lineBytesMax: 8 * 1024 * 1024,
  /** summaryRecordsAbove: runs of more records print the summary line without --summary. */
  summaryRecordsAbove: 1000,
});

const newline = 0x0a;
const carriageReturn = 0x0d;

export interface InputLine {
  /** lineNumber counts from 1, as an editor does. */
  readonly lineNumber: number;
  /** bytes: the line without its "\n" or "\r\n". */
  readonly bytes: Buffer;
}

/**
 * readLines splits a byte stream into lines as they arrive, holding at most one line. The last
 * line needs no "\n". Throws CliError for a line longer than lineBytesMax.
 */
export async function* readLines(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, lineBytesMax: number): AsyncGenerator<InputLine> {
  let pieces: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 0;
  const hold = (piece: Buffer): void => {
    pendingBytes += piece.length;
    if (pendingBytes > lineBytesMax) throw new CliError(`error: line ${lineNumber + 1} is longer than ${lineBytesMax} bytes, the most raftbus produce reads as one record`, 1);
    pieces.push(piece);
  };
  const take = (): InputLine => {
    const bytes = Buffer.concat(pieces);
    pieces = [];
    pendingBytes = 0;
    lineNumber++;
    return { lineNumber, bytes: bytes.at(-1) === carriageReturn ? bytes.subarray(0, -1) : bytes };
  };
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let end = buffer.indexOf(newline, start); end !== -1; end = buffer.indexOf(newline, start)) {
      hold(buffer.subarray(start, end));
      yield take();
      start = end + 1;
    }
    if (start < buffer.length) hold(buffer.subarray(start));
  }
  if (pendingBytes > 0) yield take();
}

export interface LineRecord {
  readonly key: Buffer | null;
  readonly value: Buffer;
}

/**
 * parseRecordLine reads a line as a record: the whole line is the value, or with a key separator
 * the key is what comes before its first occurrence. Throws CliError (with the line number) for a
 * line without the separator, as Kafka's parse.key does.
 */
export function parseRecordLine(line: InputLine, keySeparator: string | undefined): LineRecord {
  if (keySeparator === undefined) return { key: null, value: line.bytes };
  const at = line.bytes.indexOf(keySeparator);
  if (at === -1) {
    const text = line.bytes.toString('utf8');
    const preview = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw new CliError(`error: line ${line.lineNumber} has no key separator ${JSON.stringify(keySeparator)}: ${JSON.stringify(preview)}; write each line as KEY${keySeparator}VALUE`, 1);
  }
  return { key: line.bytes.subarray(0, at), value: line.bytes.subarray(at + Buffer.byteLength(keySeparator)) };
}

export interface ProduceStats {
  /** records: lines read and sent. */
  readonly records: number;
  /** bytes: their keys and values. */
  readonly bytes: number;
  readonly failures: number;
  readonly firstFailure: { readonly lineNumber: number; readonly error: Error } | undefined;
  /** inputError: what stopped the reading early (a line without separator, a read error). */
  readonly inputError: Error | undefined;
}

export interface ProduceLinesOptions {
  readonly lines: AsyncIterable<InputLine>;
  readonly keySeparator: string | undefined;
  readonly send: (record: LineRecord) => Promise<unknown>;
  readonly recordsOutstandingMax: number;
  readonly outstandingBytesMax: number;
}

/**
 * produceLines sends one record per line and resolves once every record it sent is answered.
 * Before reading the next line it waits while recordsOutstandingMax records or
 * outstandingBytesMax bytes are unanswered (one record is always let through).
 * Invariant: outstanding <= recordsOutstandingMax.
 */
export async function produceLines(options: ProduceLinesOptions): Promise<ProduceStats> {
  let records = 0;
  let bytes = 0;
  let failures = 0;
  let firstFailure: ProduceStats['firstFailure'];
  let inputError: Error | undefined;
  let outstanding = 0;
  let outstandingBytes = 0;
  let wake: (() => void) | undefined;
  const settled = async (): Promise<void> => new Promise<void>((resolve) => (wake = resolve));
  try {
    for await (const line of options.lines) {
      const record = parseRecordLine(line, options.keySeparator);
      const size = (record.key?.length ?? 0) + record.value.length;
      records++;
      bytes += size;
      outstanding++;
      outstandingBytes += size;
      assert(outstanding <= options.recordsOutstandingMax, 'produceLines: more records outstanding than allowed', { outstanding });
      void new Promise((resolve) => resolve(options.send(record)))
        .catch((error: unknown) => {
          failures++;
          firstFailure ??= { lineNumber: line.lineNumber, error: error as Error };
        })
        .finally(() => {
          outstanding--;
          outstandingBytes -= size;
          wake?.();
        });
      while (outstanding >= options.recordsOutstandingMax || (outstanding > 0 && outstandingBytes >= options.outstandingBytesMax)) await settled();
    }
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    inputError = error as Error;
  }
  while (outstanding > 0) await settled();
  return { records, bytes, failures, firstFailure, inputError };
}

/** summaryLine is the line printed on stderr at the end of a run. */
export function summaryLine(stats: Pick<ProduceStats, 'records' | 'bytes' | 'failures'>, elapsedMs: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(stats.records / seconds) : stats.records;
  return `Produced ${stats.records} records (${stats.bytes} bytes) in ${seconds.toFixed(2)} s, ${rate} records/s; ${stats.failures} failed`;
}

/** oneLine flattens an error's message (InvalidRequestError lists one problem per line). */
export function oneLine(error: Error): string {
  if (error instanceof InvalidRequestError) return error.problems.map((problem) => `${problem.field}: ${problem.message}`).join('; ');
  return error.message.replace(/\s*\n\s*/g, '; ');
}

export function acksArgument(value: string): Acks {
  switch (value) {
    case 'all':
    case '-1':
      return 'all';
    case '1':
      return 1;
    case '0':
      return 0;
    default:
      throw new InvalidArgumentError('use all (or -1), 1 or 0');
  }
}

export function compressionArgument(value: string): SupportedCompression {
  if (value === 'none' || value === 'gzip' || value === 'lz4') return value;
  if (value === 'snappy' || value === 'zstd') throw new InvalidArgumentError(`raftbus does not support ${value}; use none, gzip or lz4`);
  throw new InvalidArgumentError('use none, gzip or lz4');
}

export function keySeparatorArgument(value: string): string {
  if (value.length === 0) throw new InvalidArgumentError('the key separator cannot be empty; e.g. --key-separator :');
  return value;
}

/** partitionArgument: a partition number, 0 or more. */
export function partitionArgument(value: string): number {
  const partition = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(partition)) throw new InvalidArgumentError('a partition is a number from 0 (see raftbus topics describe TOPIC)');
  return partition;
}

export function lingerMsArgument(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(ms) || ms > 60_000) throw new InvalidArgumentError('use a number of milliseconds from 0 to 60000');
  return ms;
}

/**
 * requireTopicPartitions asks the cluster for a topic and returns its partition count. Throws
 * CliError when the topic does not exist or has no such partition.
 */
export async function requireTopicPartitions(options: { bootstrap: readonly string[]; topic: string; partition: number | undefined }): Promise<number> {
  const admin = new Admin({ bootstrap: options.bootstrap, retryForMs: 15_000 });
  try {
    const { topics } = await admin.describeTopics([options.topic]);
    const topic = topics.find((described) => described.name === options.topic);
    if (topic === undefined) throw new CliError(`error: topic ${options.topic} does not exist; create it with: raftbus topics create ${options.topic}`, 1);
    const count = topic.partitions.length;
    if (options.partition !== undefined && options.partition >= count) {
      throw new CliError(`error: topic ${options.topic} has no partition ${options.partition}; its partitions are 0..${count - 1}`, 1);
    }
    return count;
  } finally {
    admin.close();
  }
}

export interface ProduceCommandOptions extends ConnectOptions {
  readonly keySeparator?: string;
  readonly partition?: number;
  readonly acks: Acks;
  readonly compression: SupportedCompression;
  readonly lingerMs?: number;
  readonly summary?: boolean;
}

/**
 * produce runs `raftbus produce TOPIC` over stdin and returns the exit code: 0 when every line
 * was acknowledged, 1 when a record failed or a line could not be read. Ctrl-C stops the reading;
 * what was read is still sent. A second Ctrl-C exits at once (130).
 */
export async function produce(topic: string, options: ProduceCommandOptions): Promise<number> {
  const bootstrap = await bootstrapAddresses(options);
  await requireTopicPartitions({ bootstrap, topic, partition: options.partition });
  const producer = new Producer({ bootstrap, acks: options.acks, compression: options.compression, ...(options.lingerMs !== undefined ? { lingerMs: options.lingerMs } : {}) });
  const stop = new AbortController();
  const onInterrupt = (): void => (stop.signal.aborted ? process.exit(130) : stop.abort());
  process.on('SIGINT', onInterrupt);
  const startedAtMs = performance.now();
  let stats: ProduceStats;
  try {
    stats = await produceLines({
      lines: readLines(addAbortSignal(stop.signal, process.stdin), consoleProducerLimits.lineBytesMax),
      keySeparator: options.keySeparator,
      send: (record) => producer.send({ topic, key: record.key, value: record.value, ...(options.partition !== undefined ? { partition: options.partition } : {}) }),
      recordsOutstandingMax: consoleProducerLimits.recordsOutstandingMax,
      outstandingBytesMax: consoleProducerLimits.outstandingBytesMax,
    });
  } finally {
    await producer.close();
  }
  process.off('SIGINT', onInterrupt);
  return report(stats, performance.now() - startedAtMs, { summary: options.summary === true, interrupted: stop.signal.aborted });
}

function report(stats: ProduceStats, elapsedMs: number, options: { summary: boolean; interrupted: boolean }): number {
  if (options.summary || stats.records > consoleProducerLimits.summaryRecordsAbove) console.error(summaryLine(stats, elapsedMs));
  let exitCode = 0;
  if (stats.inputError !== undefined && !options.interrupted) {
    console.error(stats.inputError instanceof CliError ? stats.inputError.message : `error: reading stdin: ${oneLine(stats.inputError)}`);
    exitCode = 1;
  }
  if (stats.firstFailure !== undefined) {
    const { lineNumber, error } = stats.firstFailure;
    console.error(`error: ${stats.failures} of ${stats.records} records failed; the first (line ${lineNumber}): ${oneLine(error)}`);
    exitCode = 1;
  }
  return exitCode;
}
