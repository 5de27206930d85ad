// `raftbus consume TOPIC`: what kafka-console-consumer.sh does. It assigns itself every partition
// of the topic (or one), starts at the end (only new records), the beginning or a given offset,
// and prints one line per record on stdout until Ctrl-C, --max-messages or --timeout-ms; then
// "Processed a total of N messages" on stderr, as Kafka does. It waits for stdout to drain before
// the next fetch, so a slow reader slows the fetching instead of filling memory. With --group it
// reads as a member of a consumer group instead: the group assigns the partitions, each starts at
// the group's committed offset, and what was printed is committed (every 5 s and on exit).
import { InvalidArgumentError } from 'commander';
import { Consumer, type ConsumerRecord } from '../client/consumer.js';
import { assert } from '../raft/assert.js';
import { CliError, bootstrapAddresses, type ConnectOptions } from './connect.js';
import { oneLine, requireTopicPartitions } from './produce.js';

/** consoleConsumerLimits: the bounds of `raftbus consume`. */
export const consoleConsumerLimits = Object.freeze({
  /** fetchWaitMsMax: how long one fetch waits for new records (shorter with a shorter --timeout-ms). */
  fetchWaitMsMax: 500,
  /** fetchBytesMax: one fetch answer per partition. */
  fetchBytesMax: 1024 * 1024,
});

/** consoleConsumerClientId: the client id a `consume --group` member shows in `groups describe`. */
export const consoleConsumerClientId = 'raftbus-console-consumer';

export type OffsetSpec = 'earliest' | 'latest' | number;

export function offsetArgument(value: string): OffsetSpec {
  if (value === 'earliest' || value === 'latest') return value;
  const offset = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(offset)) throw new InvalidArgumentError('use an offset from 0, earliest or latest');
  return offset;
}

export function positiveIntegerArgument(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('use a whole number of 1 or more');
  return n;
}

export interface RecordFormat {
  /** json: one object per line; the other settings do not apply. */
  readonly json: boolean;
  readonly printKey: boolean;
  /** printOffset prints the partition and the offset. */
  readonly printOffset: boolean;
  /** keySeparator goes between the printed fields. */
  readonly keySeparator: string;
}

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

function utf8(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : decoder.decode(bytes);
}

/**
 * formatRecord renders one record as one output line (without "\n"). Text output follows Kafka's
 * console consumer: Partition:P, Offset:O, key and value, separated by the key separator; a null
 * key or value prints as null. Bytes that are not UTF-8 print as U+FFFD.
 */
export function formatRecord(record: ConsumerRecord, format: RecordFormat): string {
  if (format.json) {
    const headers = Object.fromEntries(Object.entries(record.headers).map(([key, value]) => [key, utf8(value)]));
    const { topic, partition, offset, timestamp } = record;
    return JSON.stringify({ topic, partition, offset, timestamp, key: utf8(record.key), value: utf8(record.value), headers });
  }
  const fields: string[] = [];
  if (format.printOffset) fields.push(`Partition:${record.partition}`, `Offset:${record.offset}`);
  if (format.printKey) fields.push(utf8(record.key) ?? 'null');
  fields.push(utf8(record.value) ?? 'null');
  return fields.join(format.keySeparator);
}

export interface RecordSource {
  poll(): Promise<ConsumerRecord[]>;
}

export interface ConsumeRecordsOptions {
  readonly source: RecordSource;
  /** write takes the lines of one poll and resolves when more may be written. */
  readonly write: (text: string) => Promise<void>;
  readonly format: RecordFormat;
  readonly maxMessages: number | undefined;
  /** timeoutMs: stop when no record came for this long. */
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal;
}

export type ConsumeOutcome = { readonly processed: number } & (
  | { readonly kind: 'maxMessages' | 'timeout' | 'stopped' }
  | { readonly kind: 'failed'; readonly error: Error }
);

/**
 * consumeRecords polls and writes until maxMessages records were written, no record came for
 * timeoutMs, the signal fires or a poll fails. It never writes more than maxMessages records.
 */
export async function consumeRecords(options: ConsumeRecordsOptions): Promise<ConsumeOutcome> {
  let processed = 0;
  let lastRecordAtMs = Date.now();
  for (;;) {
    if (options.signal.aborted) return { kind: 'stopped', processed };
    const waitMs = options.timeoutMs === undefined ? undefined : lastRecordAtMs + options.timeoutMs - Date.now();
    if (waitMs !== undefined && waitMs <= 0) return { kind: 'timeout', processed };
    let records: ConsumerRecord[] | undefined;
    try {
      records = await pollUntil(options.source, options.signal, waitMs);
    } catch (error) {
      return { kind: 'failed', error: error as Error, processed };
    }
    if (records === undefined || records.length === 0) continue;
    lastRecordAtMs = Date.now();
    const wanted = options.maxMessages === undefined ? records : records.slice(0, options.maxMessages - processed);
    await options.write(wanted.map((record) => `${formatRecord(record, options.format)}\n`).join(''));
    processed += wanted.length;
    if (options.maxMessages !== undefined && processed >= options.maxMessages) return { kind: 'maxMessages', processed };
  }
}

