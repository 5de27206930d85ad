// The chaos checker: judges a history from the outside and changes nothing. check(history) indexes
// the events once, then looks for each kind of anomaly on its own:
//   lost              an acknowledged value that is nowhere in the final read, though its offset is
//                     at or above the log start there (below it, retention deleted it: counted as
//                     deletedByRetention, not lost);
//   duplicated        a value at two offsets in the final read, or consumed at two offsets;
//   reordered         within one partition, a producer's value B invoked after its value A was
//                     acknowledged, yet B sits below A;
//   phantom           a value consumed or read at the end that no producer ever sent;
//   conflicting       two values seen at one topic/partition/offset, across consumes, acks and the
//                     final read;
//   ackMismatch       an acknowledged offset that is not where the value is (the final read; for a
//                     value retention deleted, where it was consumed);
//   commitsBackwards  a group's commit of a partition, sent after another commit of it was
//                     acknowledged, with a lower offset;
//   groupMissed       a record of the final read below a group's highest acknowledged commit that
//                     no member of the group consumed.
// "After" is real-time order, read off the recording order of the events (see chaos/history.ts).
// Where a value sits: the lowest offset in the final read, else where it was acknowledged, else
// the lowest offset it was consumed at.
import { HistoryFormatError, type History, type HistoryEvent } from './history.js';

export const anomalyKinds = ['lost', 'duplicated', 'reordered', 'phantom', 'conflicting', 'ackMismatch', 'commitsBackwards', 'groupMissed'] as const;
export type AnomalyKind = (typeof anomalyKinds)[number];

/** examplesPerKindMax: how many examples a verdict keeps of each kind. */
export const examplesPerKindMax = 10;

/**
 * Verdict: ok is false when any anomaly kind has a count above 0. counts holds every anomaly kind
 * (0 when none) and the informational counts; examples holds up to examplesPerKindMax of each
 * anomaly kind found, and of deletedByRetention.
 */
export interface Verdict {
  ok: boolean;
  counts: Record<string, number>;
  examples: Record<string, unknown[]>;
}

type EventOf<K extends HistoryEvent['kind']> = Extract<HistoryEvent, { kind: K }>;

interface Location {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

interface Invocation {
  readonly index: number;
  readonly event: EventOf<'produce-invoke'>;
  ok: { readonly index: number; readonly event: EventOf<'produce-ok'> } | undefined;
  failed: boolean;
}

interface Commit {
  readonly index: number;
  readonly event: EventOf<'commit'>;
  /** sentAfter: the index of an event the commit was certainly sent after (-1: none known). */
  readonly sentAfter: number;
}

interface Index {
  readonly invocations: Map<string, Invocation>;
  readonly byValue: Map<string, Invocation>;
  /** finalRead: partition key -> offset -> value. */
  readonly finalRead: Map<string, Map<number, string>>;
  /** finalLocations: value -> where the final read found it, lowest offset first. */
  readonly finalLocations: Map<string, Location[]>;
  /** consumedLocations: value -> the distinct places it was consumed at. */
  readonly consumedLocations: Map<string, Location[]>;
  readonly consumes: { readonly index: number; readonly event: EventOf<'consume'> }[];
  readonly finalReads: EventOf<'final-read'>[];
  readonly commits: Commit[];
  faults: number;
}

class Findings {
  readonly counts: Record<string, number> = {};
  readonly examples: Record<string, unknown[]> = {};

  constructor() {
    for (const kind of anomalyKinds) {
      this.counts[kind] = 0;
      this.examples[kind] = [];
    }
  }

  /** found counts one anomaly (or deletion) of `kind`, keeping its example while there is room. */
  found(kind: AnomalyKind | 'deletedByRetention', example: unknown): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    const examples = (this.examples[kind] ??= []);
    if (examples.length < examplesPerKindMax) examples.push(example);
  }

