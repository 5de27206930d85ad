// The history of a chaos run: every invocation, outcome, read, commit and fault, in the order the
// run recorded them. The orchestrator records; chaos/checker.ts judges; chaos/report.ts draws.
//
// Contract of a history (the checker relies on it):
//   - `events` is in recording order. Recording is synchronous in one thread, so an event that
//     comes later in the array happened later in real time; `t` (ms since the run started) is for
//     rates and charts.
//   - Every produce-invoke has a unique `id` and a `value` unique in the run; each id has at most
//     one outcome (produce-ok or produce-fail), after its invoke. No outcome: still in flight.
//   - A producer waits for each send's outcome before it invokes the next.
//   - A consumer is one sequential loop: it records what a poll handed it (consume), then commits,
//     then records each acknowledged commit. So a commit was sent after the consumer's previous
//     consume, and after its previous acknowledged commit of the same partition.
//   - final-read events come after healing: every record of every partition from its log start.
import { appendFileSync, closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type HistoryEvent =
  | { kind: 'produce-invoke'; t: number; id: string; producer: string; topic: string; key: string; value: string } // value is unique in the run
  | { kind: 'produce-ok'; t: number; id: string; topic: string; partition: number; offset: number }
  | { kind: 'produce-fail'; t: number; id: string; error: string } // indeterminate: may or may not be written
  | { kind: 'consume'; t: number; consumer: string; group: string; topic: string; partition: number; offset: number; value: string }
  | { kind: 'commit'; t: number; consumer: string; group: string; topic: string; partition: number; offset: number } // an acknowledged commit
  | { kind: 'fault'; t: number; fault: string; phase: 'start' | 'end'; detail: Record<string, unknown> }
  | { kind: 'final-read'; t: number; topic: string; partition: number; offset: number; value: string } // after healing: every record from the log start
  | { kind: 'note'; t: number; text: string };

export type HistoryEventKind = HistoryEvent['kind'];

export interface History {
  readonly seed: number;
  readonly startedAt: string;
  readonly config: Record<string, unknown>;
  readonly events: HistoryEvent[];
}

/** eventsInMemoryMaxDefault: how many events a HistoryRecorder holds before it spills them to its JSONL file. */
export const eventsInMemoryMaxDefault = 100_000;
/** readChunkBytes: how much of a spill file is read at a time. */
const readChunkBytes = 1 << 20;
/** writeChunkChars: how much JSON text is gathered before one write. */
const writeChunkChars = 1 << 20;

/** HistoryFormatError: a history (a file, or events handed to the checker) breaks the format or its contract. */
export class HistoryFormatError extends Error {
  override readonly name = 'HistoryFormatError';
  constructor(
    readonly reason: string,
    readonly where: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(where === undefined ? reason : `${where}: ${reason}`, options);
  }
}

export interface HistoryRecorderOptions {
  readonly seed: number;
  readonly config: Record<string, unknown>;
  /** startedAt: ISO time of the start, for the report (default: now). */
  readonly startedAt?: string;
  /** nowMs: a monotonic clock in ms (default: performance.now). */
  readonly nowMs?: () => number;
  /** spillPath: the JSONL file events spill to, emptied first (default: a new file in the temp directory, removed by close()). */
  readonly spillPath?: string;
  /** eventsInMemoryMax: events held in memory before a spill (default eventsInMemoryMaxDefault). */
  readonly eventsInMemoryMax?: number;
}

/**
 * HistoryRecorder appends events in memory up to eventsInMemoryMax, then moves them to a JSONL
 * spill file, so a long run holds a bounded number of events. events() streams everything back
 * in order; toJSON() builds the whole History; write() streams it to a history.json.
 */
export class HistoryRecorder {
  readonly seed: number;
  readonly startedAt: string;
  readonly config: Record<string, unknown>;
  private readonly nowMs: () => number;
  private readonly startMs: number;
  private readonly eventsInMemoryMax: number;
  private readonly spillPath: string;
  private readonly ownsSpillFile: boolean;
  private buffer: HistoryEvent[] = [];
  private spilled = 0;
  private closed = false;

  constructor(options: HistoryRecorderOptions) {
    this.seed = options.seed;
    this.config = options.config;
    this.startedAt = options.startedAt ?? new Date().toISOString();
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.startMs = this.nowMs();
    this.eventsInMemoryMax = options.eventsInMemoryMax ?? eventsInMemoryMaxDefault;
    if (!Number.isInteger(this.eventsInMemoryMax) || this.eventsInMemoryMax < 1) throw new RangeError(`eventsInMemoryMax must be a positive integer, not ${this.eventsInMemoryMax}`);
    this.ownsSpillFile = options.spillPath === undefined;
    this.spillPath = options.spillPath ?? join(tmpdir(), `raftbus-history-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.jsonl`);
    if (!this.ownsSpillFile) writeFileSync(this.spillPath, '');
  }

  /** now returns the ms since the recorder was made (the run's start), to the microsecond. */
  now(): number {
    return Math.round((this.nowMs() - this.startMs) * 1000) / 1000;
  }

  /** record appends one event; throws RangeError if its t is not a finite number >= 0. */
  record(event: HistoryEvent): void {
    this.assertOpen();
    if (!Number.isFinite(event.t) || event.t < 0) throw new RangeError(`event t must be a finite number >= 0, not ${event.t}`);
    this.buffer.push(event);
    if (this.buffer.length >= this.eventsInMemoryMax) this.spill();
  }

  /** append is record, by the name the history format's sketch used. */
  append(event: HistoryEvent): void {
    this.record(event);
  }

  /** length counts every event recorded. */
  get length(): number {
    return this.spilled + this.buffer.length;
  }

  /** eventsInMemory counts the events held in memory; Invariant: eventsInMemory < eventsInMemoryMax. */
  get eventsInMemory(): number {
    return this.buffer.length;
  }

  /** events yields every event in recording order, the spilled ones read back from the spill file. */
  *events(): Generator<HistoryEvent> {
    this.assertOpen();
    if (this.spilled > 0) {
      for (const line of readLines(this.spillPath)) yield JSON.parse(line) as HistoryEvent;
    }
    yield* this.buffer;
  }

  /** toJSON returns the whole History (every event in memory at once). */
  toJSON(): History {
    return { seed: this.seed, startedAt: this.startedAt, config: this.config, events: [...this.events()] };
  }

  /** write streams the history to `path` as JSON, never holding it as one string. */
  write(path: string): void {
    writeHistoryEvents(path, { seed: this.seed, startedAt: this.startedAt, config: this.config }, this.events());
  }

  /** close removes the spill file if the recorder made it; recording or reading after close throws. */
  close(): void {
    if (this.ownsSpillFile) rmSync(this.spillPath, { force: true });
    this.closed = true;
    this.buffer = [];
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the HistoryRecorder is closed');
  }

  private spill(): void {
    appendFileSync(this.spillPath, this.buffer.map((event) => JSON.stringify(event)).join('\n') + '\n');
    this.spilled += this.buffer.length;
    this.buffer = [];
  }
}

/** writeHistory writes a History to `path` as JSON, one event a line. */
export function writeHistory(path: string, history: History): void {
  writeHistoryEvents(path, history, history.events);
}

function writeHistoryEvents(path: string, header: Omit<History, 'events'>, events: Iterable<HistoryEvent>): void {
  const fd = openSync(path, 'w');
  try {
    let chunk = `{"seed":${JSON.stringify(header.seed)},"startedAt":${JSON.stringify(header.startedAt)},"config":${JSON.stringify(header.config)},"events":[`;
    let first = true;
    for (const event of events) {
      chunk += (first ? '\n' : ',\n') + JSON.stringify(event);
      first = false;
      if (chunk.length >= writeChunkChars) {
        writeSync(fd, chunk);
        chunk = '';
      }
    }
    writeSync(fd, chunk + '\n]}\n');
  } finally {
    closeSync(fd);
  }
}

/** readLines yields the non-empty lines of a file, reading it a chunk at a time. */
function* readLines(path: string): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(readChunkBytes);
    let rest = '';
    for (;;) {
      const bytes = readSync(fd, chunk, 0, chunk.length, null);
      if (bytes === 0) break;
      // A multi-byte character split across chunks is completed by the next read: decode whole lines only.
      const text = rest + chunk.toString('latin1', 0, bytes);
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const line of lines) if (line !== '') yield Buffer.from(line, 'latin1').toString('utf8');
    }
    if (rest !== '') yield Buffer.from(rest, 'latin1').toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** readHistory reads a history.json written by writeHistory or HistoryRecorder.write; throws HistoryFormatError naming the first thing wrong. */
