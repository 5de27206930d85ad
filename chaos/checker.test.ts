// The checker against histories written as scripts, each with one planted anomaly, and against
// random clean histories from a model of the broker, with and without one injected anomaly.
// Replay a failing property with RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run chaos/checker.test.ts
//
// Script lines (t advances 10 ms a line):
//   send <producer> <value> <topic>/<partition>@<offset>   invoke, then acknowledge at that offset
//   invoke <producer> <value> <topic>                       invoke only
//   ok <value> <topic>/<partition>@<offset>                 acknowledge an earlier invoke
//   fail <value>                                            the send failed (indeterminate)
//   consume <group>/<consumer> <topic>/<partition>@<offset> <value>
//   commit <group>/<consumer> <topic>/<partition> <offset>
//   final <topic>/<partition>@<first offset> <value>...     the final read; "_" is an offset with no record
//   fault start|end <fault>
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anomalyKinds, check, examplesPerKindMax, type AnomalyKind, type Verdict } from './checker.js';
import { HistoryFormatError, type History, type HistoryEvent } from './history.js';

function parseLocation(text: string): { topic: string; partition: number; offset: number } {
  const match = /^([^/]+)\/(\d+)(?:@(\d+))?$/.exec(text);
  if (match === null) throw new Error(`bad location ${text}`);
  return { topic: match[1]!, partition: Number(match[2]), offset: Number(match[3] ?? -1) };
}

function scriptLine(words: string[], t: number): HistoryEvent[] {
  const [command, ...args] = words;
  const id = (value: string): string => `op-${value}`;
  switch (command) {
    case 'send': {
      const [producer, value, where] = args as [string, string, string];
      const { topic, partition, offset } = parseLocation(where);
      return [
        { kind: 'produce-invoke', t, id: id(value), producer, topic, key: value, value },
        { kind: 'produce-ok', t: t + 1, id: id(value), topic, partition, offset },
      ];
    }
    case 'invoke': {
      const [producer, value, topic] = args as [string, string, string];
      return [{ kind: 'produce-invoke', t, id: id(value), producer, topic, key: value, value }];
    }
    case 'ok': {
      const [value, where] = args as [string, string];
      return [{ kind: 'produce-ok', t, id: id(value), ...parseLocation(where) }];
    }
    case 'fail':
      return [{ kind: 'produce-fail', t, id: id(args[0]!), error: 'TimeoutError: no answer' }];
    case 'consume': {
      const [member, where, value] = args as [string, string, string];
      const [group, consumer] = member.split('/') as [string, string];
      return [{ kind: 'consume', t, consumer, group, ...parseLocation(where), value }];
    }
    case 'commit': {
      const [member, where, offset] = args as [string, string, string];
      const [group, consumer] = member.split('/') as [string, string];
      const { topic, partition } = parseLocation(where);
      return [{ kind: 'commit', t, consumer, group, topic, partition, offset: Number(offset) }];
    }
    case 'final': {
      const [where, ...values] = args as [string, ...string[]];
      const { topic, partition, offset } = parseLocation(where);
      return values.flatMap((value, i) => (value === '_' ? [] : [{ kind: 'final-read' as const, t: t + i / 100, topic, partition, offset: offset + i, value }]));
    }
    case 'fault':
      return [{ kind: 'fault', t, fault: args[1]!, phase: args[0] as 'start' | 'end', detail: {} }];
    default:
      throw new Error(`unknown script command ${command}`);
  }
}

function script(text: string): History {
  const lines = text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
  return { seed: 1, startedAt: '2026-01-01T00:00:00.000Z', config: {}, events: lines.flatMap((line, i) => scriptLine(line.split(/\s+/), (i + 1) * 10)) };
}

/** found lists the anomaly kinds a verdict reports. */
function found(verdict: Verdict): AnomalyKind[] {
  return anomalyKinds.filter((kind) => verdict.counts[kind]! > 0);
}

