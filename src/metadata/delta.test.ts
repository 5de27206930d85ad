// Tests of the metadata model: image + delta == next image, snapshots and the codec round-trip,
// impossible records refused loudly, the completed-request memory bounded.
// The properties run the controller's own operations on the evolving image to get valid record
// sequences. fast-check prints the seed and path of a failure; replay it with
//   RAFTBUS_SEED=<seed> (or <seed>:<path>) npx vitest run src/metadata/delta.test.ts
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alterConfigs,
  brokerHeartbeat,
  createPartitions,
  createTopic,
  deleteTopic,
  fenceSilentBrokers,
  registerBroker,
  type Outcome,
  type TopicDescription,
} from '../controller/operations.js';
import { parseTopicConfigs } from '../controller/topic-validation.js';
import { describeTopic } from './image.js';
import { InvalidRequestError, StaleBrokerEpochError, TopicExistsError, UnknownTopicError } from '../errors.js';
import { decodeMetadataSnapshot, decodeRecordBatch, encodeMetadataSnapshot, encodeRecordBatch } from '../rpc/metadata-codec.js';
import { ImpossibleRecordError, MetadataDelta, replayAll, requestsRetainedMax } from './delta.js';
import { MetadataImage } from './image.js';
import type { MetadataRecord } from './records.js';

// ---------------------------------------------------------------------------------------------
// Helpers.

/** seedFromEnv reads RAFTBUS_SEED ("<seed>" or "<seed>:<path>") for fc.assert. */
function seedFromEnv(): { seed?: number; path?: string } {
  const value = process.env['RAFTBUS_SEED'];
  if (value === undefined || value === '') return {};
  const [seed, ...path] = value.split(':');
  return path.length > 0 ? { seed: Number(seed), path: path.join(':') } : { seed: Number(seed) };
}

/**
 * canonical renders an image as JSON that two equal images share: brokers and topics sorted by id
 * (map order is not part of the metadata), completed requests in their order (it decides eviction).
 */
function canonical(image: MetadataImage): string {
  return JSON.stringify({
    offset: image.offset,
    brokers: [...image.brokers]
      .sort(([a], [b]) => a - b)
      .map(([key, b]) => [key, { id: b.id, incarnationId: b.incarnationId, epoch: b.epoch, endpoint: { host: b.endpoint.host, port: b.endpoint.port }, rack: b.rack ?? null, fenced: b.fenced, inControlledShutdown: b.inControlledShutdown }]),
    topics: [...image.topics]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, t]) => [
        key,
        {
          id: t.id,
          name: t.name,
          partitions: t.partitions.map((p) => ({ replicas: [...p.replicas], leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, groupId: p.groupId })),
          configs: [...t.configs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        },
      ]),
    topicIds: [...image.topicIds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    requests: [...image.requests],
    nextGroupId: image.nextGroupId,
    nextProducerId: image.nextProducerId,
  });
}

/**
 * plainPayloads copies each noOp payload into a plain Uint8Array. The codec decodes bytes as a Node
 * Buffer viewing the encoded batch (see codec.bugs.test.ts); the bytes are what must round-trip.
 */
function plainPayloads(records: readonly MetadataRecord[]): MetadataRecord[] {
  return records.map((record) => {
    if (record.type !== 'noOp') return record;
    expect(record.payload).toBeInstanceOf(Uint8Array);
    return { type: 'noOp', payload: Uint8Array.from(record.payload) };
  });
}

/** Entry is one metadata log entry: its index and the records of its batch (none: an empty or membership entry). */
interface Entry {
  readonly offset: number;
  readonly records: readonly MetadataRecord[];
}

/** replayEntries replays entries on base in one delta, as MetadataStateMachine.apply does. */
function replayEntries(base: MetadataImage, entries: readonly Entry[]): MetadataImage {
  const delta = new MetadataDelta(base);
  for (const entry of entries) {
    for (const record of entry.records) delta.replay(record, entry.offset);
    delta.advanceTo(entry.offset);
  }
  return delta.apply();
}

/** restoreSnapshot replays a snapshot's records into the empty image at offset, as MetadataStateMachine.restore does. */
function restoreSnapshot(records: readonly MetadataRecord[], offset: number): MetadataImage {
  return replayEntries(MetadataImage.empty, [{ offset, records }]);
}

// ---------------------------------------------------------------------------------------------
// Random valid histories: commands interpreted by the controller's operations on the current image.

