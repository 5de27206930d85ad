import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../raft/assert.js';
import { defaultRaftLimits } from '../raft/limits.js';
import { peerLimitsDefault, snapshotChunkFrameOverheadBytesMax } from '../rpc/limits.js';
import {
  addPartitionsProblems,
  alterConfigsProblems,
  compressionTypes,
  configsToStrings,
  createTopicProblems,
  defaultTopicConfigs,
  parseTopicConfigs,
  topicConfigKeys,
  topicConfigLimits,
  topicLimits,
  topicNameCollision,
  topicNameProblem,
  type ClusterView,
  type CreateTopicRequest,
  type Problem,
  type TopicConfigs,
} from './topic-validation.js';

const mebibyte = 1024 * 1024;
const cluster: ClusterView = { unfencedBrokers: 3, existingTopicNames: ['orders', 'audit.log'], totalPartitions: 100 };
const request: CreateTopicRequest = { name: 'payments', partitions: 6, replicationFactor: 3, configs: {} };

/** problemsOf parses input over base and returns its problems; it must not parse. */
function problemsOf(input: Record<string, string>, base?: TopicConfigs): readonly Problem[] {
  const parsed = parseTopicConfigs(input, base);
  if (parsed.kind === 'ok') throw new Error(`expected problems, parsed ${JSON.stringify(parsed.configs)}`);
  return parsed.problems;
}

/** onlyProblem returns the single problem of problems, checking that it concerns field. */
function onlyProblem(problems: readonly Problem[], field: string): Problem {
  expect(problems.map((p) => p.field)).toEqual([field]);
  return problems[0]!;
}

function configProblem(key: string, value: string): string {
  return onlyProblem(problemsOf({ [key]: value }), `configs["${key}"]`).message;
}

function parsedConfigs(input: Record<string, string>, base?: TopicConfigs): TopicConfigs {
  const parsed = parseTopicConfigs(input, base);
  if (parsed.kind === 'invalid') throw new Error(`expected configs, got ${JSON.stringify(parsed.problems)}`);
  return parsed.configs;
}

describe('limits', () => {
  it('lets a batch of max.message.bytes travel as one Raft entry in one peer frame', () => {
    expect(topicConfigLimits.maxMessageBytesMax + snapshotChunkFrameOverheadBytesMax).toBeLessThanOrEqual(peerLimitsDefault.peerFrameBytesMax);
    expect(topicConfigLimits.maxMessageBytesMax).toBeLessThanOrEqual(defaultRaftLimits.entryBytesMax);
  });

  it('has defaults within the limits, a batch fitting a segment', () => {
    expect(defaultTopicConfigs.maxMessageBytes).toBeLessThanOrEqual(topicConfigLimits.maxMessageBytesMax);
    expect(defaultTopicConfigs.segmentBytes).toBeGreaterThanOrEqual(defaultTopicConfigs.maxMessageBytes);
    expect(parsedConfigs({})).toEqual(defaultTopicConfigs);
  });
});

/** nameLike makes names mostly of the allowed characters, with now and then one that is not, lone surrogates included. */
const nameLike = fc.string({
  maxLength: 260,
  unit: fc.oneof(
    { arbitrary: fc.constantFrom(...'azAZ09._-'), weight: 40 },
    { arbitrary: fc.constantFrom(' ', '/', '\\', 'ü', '\u0000', '🚀', '\uD800', ':'), weight: 1 },
  ),
});