const clean = `
  send p0 a t/0@0
  send p1 b t/0@1
  send p0 c t/0@2
  invoke p1 d t
  fail d                      # indeterminate; it was written at 3
  send p0 e t/1@0
  consume g0/c0 t/0@0 a
  consume g0/c0 t/0@1 b
  commit g0/c0 t/0 2
  consume g0/c1 t/1@0 e
  commit g0/c1 t/1 1
  consume g0/c1 t/1@0 e       # a re-delivery
  final t/0@0 a b c d
  final t/1@0 e
`;

describe('check on scripted histories', () => {
  it('passes a clean history and counts what happened', () => {
    const verdict = check(script(clean));
    expect(found(verdict)).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.counts).toMatchObject({ invoked: 5, acknowledged: 4, indeterminate: 1, indeterminateWritten: 1, inFlight: 0, consumed: 4, finalRead: 5, redelivered: 1, 'redelivered.g0': 1, deletedByRetention: 0 });
  });

  const planted: { kind: AnomalyKind; what: string; script: string; example: Record<string, unknown> }[] = [
    {
      kind: 'lost',
      what: 'an acknowledged value missing from the final read',
      script: `send p0 a t/0@0
               send p0 b t/0@1
               send p0 c t/0@2
               final t/0@0 a b`,
      example: { value: 'c', topic: 't', partition: 0, offset: 2 },
    },
    {
      kind: 'duplicated',
      what: 'a value at two offsets of the final read',
      script: `send p0 a t/0@0
               send p0 b t/0@1
               final t/0@0 a b a`,
      example: { value: 'a', seenIn: 'final-read' },
    },
    {
      kind: 'duplicated',
      what: 'a value consumed at two offsets',
      script: `send p0 a t/0@0
               consume g0/c0 t/0@0 a
               consume g0/c0 t/0@1 a
               final t/0@0 a`,
      example: { value: 'a', seenIn: 'consume' },
    },
    {
      kind: 'reordered',
      what: 'a value sent after another was acknowledged, written below it',
      script: `send p0 a t/0@1
               send p1 b t/0@2
               send p0 c t/0@0
               final t/0@0 c a b`,
      example: { producer: 'p0', first: { value: 'a', offset: 1 }, second: { value: 'c', offset: 0 } },
    },
    {
      kind: 'phantom',
      what: 'a value in the final read that nobody sent',
      script: `send p0 a t/0@0
               final t/0@0 a z`,
      example: { value: 'z', seenIn: 'final-read' },
    },
    {
      kind: 'phantom',
      what: 'a consumed value that nobody sent',
      script: `send p0 a t/0@0
               consume g0/c0 t/0@1 z
               final t/0@0 a`,
      example: { value: 'z', seenIn: 'consume' },
    },
    {
      kind: 'conflicting',
      what: 'a consumer read a value the final read has not at that offset (a dirty read)',
      script: `send p0 a t/0@0
               invoke p1 x t
               fail x
               send p0 b t/0@1
               consume g0/c0 t/0@1 x
               final t/0@0 a b`,
      example: { topic: 't', partition: 0, offset: 1 },
    },
    {
      kind: 'ackMismatch',
      what: 'an acknowledged offset where the value is not',
      script: `send p0 a t/0@0
               send p0 b t/0@5
               final t/0@0 a b`,
      example: { value: 'b', acknowledged: { topic: 't', partition: 0, offset: 5 }, actual: [{ topic: 't', partition: 0, offset: 1 }] },
    },
    {
      kind: 'commitsBackwards',
      what: 'a commit sent after a higher one was acknowledged',
      script: `send p0 a t/0@0
               send p0 b t/0@1
               consume g0/c0 t/0@0 a
               consume g0/c0 t/0@1 b
               commit g0/c0 t/0 2
               consume g0/c1 t/0@0 a
               commit g0/c1 t/0 1
               final t/0@0 a b`,
      example: { group: 'g0', earlier: expect.objectContaining({ consumer: 'c0', offset: 2 }), later: expect.objectContaining({ consumer: 'c1', offset: 1 }) },
    },
    {
      kind: 'groupMissed',
      what: 'a group committed past a record it never consumed',
      script: `send p0 a t/0@0
               send p0 b t/0@1
               send p0 c t/0@2
               consume g0/c0 t/0@0 a
               consume g0/c0 t/0@1 b
               commit g0/c0 t/0 3
               final t/0@0 a b c`,
      example: { group: 'g0', offset: 2, value: 'c', committedOffset: 3 },
    },
  ];

  for (const { kind, what, script: text, example } of planted) {
    it(`finds ${kind}: ${what}`, () => {
      const verdict = check(script(text));
      expect(found(verdict)).toEqual([kind]);
      expect(verdict.ok).toBe(false);
      expect(verdict.counts[kind]).toBe(1);
      expect(verdict.examples[kind]).toEqual([expect.objectContaining(example)]);
    });
  }

  it('counts an acknowledged value below the final log start as deleted by retention, not lost', () => {
    const verdict = check(script(`send p0 a t/0@0
                                  send p0 b t/0@1
                                  final t/0@1 b`));
    expect(verdict.ok).toBe(true);
    expect(verdict.counts.deletedByRetention).toBe(1);
    expect(verdict.examples.deletedByRetention).toEqual([expect.objectContaining({ value: 'a', finalReadLogStart: 1 })]);
  });

  it('does not order a value after an indeterminate send', () => {
    // a failed, then was written after c: nothing was promised about a's place.
    const verdict = check(script(`invoke p0 a t
                                  fail a
                                  send p0 c t/0@0
                                  final t/0@0 c a`));
    expect(verdict.ok).toBe(true);
    expect(verdict.counts).toMatchObject({ indeterminate: 1, indeterminateWritten: 1 });
  });

  it('does not call overlapping commits of two members backwards', () => {
    // c1 may have sent its commit before c0's was acknowledged: its last event came before that ack.
    const verdict = check(script(`send p0 a t/0@0
                                  send p0 b t/0@1
                                  consume g0/c0 t/0@0 a
                                  consume g0/c0 t/0@1 b
                                  consume g0/c1 t/0@0 a
                                  commit g0/c0 t/0 2
                                  commit g0/c1 t/0 1
                                  final t/0@0 a b`));
    expect(verdict.ok).toBe(true);
  });

  it('finds every commit of one consumer that goes back', () => {
    const verdict = check(script(`send p0 a t/0@0
                                  consume g0/c0 t/0@0 a
                                  commit g0/c0 t/0 1
                                  commit g0/c0 t/0 0
                                  final t/0@0 a`));
    expect(found(verdict)).toEqual(['commitsBackwards']);
  });

  it('keeps at most examplesPerKindMax examples but counts them all', () => {
    const sends = Array.from({ length: 15 }, (_, i) => `send p0 v${i} t/0@${i + 1}`).join('\n');
    const verdict = check(script(`${sends}\nsend p0 first t/0@0\nfinal t/0@0 first`));
    expect(verdict.counts.lost).toBe(15);
    expect(verdict.examples.lost).toHaveLength(examplesPerKindMax);
  });

  it('rejects a history that breaks its contract', () => {
    expect(() => check(script('ok a t/0@0'))).toThrow(HistoryFormatError);
    const twice = script('send p0 a t/0@0');
    twice.events.push({ kind: 'produce-invoke', t: 50, id: 'another', producer: 'p1', topic: 't', key: 'a', value: 'a' });
    expect(() => check(twice)).toThrow(/sent twice/);
    expect(() => check(script('send p0 a t/0@0\nfail a'))).toThrow(/two outcomes/);
  });
});