export function readHistory(path: string): History {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new HistoryFormatError(`not a JSON file: ${(error as Error).message}`, path, { cause: error });
  }
  return parseHistory(parsed, path);
}

type FieldType = 'string' | 'number' | 'object';

/** eventFields: the fields each kind of event has, with their types (t is checked for all). */
const eventFields: { readonly [K in HistoryEventKind]: Readonly<Record<string, FieldType>> } = {
  'produce-invoke': { id: 'string', producer: 'string', topic: 'string', key: 'string', value: 'string' },
  'produce-ok': { id: 'string', topic: 'string', partition: 'number', offset: 'number' },
  'produce-fail': { id: 'string', error: 'string' },
  consume: { consumer: 'string', group: 'string', topic: 'string', partition: 'number', offset: 'number', value: 'string' },
  commit: { consumer: 'string', group: 'string', topic: 'string', partition: 'number', offset: 'number' },
  fault: { fault: 'string', phase: 'string', detail: 'object' },
  'final-read': { topic: 'string', partition: 'number', offset: 'number', value: 'string' },
  note: { text: 'string' },
};

/** parseHistory checks that `value` is a History (its shape, not the checker's contract); throws HistoryFormatError. */
export function parseHistory(value: unknown, where?: string): History {
  if (!isObject(value)) throw new HistoryFormatError('a history is a JSON object', where);
  if (typeof value.seed !== 'number') throw new HistoryFormatError('seed must be a number', where);
  if (typeof value.startedAt !== 'string') throw new HistoryFormatError('startedAt must be a string', where);
  if (!isObject(value.config)) throw new HistoryFormatError('config must be an object', where);
  if (!Array.isArray(value.events)) throw new HistoryFormatError('events must be an array', where);
  value.events.forEach((event: unknown, index) => checkEvent(event, `${where ?? 'history'} event ${index}`));
  return value as unknown as History;
}

function checkEvent(event: unknown, where: string): void {
  if (!isObject(event)) throw new HistoryFormatError('an event is an object', where);
  const fields = typeof event.kind === 'string' ? eventFields[event.kind as HistoryEventKind] : undefined;
  if (fields === undefined) throw new HistoryFormatError(`unknown event kind ${JSON.stringify(event.kind)}`, where);
  if (typeof event.t !== 'number' || !Number.isFinite(event.t)) throw new HistoryFormatError('t must be a finite number', where);
  for (const [field, type] of Object.entries(fields)) {
    const actual = event[field];
    const ok = type === 'object' ? isObject(actual) : typeof actual === type && (type !== 'number' || Number.isInteger(actual));
    if (!ok) throw new HistoryFormatError(`${event.kind} needs ${field} as ${type === 'number' ? 'an integer' : `a ${type}`}`, where);
  }
  if (event.kind === 'fault' && event.phase !== 'start' && event.phase !== 'end') throw new HistoryFormatError('a fault phase is "start" or "end"', where);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