const brokerIds = [1, 2, 3, 4, 5] as const;
const racks = [undefined, 'a', 'b'] as const;
const topicNames = ['orders', 'payments', 'audit.log', 'audit_log', 'clicks'] as const;
const sessionTimeoutMs = 1_000;
const createConfigs: readonly Record<string, string>[] = [
  {},
  { 'retention.ms': '1000' },
  { 'segment.bytes': '1048576', 'max.message.bytes': '500000' },
  { 'compression.type': 'zstd', 'retention.bytes': '-1' },
  { 'cleanup.policy': 'compact' }, // refused: no compaction yet
  { 'max.message.bytes': '999999999' }, // refused: over its limit
];
const alterSets: readonly Record<string, string>[] = [{}, { 'retention.ms': '-1' }, { 'max.message.bytes': '2000000' }, { 'segment.bytes': '1048576' }, { 'compression.type': 'lz4', 'retention.bytes': '4096' }, { 'retention.ms': 'soon' }];
const alterRemoves: readonly (readonly string[])[] = [[], ['retention.ms'], ['max.message.bytes', 'compression.type'], ['segment.bytes'], ['bogus']];

type Command =
  | { readonly kind: 'register'; readonly broker: number; readonly fresh: boolean; readonly rack: number }
  | { readonly kind: 'heartbeat'; readonly broker: number; readonly stale: boolean; readonly caughtUp: boolean; readonly wantShutdown: boolean }
  | { readonly kind: 'fenceSilent'; readonly heardMask: number }
  | { readonly kind: 'createTopic'; readonly name: number; readonly partitions: number; readonly replicationFactor: number; readonly configs: number; readonly retry: number | null }
  | { readonly kind: 'createPartitions'; readonly name: number; readonly add: number }
  | { readonly kind: 'alterConfigs'; readonly name: number; readonly set: number; readonly remove: number }
  | { readonly kind: 'deleteTopic'; readonly name: number; readonly retry: number | null }
  | { readonly kind: 'noOp'; readonly payload: Uint8Array }
  | { readonly kind: 'gap'; readonly entries: number };

const pick = (length: number): fc.Arbitrary<number> => fc.nat({ max: length - 1 });

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('register' as const), broker: pick(brokerIds.length), fresh: fc.boolean(), rack: pick(racks.length) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), broker: pick(brokerIds.length), stale: fc.nat({ max: 9 }).map((n) => n === 0), caughtUp: fc.nat({ max: 4 }).map((n) => n !== 0), wantShutdown: fc.nat({ max: 4 }).map((n) => n === 0) }) },
  {
    weight: 1,
    // Mostly one silent broker; sometimes any set of them.
    arbitrary: fc.record({ kind: fc.constant('fenceSilent' as const), heardMask: fc.oneof(pick(brokerIds.length).map((silent) => 31 & ~(1 << silent)), fc.nat({ max: 31 })) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('createTopic' as const),
      name: pick(topicNames.length),
      partitions: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.constant(0) }),
      replicationFactor: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(4) }),
      configs: pick(createConfigs.length),
      retry: fc.option(fc.nat(), { nil: null }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('createPartitions' as const), name: pick(topicNames.length), add: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('alterConfigs' as const), name: pick(topicNames.length), set: pick(alterSets.length), remove: pick(alterRemoves.length) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deleteTopic' as const), name: pick(topicNames.length), retry: fc.option(fc.nat(), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('noOp' as const), payload: fc.uint8Array({ maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gap' as const), entries: fc.integer({ min: 1, max: 3 }) }) },
);

/** expectedRefusal: the typed errors an operation may answer a random request with. */
function isExpectedRefusal(error: unknown): boolean {
  return error instanceof InvalidRequestError || error instanceof TopicExistsError || error instanceof UnknownTopicError || error instanceof StaleBrokerEpochError;
}

/**
 * History runs commands against the controller operations, appending each outcome's records as one
 * entry at the next offset and replaying it into the next image, step by step.
 */
class History {
  image = MetadataImage.empty;
  readonly entries: Entry[] = [];
  /** images[i] is the image after entries[i]; canonicals[i] is its rendering when it was made. */
  readonly images: MetadataImage[] = [];
  readonly canonicals: string[] = [];
  private nowMs = 0;
  private readonly lastHeardMs = new Map<number, number>();
  private readonly incarnations = new Map<number, number>();
  private readonly requestIds: string[] = [];
  private topicIds = 0;

  /** run registers and unfences a broker of each rack of scenario.start, then runs scenario.commands. */
  run(scenario: Scenario): this {
    const { start, commands } = scenario;
    const startup: Command[] = start.flatMap((rack, index): Command[] => [
      { kind: 'register', broker: index, fresh: false, rack },
      { kind: 'heartbeat', broker: index, stale: false, caughtUp: true, wantShutdown: false },
    ]);
    for (const command of [...startup, ...commands]) {
      this.nowMs += 100;
      try {
        this.execute(command);
      } catch (error) {
        if (!isExpectedRefusal(error)) throw error;
      }
    }
    return this;
  }