  add(name: string, amount: number): void {
    this.counts[name] = (this.counts[name] ?? 0) + amount;
  }
}

/** check judges a history; throws HistoryFormatError if the history breaks its contract (an outcome without an invoke, a value sent twice). */
export function check(history: History): Verdict {
  const index = indexHistory(history.events);
  const findings = new Findings();
  findLost(index, findings);
  findDuplicated(index, findings);
  findReordered(index, findings);
  findPhantoms(index, findings);
  findConflicts(index, findings);
  findAckMismatches(index, findings);
  findCommitsBackwards(index, findings);
  findGroupMissed(index, findings);
  countInformation(index, findings);
  const ok = anomalyKinds.every((kind) => findings.counts[kind] === 0);
  return { ok, counts: findings.counts, examples: findings.examples };
}

/** partitionKey names a topic partition in the checker's maps. */
function partitionKey(location: { readonly topic: string; readonly partition: number }): string {
  return `${location.topic}/${location.partition}`;
}

function offsetKey(location: Location): string {
  return `${location.topic}/${location.partition}@${location.offset}`;
}

function locationOf(location: Location): Location {
  return { topic: location.topic, partition: location.partition, offset: location.offset };
}

function pushLocation(map: Map<string, Location[]>, value: string, location: Location): void {
  const locations = map.get(value);
  if (locations === undefined) map.set(value, [locationOf(location)]);
  else if (!locations.some((known) => offsetKey(known) === offsetKey(location))) locations.push(locationOf(location));
}

function indexHistory(events: readonly HistoryEvent[]): Index {
  const index: Index = { invocations: new Map(), byValue: new Map(), finalRead: new Map(), finalLocations: new Map(), consumedLocations: new Map(), consumes: [], finalReads: [], commits: [], faults: 0 };
  /** sequence: consumer -> the index of its last consume, and of its last commit of each partition. */
  const sequence = new Map<string, { consumed: number; committed: Map<string, number> }>();
  events.forEach((event, at) => {
    switch (event.kind) {
      case 'produce-invoke':
        return indexInvoke(index, event, at);
      case 'produce-ok':
      case 'produce-fail':
        return indexOutcome(index, event, at);
      case 'consume': {
        index.consumes.push({ index: at, event });
        pushLocation(index.consumedLocations, event.value, event);
        const consumer = sequence.get(event.consumer) ?? { consumed: -1, committed: new Map() };
        consumer.consumed = at;
        sequence.set(event.consumer, consumer);
        return;
      }
      case 'commit': {
        const consumer = sequence.get(event.consumer) ?? { consumed: -1, committed: new Map() };
        const sentAfter = Math.max(consumer.consumed, consumer.committed.get(partitionKey(event)) ?? -1);
        consumer.committed.set(partitionKey(event), at);
        sequence.set(event.consumer, consumer);
        index.commits.push({ index: at, event, sentAfter });
        return;
      }
      case 'final-read':
        return indexFinalRead(index, event);
      case 'fault':
        if (event.phase === 'start') index.faults++;
        return;
      case 'note':
        return;
    }
  });
  for (const locations of index.finalLocations.values()) locations.sort((a, b) => a.offset - b.offset);
  return index;
}

function indexInvoke(index: Index, event: EventOf<'produce-invoke'>, at: number): void {
  if (index.invocations.has(event.id)) throw new HistoryFormatError(`produce id ${event.id} is invoked twice`, `event ${at}`);
  if (index.byValue.has(event.value)) throw new HistoryFormatError(`value ${JSON.stringify(event.value)} is sent twice (values must be unique in a run)`, `event ${at}`);
  const invocation: Invocation = { index: at, event, ok: undefined, failed: false };
  index.invocations.set(event.id, invocation);
  index.byValue.set(event.value, invocation);
}