// ---- random clean histories from a model, and one anomaly injected into them ----

interface Shape {
  readonly producers: number;
  readonly groups: number;
  readonly consumersPerGroup: number;
  readonly partitions: number;
  readonly retention: boolean;
}

const topics = ['t0', 't1'] as const;

interface Op {
  readonly id: string;
  readonly value: string;
  readonly topic: string;
  readonly partition: number;
  written: number | undefined;
}

/**
 * simulate runs a model broker driven by `choices`: sequential producers whose sends are written,
 * acknowledged, fail before or after being written, or are written late; consumer groups that read
 * from a position, commit it and rewind to the commit (a rebalance); then the final read, its
 * start moved up by retention now and then. Everything it records is correct.
 */
function simulate(choices: readonly number[], shape: Shape): History {
  let cursor = 0;
  const next = (n: number): number => choices[cursor++ % choices.length]! % n;
  const events: HistoryEvent[] = [];
  let t = 0;
  const now = (): number => (t += 1 + next(3));
  const logs = new Map<string, string[]>(topics.flatMap((topic) => Array.from({ length: shape.partitions }, (_, partition) => [`${topic}/${partition}`, [] as string[]] as const)));
  const write = (op: { topic: string; partition: number; value: string }): number => logs.get(`${op.topic}/${op.partition}`)!.push(op.value) - 1;
  const producers = Array.from({ length: shape.producers }, (_, p) => ({ name: `p${p}`, sequence: 0, op: undefined as Op | undefined }));
  const late: Op[] = [];
  const groups = Array.from({ length: shape.groups }, (_, g) => ({ name: `g${g}`, position: new Map<string, number>(), committed: new Map<string, number>() }));
  for (let step = 0; step < choices.length; step++) {
    const action = next(8);
    if (action <= 2) {
      const producer = producers[next(producers.length)]!;
      const op = producer.op;
      if (op === undefined) {
        const topic = topics[next(topics.length)]!;
        const value = `${producer.name}-${producer.sequence++}`;
        producer.op = { id: `op-${value}`, value, topic, partition: next(shape.partitions), written: undefined };
        events.push({ kind: 'produce-invoke', t: now(), id: producer.op.id, producer: producer.name, topic, key: value, value });
      } else {
        const outcome = next(6);
        if (op.written === undefined && outcome <= 3) {
          op.written = write(op); // its outcome comes at a later step
          continue;
        }
        if (op.written !== undefined && outcome <= 4) events.push({ kind: 'produce-ok', t: now(), id: op.id, topic: op.topic, partition: op.partition, offset: op.written });
        else events.push({ kind: 'produce-fail', t: now(), id: op.id, error: 'TimeoutError' }); // written or not
        if (op.written === undefined && outcome === 5) late.push(op); // failed, yet written later
        producer.op = undefined;
      }
    } else if (action === 3 && late.length > 0) {
      write(late.splice(next(late.length), 1)[0]!);
    } else if (action >= 4) {
      const group = groups[next(groups.length)]!;
      const consumer = `${group.name}-c${next(shape.consumersPerGroup)}`;
      const key = `${topics[next(topics.length)]!}/${next(shape.partitions)}`;
      const [topic, partition] = [key.split('/')[0]!, Number(key.split('/')[1])];
      const position = group.position.get(key) ?? 0;
      if (action <= 5) {
        const log = logs.get(key)!;
        const end = Math.min(log.length, position + 1 + next(3));
        for (let offset = position; offset < end; offset++) events.push({ kind: 'consume', t: now(), consumer, group: group.name, topic, partition, offset, value: log[offset]! });
        group.position.set(key, Math.max(position, end));
      } else if (action === 6) {
        events.push({ kind: 'commit', t: now(), consumer, group: group.name, topic, partition, offset: position });
        group.committed.set(key, position);
      } else {
        group.position.set(key, group.committed.get(key) ?? 0);
      }
    }
  }
  for (const [key, log] of logs) {
    const [topic, partition] = [key.split('/')[0]!, Number(key.split('/')[1])];
    const start = shape.retention && log.length > 0 && next(3) === 0 ? next(log.length) : 0;
    for (let offset = start; offset < log.length; offset++) events.push({ kind: 'final-read', t: now(), topic, partition, offset, value: log[offset]! });
  }
  return { seed: 0, startedAt: '2026-01-01T00:00:00.000Z', config: { shape }, events };
}