  private append(entry: Entry): void {
    this.image = replayEntries(this.image, [entry]);
    this.entries.push(entry);
    this.images.push(this.image);
    this.canonicals.push(canonical(this.image));
  }

  /** commit appends the outcome's records (if any) as the next entry and returns the response. */
  private commit<Response>(outcome: Outcome<Response>): Response {
    if (outcome.records.length > 0) this.append({ offset: this.image.offset + 1, records: outcome.records });
    return outcome.response;
  }

  /** expectDescribed checks that a topic response describes the topic as committed. */
  private expectDescribed(response: TopicDescription): void {
    const topic = this.image.topicByName(response.name);
    expect(topic === undefined ? undefined : describeTopic(topic)).toEqual(response);
  }

  private requestId(retry: number | null): string {
    if (retry !== null && this.requestIds.length > 0) return this.requestIds[retry % this.requestIds.length]!;
    const id = `request-${this.requestIds.length}`;
    this.requestIds.push(id);
    return id;
  }

  /** topicName is the chosen name when that topic exists or none does, else an existing topic's name. */
  private topicName(index: number): string {
    const chosen = topicNames[index]!;
    const existing = [...this.image.topicIds.keys()];
    return this.image.topicIds.has(chosen) || existing.length === 0 ? chosen : existing[index % existing.length]!;
  }

  private execute(command: Command): void {
    switch (command.kind) {
      case 'register': {
        const brokerId = brokerIds[command.broker]!;
        const incarnation = (this.incarnations.get(brokerId) ?? 0) + (command.fresh || !this.incarnations.has(brokerId) ? 1 : 0);
        this.incarnations.set(brokerId, incarnation);
        this.lastHeardMs.set(brokerId, this.nowMs);
        const request = { brokerId, incarnationId: `incarnation-${brokerId}-${incarnation}`, endpoint: { host: `broker-${brokerId}`, port: 9000 + brokerId }, rack: racks[command.rack] };
        const { brokerEpoch } = this.commit(registerBroker(this.image, request));
        expect(this.image.brokers.get(brokerId)?.epoch).toBe(brokerEpoch);
        return;
      }
      case 'heartbeat': {
        // A registered broker when there is one: heartbeats of unknown brokers are all refused alike.
        const registered = [...this.image.brokers.keys()];
        const chosen = brokerIds[command.broker]!;
        const brokerId = this.image.brokers.has(chosen) || registered.length === 0 ? chosen : registered[command.broker % registered.length]!;
        const broker = this.image.brokers.get(brokerId);
        const brokerEpoch = broker === undefined ? 1 : broker.epoch - (command.stale ? 1 : 0);
        const metadataOffset = command.caughtUp ? this.image.offset : Math.max(0, brokerEpoch - 1);
        this.lastHeardMs.set(brokerId, this.nowMs);
        this.commit(brokerHeartbeat(this.image, { brokerId, brokerEpoch, metadataOffset, wantShutdown: command.wantShutdown }));
        return;
      }
      case 'fenceSilent': {
        this.nowMs += sessionTimeoutMs + 1;
        const lastHeardMs = new Map(brokerIds.filter((_, index) => (command.heardMask & (1 << index)) !== 0).map((id) => [id, this.nowMs] as const));
        for (const [id, ms] of lastHeardMs) this.lastHeardMs.set(id, ms);
        this.commit(fenceSilentBrokers(this.image, { nowMs: this.nowMs, sessionTimeoutMs, lastHeardMs: this.lastHeardMs }));
        return;
      }
      case 'createTopic': {
        const request = {
          name: topicNames[command.name]!,
          partitions: command.partitions,
          replicationFactor: command.replicationFactor,
          configs: createConfigs[command.configs]!,
          requestId: this.requestId(command.retry),
        };
        this.expectDescribed(this.commit(createTopic(this.image, request, () => `topic-id-${++this.topicIds}`)));
        return;
      }
      case 'createPartitions': {
        const name = this.topicName(command.name);
        const current = this.image.topicByName(name)?.partitions.length ?? 1;
        this.expectDescribed(this.commit(createPartitions(this.image, { name, partitions: current + command.add })));
        return;
      }
      case 'alterConfigs': {
        const request = { name: this.topicName(command.name), set: alterSets[command.set]!, remove: alterRemoves[command.remove]! };
        const response = this.commit(alterConfigs(this.image, request));
        // A key both set and removed gets a response that differs from what commits: operations.bugs.test.ts.
        if (!request.remove.some((key) => Object.hasOwn(request.set, key))) this.expectDescribed(response);
        return;
      }
      case 'deleteTopic':
        this.commit(deleteTopic(this.image, { name: this.topicName(command.name), requestId: this.requestId(command.retry) }));
        return;
      case 'noOp':
        this.append({ offset: this.image.offset + 1, records: [{ type: 'noOp', payload: command.payload }] });
        return;
      case 'gap':
        this.append({ offset: this.image.offset + command.entries, records: [] });
        return;
    }
  }
}