function indexOutcome(index: Index, event: EventOf<'produce-ok'> | EventOf<'produce-fail'>, at: number): void {
  const invocation = index.invocations.get(event.id);
  if (invocation === undefined) throw new HistoryFormatError(`${event.kind} for produce id ${event.id}, which was not invoked before`, `event ${at}`);
  if (invocation.ok !== undefined || invocation.failed) throw new HistoryFormatError(`produce id ${event.id} has two outcomes`, `event ${at}`);
  if (event.kind === 'produce-fail') {
    invocation.failed = true;
    return;
  }
  if (event.topic !== invocation.event.topic) throw new HistoryFormatError(`produce id ${event.id} was sent to ${invocation.event.topic} but acknowledged in ${event.topic}`, `event ${at}`);
  invocation.ok = { index: at, event };
}

function indexFinalRead(index: Index, event: EventOf<'final-read'>): void {
  index.finalReads.push(event);
  const key = partitionKey(event);
  const partition = index.finalRead.get(key) ?? new Map<number, string>();
  index.finalRead.set(key, partition);
  const earlier = partition.get(event.offset);
  // Two values at one offset of the final read: keep the first here, findConflicts reports both.
  if (earlier === undefined) partition.set(event.offset, event.value);
  if (earlier === undefined || earlier === event.value) pushLocation(index.finalLocations, event.value, event);
}

/** logStartOf returns the lowest offset of a partition's final read (undefined: the read found nothing). */
function logStartOf(index: Index, key: string): number | undefined {
  const partition = index.finalRead.get(key);
  if (partition === undefined || partition.size === 0) return undefined;
  let lowest = Infinity;
  for (const offset of partition.keys()) lowest = Math.min(lowest, offset);
  return lowest;
}

function findLost(index: Index, findings: Findings): void {
  const logStarts = new Map<string, number | undefined>();
  for (const invocation of index.invocations.values()) {
    if (invocation.ok === undefined || index.finalLocations.has(invocation.event.value)) continue;
    const ack = invocation.ok.event;
    const key = partitionKey(ack);
    if (!logStarts.has(key)) logStarts.set(key, logStartOf(index, key));
    const logStart = logStarts.get(key);
    const example = { value: invocation.event.value, producer: invocation.event.producer, topic: ack.topic, partition: ack.partition, offset: ack.offset, acknowledgedAtMs: ack.t, finalReadLogStart: logStart ?? null };
    findings.found(logStart !== undefined && ack.offset < logStart ? 'deletedByRetention' : 'lost', example);
  }
}

function findDuplicated(index: Index, findings: Findings): void {
  const values = new Set([...index.finalLocations.keys(), ...index.consumedLocations.keys()]);
  for (const value of values) {
    const final = index.finalLocations.get(value) ?? [];
    const consumed = index.consumedLocations.get(value) ?? [];
    if (final.length >= 2) findings.found('duplicated', { value, seenIn: 'final-read', at: final });
    else if (consumed.length >= 2) findings.found('duplicated', { value, seenIn: 'consume', at: consumed });
  }
}

/** placementOf returns where a value sits: the final read's lowest offset (in the acknowledged partition if there), else the ack, else the lowest consume. */
function placementOf(index: Index, invocation: Invocation): Location | undefined {
  const value = invocation.event.value;
  const final = index.finalLocations.get(value);
  if (final !== undefined) {
    const ack = invocation.ok?.event;
    return final.find((location) => ack !== undefined && partitionKey(location) === partitionKey(ack)) ?? final[0];
  }
  if (invocation.ok !== undefined) return locationOf(invocation.ok.event);
  const consumed = index.consumedLocations.get(value);
  return consumed === undefined ? undefined : [...consumed].sort((a, b) => a.offset - b.offset)[0];
}

interface Ordered<T> {
  readonly item: T;
  /** start: the item began after the event at this index. */
  readonly start: number;
  /** done: the item was acknowledged at this index (undefined: never). */
  readonly done: number | undefined;
  readonly position: number;
}

