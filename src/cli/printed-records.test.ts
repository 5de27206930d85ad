// PrintedRecordsSource: a group consumer commits exactly what was printed, handing back what it read but did not print.
import { describe, expect, it } from 'vitest';
import type { Consumer, ConsumerRecord } from '../client/consumer.js';
import { PrintedRecordsSource, consumeRecords } from './consume.js';

function rec(partition: number, offset: number): ConsumerRecord {
  return { topic: 't', partition, offset, timestamp: 0, key: null, value: new TextEncoder().encode(`${partition}:${offset}`), headers: {} };
}

class FakeConsumer {
  positions = new Map<number, number>([[0, 0], [1, 0]]);
  seeks: string[] = [];
  commits: string[] = [];
  constructor(private readonly polls: (() => Promise<ConsumerRecord[]>)[]) {}
  async poll(): Promise<ConsumerRecord[]> {
    const next = this.polls.shift();
    const records = next === undefined ? await new Promise<ConsumerRecord[]>((r) => setTimeout(() => r([]), 5)) : await next();
    for (const r of records) this.positions.set(r.partition, Math.max(this.positions.get(r.partition)!, r.offset + 1));
    return records;
  }
  assignment() { return [...this.positions.keys()].map((partition) => ({ topic: 't', partition, position: this.positions.get(partition) })); }
  seek(_t: string, partition: number, offset: number) { this.seeks.push(`${partition}@${offset}`); this.positions.set(partition, offset); }
  async commit() { this.commits.push([...this.positions].map(([p, o]) => `${p}@${o}`).join(',')); }
}

const fmt = { json: false, printKey: false, printOffset: false, keySeparator: '\t' };

describe('PrintedRecordsSource', () => {
  it('max-messages cut: hands back the unprinted tail', async () => {
    const fake = new FakeConsumer([async () => [rec(0, 0), rec(0, 1)], async () => [rec(0, 2), rec(0, 3), rec(1, 0), rec(1, 1)]]);
    const source = new PrintedRecordsSource(fake as unknown as Consumer);
    let out = '';
    const outcome = await consumeRecords({ source, write: async (t) => void (out += t), format: fmt, maxMessages: 3, timeoutMs: undefined, signal: new AbortController().signal });
    await source.commitPrinted(outcome.processed);
    expect(out).toBe('0:0\n0:1\n0:2\n');
    expect(fake.commits).toEqual(['0@3,1@0']);
  });

  it('timeout with a poll in flight: its records are handed back', async () => {
    const fake = new FakeConsumer([async () => [rec(0, 0)], () => new Promise((r) => setTimeout(() => r([rec(0, 1), rec(1, 0)]), 300))]);
    const source = new PrintedRecordsSource(fake as unknown as Consumer);
    let out = '';
    const outcome = await consumeRecords({ source, write: async (t) => void (out += t), format: fmt, maxMessages: undefined, timeoutMs: 100, signal: new AbortController().signal });
    expect(outcome.kind).toBe('timeout');
    await source.commitPrinted(outcome.processed);
    expect(out).toBe('0:0\n');
    expect(fake.commits).toEqual(['0@1,1@0']);
  });

  it('a poll given up on and polled again: its records come back in the next poll', async () => {
    const fake = new FakeConsumer([() => new Promise((r) => setTimeout(() => r([rec(0, 0), rec(0, 1)]), 50)), async () => [rec(0, 5)]]);
    const source = new PrintedRecordsSource(fake as unknown as Consumer);
    void source.poll(); // abandoned
    const second = await source.poll();
    expect(fake.seeks).toEqual(['0@0']);
    expect(second.map((r) => r.offset)).toEqual([5]);
    await source.commitPrinted(1);
    expect(fake.commits).toEqual(['0@6,1@0']);
  });
});
