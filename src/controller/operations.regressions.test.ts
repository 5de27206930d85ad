// Regressions: bugs found in src/controller/operations.ts by the operation tests, now fixed
// (several brokers fenced in one batch; a config both set and removed in one request). Each test
// states the contract it holds the code to.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../errors.js';
import { replayAll } from '../metadata/delta.js';
import { MetadataImage } from '../metadata/image.js';
import type { MetadataRecord } from '../metadata/records.js';
import { alterConfigs, brokerHeartbeat, createTopic, fenceSilentBrokers, registerBroker, type Outcome } from './operations.js';
import { parseTopicConfigs } from './topic-validation.js';

function seedFromEnv(): { seed?: number; path?: string } {
  const value = process.env['RAFTBUS_SEED'];
  if (value === undefined || value === '') return {};
  const [seed, ...path] = value.split(':');
  return path.length > 0 ? { seed: Number(seed), path: path.join(':') } : { seed: Number(seed) };
}

/** commit replays an outcome's records as the next entry and returns the next image and the response. */
function commit<Response>(image: MetadataImage, outcome: Outcome<Response>): { image: MetadataImage; response: Response } {
  return { image: outcome.records.length === 0 ? image : replayAll(image, outcome.records, image.offset + 1), response: outcome.response };
}

/** cluster registers and unfences brokers 1..count. */
function cluster(count: number): MetadataImage {
  let image = MetadataImage.empty;
  for (let id = 1; id <= count; id++) {
    image = commit(image, registerBroker(image, { brokerId: id, incarnationId: `incarnation-${id}`, endpoint: { host: `broker-${id}`, port: 9092 }, rack: undefined })).image;
    image = commit(image, brokerHeartbeat(image, { brokerId: id, brokerEpoch: image.brokers.get(id)!.epoch, metadataOffset: image.offset, wantShutdown: false })).image;
  }
  return image;
}

function usable(image: MetadataImage, id: number): boolean {
  const broker = image.brokers.get(id);
  return broker !== undefined && !broker.fenced && !broker.inControlledShutdown;
}

// ---------------------------------------------------------------------------------------------
// Bug 1: fenceSilentBrokers, fencing several brokers in one batch, can hand a leadership to a broker
// it fences later in the same batch, and leaves it there. It plans each fence on `working`, an image
// where the earlier brokers are fenced but the leader changes already planned are not applied, so
// leadersAwayFrom(working, laterBroker) does not see the partitions it just moved to laterBroker.