/**
 * inversions yields, for each item L, the item E of highest position among those acknowledged at
 * or before L's start, when E's position is above L's: L came after E in real time but sits below.
 */
function* inversions<T>(items: readonly Ordered<T>[]): Generator<{ earlier: Ordered<T>; later: Ordered<T> }> {
  const acknowledged = items.filter((item) => item.done !== undefined).sort((a, b) => a.done! - b.done!);
  const byStart = [...items].sort((a, b) => a.start - b.start);
  let next = 0;
  let highest: Ordered<T> | undefined;
  for (const later of byStart) {
    while (next < acknowledged.length && acknowledged[next]!.done! <= later.start) {
      const candidate = acknowledged[next++]!;
      if (highest === undefined || candidate.position > highest.position) highest = candidate;
    }
    if (highest !== undefined && highest.position > later.position) yield { earlier: highest, later };
  }
}

function findReordered(index: Index, findings: Findings): void {
  const streams = new Map<string, Ordered<{ value: string; location: Location }>[]>();
  for (const invocation of index.invocations.values()) {
    const location = placementOf(index, invocation);
    if (location === undefined) continue;
    const key = `${invocation.event.producer}\u0000${partitionKey(location)}`;
    const stream = streams.get(key) ?? [];
    streams.set(key, stream);
    stream.push({ item: { value: invocation.event.value, location }, start: invocation.index, done: invocation.ok?.index, position: location.offset });
  }
  for (const [key, stream] of streams) {
    const producer = key.slice(0, key.indexOf('\u0000'));
    for (const { earlier, later } of inversions(stream)) {
      const { topic, partition } = later.item.location;
      findings.found('reordered', { producer, topic, partition, first: { value: earlier.item.value, offset: earlier.position }, second: { value: later.item.value, offset: later.position } });
    }
  }
}

function findPhantoms(index: Index, findings: Findings): void {
  const seen = new Map<string, { seenIn: string; at: Location }>();
  for (const [value, locations] of index.finalLocations) seen.set(value, { seenIn: 'final-read', at: locations[0]! });
  for (const [value, locations] of index.consumedLocations) if (!seen.has(value)) seen.set(value, { seenIn: 'consume', at: locations[0]! });
  for (const [value, where] of seen) if (!index.byValue.has(value)) findings.found('phantom', { value, ...where });
}

function findConflicts(index: Index, findings: Findings): void {
  const observed = new Map<string, { location: Location; values: Map<string, string[]> }>();
  const observe = (location: Location, value: string, source: string): void => {
    const key = offsetKey(location);
    const entry = observed.get(key) ?? { location: locationOf(location), values: new Map<string, string[]>() };
    observed.set(key, entry);
    const sources = entry.values.get(value) ?? [];
    entry.values.set(value, sources);
    if (!sources.includes(source)) sources.push(source);
  };
  for (const invocation of index.invocations.values()) if (invocation.ok !== undefined) observe(invocation.ok.event, invocation.event.value, `ack ${invocation.event.id}`);
  for (const event of index.finalReads) observe(event, event.value, 'final-read');
  for (const { event } of index.consumes) observe(event, event.value, `consume ${event.group}`);
  for (const { location, values } of observed.values()) {
    if (values.size < 2) continue;
    findings.found('conflicting', { ...location, values: [...values].map(([value, sources]) => ({ value, sources })) });
  }
}

function findAckMismatches(index: Index, findings: Findings): void {
  for (const invocation of index.invocations.values()) {
    if (invocation.ok === undefined) continue;
    const value = invocation.event.value;
    const ack = invocation.ok.event;
    const actual = index.finalLocations.get(value) ?? index.consumedLocations.get(value);
    if (actual === undefined || actual.some((location) => offsetKey(location) === offsetKey(ack))) continue;
    findings.found('ackMismatch', { value, producer: invocation.event.producer, acknowledged: locationOf(ack), actual, seenIn: index.finalLocations.has(value) ? 'final-read' : 'consume' });
  }
}