/** Scenario: the racks (indexes into racks) of the brokers started first, then the commands. */
interface Scenario {
  readonly start: readonly number[];
  readonly commands: readonly Command[];
}

/**
 * scenarioArbitrary gives the inputs of a History; each property builds the History itself, so that
 * an error while building one is a failure fast-check shrinks and reports with its seed.
 */
const scenarioArbitrary: fc.Arbitrary<Scenario> = fc.record({
  start: fc.array(pick(racks.length), { maxLength: brokerIds.length }),
  commands: fc.array(commandArbitrary, { minLength: 1, maxLength: 50, size: 'max' }),
});

/** cutsArbitrary: sorted distinct positions at which to split a history's entries into chunks. */
const cutsArbitrary = fc.uniqueArray(fc.nat({ max: 1_000 }), { maxLength: 8 });

const numRuns = 100;
const emptyCanonical = canonical(MetadataImage.empty);

// ---------------------------------------------------------------------------------------------

describe('image + delta == next image', () => {
  it('the generator reaches interesting images: brokers in every state, topics with configs, leaderless partitions, every record type', () => {
    // Guards the properties below against a generator that only ever produces refusals.
    const seen: Record<string, number> = {};
    const count = (what: string, by = 1): void => {
      seen[what] = (seen[what] ?? 0) + by;
    };
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const history = new History().run(scenario);
        for (const broker of history.image.brokers.values()) {
          count(broker.inControlledShutdown ? 'shutdown' : broker.fenced ? 'fenced' : 'unfenced');
        }
        for (const topic of history.image.topics.values()) {
          count('topics');
          count('configs', topic.configs.size);
          count('leaderless', topic.partitions.filter((partition) => partition.leader === 0).length);
        }
        for (const record of history.entries.flatMap((entry) => entry.records)) {
          count(record.type);
          if (record.type === 'config' && !record.hasValue) count('configRemoved');
        }
      }),
      { ...seedFromEnv(), numRuns },
    );
    const recordTypes = ['registerBroker', 'fenceBroker', 'unfenceBroker', 'brokerShutdown', 'topic', 'partition', 'partitionChange', 'removeTopic', 'config', 'noOp'];
    for (const what of ['unfenced', 'fenced', 'shutdown', 'topics', 'configs', 'leaderless', 'configRemoved', ...recordTypes]) expect(seen[what] ?? 0, what).toBeGreaterThan(0);
  });

  it('replaying a history in one delta, in arbitrary chunks, or entry by entry gives the same image, and never changes a base image', () => {
    fc.assert(
      fc.property(scenarioArbitrary, cutsArbitrary, (scenario, rawCuts) => {
        const history = new History().run(scenario);
        const { entries, images, canonicals } = history;
        const final = canonical(history.image);
        // One delta over the whole history.
        expect(canonical(replayEntries(MetadataImage.empty, entries))).toBe(final);
        // Chunks: the image after chunk k is the base of chunk k + 1.
        const cuts = [...new Set(rawCuts.map((cut) => cut % (entries.length + 1)))].sort((a, b) => a - b);
        let image = MetadataImage.empty;
        let from = 0;
        for (const cut of [...cuts, entries.length]) {
          image = replayEntries(image, entries.slice(from, cut));
          if (cut > 0) expect(canonical(image), `after entry ${cut - 1}`).toBe(canonicals[cut - 1]);
          from = cut;
        }
        expect(canonical(image)).toBe(final);
        // Every image built on the way is as it was when made: no delta wrote into its base.
        images.forEach((built, index) => expect(canonical(built), `image after entry ${index}`).toBe(canonicals[index]));
        expect(canonical(MetadataImage.empty)).toBe(emptyCanonical);
      }),
      { ...seedFromEnv(), numRuns },
    );
  });

  it('keeps every image consistent: topic ids index topics by name, valid configs, partitions dense with distinct replicas and a leader among them', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const history = new History().run(scenario);
        expect(history.images.flatMap((image) => inconsistencies(image))).toEqual([]);
        const offsets = history.entries.map((entry) => entry.offset);
        expect(offsets.every((offset, index) => index === 0 || offset > offsets[index - 1]!)).toBe(true);
      }),
      { ...seedFromEnv(), numRuns },
    );
  });
});

function usable(image: MetadataImage, id: number): boolean {
  const broker = image.brokers.get(id);
  return broker !== undefined && !broker.fenced && !broker.inControlledShutdown;
}