type Event<K extends HistoryEvent['kind']> = Extract<HistoryEvent, { kind: K }>;

function ofKind<K extends HistoryEvent['kind']>(events: readonly HistoryEvent[], kind: K): Event<K>[] {
  return events.filter((event): event is Event<K> => event.kind === kind);
}

/** endOffset returns one past the highest offset anything in the history names for a partition. */
function endOffset(events: readonly HistoryEvent[], topic: string, partition: number): number {
  let end = 0;
  for (const event of events) {
    if ((event.kind === 'final-read' || event.kind === 'consume' || event.kind === 'produce-ok' || event.kind === 'commit') && event.topic === topic && event.partition === partition) end = Math.max(end, event.offset + 1);
  }
  return end;
}

/**
 * inject plants one anomaly of `kind` into a clean history, built so that it is the only anomaly;
 * pick chooses among the candidates. Returns undefined when the history has no place for it.
 */
function inject(kind: AnomalyKind, history: History, pick: (n: number) => number): History | undefined {
  const events = history.events;
  const lastT = events.reduce((t, event) => Math.max(t, event.t), 0);
  const choose = <T>(candidates: T[]): T | undefined => (candidates.length === 0 ? undefined : candidates[pick(candidates.length)]);
  const replace = (changed: HistoryEvent[]): History => ({ ...history, events: changed });
  const finals = ofKind(events, 'final-read');
  const acks = new Map(ofKind(events, 'produce-ok').map((ok) => [ok.id, ok]));
  const invokes = ofKind(events, 'produce-invoke');
  const finalOf = (value: string): Event<'final-read'> | undefined => finals.find((read) => read.value === value);
  const logStart = (topic: string, partition: number): number => Math.min(...finals.filter((read) => read.topic === topic && read.partition === partition).map((read) => read.offset));
  switch (kind) {
    case 'lost': {
      const read = choose(invokes.filter((invoke) => acks.has(invoke.id)).map((invoke) => finalOf(invoke.value)).filter((read) => read !== undefined && read.offset > logStart(read.topic, read.partition)));
      return read === undefined ? undefined : replace(events.filter((event) => event !== read));
    }
    case 'duplicated': {
      const read = choose(finals);
      if (read === undefined) return undefined;
      return replace([...events, { ...read, t: lastT + 1, offset: endOffset(events, read.topic, read.partition) }]);
    }
    case 'reordered':
      return injectReorder(history, pick);
    case 'phantom': {
      const [topic, partition] = [topics[pick(topics.length)]!, 0];
      return replace([...events, { kind: 'final-read', t: lastT + 1, topic, partition, offset: endOffset(events, topic, partition), value: 'nobody-sent-this' }]);
    }
    case 'conflicting': {
      const read = choose(finals);
      if (read === undefined) return undefined;
      const id = 'op-dirty';
      return replace([
        ...events,
        { kind: 'produce-invoke', t: lastT + 1, id, producer: 'px', topic: read.topic, key: 'k', value: 'dirty' },
        { kind: 'produce-fail', t: lastT + 2, id, error: 'TimeoutError' },
        { kind: 'consume', t: lastT + 3, consumer: 'gx-c0', group: 'gx', topic: read.topic, partition: read.partition, offset: read.offset, value: 'dirty' },
      ]);
    }
    case 'ackMismatch': {
      const ack = choose(invokes.filter((invoke) => acks.has(invoke.id) && finalOf(invoke.value) !== undefined).map((invoke) => acks.get(invoke.id)!));
      if (ack === undefined) return undefined;
      return replace(events.map((event) => (event === ack ? { ...ack, offset: endOffset(events, ack.topic, ack.partition) + 5 } : event)));
    }
    case 'commitsBackwards': {
      const commit = choose(ofKind(events, 'commit').filter((candidate) => candidate.offset > 0));
      return commit === undefined ? undefined : replace([...events, { ...commit, t: lastT + 1, offset: commit.offset - 1 }]);
    }
    case 'groupMissed':
      return injectGroupMissed(history, pick);
  }
}