/** pollUntil resolves with one poll's records, or undefined when the signal fires or waitMs passes first. */
function pollUntil(source: RecordSource, signal: AbortSignal, waitMs: number | undefined): Promise<ConsumerRecord[] | undefined> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => resolve(undefined));
    const timer = waitMs === undefined ? undefined : setTimeout(onAbort, waitMs);
    signal.addEventListener('abort', onAbort);
    source.poll().then(
      (records) => finish(() => resolve(records)),
      (error: unknown) => finish(() => (signal.aborted ? resolve(undefined) : reject(error))),
    );
  });
}

/** StdoutSink writes to stdout, waits for it to drain, and stops the run quietly on EPIPE (e.g. `| head`). */
class StdoutSink {
  error: Error | undefined;
  private readonly onError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') this.error ??= error;
    this.stop.abort();
  };

  constructor(private readonly stop: AbortController) {
    process.stdout.on('error', this.onError);
  }

  async write(text: string): Promise<void> {
    if (this.stop.signal.aborted || process.stdout.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        process.stdout.off('drain', done);
        this.stop.signal.removeEventListener('abort', done);
        resolve();
      };
      process.stdout.once('drain', done);
      this.stop.signal.addEventListener('abort', done);
    });
  }

  detach(): void {
    process.stdout.off('error', this.onError);
    // A late EPIPE (the reader left as we finished) must not become an uncaught error.
    process.stdout.on('error', () => undefined);
  }
}

export interface ConsumeCommandOptions extends ConnectOptions {
  readonly fromBeginning?: boolean;
  readonly partition?: number;
  readonly offset?: OffsetSpec;
  readonly maxMessages?: number;
  readonly timeoutMs?: number;
  readonly printKey?: boolean;
  readonly printOffset?: boolean;
  readonly keySeparator: string;
  readonly json?: boolean;
  readonly group?: string;
}

/**
 * consume runs `raftbus consume TOPIC` and returns the exit code: 0 when stopped by Ctrl-C,
 * --max-messages, --timeout-ms or a reader that left; 1 when writing stdout failed or (--group)
 * the group did not take the offsets of what was printed. Throws
 * CliError for flags that do not go together, an unknown topic, partition or offset, and the
 * SDK's error when a fetch fails for good. A second Ctrl-C exits at once (130).
 */
export async function consume(topic: string, options: ConsumeCommandOptions): Promise<number> {
  if (options.offset !== undefined && options.partition === undefined) throw new CliError('error: --offset needs --partition N (an offset belongs to one partition)', 1);
  if (options.offset !== undefined && options.fromBeginning) throw new CliError('error: give --from-beginning or --offset, not both', 1);
  if (options.group !== undefined && (options.partition !== undefined || options.offset !== undefined)) {
    throw new CliError(`error: --group reads the partitions the group assigns, from its committed offsets: drop --partition and --offset (to move them: raftbus groups reset-offsets ${options.group} --topic ${topic})`, 1);
  }
  const bootstrap = await bootstrapAddresses(options);
  const count = await requireTopicPartitions({ bootstrap, topic, partition: options.partition });
  const partitions = options.partition !== undefined ? [options.partition] : Array.from({ length: count }, (_, partition) => partition);
  const startsEarly = options.fromBeginning === true || typeof options.offset === 'number' || options.offset === 'earliest';
  const consumer = new Consumer({
    bootstrap,
    // With --group: only for partitions the group has committed nothing for.
    autoOffsetReset: startsEarly ? 'earliest' : 'latest',
    maxWaitMs: Math.min(consoleConsumerLimits.fetchWaitMsMax, options.timeoutMs ?? Infinity),
    maxBytesPerPartition: consoleConsumerLimits.fetchBytesMax,
    ...(options.group !== undefined ? { groupId: options.group, clientId: consoleConsumerClientId, autoCommit: true } : {}),
  });
  const member = options.group === undefined ? undefined : new PrintedRecordsSource(consumer);
  const stop = new AbortController();
  const onInterrupt = (): void => (stop.signal.aborted ? process.exit(130) : stop.abort());
  const sink = new StdoutSink(stop);
  let outcome: ConsumeOutcome;
  let commitError: Error | undefined;
  try {
    if (member === undefined) await assignPositions(consumer, { topic, partitions, offset: options.offset ?? (startsEarly ? 'earliest' : 'latest') });
    else consumer.subscribe([topic]);
    // Until here Ctrl-C ends the process as usual; from here on it ends the loop, then the summary.
    process.on('SIGINT', onInterrupt);
    const format: RecordFormat = { json: options.json === true, printKey: options.printKey === true, printOffset: options.printOffset === true, keySeparator: options.keySeparator };
    outcome = await consumeRecords({ source: member ?? consumer, write: (text) => sink.write(text), format, maxMessages: options.maxMessages, timeoutMs: options.timeoutMs, signal: stop.signal });
    // Still under the Ctrl-C handler: a second Ctrl-C exits at once instead of waiting for the commit.
    // After a failed poll the commit is skipped: it would most likely fail the same way, slowly.
    if (member !== undefined && outcome.kind !== 'failed') commitError = await member.commitPrinted(outcome.processed).then(() => undefined, (error: unknown) => error as Error);
  } finally {
    await consumer.close(); // a group member also commits and leaves the group
    sink.detach();
    process.off('SIGINT', onInterrupt);
  }
  console.error(`Processed a total of ${outcome.processed} messages`);
  if (outcome.kind === 'failed') throw outcome.error;
  if (commitError !== undefined) {
    console.error(`error: group ${options.group} did not take the offsets of the printed records (${oneLine(commitError)}); its next consumer reads them again`);
    return 1;
  }
  if (sink.error !== undefined) {
    console.error(`error: writing stdout: ${oneLine(sink.error)}`);
    return 1;
  }
  return 0;
}

