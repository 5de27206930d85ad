// Tests of the partitioners: Kafka's and librdkafka's published murmur2 vectors first, then
// fast-check properties (fast-check prints the seed and path of a failure; replay with
// fc.assert(..., { seed, path })), then the sticky partitioner as scripted transcripts and as a
// random walk checked against its rules.
import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import { seededRandom, type Random } from '../raft/prng.js';
import { murmur2, partitionCountMax, partitionForKey, StickyPartitioner, toPositive } from './partitioner.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

// apache/kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2:
// the Java client's own expected values. Tail lengths covered: 0, 2, 3.
const kafkaUtilsTestVectors: readonly (readonly [string, number])[] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

// confluentinc/librdkafka, src/rdmurmur2.c, unittest_murmur2 (java_murmur2_results, int32 bit
// patterns the C client checks against Java's output). Adds tail length 1 and the empty key.
const librdkafkaVectors: readonly (readonly [string, number])[] = [
  ['kafka', 0xd067cf64 | 0],
  ['giberish123456789', 0x8f552b0c | 0],
  ['1234', 0x9fc97b14 | 0],
  ['234', 0xe7c009ca | 0],
  ['34', 0x873930da | 0],
  ['4', 0x5a4b5ca1 | 0],
  ['PreAmbleWillBeRemoved,ThePrePartThatIs', 0x78424f1c | 0],
  ['reAmbleWillBeRemoved,ThePrePartThatIs', 0x4a62b377 | 0],
  ['eAmbleWillBeRemoved,ThePrePartThatIs', 0xe0e4e09e | 0],
  ['AmbleWillBeRemoved,ThePrePartThatIs', 0x62b8b43f | 0],
  ['', 0x106e08d9 | 0],
];

describe('murmur2 matches the Java client', () => {
  it.each(kafkaUtilsTestVectors)('Kafka UtilsTest: murmur2(%j) = %i', (text, expected) => {
    expect(murmur2(utf8(text))).toBe(expected);
  });

  it.each(librdkafkaVectors)('librdkafka unittest_murmur2: murmur2(%j) = %i', (text, expected) => {
    expect(murmur2(utf8(text))).toBe(expected);
  });

  it('covers every tail length 0-3 between the two vector sets', () => {
    const tails = new Set([...kafkaUtilsTestVectors, ...librdkafkaVectors].map(([text]) => utf8(text).length % 4));
    expect([...tails].sort()).toEqual([0, 1, 2, 3]);
  });

  it('hashes only the bytes of a view, not the rest of its buffer', () => {
    const buffer = utf8('xx-a-little-bit-longer-string-yy');
    const view = buffer.subarray(3, 3 + 'a-little-bit-longer-string'.length);
    expect(murmur2(view)).toBe(-1486304829);
  });
});

describe('toPositive', () => {
  it('clears the sign bit, which is not Math.abs', () => {
    expect([0, 1, 0x7fffffff, -1, -2, -0x80000000, -973932308].map(toPositive)).toEqual([0, 1, 0x7fffffff, 0x7fffffff, 0x7ffffffe, 0, 1173551340]);
  });
});

describe('partitionForKey', () => {
  // toPositive of the UtilsTest vectors, taken modulo 12, 7 and 1000 by hand.
  it.each([
    ['21', 12, 0],
    ['foobar', 12, 6],
    ['a-little-bit-long-string', 12, 8],
    ['a-little-bit-longer-string', 12, 11],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', 12, 5],
    ['abc', 12, 3],
    ['21', 7, 3],
    ['abc', 7, 4],
    ['21', 1000, 340],
    ['foobar', 1000, 166],
  ] as const)('places key %j over %i partitions on partition %i', (text, partitionCount, expected) => {
    expect(partitionForKey(utf8(text), partitionCount)).toBe(expected);
  });

  it('returns a partition in [0, partitionCount) for any key and count', () => {
    const partitionCount = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: partitionCountMax }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), partitionCount, (key, count) => {
        const partition = partitionForKey(key, count);
        expect(Number.isInteger(partition) && partition >= 0 && partition < count).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic: equal key bytes in different buffers give the same partition', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 1, max: 10_000 }), (key, prefix, count) => {
        const padded = new Uint8Array(prefix.length + key.length);
        padded.set(prefix);
        padded.set(key, prefix.length);
        const view = padded.subarray(prefix.length);
        expect(partitionForKey(view, count)).toBe(partitionForKey(key, count));
        expect(partitionForKey(Uint8Array.from(key), count)).toBe(partitionForKey(key, count));
        expect(murmur2(key) | 0).toBe(murmur2(key)); // always an int32
      }),
      { numRuns: 1000 },
    );
  });

  it('throws AssertionError for a partition count that is not an integer in [1, 2^31 - 1]', () => {
    for (const count of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => partitionForKey(utf8('k'), count)).toThrow(AssertionError);
    }
  });
});