function findCommitsBackwards(index: Index, findings: Findings): void {
  const streams = new Map<string, Ordered<Commit>[]>();
  for (const commit of index.commits) {
    const key = `${commit.event.group}\u0000${partitionKey(commit.event)}`;
    const stream = streams.get(key) ?? [];
    streams.set(key, stream);
    stream.push({ item: commit, start: commit.sentAfter, done: commit.index, position: commit.event.offset });
  }
  for (const stream of streams.values()) {
    for (const { earlier, later } of inversions(stream)) {
      const describe = ({ event }: Commit): Record<string, unknown> => ({ consumer: event.consumer, offset: event.offset, acknowledgedAtMs: event.t });
      const { group, topic, partition } = later.item.event;
      findings.found('commitsBackwards', { group, topic, partition, earlier: describe(earlier.item), later: describe(later.item) });
    }
  }
}

function findGroupMissed(index: Index, findings: Findings): void {
  const committed = new Map<string, EventOf<'commit'>>();
  for (const { event } of index.commits) {
    const key = `${event.group}\u0000${partitionKey(event)}`;
    const highest = committed.get(key);
    if (highest === undefined || event.offset > highest.offset) committed.set(key, event);
  }
  const consumed = new Set(index.consumes.map(({ event }) => `${event.group}\u0000${offsetKey(event)}`));
  for (const commit of committed.values()) {
    const partition = index.finalRead.get(partitionKey(commit));
    if (partition === undefined) continue;
    const missed = [...partition].filter(([offset]) => offset < commit.offset && !consumed.has(`${commit.group}\u0000${offsetKey({ ...commit, offset })}`)).sort(([a], [b]) => a - b);
    for (const [offset, value] of missed) {
      findings.found('groupMissed', { group: commit.group, topic: commit.topic, partition: commit.partition, offset, value, committedOffset: commit.offset, committedBy: commit.consumer });
    }
  }
}

function countInformation(index: Index, findings: Findings): void {
  let acknowledged = 0;
  let indeterminate = 0;
  let indeterminateWritten = 0;
  let inFlight = 0;
  let inFlightWritten = 0;
  for (const invocation of index.invocations.values()) {
    const written = index.finalLocations.has(invocation.event.value) || index.consumedLocations.has(invocation.event.value);
    if (invocation.ok !== undefined) acknowledged++;
    else if (invocation.failed) {
      indeterminate++;
      if (written) indeterminateWritten++;
    } else {
      inFlight++;
      if (written) inFlightWritten++;
    }
  }
  findings.add('invoked', index.invocations.size);
  findings.add('acknowledged', acknowledged);
  findings.add('indeterminate', indeterminate);
  findings.add('indeterminateWritten', indeterminateWritten);
  findings.add('inFlight', inFlight);
  findings.add('inFlightWritten', inFlightWritten);
  findings.add('deletedByRetention', 0);
  findings.add('consumed', index.consumes.length);
  findings.add('finalRead', [...index.finalRead.values()].reduce((sum, partition) => sum + partition.size, 0));
  findings.add('commits', index.commits.length);
  findings.add('faults', index.faults);
  countRedeliveries(index, findings);
}

/** countRedeliveries counts, per group, consumes of an offset the group had consumed before (redelivered) and in all (redelivered.<group>). */
function countRedeliveries(index: Index, findings: Findings): void {
  const seen = new Set<string>();
  findings.add('redelivered', 0);
  for (const { event } of index.consumes) {
    findings.add(`redelivered.${event.group}`, 0);
    const key = `${event.group}\u0000${offsetKey(event)}`;
    if (!seen.has(key)) {
      seen.add(key);
      continue;
    }
    findings.add('redelivered', 1);
    findings.add(`redelivered.${event.group}`, 1);
  }
}