describe('topicNameProblem', () => {
  it.each(['a', 'orders', 'Orders.v2_eu-west-1', '...', '_', '-', 'x'.repeat(249)])('accepts %j', (name) => {
    expect(topicNameProblem(name)).toBeUndefined();
  });

  it('refuses an empty name, naming the allowed length', () => {
    expect(topicNameProblem('')).toEqual({ field: 'name', message: 'topic name is empty; use 1 to 249 ASCII letters, digits, ".", "_" or "-"' });
  });

  it('refuses 250 characters, naming the limit of 249', () => {
    const problem = topicNameProblem('x'.repeat(250));
    expect(problem?.field).toBe('name');
    expect(problem?.message).toContain('is 250 characters long; at most 249 are allowed');
  });

  it.each(['.', '..'])('refuses %j', (name) => {
    expect(topicNameProblem(name)?.message).toBe(`topic name "${name}" is not allowed: "." and ".." name directories`);
  });

  it.each([
    ['a b', '" "', 1],
    ['orders/eu', '"/"', 6],
    ['zürich', '"ü"', 1],
    ['tab\there', '"\\t"', 3],
    ['rocket🚀', '"🚀"', 6],
  ])('refuses %j, showing the character %s and its index %i', (name, shown, index) => {
    const problem = topicNameProblem(name);
    expect(problem?.field).toBe('name');
    expect(problem?.message).toContain(`contains ${shown} at index ${index}; use 1 to 249 ASCII letters, digits, ".", "_" or "-"`);
  });

  it('never throws and accepts exactly the names of the allowed characters and lengths', () => {
    fc.assert(
      fc.property(fc.oneof(nameLike, fc.string({ maxLength: 300 })), (name) => {
        const problem = topicNameProblem(name);
        const valid = /^[A-Za-z0-9._-]{1,249}$/.test(name) && name !== '.' && name !== '..';
        expect(problem === undefined).toBe(valid);
        if (problem !== undefined) expect(problem.message.length).toBeLessThan(600);
      }),
    );
  });
});

describe('topicNameCollision', () => {
  const existing = ['orders', 'audit.log', 'metrics_raw'];

  it('allows a free name, and names that differ in more than "." and "_"', () => {
    expect(topicNameCollision('payments', existing)).toBeUndefined();
    expect(topicNameCollision('audit-log', existing)).toBeUndefined();
    expect(topicNameCollision('anything', [])).toBeUndefined();
  });

  it('refuses an existing name', () => {
    expect(topicNameCollision('orders', existing)).toEqual({ field: 'name', message: 'topic "orders" already exists' });
  });

  it.each([
    ['audit_log', 'audit.log'],
    ['metrics.raw', 'metrics_raw'],
  ])('refuses %j, which collides with %j', (name, other) => {
    const problem = topicNameCollision(name, existing);
    expect(problem?.field).toBe('name');
    expect(problem?.message).toContain(`topic name "${name}" collides with existing topic "${other}"`);
  });
});