// Cross-check with kafkajs (a devDependency): its DefaultPartitioner is the Java-compatible one
// since kafkajs 2.0, with its own murmur2 (64-bit Long arithmetic truncated to an int), written
// independently of ours.
describe('partitionForKey agrees with kafkajs', () => {
  it('picks the partition kafkajs DefaultPartitioner picks, for random keys and counts', () => {
    const kafkajsPartition = Partitioners.DefaultPartitioner();
    const metadata = (partitionCount: number): PartitionMetadata[] =>
      Array.from({ length: partitionCount }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1] }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.integer({ min: 1, max: 500 }), (key, count) => {
        const expected = kafkajsPartition({ topic: 'orders', partitionMetadata: metadata(count), message: { key: Buffer.from(key), value: null } });
        expect(partitionForKey(key, count)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

/** scripted returns a Random that hands out draws in order and fails the test if it runs out. */
function scripted(draws: readonly number[]): Random {
  let next = 0;
  return () => {
    const draw = draws[next];
    if (draw === undefined) throw new Error(`scripted random: draw ${next} requested, only ${draws.length} scripted`);
    next += 1;
    return draw;
  };
}

describe('StickyPartitioner transcripts', () => {
  it('sticks until the batch is sent, then moves to another partition', () => {
    const sticky = new StickyPartitioner(scripted([0.6, 0.7, 0.0]));
    // 0.6 of 4 partitions: partition 2; the following records draw nothing.
    expect([1, 2, 3, 4].map(() => sticky.partition('orders', 4))).toEqual([2, 2, 2, 2]);
    sticky.onNewBatch('orders', 2);
    // 0.7 of the 3 others [0, 1, 3]: index 2, partition 3.
    expect([1, 2, 3].map(() => sticky.partition('orders', 4))).toEqual([3, 3, 3]);
    sticky.onNewBatch('orders', 3);
    // 0.0 of the 3 others [0, 1, 2]: partition 0.
    expect(sticky.partition('orders', 4)).toBe(0);
  });

  it('ignores a stale onNewBatch about a partition it has already left', () => {
    const sticky = new StickyPartitioner(scripted([0.0, 0.0]));
    expect(sticky.partition('orders', 3)).toBe(0);
    sticky.onNewBatch('orders', 0);
    expect(sticky.partition('orders', 3)).toBe(1);
    sticky.onNewBatch('orders', 0); // stale: the topic moved to 1 already
    sticky.onNewBatch('orders', 2); // never the sticky partition
    sticky.onNewBatch('unknown-topic', 0);
    expect(sticky.partition('orders', 3)).toBe(1);
  });

  it('chooses only among available partitions, and leaves one that becomes unavailable at once', () => {
    const sticky = new StickyPartitioner(scripted([0.9, 0.0, 0.5]));
    expect(sticky.partition('orders', 6, [1, 4])).toBe(4);
    expect(sticky.partition('orders', 6, [1, 4, 5])).toBe(4);
    // 4 lost its leader: move to an available one without waiting for the batch.
    expect(sticky.partition('orders', 6, [1, 5])).toBe(1);
    sticky.onNewBatch('orders', 1);
    expect(sticky.partition('orders', 6, [0, 1, 2])).toBe(2); // 0.5 of others [0, 2]
  });

  it('stays on the only available partition across batches', () => {
    const sticky = new StickyPartitioner(seededRandom(7));
    for (let batch = 0; batch < 5; batch += 1) {
      expect(sticky.partition('orders', 8, [5])).toBe(5);
      sticky.onNewBatch('orders', 5);
    }
    expect(sticky.partition('single', 1)).toBe(0);
    sticky.onNewBatch('single', 0);
    expect(sticky.partition('single', 1)).toBe(0);
  });

  it('falls back to every partition when none is available, still moving on a new batch', () => {
    const sticky = new StickyPartitioner(scripted([0.99, 0.99]));
    expect(sticky.partition('orders', 3, [])).toBe(2);
    sticky.onNewBatch('orders', 2);
    expect(sticky.partition('orders', 3, [])).toBe(1); // 0.99 of others [0, 1]
  });

  it('keeps one sticky partition per topic', () => {
    const sticky = new StickyPartitioner(scripted([0.0, 0.5, 0.0]));
    expect(sticky.partition('orders', 4)).toBe(0);
    expect(sticky.partition('payments', 4)).toBe(2);
    sticky.onNewBatch('orders', 0);
    expect(sticky.partition('payments', 4)).toBe(2);
    expect(sticky.partition('orders', 4)).toBe(1);
  });

  it('moves off a partition beyond a smaller partition count', () => {
    const sticky = new StickyPartitioner(scripted([0.9, 0.0]));
    expect(sticky.partition('orders', 10)).toBe(9);
    expect(sticky.partition('orders', 5)).toBe(0);
  });

  it('throws AssertionError on a bad partition count, an out-of-range available partition or a bad random source', () => {
    expect(() => new StickyPartitioner(seededRandom(1)).partition('orders', 0)).toThrow(AssertionError);
    expect(() => new StickyPartitioner(seededRandom(1)).partition('orders', 4, [4])).toThrow(AssertionError);
    expect(() => new StickyPartitioner(seededRandom(1)).partition('orders', 4, [-1])).toThrow(AssertionError);
    expect(() => new StickyPartitioner(() => 1).partition('orders', 4)).toThrow(AssertionError);
    expect(() => new StickyPartitioner(() => -0.1).partition('orders', 4)).toThrow(AssertionError);
  });

  it('spreads batches over all partitions and never repeats a partition in consecutive batches', () => {
    const sticky = new StickyPartitioner(seededRandom(42));
    const batchesPerPartition = [0, 0, 0, 0, 0];
    let previous: number | undefined;
    for (let batch = 0; batch < 5000; batch += 1) {
      const partition = sticky.partition('orders', 5);
      expect(partition).not.toBe(previous);
      batchesPerPartition[partition] = (batchesPerPartition[partition] ?? 0) + 1;
      sticky.onNewBatch('orders', partition);
      previous = partition;
    }
    for (const batches of batchesPerPartition) expect(batches).toBeGreaterThan(850);
  });
});

type StickyCommand = { kind: 'send'; available: readonly number[] | undefined } | { kind: 'batchSentCurrent' } | { kind: 'batchSent'; partition: number };

function stickyCommand(partitionCount: number): fc.Arbitrary<StickyCommand> {
  const partition = fc.integer({ min: 0, max: partitionCount - 1 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), available: fc.option(fc.uniqueArray(partition, { maxLength: partitionCount }), { nil: undefined }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('batchSentCurrent' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('batchSent' as const), partition }) },
  );
}

describe('StickyPartitioner random walk', () => {
  it('stays within a batch, moves on a new batch, never picks an unavailable partition when some are available', () => {
    const scenario = fc.integer({ min: 1, max: 12 }).chain((partitionCount) => fc.tuple(fc.constant(partitionCount), fc.integer(), fc.array(stickyCommand(partitionCount), { maxLength: 60 })));
    fc.assert(
      fc.property(scenario, ([partitionCount, seed, commands]) => {
        const sticky = new StickyPartitioner(seededRandom(seed));
        // The model: the last partition returned, and whether its batch was reported sent since.
        let last: number | undefined;
        let batchSent = false;
        for (const command of commands) {
          if (command.kind === 'batchSentCurrent' || command.kind === 'batchSent') {
            const partition = command.kind === 'batchSent' ? command.partition : last;
            if (partition === undefined) continue;
            sticky.onNewBatch('orders', partition);
            if (partition === last) batchSent = true;
            continue;
          }
          const available = command.available ?? [];
          const candidates = available.length > 0 ? available : Array.from({ length: partitionCount }, (_, index) => index);
          const partition = sticky.partition('orders', partitionCount, command.available);
          expect(candidates).toContain(partition);
          if (last !== undefined) {
            const mayStay = !batchSent && candidates.includes(last);
            const canMove = candidates.some((candidate) => candidate !== last);
            if (mayStay) expect(partition).toBe(last);
            else if (canMove) expect(partition).not.toBe(last);
          }
          last = partition;
          batchSent = false;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('replays: the same seed gives the same choices', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 50 }), (seed, partitionCount) => {
        const run = (): number[] => {
          const sticky = new StickyPartitioner(seededRandom(seed));
          return Array.from({ length: 20 }, () => {
            const partition = sticky.partition('orders', partitionCount);
            sticky.onNewBatch('orders', partition);
            return partition;
          });
        };
        expect(run()).toEqual(run());
      }),
      { numRuns: 200 },
    );
  });
});