/** inconsistencies lists what is wrong with an image's invariants (empty when none is). */
function inconsistencies(image: MetadataImage): string[] {
  const found: string[] = [];
  const at = `at offset ${image.offset}`;
  const byName = JSON.stringify([...image.topicIds].sort());
  const fromTopics = JSON.stringify([...image.topics.values()].map((topic) => [topic.name, topic.id]).sort());
  if (byName !== fromTopics) found.push(`${at}: topicIds ${byName} do not index topics ${fromTopics}`);
  for (const [id, topic] of image.topics) {
    if (topic.id !== id) found.push(`${at}: topic ${topic.name} keyed by ${id} has id ${topic.id}`);
    if (topic.partitions.length === 0) found.push(`${at}: topic ${topic.name} has no partitions`);
    if (parseTopicConfigs(Object.fromEntries(topic.configs)).kind !== 'ok') found.push(`${at}: topic ${topic.name} has invalid configs ${JSON.stringify([...topic.configs])}`);
    topic.partitions.forEach((partition, index) => {
      const where = `${at}: ${topic.name}-${index} ${JSON.stringify(partition)}`;
      if (new Set(partition.replicas).size !== partition.replicas.length) found.push(`${where} repeats a replica`);
      if (partition.leader !== 0 && !partition.replicas.includes(partition.leader)) found.push(`${where} is led by a non-replica`);
      if (partition.replicas.some((replica) => !image.brokers.has(replica))) found.push(`${where} names an unknown broker`);
      // (That a leader is always usable fails: operations.bugs.test.ts, bug 1.)
      if (partition.leader === 0 && partition.replicas.some((replica) => usable(image, replica))) found.push(`${where} has no leader but a usable replica`);
    });
  }
  for (const [id, broker] of image.brokers) {
    if (broker.id !== id) found.push(`${at}: broker keyed by ${id} has id ${broker.id}`);
    if (broker.epoch > image.offset) found.push(`${at}: broker ${id} has epoch ${broker.epoch} from the future`);
    if (broker.inControlledShutdown && !broker.fenced) found.push(`${at}: broker ${id} is in controlled shutdown but unfenced`);
  }
  if (image.requests.size > requestsRetainedMax) found.push(`${at}: ${image.requests.size} requests retained`);
  return found;
}

describe('snapshots and the codec', () => {
  it('replaying image.toRecords() into the empty image at the same offset gives the image back', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const history = new History().run(scenario);
        const mismatches: string[] = [];
        history.images.forEach((image, index) => {
          const records = image.toRecords();
          const restored = restoreSnapshot(records, image.offset);
          if (canonical(restored) !== history.canonicals[index]) mismatches.push(`image ${index}: ${canonical(restored)} != ${history.canonicals[index]}`);
          // A snapshot of the restored image is the same snapshot.
          if (JSON.stringify(restored.toRecords()) !== JSON.stringify(records)) mismatches.push(`image ${index}: its snapshot differs from the original's`);
        });
        expect(mismatches).toEqual([]);
      }),
      { ...seedFromEnv(), numRuns },
    );
  });

  it('decodeRecordBatch(encodeRecordBatch(records)) deep-equals records, for every entry of a history', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const history = new History().run(scenario);
        const decodedEntries = history.entries.map((entry) => ({ offset: entry.offset, records: decodeRecordBatch(encodeRecordBatch(entry.records)) }));
        expect(decodedEntries.map((entry) => plainPayloads(entry.records))).toEqual(history.entries.map((entry) => entry.records));
        // Replaying decoded records gives the same image as replaying the originals.
        expect(canonical(replayEntries(MetadataImage.empty, decodedEntries))).toBe(canonical(history.image));
      }),
      { ...seedFromEnv(), numRuns },
    );
  });

  it('decodeMetadataSnapshot(encodeMetadataSnapshot(snapshot)) deep-equals the snapshot, and restores the image', () => {
    fc.assert(
      fc.property(scenarioArbitrary, fc.nat({ max: 0xffff_ffff }), (scenario, digest) => {
        const history = new History().run(scenario);
        const snapshot = { records: history.image.toRecords(), digest };
        const decoded = decodeMetadataSnapshot(encodeMetadataSnapshot(snapshot));
        expect(decoded).toEqual(snapshot);
        expect(canonical(restoreSnapshot(decoded.records, history.image.offset))).toBe(canonical(history.image));
      }),
      { ...seedFromEnv(), numRuns },
    );
  });

  it('round-trips every record type with values at the edges of their wire types', () => {
    const records: MetadataRecord[] = [
      { type: 'registerBroker', brokerId: 0xffff_ffff, incarnationId: 'ünïcode-✓', endpoint: { host: '', port: 0 }, rack: '', brokerEpoch: Number.MAX_SAFE_INTEGER },
      { type: 'fenceBroker', brokerId: 1, brokerEpoch: 0 },
      { type: 'unfenceBroker', brokerId: 2, brokerEpoch: 2 ** 40 },
      { type: 'brokerShutdown', brokerId: 3, brokerEpoch: 7 },
      { type: 'topic', name: 'a', topicId: '', requestId: '' },
      { type: 'partition', topicId: 't', partition: 0xffff_ffff, replicas: [], leader: 0, leaderEpoch: 0xffff_ffff, partitionEpoch: 0, groupId: 2 ** 40 },
      { type: 'groupIds', nextGroupId: 2 ** 41 },
      { type: 'producerIds', nextProducerId: 2 ** 50 },
      { type: 'partitionChange', topicId: 't', partition: 0, leaderChanged: false, leader: 0, replicasChanged: true, replicas: [3, 1, 2] },
      { type: 'removeTopic', topicId: 't', requestId: 'r' },
      { type: 'config', topic: 'a', key: 'retention.ms', hasValue: false, value: '' },
      { type: 'completedRequest', requestId: 'r', kind: 'deleteTopic', topic: 'a', topicId: 't' },
      { type: 'noOp', payload: new Uint8Array([0, 255, 1]) },
      { type: 'noOp', payload: new Uint8Array() },
    ];
    expect(plainPayloads(decodeRecordBatch(encodeRecordBatch(records)))).toEqual(records);
    expect(decodeRecordBatch(encodeRecordBatch([]))).toEqual([]);
    const snapshot = decodeMetadataSnapshot(encodeMetadataSnapshot({ records, digest: 0xffff_ffff }));
    expect(snapshot.digest).toBe(0xffff_ffff);
    expect(plainPayloads(snapshot.records)).toEqual(records);
  });
});

