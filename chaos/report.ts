// The chaos report: history.json and a self-contained report.html (inline CSS, JS and SVG; nothing
// fetched) with the verdict, a timeline of the faults, throughput and produce latency over time,
// and the run's config, seed and the command that replays it. renderReport is pure; writeReport
// writes both files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anomalyKinds, type Verdict } from './checker.js';
import { writeHistory, type History, type HistoryEvent } from './history.js';

/** chartPointsMax: the most points a chart draws; a longer run is drawn in bins of several seconds. */
export const chartPointsMax = 1200;
/** notesShownMax: how many of the run's notes the report lists. */
export const notesShownMax = 200;

const chartWidth = 960;
const chartHeight = 240;
const margin = { left: 64, right: 16, top: 28, bottom: 36 } as const;
const faultRowHeight = 22;
const palette = ['#d62728', '#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'] as const;

/** FaultBar is one fault from its start to its end (endMs: the run's end when it never ended). */
export interface FaultBar {
  readonly fault: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly ended: boolean;
  readonly detail: Record<string, unknown>;
}

/** Series: per-bin figures of the run; rates are per second, latencies in ms (null: no acks in the bin). */
export interface Series {
  readonly binMs: number;
  /** starts[i]: where bin i starts, in s since the run started. */
  readonly starts: number[];
  readonly acksPerSecond: number[];
  readonly consumesPerSecond: number[];
  readonly latencyP50Ms: (number | null)[];
  readonly latencyP99Ms: (number | null)[];
}

/** writeReport writes history.json and report.html into `dir` (made if missing) and returns their paths. */
export function writeReport(dir: string, history: History, verdict: Verdict): { historyPath: string; reportPath: string } {
  mkdirSync(dir, { recursive: true });
  const historyPath = join(dir, 'history.json');
  const reportPath = join(dir, 'report.html');
  writeHistory(historyPath, history);
  writeFileSync(reportPath, renderReport(history, verdict));
  return { historyPath, reportPath };
}

/**
 * replayCommand returns the command that replays the run: config.replayCommand when the run
 * recorded one, else `npm run chaos` with the seed and the chaos CLI's flags found in the config.
 */
export function replayCommand(history: History): string {
  const recorded = history.config.replayCommand;
  if (typeof recorded === 'string' && recorded !== '') return recorded;
  const flags = [`--seed ${history.seed}`];
  for (const name of ['duration', 'faults', 'topics', 'partitions'] as const) {
    const value = history.config[name];
    if (typeof value === 'number' || (typeof value === 'string' && value !== '')) flags.push(`--${name} ${shellWord(String(value))}`);
    else if (Array.isArray(value) && value.length > 0) flags.push(`--${name} ${shellWord(value.join(','))}`);
  }
  const cluster = history.config.cluster;
  if (typeof cluster === 'string' && cluster !== '' && !cluster.startsWith('(')) flags.push(`--cluster ${shellWord(cluster)}`);
  return `npm run chaos -- ${flags.join(' ')}`;
}