describe('configs', () => {
  it('names the Kafka keys', () => {
    expect(topicConfigKeys).toEqual(['retention.ms', 'retention.bytes', 'segment.bytes', 'max.message.bytes', 'cleanup.policy', 'compression.type']);
  });

  it('renders the defaults as Kafka describes them', () => {
    expect(configsToStrings(defaultTopicConfigs)).toEqual({
      'retention.ms': '604800000',
      'retention.bytes': '-1',
      'segment.bytes': '1073741824',
      'max.message.bytes': '1048588',
      'cleanup.policy': 'delete',
      'compression.type': 'producer',
    });
  });

  it('sets the keys given and keeps the rest of base', () => {
    const base = parsedConfigs({ 'retention.ms': '-1', 'compression.type': 'zstd' });
    expect(parsedConfigs({ 'retention.bytes': '0', 'segment.bytes': String(mebibyte * 2) }, base)).toEqual({
      ...defaultTopicConfigs,
      retentionMs: -1,
      compressionType: 'zstd',
      retentionBytes: 0,
      segmentBytes: 2 * mebibyte,
    });
  });

  it.each([
    ['retention.ms', '-1', '9007199254740991'],
    ['retention.bytes', '-1', '9007199254740991'],
    ['segment.bytes', '1048576', '2147483647'],
    ['max.message.bytes', '61', '4128768'],
  ])('accepts %s at its bounds %s and %s', (key, min, max) => {
    const base = { ...defaultTopicConfigs, segmentBytes: topicConfigLimits.segmentBytesMax, maxMessageBytes: topicConfigLimits.maxMessageBytesMin };
    expect(parseTopicConfigs({ [key]: min }, base).kind).toBe('ok');
    expect(parseTopicConfigs({ [key]: max }, base).kind).toBe('ok');
  });

  it.each([
    ['retention.ms', '-2', 'milliseconds from 0 to 9007199254740991, or -1 to keep data forever; got -2'],
    ['retention.ms', '9007199254740992', 'from 0 to 9007199254740991'],
    ['retention.ms', '99999999999999999999999', 'from 0 to 9007199254740991'],
    ['retention.bytes', '-5', 'bytes per partition from 0 to 9007199254740991, or -1 for no size limit; got -5'],
    ['segment.bytes', '14', 'bytes from 1048576 (1 MiB) to 2147483647; got 14'],
    ['segment.bytes', '-1', 'from 1048576 (1 MiB) to 2147483647'],
    ['segment.bytes', '2147483648', 'from 1048576 (1 MiB) to 2147483647'],
    ['max.message.bytes', '0', 'bytes from 61 to 4128768'],
    ['max.message.bytes', '10485760', 'bytes from 61 to 4128768 (4 MiB less 64 KiB, what one Raft entry may carry); got 10485760'],
  ])('refuses %s %s, naming the range', (key, value, expected) => {
    const message = configProblem(key, value);
    expect(message).toContain(`${key} must be `);
    expect(message).toContain(expected);
  });

  it.each(['', ' 5', '5 ', '+5', '5.0', '1e9', '0x10', '1_000', '1,000', '007', '-0', '--1', 'forever', '１２'])(
    'refuses retention.ms %j as not plain decimal, naming the range',
    (value) => {
      const message = configProblem('retention.ms', value);
      expect(message).toContain('must be an integer in plain decimal digits');
      expect(message).toContain('from 0 to 9007199254740991, or -1 to keep data forever');
      expect(message).toContain(`got ${JSON.stringify(value)}`);
    },
  );

  it('refuses a batch larger than a segment, on the key that was given', () => {
    const onlySegment = onlyProblem(problemsOf({ 'segment.bytes': String(mebibyte) }), 'configs["segment.bytes"]');
    expect(onlySegment.message).toBe(
      'max.message.bytes 1048588 is larger than segment.bytes 1048576; a record batch must fit in one segment: raise segment.bytes to at least 1048588 or lower max.message.bytes to at most 1048576',
    );
    const both = problemsOf({ 'segment.bytes': String(mebibyte), 'max.message.bytes': String(2 * mebibyte) });
    expect(onlyProblem(both, 'configs["max.message.bytes"]').message).toContain('max.message.bytes 2097152 is larger than segment.bytes 1048576');
    expect(parseTopicConfigs({ 'segment.bytes': String(mebibyte), 'max.message.bytes': String(mebibyte) }).kind).toBe('ok');
  });

  it('skips the batch-fits check when a size itself is invalid', () => {
    onlyProblem(problemsOf({ 'segment.bytes': 'big', 'max.message.bytes': String(2 * mebibyte) }), 'configs["segment.bytes"]');
  });

  it.each(['compact', 'compact,delete', 'delete, compact', 'COMPACT'])('refuses cleanup.policy %j as not supported yet', (value) => {
    expect(configProblem('cleanup.policy', value)).toContain('asks for log compaction, which raftbus does not support yet; use "delete"');
  });

  it.each(['', 'Delete', 'delete,delete', 'retain'])('refuses cleanup.policy %j, naming "delete"', (value) => {
    expect(configProblem('cleanup.policy', value)).toBe(`cleanup.policy must be "delete", got ${JSON.stringify(value)}`);
  });

  it.each(compressionTypes)('accepts compression.type %s', (compressionType) => {
    expect(parsedConfigs({ 'compression.type': compressionType }).compressionType).toBe(compressionType);
  });

  it('refuses an unknown compression.type, listing the allowed ones', () => {
    expect(configProblem('compression.type', 'brotli')).toBe(
      'compression.type must be one of "producer", "uncompressed", "gzip", "lz4", "zstd", "snappy"; got "brotli"',
    );
    expect(configProblem('compression.type', 'GZIP')).toContain('(did you mean "gzip"? values are lowercase, without spaces)');
  });

  it('refuses an unknown key, naming it and listing the known keys', () => {
    const known = 'raftbus topics support retention.ms, retention.bytes, segment.bytes, max.message.bytes, cleanup.policy, compression.type';
    expect(configProblem('retention', '1')).toBe(`unknown topic config "retention"; ${known}`);
    expect(configProblem('retentionMs', '1')).toBe(`unknown topic config "retentionMs" (did you mean "retention.ms"?); ${known}`);
    expect(configProblem('min.insync.replicas', '2')).toBe(`min.insync.replicas is a Kafka topic config that raftbus does not support; ${known}`);
  });

  it('refuses keys that name Object.prototype members', () => {
    const input = JSON.parse('{"__proto__": "1", "constructor": "2", "toString": "3"}') as Record<string, string>;
    expect(problemsOf(input).map((p) => p.field)).toEqual(['configs["__proto__"]', 'configs["constructor"]', 'configs["toString"]']);
  });

  it('refuses a value that is not a string', () => {
    const input = { 'retention.ms': 5 } as unknown as Record<string, string>;
    expect(onlyProblem(problemsOf(input), 'configs["retention.ms"]').message).toBe('retention.ms must be given as a string, got number');
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ 'retention.ms': 'x', 'segment.bytes': '1', 'cleanup.policy': 'compact', bogus: '1' });
    expect(problems.map((p) => p.field)).toEqual(['configs["retention.ms"]', 'configs["segment.bytes"]', 'configs["cleanup.policy"]', 'configs["bogus"]']);
  });

  it(`refuses more than ${topicLimits.configsMax} configs in one request`, () => {
    const input = Object.fromEntries(Array.from({ length: topicLimits.configsMax + 1 }, (_, i) => [`key.${i}`, '1']));
    expect(onlyProblem(problemsOf(input), 'configs').message).toContain('65 configs given; at most 64 are allowed in one request');
  });

  it('cuts long values and keys in messages', () => {
    const long = 'k'.repeat(10_000);
    const problem = problemsOf({ [long]: '1' })[0]!;
    expect(problem.field.length).toBeLessThan(300);
    expect(problem.message.length).toBeLessThan(600);
    expect(configProblem('retention.ms', '9'.repeat(10_000)).length).toBeLessThan(600);
  });

  it('asserts that base keeps the invariant', () => {
    expect(() => parseTopicConfigs({}, { ...defaultTopicConfigs, segmentBytes: 1 })).toThrow(AssertionError);
    expect(() => configsToStrings({ ...defaultTopicConfigs, maxMessageBytes: 2 * 1024 * mebibyte })).toThrow(AssertionError);
  });
});