// ---------------------------------------------------------------------------------------------

describe('replay refuses impossible records', () => {
  /** base: brokers 1 (epoch 1) and 2 (epoch 2), topic "orders" (id t1) with partition 0 on [1, 2], at offset 3. */
  const base = replayEntries(MetadataImage.empty, [
    { offset: 1, records: [{ type: 'registerBroker', brokerId: 1, incarnationId: 'i1', endpoint: { host: 'h1', port: 1 }, rack: '', brokerEpoch: 1 }] },
    { offset: 2, records: [{ type: 'registerBroker', brokerId: 2, incarnationId: 'i2', endpoint: { host: 'h2', port: 2 }, rack: 'r', brokerEpoch: 2 }] },
    {
      offset: 3,
      records: [
        { type: 'topic', name: 'orders', topicId: 't1', requestId: 'create-orders' },
        { type: 'partition', topicId: 't1', partition: 0, replicas: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 1 },
      ],
    },
  ]);
  const baseCanonical = canonical(base);

  /** expectImpossible replays record on base at offset and expects a loud ImpossibleRecordError naming the record and offset. */
  function expectImpossible(record: MetadataRecord, reason: RegExp, offset = 4): void {
    const delta = new MetadataDelta(base);
    let thrown: unknown;
    try {
      delta.replay(record, offset);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ImpossibleRecordError);
    const error = thrown as ImpossibleRecordError;
    expect(error.name).toBe('ImpossibleRecordError');
    expect(error.record).toBe(record);
    expect(error.offset).toBe(offset);
    expect(error.message).toContain(`impossible ${record.type} record at offset ${offset}`);
    expect(error.message).toMatch(reason);
    expect(canonical(base)).toBe(baseCanonical);
  }

  it('accepts the valid records the cases below spoil', () => {
    const next = replayAll(
      base,
      [
        { type: 'partition', topicId: 't1', partition: 1, replicas: [2, 1], leader: 0, leaderEpoch: 0, partitionEpoch: 0, groupId: 2 },
        { type: 'fenceBroker', brokerId: 1, brokerEpoch: 1 },
        { type: 'unfenceBroker', brokerId: 2, brokerEpoch: 2 },
        { type: 'config', topic: 'orders', key: 'retention.ms', hasValue: true, value: '1' },
        { type: 'registerBroker', brokerId: 1, incarnationId: 'i1b', endpoint: { host: 'h1', port: 1 }, rack: '', brokerEpoch: 4 },
        { type: 'removeTopic', topicId: 't1', requestId: '' },
      ],
      4,
    );
    expect(next.offset).toBe(4);
    expect(next.topics.size).toBe(0);
    expect(next.brokers.get(1)).toMatchObject({ epoch: 4, fenced: true, incarnationId: 'i1b' });
    expect(next.brokers.get(2)).toMatchObject({ fenced: false, rack: 'r' });
  });

  it('a partition of an unknown topic', () => {
    expectImpossible({ type: 'partition', topicId: 'nope', partition: 0, replicas: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /unknown topic id nope/);
  });

  it('a partition number out of sequence: repeated or skipping ahead', () => {
    expectImpossible({ type: 'partition', topicId: 't1', partition: 0, replicas: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /partition 0 of orders, which has 1/);
    expectImpossible({ type: 'partition', topicId: 't1', partition: 2, replicas: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /partition 2 of orders, which has 1/);
  });

  it('replicas that repeat a broker, or none', () => {
    expectImpossible({ type: 'partition', topicId: 't1', partition: 1, replicas: [1, 2, 1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /replicas \[1,2,1\] repeat a broker/);
    expectImpossible({ type: 'partition', topicId: 't1', partition: 1, replicas: [], leader: 0, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /no replicas/);
    expectImpossible({ type: 'partitionChange', topicId: 't1', partition: 0, leaderChanged: false, leader: 0, replicasChanged: true, replicas: [2, 2] }, /repeat a broker/);
  });

  it('the metadata quorum\'s group id on a partition, or id counters that go back', () => {
    expectImpossible({ type: 'partition', topicId: 't1', partition: 1, replicas: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 0 }, /group id 0/);
    expectImpossible({ type: 'groupIds', nextGroupId: 1 }, /next group id 1 below 2/);
    expectImpossible({ type: 'producerIds', nextProducerId: 0 }, /next producer id 0 not above 0/);
  });

  it('a leader that is not among the replicas', () => {
    expectImpossible({ type: 'partition', topicId: 't1', partition: 1, replicas: [1, 2], leader: 3, leaderEpoch: 0, partitionEpoch: 0, groupId: 9 }, /leader 3 is not a replica of \[1,2\]/);
    expectImpossible({ type: 'partitionChange', topicId: 't1', partition: 0, leaderChanged: true, leader: 3, replicasChanged: false, replicas: [] }, /leader 3 is not a replica/);
    // New replicas that drop the current leader, the leader unchanged.
    expectImpossible({ type: 'partitionChange', topicId: 't1', partition: 0, leaderChanged: false, leader: 0, replicasChanged: true, replicas: [2] }, /leader 1 is not a replica of \[2\]/);
  });

  it('a partition change of an unknown topic or partition', () => {
    expectImpossible({ type: 'partitionChange', topicId: 'nope', partition: 0, leaderChanged: true, leader: 0, replicasChanged: false, replicas: [] }, /unknown topic id nope/);
    expectImpossible({ type: 'partitionChange', topicId: 't1', partition: 1, leaderChanged: true, leader: 0, replicasChanged: false, replicas: [] }, /unknown partition 1 of orders/);
  });

  it('a fence, unfence or shutdown of an unknown broker, or of another epoch', () => {
    for (const type of ['fenceBroker', 'unfenceBroker', 'brokerShutdown'] as const) {
      expectImpossible({ type, brokerId: 9, brokerEpoch: 1 }, /unknown broker 9/);
      expectImpossible({ type, brokerId: 1, brokerEpoch: 2 }, /broker 1 has epoch 1, not 2/);
      expectImpossible({ type, brokerId: 2, brokerEpoch: 1 }, /broker 2 has epoch 2, not 1/);
    }
  });

  it('a topic whose name or id exists', () => {
    expectImpossible({ type: 'topic', name: 'orders', topicId: 't2', requestId: '' }, /topic orders exists/);
    expectImpossible({ type: 'topic', name: 'payments', topicId: 't1', requestId: '' }, /topic id t1 exists/);
  });

  it('a config of an unknown topic', () => {
    expectImpossible({ type: 'config', topic: 'payments', key: 'retention.ms', hasValue: true, value: '1' }, /config for unknown topic payments/);
  });

  it('the removal of an unknown topic, or of one already removed in the same delta', () => {
    expectImpossible({ type: 'removeTopic', topicId: 'nope', requestId: '' }, /unknown topic id nope/);
    const delta = new MetadataDelta(base);
    delta.replay({ type: 'removeTopic', topicId: 't1', requestId: '' }, 4);
    expect(() => delta.replay({ type: 'removeTopic', topicId: 't1', requestId: '' }, 4)).toThrow(ImpossibleRecordError);
    expect(canonical(base)).toBe(baseCanonical);
  });

  it('a registration whose epoch does not rise, or of broker id 0', () => {
    expectImpossible({ type: 'registerBroker', brokerId: 2, incarnationId: 'i2b', endpoint: { host: 'h', port: 1 }, rack: '', brokerEpoch: 2 }, /broker epoch 2 not above 2/);
    expectImpossible({ type: 'registerBroker', brokerId: 2, incarnationId: 'i2b', endpoint: { host: 'h', port: 1 }, rack: '', brokerEpoch: 1 }, /broker epoch 1 not above 2/);
    expectImpossible({ type: 'registerBroker', brokerId: 0, incarnationId: 'i0', endpoint: { host: 'h', port: 1 }, rack: '', brokerEpoch: 5 }, /broker id 0/);
  });

  it('an offset that goes back, from the base or within the delta', () => {
    expectImpossible({ type: 'noOp', payload: new Uint8Array() }, /offset goes back from 3/, 2);
    const delta = new MetadataDelta(base);
    delta.replay({ type: 'noOp', payload: new Uint8Array() }, 10);
    delta.replay({ type: 'noOp', payload: new Uint8Array() }, 10); // many records in one entry share its offset
    expect(() => delta.replay({ type: 'noOp', payload: new Uint8Array() }, 9)).toThrow(/impossible noOp record at offset 9: offset goes back from 10/);
    const advanced = new MetadataDelta(base);
    advanced.advanceTo(8);
    advanced.advanceTo(5); // advanceTo never goes back
    expect(() => advanced.replay({ type: 'noOp', payload: new Uint8Array() }, 7)).toThrow(/offset goes back from 8/);
    expect(advanced.apply().offset).toBe(8);
  });
});

describe('MetadataDelta', () => {
  it('shares what it did not change, and moves the offset over entries without records', () => {
    const delta = new MetadataDelta(MetadataImage.empty);
    delta.advanceTo(5);
    const image = delta.apply();
    expect(image.offset).toBe(5);
    expect(image.brokers).toBe(MetadataImage.empty.brokers);
    expect(image.topics).toBe(MetadataImage.empty.topics);
    const next = replayAll(image, [{ type: 'registerBroker', brokerId: 1, incarnationId: 'i', endpoint: { host: 'h', port: 1 }, rack: 'x', brokerEpoch: 6 }], 6);
    expect(next.topics).toBe(image.topics);
    expect(next.brokers).not.toBe(image.brokers);
    expect(image.brokers.size).toBe(0);
    expect(next.brokers.get(1)).toEqual({ id: 1, incarnationId: 'i', epoch: 6, endpoint: { host: 'h', port: 1 }, rack: 'x', fenced: true, inControlledShutdown: false });
  });
});

describe('completed-request memory', () => {
  const completed = (index: number): MetadataRecord => ({ type: 'completedRequest', requestId: `r${index}`, kind: 'createTopic', topic: `topic-${index}`, topicId: `id-${index}` });

  it(`keeps at most requestsRetainedMax (${requestsRetainedMax}) request ids, evicting the oldest first`, () => {
    const records = Array.from({ length: requestsRetainedMax + 3 }, (_, index) => completed(index));
    const full = replayAll(MetadataImage.empty, records, 1);
    expect(full.requests.size).toBe(requestsRetainedMax);
    const ids = [...full.requests.keys()];
    expect(ids[0]).toBe('r3');
    expect(ids.at(-1)).toBe(`r${requestsRetainedMax + 2}`);
    for (const evicted of ['r0', 'r1', 'r2']) expect(full.requests.has(evicted)).toBe(false);

    // One more, in a later delta, evicts the next oldest; the base keeps its own.
    const next = replayAll(full, [{ type: 'topic', name: 'late', topicId: 'late-id', requestId: 'late' }], 2);
    expect(next.requests.size).toBe(requestsRetainedMax);
    expect(next.requests.has('r3')).toBe(false);
    expect([...next.requests.keys()].at(-1)).toBe('late');
    expect(next.requests.get('late')).toEqual({ requestId: 'late', kind: 'createTopic', topic: 'late', topicId: 'late-id' });
    expect(full.requests.has('r3')).toBe(true);
    expect(full.requests.size).toBe(requestsRetainedMax);
  });

  it('a request id answered again becomes the newest, so it is evicted last', () => {
    const image = replayAll(MetadataImage.empty, [completed(0), completed(1), completed(2)], 1);
    const next = replayAll(image, [completed(0)], 2);
    expect([...next.requests.keys()]).toEqual(['r1', 'r2', 'r0']);
    expect([...image.requests.keys()]).toEqual(['r0', 'r1', 'r2']);
  });

  it('topic and removeTopic records remember their request ids; the empty id is not remembered', () => {
    const image = replayAll(
      MetadataImage.empty,
      [
        { type: 'topic', name: 'a', topicId: 'ta', requestId: 'create-a' },
        { type: 'topic', name: 'b', topicId: 'tb', requestId: '' },
        { type: 'removeTopic', topicId: 'ta', requestId: 'delete-a' },
        { type: 'removeTopic', topicId: 'tb', requestId: '' },
      ],
      1,
    );
    expect([...image.requests.values()]).toEqual([
      { requestId: 'create-a', kind: 'createTopic', topic: 'a', topicId: 'ta' },
      { requestId: 'delete-a', kind: 'deleteTopic', topic: 'a', topicId: 'ta' },
    ]);
  });
});
