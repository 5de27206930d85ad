// The report renders: the verdict, one bar per fault, both charts and the replay command are in
// report.html, whose tags all balance; history.json and the recorder's spill file read back what
// was recorded. When Chromium is installed, it loads the report and its script runs.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { check } from './checker.js';
import { HistoryFormatError, HistoryRecorder, readHistory, type History, type HistoryEvent } from './history.js';
import { faultBars, renderReport, replayCommand, series, writeReport } from './report.js';

interface Element {
  readonly tag: string;
  readonly attributes: Record<string, string>;
  readonly children: Element[];
  text: string;
}

const voidTags = new Set(['meta', 'link', 'br', 'hr', 'img', 'input']);

function unescape(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
}

/** parseHtml builds the element tree of a page, throwing on any tag that does not balance. */
function parseHtml(html: string): Element {
  const root: Element = { tag: '#root', attributes: {}, children: [], text: '' };
  const stack = [root];
  const token = /<!--[\s\S]*?-->|<!DOCTYPE[^>]*>|<(script|style)\b([^>]*)>([\s\S]*?)<\/\1>|<\/([a-zA-Z][\w-]*)\s*>|<([a-zA-Z][\w-]*)((?:\s+[^\s=/>]+(?:\s*=\s*"[^"]*")?)*)\s*(\/?)>|([^<]+)/gy;
  for (let match = token.exec(html); match !== null && match[0] !== ''; match = token.exec(html)) {
    const top = stack[stack.length - 1]!;
    if (match[1] !== undefined) top.children.push({ tag: match[1], attributes: attributesOf(match[2]!), children: [], text: match[3]! });
    else if (match[4] !== undefined) {
      if (stack.length === 1 || top.tag !== match[4]) throw new Error(`</${match[4]}> closes <${top.tag}>`);
      stack.pop();
    } else if (match[5] !== undefined) {
      const element: Element = { tag: match[5], attributes: attributesOf(match[6]!), children: [], text: '' };
      top.children.push(element);
      if (match[7] !== '/' && !voidTags.has(match[5])) stack.push(element);
    } else if (match[8] !== undefined) top.children.push({ tag: '#text', attributes: {}, children: [], text: unescape(match[8]) });
    if (token.lastIndex === html.length) break;
  }
  if (token.lastIndex !== html.length) throw new Error(`could not read the page from character ${token.lastIndex}`);
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1]!.tag}> is never closed`);
  return root;
}

function attributesOf(text: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of text.matchAll(/([^\s=/>]+)(?:\s*=\s*"([^"]*)")?/g)) attributes[match[1]!] = unescape(match[2] ?? '');
  return attributes;
}

function all(root: Element, test: (element: Element) => boolean): Element[] {
  return root.children.flatMap((child) => [...(test(child) ? [child] : []), ...all(child, test)]);
}

function byId(root: Element, id: string): Element {
  const found = all(root, (element) => element.attributes.id === id);
  expect(found, `#${id}`).toHaveLength(1);
  return found[0]!;
}

function textOf(element: Element): string {
  return element.tag === '#text' ? element.text : element.children.map(textOf).join('');
}

function hasClass(element: Element, name: string): boolean {
  return (element.attributes.class ?? '').split(/\s+/).includes(name);
}

/**
 * runHistory is a 10-second run: a producer sends every 100 ms, each answer taking 5 ms in the
 * even seconds and 50 ms in the odd ones; a consumer reads each record 20 ms after its ack; kill
 * from 2 s to 4 s and from 6 s to 7 s, a partition from 8.5 s that never ends; two notes.
 */
function runHistory(): History {
  const events: HistoryEvent[] = [];
  for (let i = 0; i < 100; i++) {
    const invokedAt = i * 100;
    const answeredAt = invokedAt + (Math.floor(invokedAt / 1000) % 2 === 0 ? 5 : 50);
    const value = `p0-${i}`;
    events.push({ kind: 'produce-invoke', t: invokedAt, id: `op${i}`, producer: 'p0', topic: 'chaos-0', key: 'k', value });
    events.push({ kind: 'produce-ok', t: answeredAt, id: `op${i}`, topic: 'chaos-0', partition: 0, offset: i });
    events.push({ kind: 'consume', t: answeredAt + 20, consumer: 'g0-c0', group: 'g0', topic: 'chaos-0', partition: 0, offset: i, value });
  }
  events.push({ kind: 'fault', t: 2000, fault: 'kill', phase: 'start', detail: { nodes: [2] } });
  events.push({ kind: 'fault', t: 4000, fault: 'kill', phase: 'end', detail: { nodes: [2] } });
  events.push({ kind: 'fault', t: 6000, fault: 'kill', phase: 'start', detail: { nodes: [3] } });
  events.push({ kind: 'fault', t: 7000, fault: 'kill', phase: 'end', detail: { nodes: [3] } });
  events.push({ kind: 'fault', t: 8500, fault: 'partition', phase: 'start', detail: { minority: [1], majority: [2, 3] } });
  events.push({ kind: 'note', t: 9000, text: 'a note with <script>alert("x")</script> & more' });
  // The final read lost the last record: the verdict fails with lost.
  for (let i = 0; i < 99; i++) events.push({ kind: 'final-read', t: 9900 + i / 100, topic: 'chaos-0', partition: 0, offset: i, value: `p0-${i}` });
  events.sort((a, b) => a.t - b.t);
  const config = { duration: 10, faults: ['kill', 'partition'], topics: 2, partitions: 3, nodes: [1, 2, 3], cluster: '(generated, 3 nodes)' };
  return { seed: 42, startedAt: '2026-01-01T00:00:00.000Z', config, events };
}