const validConfigs: fc.Arbitrary<TopicConfigs> = fc
  .integer({ min: topicConfigLimits.segmentBytesMin, max: topicConfigLimits.segmentBytesMax })
  .chain((segmentBytes) =>
    fc.record({
      retentionMs: fc.integer({ min: topicConfigLimits.retentionMsMin, max: topicConfigLimits.retentionMsMax }),
      retentionBytes: fc.integer({ min: topicConfigLimits.retentionBytesMin, max: topicConfigLimits.retentionBytesMax }),
      segmentBytes: fc.constant(segmentBytes),
      maxMessageBytes: fc.integer({ min: topicConfigLimits.maxMessageBytesMin, max: Math.min(topicConfigLimits.maxMessageBytesMax, segmentBytes) }),
      cleanupPolicy: fc.constant('delete' as const),
      compressionType: fc.constantFrom(...compressionTypes),
    }),
  );

describe('configs properties', () => {
  it('round-trips every valid configs through configsToStrings and parseTopicConfigs, over any base', () => {
    fc.assert(
      fc.property(validConfigs, validConfigs, (configs, base) => {
        expect(parseTopicConfigs(configsToStrings(configs), base)).toEqual({ kind: 'ok', configs });
      }),
    );
  });

  it('never throws on random keys and values, and either parses within limits or names a field per problem', () => {
    const key = fc.oneof(fc.constantFrom(...topicConfigKeys), fc.string({ maxLength: 30 }));
    const value = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom('-1', '0', '1048576', '9007199254740992'));
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 8 }), (input) => {
        const parsed = parseTopicConfigs(input);
        if (parsed.kind === 'ok') {
          expect(configsToStrings(parsed.configs)).toMatchObject(input);
          return;
        }
        expect(parsed.problems.length).toBeGreaterThan(0);
        for (const problem of parsed.problems) expect(problem.field).toMatch(/^configs(\[".*"\])?/);
      }),
    );
  });
});