/** injectReorder swaps two acknowledged values of one producer in one partition, everywhere they appear. */
function injectReorder(history: History, pick: (n: number) => number): History | undefined {
  const acks = ofKind(history.events, 'produce-ok');
  const producerOf = new Map(ofKind(history.events, 'produce-invoke').map((invoke) => [invoke.id, invoke]));
  const pairs: [Event<'produce-ok'>, Event<'produce-ok'>][] = [];
  acks.forEach((first, i) => {
    for (const second of acks.slice(i + 1)) {
      if (producerOf.get(first.id)!.producer === producerOf.get(second.id)!.producer && first.topic === second.topic && first.partition === second.partition) pairs.push([first, second]);
    }
  });
  if (pairs.length === 0) return undefined;
  const [first, second] = pairs[pick(pairs.length)]!;
  const [a, b] = [producerOf.get(first.id)!.value, producerOf.get(second.id)!.value];
  const swapped = (value: string): string => (value === a ? b : value === b ? a : value);
  const events = history.events.map((event): HistoryEvent => {
    if (event === first) return { ...first, offset: second.offset };
    if (event === second) return { ...second, offset: first.offset };
    if (event.kind === 'final-read' || event.kind === 'consume') return { ...event, value: swapped(event.value) };
    return event;
  });
  return { ...history, events };
}

