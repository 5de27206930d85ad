import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../client/consumer.js';
import { consumeRecords, formatRecord, offsetArgument, positiveIntegerArgument, type RecordFormat, type RecordSource } from './consume.js';

const encoder = new TextEncoder();

function record(fields: { partition?: number; offset?: number; key?: string | null; value?: string | null; headers?: Record<string, string | null> } = {}): ConsumerRecord {
  const bytes = (text: string | null | undefined): Uint8Array | null => (text === null || text === undefined ? null : encoder.encode(text));
  return {
    topic: 'orders',
    partition: fields.partition ?? 0,
    offset: fields.offset ?? 0,
    timestamp: 1_700_000_000_000,
    key: bytes(fields.key),
    value: fields.value === undefined ? encoder.encode('v') : bytes(fields.value),
    headers: Object.fromEntries(Object.entries(fields.headers ?? {}).map(([key, value]) => [key, bytes(value)])),
  };
}

const plain: RecordFormat = { json: false, printKey: false, printOffset: false, keySeparator: '\t' };

describe('formatRecord', () => {
  it('prints the value alone by default, as UTF-8', () => {
    expect(formatRecord(record({ key: 'k', value: 'café ☕' }), plain)).toBe('café ☕');
  });

  it('--print-key and --print-offset print Partition:P, Offset:O, the key and the value, separated as asked', () => {
    const r = record({ partition: 2, offset: 41, key: 'alice', value: 'apple' });
    expect(formatRecord(r, { ...plain, printKey: true })).toBe('alice\tapple');
    expect(formatRecord(r, { ...plain, printOffset: true })).toBe('Partition:2\tOffset:41\tapple');
    expect(formatRecord(r, { ...plain, printKey: true, printOffset: true })).toBe('Partition:2\tOffset:41\talice\tapple');
    expect(formatRecord(r, { ...plain, printKey: true, printOffset: true, keySeparator: ' | ' })).toBe('Partition:2 | Offset:41 | alice | apple');
  });

  it('a null key or value prints as null; bytes that are not UTF-8 as U+FFFD', () => {
    expect(formatRecord(record({ key: null, value: null }), { ...plain, printKey: true })).toBe('null\tnull');
    const binary: ConsumerRecord = { ...record(), value: new Uint8Array([0x61, 0xff, 0x62]) };
    expect(formatRecord(binary, plain)).toBe('a\uFFFDb');
  });

  it('--json prints one object per record with every field, key, value and headers as strings or null', () => {
    const line = formatRecord(record({ partition: 1, offset: 7, key: 'k', value: 'line one\nline "two"', headers: { trace: 'abc', empty: null } }), { ...plain, json: true, printKey: true });
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ topic: 'orders', partition: 1, offset: 7, timestamp: 1_700_000_000_000, key: 'k', value: 'line one\nline "two"', headers: { trace: 'abc', empty: null } });
    expect(JSON.parse(formatRecord(record({ key: null, value: null }), { ...plain, json: true }))).toMatchObject({ key: null, value: null, headers: {} });
  });
});

describe('consumeRecords', () => {
  /** scripted answers one poll after another, then empty polls that take pollMs each. */
  function scripted(polls: ConsumerRecord[][], pollMs = 5): RecordSource & { calls: number } {
    const source = {
      calls: 0,
      poll: async (): Promise<ConsumerRecord[]> => {
        source.calls++;
        const next = polls.shift();
        if (next !== undefined) return next;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
        return [];
      },
    };
    return source;
  }

  const values = (...texts: string[]): ConsumerRecord[] => texts.map((value, offset) => record({ value, offset }));

  it('stops after exactly --max-messages records, cutting a poll short', async () => {
    let written = '';
    const outcome = await consumeRecords({
      source: scripted([values('a', 'b'), values('c', 'd', 'e'), values('f')]),
      write: async (text) => void (written += text),
      format: plain,
      maxMessages: 4,
      timeoutMs: undefined,
      signal: new AbortController().signal,
    });
    expect(outcome).toEqual({ kind: 'maxMessages', processed: 4 });
    expect(written).toBe('a\nb\nc\nd\n');
  });

  it('stops when no record came for --timeout-ms, even while a poll is still waiting', async () => {
    let written = '';
    const startedAt = Date.now();
    const outcome = await consumeRecords({
      source: scripted([values('a'), [], values('b')], 10_000),
      write: async (text) => void (written += text),
      format: plain,
      maxMessages: undefined,
      timeoutMs: 100,
      signal: new AbortController().signal,
    });
    expect(outcome).toEqual({ kind: 'timeout', processed: 2 });
    expect(written).toBe('a\nb\n');
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('stops at once when the signal fires (Ctrl-C), with the count so far', async () => {
    const stop = new AbortController();
    const outcome = consumeRecords({
      source: scripted([values('a', 'b', 'c')], 10_000),
      write: async () => void setTimeout(() => stop.abort(), 10),
      format: plain,
      maxMessages: undefined,
      timeoutMs: undefined,
      signal: stop.signal,
    });
    expect(await outcome).toEqual({ kind: 'stopped', processed: 3 });
  });

  it('a failed poll ends the run with its error', async () => {
    const outcome = await consumeRecords({
      source: { poll: async () => Promise.reject(new Error('topic orders does not exist')) },
      write: async () => undefined,
      format: plain,
      maxMessages: undefined,
      timeoutMs: undefined,
      signal: new AbortController().signal,
    });
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind === 'failed' && outcome.error.message).toBe('topic orders does not exist');
  });

  it('waits for each write before polling again (back-pressure)', async () => {
    const source = scripted([values('a'), values('b'), values('c')]);
    const blocked: (() => void)[] = [];
    let blocking = true;
    const run = consumeRecords({
      source,
      write: () => (blocking ? new Promise<void>((resolve) => blocked.push(resolve)) : Promise.resolve()),
      format: plain,
      maxMessages: 3,
      timeoutMs: undefined,
      signal: new AbortController().signal,
    });
    while (blocked.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(source.calls).toBe(1);
    blocking = false;
    blocked[0]!();
    expect(await run).toEqual({ kind: 'maxMessages', processed: 3 });
    expect(source.calls).toBe(3);
  });
});

describe('flag values', () => {
  it('--offset takes a number from 0, earliest or latest', () => {
    expect(offsetArgument('0')).toBe(0);
    expect(offsetArgument('1234')).toBe(1234);
    expect(offsetArgument('earliest')).toBe('earliest');
    expect(offsetArgument('latest')).toBe('latest');
    for (const bad of ['-1', '1e3', 'first', '']) expect(() => offsetArgument(bad)).toThrow('use an offset from 0, earliest or latest');
  });

  it('--max-messages and --timeout-ms take a whole number of 1 or more', () => {
    expect(positiveIntegerArgument('1')).toBe(1);
    for (const bad of ['0', '-3', '2.5', 'ten']) expect(() => positiveIntegerArgument(bad)).toThrow('use a whole number of 1 or more');
  });
});