describe('createTopicProblems', () => {
  it('accepts a good request', () => {
    expect(createTopicProblems(request, cluster)).toEqual([]);
    expect(createTopicProblems({ ...request, partitions: 1000, replicationFactor: 1 }, cluster)).toEqual([]);
  });

  it('reports every problem at once, each under its field', () => {
    const bad = { name: 'bad name', partitions: 0, replicationFactor: 4, configs: { 'retention.ms': 'soon', 'cleanup.policy': 'compact' } };
    expect(createTopicProblems(bad, cluster).map((p) => p.field)).toEqual([
      'name',
      'partitions',
      'replicationFactor',
      'configs["retention.ms"]',
      'configs["cleanup.policy"]',
    ]);
  });

  it('refuses a name taken, or taken but for "." and "_"', () => {
    expect(onlyProblem(createTopicProblems({ ...request, name: 'orders' }, cluster), 'name').message).toBe('topic "orders" already exists');
    expect(onlyProblem(createTopicProblems({ ...request, name: 'audit_log' }, cluster), 'name').message).toContain('collides with existing topic "audit.log"');
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses partitions %d, naming the range', (partitions) => {
    const problem = onlyProblem(createTopicProblems({ ...request, partitions }, cluster), 'partitions');
    expect(problem.message).toBe(`partitions must be an integer from 1 to 1000, got ${partitions}`);
  });

  it('refuses more partitions than the per-topic limit', () => {
    const problem = onlyProblem(createTopicProblems({ ...request, partitions: 1001 }, cluster), 'partitions');
    expect(problem.message).toBe('partitions 1001 is more than the limit of 1000 partitions per topic');
  });

  it('refuses partitions beyond the cluster limit, saying how many can still be added', () => {
    const full = { ...cluster, totalPartitions: 9_500 };
    expect(createTopicProblems({ ...request, partitions: 500 }, full)).toEqual([]);
    const problem = onlyProblem(createTopicProblems({ ...request, partitions: 501 }, full), 'partitions');
    expect(problem.message).toBe('adding 501 partitions would bring the cluster to 10001; at most 10000 partitions are allowed in a cluster (500 can still be added)');
  });

  it('refuses a replication factor larger than the unfenced brokers', () => {
    const problem = onlyProblem(createTopicProblems({ ...request, replicationFactor: 4 }, cluster), 'replicationFactor');
    expect(problem.message).toBe('replication factor 4 is larger than the 3 unfenced brokers; use at most 3, or start more brokers');
    const none = onlyProblem(createTopicProblems({ ...request, replicationFactor: 1 }, { ...cluster, unfencedBrokers: 0 }), 'replicationFactor');
    expect(none.message).toBe('replication factor 1 is larger than the 0 unfenced brokers; start or unfence a broker first');
  });

  it('refuses a replication factor above the limit of 7, however many brokers', () => {
    const big = { ...cluster, unfencedBrokers: 20 };
    expect(createTopicProblems({ ...request, replicationFactor: 7 }, big)).toEqual([]);
    const problem = onlyProblem(createTopicProblems({ ...request, replicationFactor: 8 }, big), 'replicationFactor');
    expect(problem.message).toBe('replication factor 8 is more than the limit of 7 (a partition of 7 replicas survives 3 failed brokers)');
  });

  it('names the tighter bound when the replication factor breaks both', () => {
    expect(createTopicProblems({ ...request, replicationFactor: 9 }, cluster)[0]?.message).toContain('larger than the 3 unfenced brokers');
  });

  it.each([0, -3, 2.5, Number.NaN])('refuses replication factor %d, naming the range', (replicationFactor) => {
    const problem = onlyProblem(createTopicProblems({ ...request, replicationFactor }, cluster), 'replicationFactor');
    expect(problem.message).toBe(`replication factor must be an integer from 1 to 7 and at most the 3 unfenced brokers, got ${replicationFactor}`);
  });

  it('asserts that the cluster counts are sane', () => {
    expect(() => createTopicProblems(request, { ...cluster, unfencedBrokers: -1 })).toThrow(AssertionError);
    expect(() => createTopicProblems(request, { ...cluster, totalPartitions: 0.5 })).toThrow(AssertionError);
  });
});