/** injectGroupMissed drops every consume by one group of one record below the group's highest commit. */
function injectGroupMissed(history: History, pick: (n: number) => number): History | undefined {
  const committed = new Map<string, number>();
  for (const commit of ofKind(history.events, 'commit')) {
    const key = `${commit.group}/${commit.topic}/${commit.partition}`;
    committed.set(key, Math.max(committed.get(key) ?? 0, commit.offset));
  }
  const finalOffsets = new Set(ofKind(history.events, 'final-read').map((read) => `${read.topic}/${read.partition}@${read.offset}`));
  const candidates = ofKind(history.events, 'consume').filter((consume) => consume.offset < (committed.get(`${consume.group}/${consume.topic}/${consume.partition}`) ?? 0) && finalOffsets.has(`${consume.topic}/${consume.partition}@${consume.offset}`));
  if (candidates.length === 0) return undefined;
  const victim = candidates[pick(candidates.length)]!;
  const sameRecord = (event: HistoryEvent): boolean => event.kind === 'consume' && event.group === victim.group && event.topic === victim.topic && event.partition === victim.partition && event.offset === victim.offset;
  return { ...history, events: history.events.filter((event) => !sameRecord(event)) };
}

const shapeArbitrary = fc.record({
  producers: fc.integer({ min: 1, max: 3 }),
  groups: fc.integer({ min: 1, max: 2 }),
  consumersPerGroup: fc.integer({ min: 1, max: 2 }),
  partitions: fc.integer({ min: 1, max: 3 }),
  retention: fc.boolean(),
});
const choicesArbitrary = fc.array(fc.nat({ max: 10_000 }), { minLength: 80, maxLength: 600 });

describe('check on random histories', () => {
  it('passes every clean history of the model', () => {
    fc.assert(
      fc.property(choicesArbitrary, shapeArbitrary, (choices, shape) => {
        const verdict = check(simulate(choices, shape));
        expect(found(verdict)).toEqual([]);
        expect(verdict.ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('finds one anomaly injected into a clean history, and only that kind', () => {
    const injected = new Map<AnomalyKind, number>();
    fc.assert(
      fc.property(choicesArbitrary, shapeArbitrary, fc.constantFrom(...anomalyKinds), fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), (choices, shape, kind, picks) => {
        let used = 0;
        const history = inject(kind, simulate(choices, shape), (n) => picks[used++ % picks.length]! % n);
        fc.pre(history !== undefined);
        const verdict = check(history);
        expect(found(verdict)).toEqual([kind]);
        expect(verdict.ok).toBe(false);
        injected.set(kind, (injected.get(kind) ?? 0) + 1);
      }),
      { numRuns: 400 },
    );
    // Every kind was injected somewhere: the generator leaves room for each.
    expect([...injected.keys()].sort()).toEqual([...anomalyKinds].sort());
  });
});