/**
 * assignPositions assigns the partitions and sets where each starts, now: later records are
 * printed, earlier ones are not. Throws CliError for a numeric offset outside the partition.
 */
async function assignPositions(consumer: Consumer, options: { topic: string; partitions: number[]; offset: OffsetSpec }): Promise<void> {
  const { topic, partitions, offset } = options;
  await consumer.assign(partitions.map((partition) => ({ topic, partition })));
  await Promise.all(
    partitions.map(async (partition) => {
      if (offset === 'earliest') return consumer.seekToBeginning(topic, partition);
      if (offset === 'latest') return consumer.seekToEnd(topic, partition);
      const [earliest, latest] = await Promise.all([consumer.listOffset(topic, partition, 'earliest'), consumer.listOffset(topic, partition, 'latest')]);
      if (offset < earliest || offset > latest) {
        const holds = earliest === latest ? `holds no records; use --offset ${latest} (the first to come)` : `holds offsets ${earliest} to ${latest - 1}; use --offset from ${earliest} to ${latest} (${latest}: the next to come)`;
        throw new CliError(`error: offset ${offset} is out of range: ${topic}-${partition} ${holds}, earliest or latest`, 1);
      }
      consumer.seek(topic, partition, offset);
    }),
  );
}

/**
 * PrintedRecordsSource feeds consumeRecords from a group member and makes the group commit what
 * was printed, no more: records cut off by --max-messages, and those of a poll that consumeRecords
 * gave up waiting for (Ctrl-C, --timeout-ms), are handed back: their partition's position moves
 * back to the first of them, so the group's next consumer (or the next poll) reads them.
 * It relies on consumeRecords' order: it writes every record of a poll before it polls again,
 * except the last poll (cut or abandoned), and it polls again at once, before the poll it gave up
 * on can settle. Polls never overlap here: the Consumer's group protocol needs one at a time.
 */
export class PrintedRecordsSource implements RecordSource {
  private latest: { readonly records: Promise<ConsumerRecord[]>; settled: boolean } | undefined;
  /** printedBefore: the records of the polls before the latest, all printed. */
  private printedBefore = 0;

  constructor(private readonly consumer: Consumer) {}

  poll(): Promise<ConsumerRecord[]> {
    const previous = this.latest;
    const abandoned = previous !== undefined && !previous.settled;
    const latest = { records: this.pollAfter(previous?.records, abandoned), settled: false };
    const settle = (): void => void (latest.settled = true);
    latest.records.then(settle, settle);
    this.latest = latest;
    return latest.records;
  }

  private async pollAfter(previous: Promise<ConsumerRecord[]> | undefined, abandoned: boolean): Promise<ConsumerRecord[]> {
    const records = previous === undefined ? [] : await previous.catch(() => []);
    if (abandoned) this.handBack(records);
    else this.printedBefore += records.length;
    return this.consumer.poll();
  }

  /** commitPrinted commits the position after the last printed record of each partition; processed: how many were printed in all. */
  async commitPrinted(processed: number): Promise<void> {
    const records = this.latest === undefined ? [] : await this.latest.records.catch(() => []);
    const printed = processed - this.printedBefore;
    assert(printed >= 0 && printed <= records.length, 'consume --group: the printed records are not a prefix of those polled', { processed, printedBefore: this.printedBefore, polled: records.length });
    this.handBack(records.slice(printed));
    await this.consumer.commit();
  }

  /** handBack moves each partition's position back to the first of these records (it is still assigned: no poll ran since). */
  private handBack(records: readonly ConsumerRecord[]): void {
    const first = new Map<string, ConsumerRecord>();
    for (const record of records) {
      const key = `${record.topic}\u0000${record.partition}`;
      if ((first.get(key)?.offset ?? Infinity) > record.offset) first.set(key, record);
    }
    const assigned = new Set(this.consumer.assignment().map((tp) => `${tp.topic}\u0000${tp.partition}`));
    for (const [key, record] of first) if (assigned.has(key)) this.consumer.seek(record.topic, record.partition, record.offset);
  }
}