describe('regression: fenceSilentBrokers leaves partitions led by a broker it fences in the same batch', () => {
  it('moves a leadership from broker 1 to broker 2, then fences broker 2 and leaves it leading', () => {
    // Brokers 1, 2, 3; partition 0 of "orders" on [1, 2, 3], led by 1.
    let image = cluster(3);
    const records: MetadataRecord[] = [
      { type: 'topic', name: 'orders', topicId: 'orders-id', requestId: '' },
      { type: 'partition', topicId: 'orders-id', partition: 0, replicas: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0, groupId: 1 },
    ];
    image = replayAll(image, records, image.offset + 1);

    // Brokers 1 and 2 fall silent; 3 is heard.
    const outcome = fenceSilentBrokers(image, { nowMs: 10_000, sessionTimeoutMs: 1_000, lastHeardMs: new Map([[3, 10_000]]) });
    expect(outcome.response.fenced).toEqual([1, 2]);
    // Today: [fence 1, leader -> 2, fence 2]: nothing moves the partition away from 2.
    const next = replayAll(image, outcome.records, image.offset + 1);

    const partition = next.topicByName('orders')!.partitions[0]!;
    expect(next.brokers.get(2)?.fenced).toBe(true);
    // Expected: the only usable replica, 3, leads. Actual: fenced broker 2 does (leader 2).
    expect(partition.leader).toBe(3);
  });

  it('property: after fencing any set of silent brokers, every leader is usable, and a partition has no leader only if no replica is usable', () => {
    const scenario = fc.record({
      brokers: fc.integer({ min: 2, max: 5 }),
      partitions: fc.integer({ min: 1, max: 6 }),
      replicationFactor: fc.integer({ min: 1, max: 3 }),
      heardMask: fc.nat({ max: 31 }),
    });
    fc.assert(
      fc.property(scenario, ({ brokers, partitions, replicationFactor, heardMask }) => {
        let image = cluster(brokers);
        image = commit(image, createTopic(image, { name: 'orders', partitions, replicationFactor: Math.min(replicationFactor, brokers), configs: {}, requestId: 'r' }, () => 'orders-id')).image;
        const heard = new Map([...image.brokers.keys()].filter((id) => (heardMask & (1 << (id - 1))) !== 0).map((id) => [id, 10_000] as const));
        image = commit(image, fenceSilentBrokers(image, { nowMs: 10_000, sessionTimeoutMs: 1_000, lastHeardMs: heard })).image;
        const wrong = image.topicByName('orders')!.partitions.filter((partition) =>
          partition.leader === 0 ? partition.replicas.some((id) => usable(image, id)) : !usable(image, partition.leader),
        );
        expect(wrong).toEqual([]);
      }),
      { ...seedFromEnv(), numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Bug 2: alterConfigs with a key both in `set` and in `remove` validates the set value, but writes
// a set record and then (when the topic has an override of that key) a removal record, so the key is
// removed after all; when the topic has no override it writes only the set record, while the
// response says the key was removed. Kafka refuses duplicate keys in one IncrementalAlterConfigs.
// Consequences: the response disagrees with the committed configs; and stored configs can break
// the TopicConfigs invariant (max.message.bytes <= segment.bytes), after which every alterConfigs of
// that topic, even one that would repair it, fails with the stored configs' own problem.

describe('regression: alterConfigs with a key both set and removed', () => {
  function withTopic(configs: Record<string, string>): MetadataImage {
    const image = cluster(1);
    return commit(image, createTopic(image, { name: 'orders', partitions: 1, replicationFactor: 1, configs, requestId: 'r' }, () => 'orders-id')).image;
  }

  /** outcomeOf runs alterConfigs; undefined when it refuses the request with InvalidRequestError (a correct answer). */
  function outcomeOf(image: MetadataImage, request: { set: Record<string, string>; remove: string[] }) {
    try {
      return commit(image, alterConfigs(image, { name: 'orders', ...request }));
    } catch (error) {
      if (error instanceof InvalidRequestError) return undefined;
      throw error;
    }
  }

  it('answers configs that differ from the ones it commits (topic without an override of the key)', () => {
    const image = withTopic({});
    const result = outcomeOf(image, { set: { 'retention.ms': '5' }, remove: ['retention.ms'] });
    // Either refused, or the response describes what was committed.
    // Actual: response.configs is {} while the committed configs are { 'retention.ms': '5' }.
    if (result !== undefined) expect(result.response.configs).toEqual(Object.fromEntries(result.image.topicByName('orders')!.configs));
  });

  it('commits configs that break max.message.bytes <= segment.bytes, and the topic can no longer be altered', () => {
    const image = withTopic({ 'segment.bytes': '1048576', 'max.message.bytes': '500000' });
    // Validated as max.message.bytes 500000 (fits); committed as the removal of max.message.bytes,
    // whose default 1048588 does not fit a 1048576-byte segment.
    const result = outcomeOf(image, { set: { 'max.message.bytes': '500000' }, remove: ['max.message.bytes'] });
    if (result === undefined) return; // refused: correct
    const stored = Object.fromEntries(result.image.topicByName('orders')!.configs);
    expect(parseTopicConfigs(stored).kind, `stored configs ${JSON.stringify(stored)}`).toBe('ok');
    // And a repair is still accepted: raising segment.bytes to 2 MiB.
    expect(() => alterConfigs(result.image, { name: 'orders', set: { 'segment.bytes': '2097152' }, remove: [] })).not.toThrow();
  });
});