const scratch = mkdtempSync(join(tmpdir(), 'raftbus-report-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('renderReport', () => {
  const history = runHistory();
  const verdict = check(history);
  const html = renderReport(history, verdict);
  const page = parseHtml(html);

  it('puts the verdict on top, with its counts and examples', () => {
    expect(verdict.ok).toBe(false);
    const section = byId(page, 'verdict');
    expect(section.attributes['data-verdict']).toBe('FAIL');
    expect(html.indexOf('id="verdict"')).toBeLessThan(html.indexOf('id="faults"'));
    const lost = all(section, (element) => element.tag === 'tr' && element.attributes['data-kind'] === 'lost')[0]!;
    expect(hasClass(lost, 'bad')).toBe(true);
    expect(textOf(lost)).toBe('lost1');
    const examples = all(section, (element) => element.tag === 'details' && element.attributes['data-kind'] === 'lost')[0]!;
    expect(JSON.parse(textOf(all(examples, (element) => element.tag === 'pre')[0]!))).toMatchObject({ value: 'p0-99', offset: 99 });
    expect(textOf(byId(page, 'information'))).toContain('acknowledged100');
  });

  it('says PASS for a clean history', () => {
    const clean = { ...history, events: [...history.events, { kind: 'final-read' as const, t: 9999, topic: 'chaos-0', partition: 0, offset: 99, value: 'p0-99' }] };
    const cleanVerdict = check(clean);
    expect(cleanVerdict.ok).toBe(true);
    expect(byId(parseHtml(renderReport(clean, cleanVerdict)), 'verdict').attributes['data-verdict']).toBe('PASS');
  });

  it('draws a bar for each fault, in the row of its kind', () => {
    const bars = all(byId(page, 'fault-timeline'), (element) => hasClass(element, 'fault-bar'));
    expect(bars.map((bar) => [bar.attributes['data-fault'], Number(bar.attributes['data-start-ms']), Number(bar.attributes['data-end-ms']), hasClass(bar, 'open')])).toEqual([
      ['kill', 2000, 4000, false],
      ['kill', 6000, 7000, false],
      ['partition', 8500, 9970, true], // the run's last event: the last consume
    ]);
    const [first, second] = bars;
    expect(first!.attributes.y).toBe(second!.attributes.y);
    expect(Number(bars[2]!.attributes.y)).toBeGreaterThan(Number(first!.attributes.y));
    expect(Number(second!.attributes.x)).toBeGreaterThan(Number(first!.attributes.x) + Number(first!.attributes.width));
  });

  it('charts acks/s and consumes/s per second', () => {
    const chart = byId(page, 'throughput-chart');
    const lines = all(chart, (element) => element.tag === 'polyline').map((line) => line.attributes['data-series']);
    expect(lines).toEqual(['acks/s', 'consumes/s']);
    const points = all(chart, (element) => element.tag === 'polyline')[0]!.attributes.points!.split(' ');
    expect(points).toHaveLength(10);
    // every second has 10 acks: a flat line
    expect(new Set(points.map((point) => point.split(',')[1]))).toHaveProperty('size', 1);
    expect(all(chart, (element) => hasClass(element, 'fault-band'))).toHaveLength(3);
  });

  it('charts produce latency p50 and p99 per second', () => {
    const chart = byId(page, 'latency-chart');
    expect(all(chart, (element) => element.tag === 'polyline').map((line) => line.attributes['data-series'])).toEqual(['p50 ms', 'p99 ms']);
    const data = series(history);
    expect(data.binMs).toBe(1000);
    expect(data.acksPerSecond).toEqual(new Array(10).fill(10));
    expect(data.latencyP50Ms).toEqual([5, 50, 5, 50, 5, 50, 5, 50, 5, 50]);
    expect(data.consumesPerSecond.reduce((sum, rate) => sum + rate, 0)).toBe(100);
  });

  it('shows the config, the seed and the command that replays the run', () => {
    expect(textOf(byId(page, 'seed'))).toBe('42');
    expect(JSON.parse(textOf(byId(page, 'config')))).toEqual(history.config);
    expect(textOf(byId(page, 'replay-command'))).toBe('npm run chaos -- --seed 42 --duration 10 --faults kill,partition --topics 2 --partitions 3');
    expect(replayCommand({ ...history, config: { ...history.config, replayCommand: 'npm run chaos -- --seed 42 --x' } })).toBe('npm run chaos -- --seed 42 --x');
    expect(replayCommand({ ...history, config: { cluster: "my cluster's.json" } })).toBe(`npm run chaos -- --seed 42 --cluster 'my cluster'\\''s.json'`);
  });

  it('is self-contained and escapes what the run wrote', () => {
    expect(html).not.toMatch(/https?:|<link|\ssrc=|@import|url\(/);
    expect(html).not.toContain('<script>alert');
    expect(textOf(byId(page, 'notes'))).toContain('a note with <script>alert("x")</script> & more');
    const scripts = all(page, (element) => element.tag === 'script');
    expect(scripts.map((script) => script.attributes.type ?? 'javascript')).toEqual(['application/json', 'javascript']);
    expect(JSON.parse(scripts[0]!.text)).toMatchObject({ binMs: 1000 });
  });

  it('pairs fault starts with ends and draws a run without faults', () => {
    expect(faultBars(history)).toHaveLength(3);
    const quiet = { ...history, events: history.events.filter((event) => event.kind !== 'fault') };
    const timeline = byId(parseHtml(renderReport(quiet, check(quiet))), 'fault-timeline');
    expect(all(timeline, (element) => hasClass(element, 'fault-bar'))).toHaveLength(0);
    expect(textOf(timeline)).toContain('no faults were applied');
  });
});

describe('writeReport and history.json', () => {
  it('writes history.json that reads back as the history, and report.html', () => {
    const history = runHistory();
    const { historyPath, reportPath } = writeReport(join(scratch, 'run'), history, check(history));
    expect(readHistory(historyPath)).toEqual(history);
    expect(readFileSync(reportPath, 'utf8')).toBe(renderReport(history, check(history)));
  });

  it('rejects a history.json that breaks the format, naming the event', () => {
    const path = join(scratch, 'bad.json');
    writeFileSync(path, JSON.stringify({ seed: 1, startedAt: 'x', config: {}, events: [{ kind: 'note', t: 0, text: 'ok' }, { kind: 'commit', t: 1, consumer: 'c' }] }));
    expect(() => readHistory(path)).toThrow(HistoryFormatError);
    expect(() => readHistory(path)).toThrow(/event 1: commit needs group/);
  });

  it('HistoryRecorder spills past its bound and gives back every event in order', () => {
    let clock = 1000;
    const recorder = new HistoryRecorder({ seed: 7, config: { duration: 1 }, startedAt: '2026-01-01T00:00:00.000Z', nowMs: () => clock, eventsInMemoryMax: 1000 });
    const values = ['ü', '€', '𝄞', 'plain'];
    const expected: HistoryEvent[] = [];
    for (let i = 0; i < 30_000; i++) {
      clock += 0.25;
      // multi-byte values make the spill file's lines cross its read chunks mid-character
      const event: HistoryEvent = { kind: 'note', t: recorder.now(), text: `${values[i % values.length]!.repeat(20)} ${i}` };
      recorder.record(event);
      expected.push(event);
      expect(recorder.eventsInMemory).toBeLessThan(1000);
    }
    expect(recorder.length).toBe(30_000);
    expect(expected[3]!.t).toBe(1);
    const history = recorder.toJSON();
    expect(history).toEqual({ seed: 7, startedAt: '2026-01-01T00:00:00.000Z', config: { duration: 1 }, events: expected });
    const path = join(scratch, 'recorded.json');
    recorder.write(path);
    expect(readHistory(path)).toEqual(history);
    recorder.close();
    expect(() => recorder.toJSON()).toThrow(/closed/);
  });

  it('HistoryRecorder empties a spill file it is given', () => {
    const spillPath = join(scratch, 'given.jsonl');
    writeFileSync(spillPath, '{"kind":"note","t":0,"text":"from an earlier run"}\n');
    const recorder = new HistoryRecorder({ seed: 1, config: {}, spillPath, eventsInMemoryMax: 2 });
    for (let i = 0; i < 5; i++) recorder.record({ kind: 'note', t: i, text: `${i}` });
    expect(recorder.toJSON().events.map((event) => (event.kind === 'note' ? event.text : ''))).toEqual(['0', '1', '2', '3', '4']);
    recorder.close();
    expect(existsSync(spillPath)).toBe(true);
  });

  it('HistoryRecorder refuses an event time that is not a time', () => {
    const recorder = new HistoryRecorder({ seed: 1, config: {} });
    expect(() => recorder.record({ kind: 'note', t: Number.NaN, text: 'x' })).toThrow(RangeError);
    recorder.close();
  });
});