describe('addPartitionsProblems', () => {
  const topic = { partitions: 6, replicationFactor: 3 };
  const counts = { unfencedBrokers: 3, totalPartitions: 100 };

  it('accepts growth', () => {
    expect(addPartitionsProblems({ partitions: 7 }, topic, counts)).toEqual([]);
    expect(addPartitionsProblems({ partitions: 1000 }, topic, counts)).toEqual([]);
  });

  it('refuses the same count, or fewer: partitions cannot be removed', () => {
    const same = onlyProblem(addPartitionsProblems({ partitions: 6 }, topic, counts), 'partitions');
    expect(same.message).toBe('the topic already has 6 partitions; partitions is the new total and must be greater than 6 (partitions cannot be removed: keyed records would move)');
    const fewer = onlyProblem(addPartitionsProblems({ partitions: 2 }, topic, counts), 'partitions');
    expect(fewer.message).toContain('the topic has 6 partitions, more than the 2 asked for; partitions is the new total and must be greater than 6');
  });

  it('refuses a count outside [1, 1000]', () => {
    expect(onlyProblem(addPartitionsProblems({ partitions: 1001 }, topic, counts), 'partitions').message).toContain('limit of 1000 partitions per topic');
    expect(onlyProblem(addPartitionsProblems({ partitions: 0 }, topic, counts), 'partitions').message).toContain('from 1 to 1000, got 0');
  });

  it('counts only the added partitions against the cluster limit', () => {
    const nearlyFull = { ...counts, totalPartitions: 9_990 };
    expect(addPartitionsProblems({ partitions: 16 }, topic, nearlyFull)).toEqual([]);
    const problem = onlyProblem(addPartitionsProblems({ partitions: 17 }, topic, nearlyFull), 'partitions');
    expect(problem.message).toBe('adding 11 partitions would bring the cluster to 10001; at most 10000 partitions are allowed in a cluster (10 can still be added)');
  });

  it('refuses growth the unfenced brokers cannot host', () => {
    const problem = onlyProblem(addPartitionsProblems({ partitions: 8 }, topic, { ...counts, unfencedBrokers: 2 }), 'replicationFactor');
    expect(problem.message).toBe(
      "the topic's replication factor 3 is larger than the 2 unfenced brokers; new partitions cannot be placed until at least 3 brokers are unfenced",
    );
  });

  it('asserts that the topic fits the cluster counts', () => {
    expect(() => addPartitionsProblems({ partitions: 8 }, { ...topic, partitions: 0 }, counts)).toThrow(AssertionError);
    expect(() => addPartitionsProblems({ partitions: 8 }, topic, { ...counts, totalPartitions: 5 })).toThrow(AssertionError);
  });
});

describe('alterConfigsProblems', () => {
  const topic = { configs: { ...defaultTopicConfigs, segmentBytes: 8 * mebibyte, maxMessageBytes: 4 * mebibyte - 64 * 1024 } };

  it('accepts a valid change, and none', () => {
    expect(alterConfigsProblems({ configs: { 'retention.ms': '3600000', 'compression.type': 'lz4' } }, topic)).toEqual([]);
    expect(alterConfigsProblems({ configs: {} }, topic)).toEqual([]);
  });

  it('checks a change against the configs the topic keeps', () => {
    const problem = onlyProblem(alterConfigsProblems({ configs: { 'segment.bytes': String(2 * mebibyte) } }, topic), 'configs["segment.bytes"]');
    expect(problem.message).toContain('max.message.bytes 4128768 is larger than segment.bytes 2097152');
  });

  it('refuses bad keys and values', () => {
    const problems = alterConfigsProblems({ configs: { 'retention.bytes': '-2', 'cleanup.policy': 'compact' } }, topic);
    expect(problems.map((p) => p.field)).toEqual(['configs["retention.bytes"]', 'configs["cleanup.policy"]']);
    expect(problems[0]?.message).toContain('from 0 to 9007199254740991, or -1 for no size limit; got -2');
  });
});