function shellWord(word: string): string {
  return /^[\w./,:=@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** runEndMs returns the t of the last event (at least 1 ms). */
function runEndMs(events: readonly HistoryEvent[]): number {
  let end = 1;
  for (const event of events) end = Math.max(end, event.t);
  return end;
}

/** faultBars pairs each fault start with the next end of the same fault. */
export function faultBars(history: History): FaultBar[] {
  const endMs = runEndMs(history.events);
  const open = new Map<string, { startMs: number; detail: Record<string, unknown> }[]>();
  const bars: FaultBar[] = [];
  for (const event of history.events) {
    if (event.kind !== 'fault') continue;
    const started = open.get(event.fault) ?? [];
    open.set(event.fault, started);
    if (event.phase === 'start') started.push({ startMs: event.t, detail: event.detail });
    else {
      const start = started.shift();
      if (start !== undefined) bars.push({ fault: event.fault, startMs: start.startMs, endMs: event.t, ended: true, detail: start.detail });
    }
  }
  for (const [fault, started] of open) for (const start of started) bars.push({ fault, startMs: start.startMs, endMs, ended: false, detail: start.detail });
  return bars.sort((a, b) => a.startMs - b.startMs);
}

/** series bins the run into seconds (or more, to keep at most chartPointsMax bins): acks/s and consumes/s, and p50/p99 of produce latency by ack time. */
export function series(history: History): Series {
  const endMs = runEndMs(history.events);
  const binMs = 1000 * Math.max(1, Math.ceil(Math.ceil(endMs / 1000) / chartPointsMax));
  const bins = Math.max(1, Math.ceil(endMs / binMs));
  const acks = new Array<number>(bins).fill(0);
  const consumes = new Array<number>(bins).fill(0);
  const latencies = Array.from({ length: bins }, () => [] as number[]);
  const invokedAt = new Map<string, number>();
  const binOf = (t: number): number => Math.min(bins - 1, Math.floor(t / binMs));
  for (const event of history.events) {
    if (event.kind === 'produce-invoke') invokedAt.set(event.id, event.t);
    else if (event.kind === 'consume') consumes[binOf(event.t)]!++;
    else if (event.kind === 'produce-ok') {
      acks[binOf(event.t)]!++;
      const invoked = invokedAt.get(event.id);
      if (invoked !== undefined) latencies[binOf(event.t)]!.push(event.t - invoked);
    }
  }
  const perSecond = (count: number): number => count / (binMs / 1000);
  return {
    binMs,
    starts: Array.from({ length: bins }, (_, bin) => (bin * binMs) / 1000),
    acksPerSecond: acks.map(perSecond),
    consumesPerSecond: consumes.map(perSecond),
    latencyP50Ms: latencies.map((values) => percentile(values, 0.5)),
    latencyP99Ms: latencies.map((values) => percentile(values, 0.99)),
  };
}

/** percentile returns the nearest-rank percentile of `values` (null when empty). */
function percentile(values: number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function format(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
}

/** niceStep returns a round step (1, 2 or 5 times a power of ten) near range/count. */
function niceStep(range: number, count: number): number {
  const rough = Math.max(range, 1e-9) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].find((factor) => factor * power >= rough)!;
  return step * power;
}

interface Axes {
  readonly x: (seconds: number) => number;
  readonly y: (value: number) => number;
  readonly svg: string;
}

/** axes draws the frame, gridlines and tick labels of a chart from 0 to endSeconds and 0 to a round top above yMax. */
function axes(options: { endSeconds: number; yMax: number; unit: string; height: number; yAxis: boolean }): Axes {
  const { endSeconds, unit, height } = options;
  const yStep = niceStep(options.yMax, 4);
  // 5% headroom, so a line at the maximum does not run along the frame.
  const yTop = Math.max(yStep, Math.ceil((options.yMax * 1.05) / yStep) * yStep);
  const plotWidth = chartWidth - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const x = (seconds: number): number => margin.left + (seconds / Math.max(endSeconds, 1e-9)) * plotWidth;
  const y = (value: number): number => margin.top + plotHeight - (value / yTop) * plotHeight;
  const parts: string[] = [`<rect class="plot" x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}"/>`];
  for (let value = 0; options.yAxis && value <= yTop + yStep / 2; value += yStep) {
    parts.push(`<line class="grid" x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${margin.left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end">${format(value)}</text>`);
  }
  const xStep = niceStep(endSeconds, 10);
  for (let seconds = 0; seconds <= endSeconds + 1e-9; seconds += xStep) {
    parts.push(`<text class="tick" x="${x(seconds).toFixed(1)}" y="${height - margin.bottom + 16}" text-anchor="middle">${format(seconds)}</text>`);
  }
  parts.push(`<text class="axis-label" x="${margin.left + plotWidth}" y="${height - 4}" text-anchor="end">s since start</text>`);
  parts.push(`<text class="axis-label" x="4" y="${margin.top - 10}">${escapeHtml(unit)}</text>`);
  return { x, y, svg: parts.join('') };
}

/** polylines draws one series as polylines, broken where a value is null. */
function polylines(options: { name: string; color: string; dashed: boolean; starts: number[]; values: (number | null)[]; binSeconds: number; axes: Axes }): string {
  const runs: string[][] = [[]];
  options.values.forEach((value, bin) => {
    if (value === null) {
      if (runs[runs.length - 1]!.length > 0) runs.push([]);
      return;
    }
    const seconds = options.starts[bin]! + options.binSeconds / 2;
    runs[runs.length - 1]!.push(`${options.axes.x(seconds).toFixed(1)},${options.axes.y(value).toFixed(1)}`);
  });
  return runs
    .filter((points) => points.length > 0)
    .map((points) => `<polyline class="series" data-series="${escapeHtml(options.name)}" stroke="${options.color}"${options.dashed ? ' stroke-dasharray="6 3"' : ''} points="${points.join(' ')}"${points.length === 1 ? ` stroke-linecap="round" stroke-width="4"` : ''}/>`)
    .join('');
}

/** lineChart renders an inline SVG chart of several series over the run, with the faults shaded behind. */
function lineChart(options: { id: string; title: string; unit: string; data: Series; lines: { name: string; color: string; values: (number | null)[] }[]; bars: FaultBar[] }): string {
  const { data } = options;
  const binSeconds = data.binMs / 1000;
  const endSeconds = Math.max(binSeconds, data.starts.length * binSeconds);
  const yMax = Math.max(0, ...options.lines.flatMap((line) => line.values.filter((value): value is number => value !== null)));
  const frame = axes({ endSeconds, yMax, unit: options.unit, height: chartHeight, yAxis: true });
  const bands = options.bars.map((bar) => {
    const left = frame.x(bar.startMs / 1000);
    const width = Math.max(1, frame.x(bar.endMs / 1000) - left);
    return `<rect class="fault-band" x="${left.toFixed(1)}" y="${margin.top}" width="${width.toFixed(1)}" height="${chartHeight - margin.top - margin.bottom}"><title>${escapeHtml(bar.fault)}</title></rect>`;
  });
  // Every line after the first is dashed, so a line drawn over another still shows.
  const lines = options.lines.map((line, i) => polylines({ ...line, dashed: i > 0, starts: data.starts, binSeconds, axes: frame }));
  const legendLeft = chartWidth - margin.right - options.lines.length * 120;
  const legend = options.lines.map((line, i) => `<g class="legend"><line x1="${legendLeft + i * 120}" x2="${legendLeft + i * 120 + 24}" y1="12" y2="12" stroke="${line.color}" stroke-width="2"${i > 0 ? ' stroke-dasharray="6 3"' : ''}/><text x="${legendLeft + i * 120 + 30}" y="16">${escapeHtml(line.name)}</text></g>`);
  return [
    `<figure><figcaption>${escapeHtml(options.title)}</figcaption>`,
    `<svg id="${options.id}" class="chart" viewBox="0 0 ${chartWidth} ${chartHeight}" width="${chartWidth}" height="${chartHeight}" role="img" aria-label="${escapeHtml(options.title)}" data-end-seconds="${endSeconds}">`,
    frame.svg,
    bands.join(''),
    lines.join(''),
    legend.join(''),
    `<line class="cursor" x1="0" x2="0" y1="${margin.top}" y2="${chartHeight - margin.bottom}" visibility="hidden"/>`,
    `</svg><div class="readout" data-for="${options.id}">&nbsp;</div></figure>`,
  ].join('\n');
}

/** faultTimeline renders one row per fault kind, a bar for each time it was applied. */
function faultTimeline(bars: FaultBar[], endMs: number): string {
  const kinds = [...new Set(bars.map((bar) => bar.fault))];
  const height = margin.top + margin.bottom + Math.max(1, kinds.length) * faultRowHeight;
  const frame = axes({ endSeconds: endMs / 1000, yMax: 0, unit: '', height, yAxis: false });
  const rows = kinds.map((kind, row) => {
    const y = margin.top + row * faultRowHeight;
    const color = palette[row % palette.length]!;
    const label = `<text class="fault-label" x="${margin.left - 6}" y="${y + faultRowHeight / 2 + 4}" text-anchor="end">${escapeHtml(kind)}</text>`;
    const rects = bars
      .filter((bar) => bar.fault === kind)
      .map((bar) => {
        const left = frame.x(bar.startMs / 1000);
        const width = Math.max(2, frame.x(bar.endMs / 1000) - left);
        const tip = `${bar.fault} ${format(bar.startMs / 1000)}s to ${format(bar.endMs / 1000)}s${bar.ended ? '' : ' (never ended)'} ${JSON.stringify(bar.detail)}`;
        return `<rect class="fault-bar${bar.ended ? '' : ' open'}" data-fault="${escapeHtml(bar.fault)}" data-start-ms="${bar.startMs}" data-end-ms="${bar.endMs}" x="${left.toFixed(1)}" y="${y + 3}" width="${width.toFixed(1)}" height="${faultRowHeight - 6}" fill="${color}"><title>${escapeHtml(tip)}</title></rect>`;
      });
    return label + rects.join('');
  });
  const empty = kinds.length === 0 ? `<text class="empty" x="${chartWidth / 2}" y="${margin.top + faultRowHeight / 2 + 4}" text-anchor="middle">no faults were applied</text>` : '';
  return `<svg id="fault-timeline" class="chart" viewBox="0 0 ${chartWidth} ${height}" width="${chartWidth}" height="${height}" role="img" aria-label="faults over time">${frame.svg}${empty}${rows.join('')}</svg>`;
}

function verdictSection(verdict: Verdict): string {
  const status = verdict.ok ? 'PASS' : 'FAIL';
  const anomalies = anomalyKinds.map((kind) => {
    const count = verdict.counts[kind] ?? 0;
    return `<tr class="anomaly${count > 0 ? ' bad' : ''}" data-kind="${kind}"><th>${kind}</th><td>${count}</td></tr>`;
  });
  const informational = Object.entries(verdict.counts)
    .filter(([name]) => !(anomalyKinds as readonly string[]).includes(name))
    .map(([name, count]) => `<tr><th>${escapeHtml(name)}</th><td>${count}</td></tr>`);
  const examples = Object.entries(verdict.examples)
    .filter(([, list]) => list.length > 0)
    .map(([kind, list]) => `<details class="examples" data-kind="${escapeHtml(kind)}"${(anomalyKinds as readonly string[]).includes(kind) ? ' open' : ''}><summary>${escapeHtml(kind)}: ${list.length} example${list.length === 1 ? '' : 's'} of ${verdict.counts[kind] ?? list.length}</summary>${list.map((example) => `<pre>${escapeHtml(JSON.stringify(example, null, 2))}</pre>`).join('')}</details>`);
  return [
    `<section id="verdict" data-verdict="${status}">`,
    `<h2><span class="badge ${status.toLowerCase()}">${status}</span> ${verdict.ok ? 'no anomaly found' : `${anomalyKinds.filter((kind) => (verdict.counts[kind] ?? 0) > 0).join(', ')}`}</h2>`,
    `<div class="tables"><table id="anomalies"><caption>anomalies</caption>${anomalies.join('')}</table>`,
    `<table id="information"><caption>information</caption>${informational.join('')}</table></div>`,
    examples.join('\n'),
    `</section>`,
  ].join('\n');
}

function runSection(history: History): string {
  const notes = history.events.filter((event): event is Extract<HistoryEvent, { kind: 'note' }> => event.kind === 'note');
  const shown = notes.slice(0, notesShownMax).map((note) => `<tr><td>${format(note.t / 1000)}</td><td>${escapeHtml(note.text)}</td></tr>`);
  return [
    `<section id="run"><h2>Run</h2>`,
    `<p>seed <code id="seed">${history.seed}</code>, started ${escapeHtml(history.startedAt)}, ${history.events.length} events.</p>`,
    `<p>Replay: <code id="replay-command">${escapeHtml(replayCommand(history))}</code></p>`,
    `<pre id="config">${escapeHtml(JSON.stringify(history.config, null, 2))}</pre>`,
    notes.length === 0 ? '' : `<details id="notes"><summary>${notes.length} notes${notes.length > notesShownMax ? ` (the first ${notesShownMax})` : ''}</summary><table><tr><th>s</th><th>note</th></tr>${shown.join('')}</table></details>`,
    `</section>`,
  ].join('\n');
}

const style = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; }
.badge.pass { background: #2a7d2a; } .badge.fail { background: #c0392b; }
.tables { display: flex; gap: 32px; align-items: flex-start; }
table { border-collapse: collapse; } caption { text-align: left; font-weight: bold; }
th, td { padding: 2px 10px 2px 0; text-align: left; } td { font-variant-numeric: tabular-nums; }
tr.bad { color: #c0392b; font-weight: bold; }
pre { background: #f5f5f5; padding: 8px; overflow-x: auto; font-size: 12px; }
figure { margin: 0 0 16px; } figcaption { font-weight: bold; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .plot { fill: #fff; stroke: #999; } svg .grid { stroke: #eee; }
svg text { font-size: 11px; fill: #444; } svg .fault-label { font-size: 12px; fill: #222; }
svg .series { fill: none; stroke-width: 1.5; } svg .fault-band { fill: #d62728; opacity: 0.08; }
svg .fault-bar.open { opacity: 0.5; } svg .cursor { stroke: #888; stroke-dasharray: 3 3; }
.readout { font-size: 12px; color: #444; min-height: 1.4em; font-variant-numeric: tabular-nums; }
`;

/** script: the hover readout of the charts; it marks the page ready once it ran, which the tests look for. */
const script = `
(function () {
  var data = JSON.parse(document.getElementById('chart-data').textContent);
  var binSeconds = data.binMs / 1000;
  function fmt(v) { return v === null ? '-' : (Math.round(v * 10) / 10).toString(); }
  document.querySelectorAll('svg.chart[data-end-seconds]').forEach(function (svg) {
    var cursor = svg.querySelector('.cursor');
    var readout = document.querySelector('.readout[data-for="' + svg.id + '"]');
    var lines = data.lines[svg.id] || [];
    svg.addEventListener('mousemove', function (event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) * (${chartWidth} / box.width);
      var seconds = (x - ${margin.left}) / (${chartWidth - margin.left - margin.right}) * Number(svg.dataset.endSeconds);
      var bin = Math.floor(seconds / binSeconds);
      if (bin < 0 || bin >= data.starts.length) { cursor.setAttribute('visibility', 'hidden'); return; }
      cursor.setAttribute('x1', x); cursor.setAttribute('x2', x); cursor.setAttribute('visibility', 'visible');
      readout.textContent = data.starts[bin] + ' s: ' + lines.map(function (line) { return line.name + ' ' + fmt(line.values[bin]); }).join(', ');
    });
    svg.addEventListener('mouseleave', function () { cursor.setAttribute('visibility', 'hidden'); });
  });
  document.documentElement.setAttribute('data-ready', 'yes');
})();
`;

/** renderReport returns the whole report.html: the verdict, the fault timeline, the charts and the run. */
export function renderReport(history: History, verdict: Verdict): string {
  const data = series(history);
  const bars = faultBars(history);
  const endMs = Math.max(runEndMs(history.events), data.starts.length * data.binMs);
  const throughput = [
    { name: 'acks/s', color: '#1f77b4', values: data.acksPerSecond },
    { name: 'consumes/s', color: '#2ca02c', values: data.consumesPerSecond },
  ];
  const latency = [
    { name: 'p50 ms', color: '#ff7f0e', values: data.latencyP50Ms },
    { name: 'p99 ms', color: '#d62728', values: data.latencyP99Ms },
  ];
  const chartData = { binMs: data.binMs, starts: data.starts, lines: { 'throughput-chart': throughput, 'latency-chart': latency } };
  const binNote = data.binMs === 1000 ? 'per second' : `in bins of ${data.binMs / 1000} s`;
  return [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>raftbus chaos ${verdict.ok ? 'PASS' : 'FAIL'}, seed ${history.seed}</title><style>${style}</style></head><body>`,
    `<h1>raftbus chaos run, seed ${history.seed}</h1>`,
    verdictSection(verdict),
    `<section id="faults"><h2>Faults</h2>${faultTimeline(bars, endMs)}</section>`,
    `<section id="throughput"><h2>Throughput</h2>${lineChart({ id: 'throughput-chart', title: `acknowledged produces and consumed records, ${binNote}`, unit: 'records/s', data, lines: throughput, bars })}</section>`,
    `<section id="latency"><h2>Produce latency</h2>${lineChart({ id: 'latency-chart', title: `produce latency (invoke to ack) p50 and p99 by ack time, ${binNote}`, unit: 'ms', data, lines: latency, bars })}</section>`,
    runSection(history),
    `<script type="application/json" id="chart-data">${JSON.stringify(chartData).replace(/</g, '\\u003c')}</script>`,
    `<script>${script}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
