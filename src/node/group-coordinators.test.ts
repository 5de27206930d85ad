// GroupCoordinators creates __consumer_offsets on first use, with its full replication factor only,
// and deletes the groups past the offsets retention on the coordinators it runs.
import { describe, expect, it } from 'vitest';
import { CoordinatorLoadingError } from '../errors.js';
import type { MetadataImage } from '../metadata/image.js';
import { createLogger } from './logger.js';
import { GroupCoordinators, offsetsTopic } from './group-coordinators.js';
import type { HostedPartition } from './hosted-partition.js';
import type { BatchListener } from '../partition/partition-state.js';
import { encodeGroupBatch } from '../rpc/group-codec.js';
import type { RaftHost } from './raft-host.js';
import { systemClock } from './runtime.js';

/** imageWith is the part of a metadata image findCoordinator reads before the offsets topic exists. */
function imageWith(unfenced: number[]): MetadataImage {
  return { topicByName: () => undefined, unfencedBrokers: () => unfenced.map((id) => ({ id })) } as unknown as MetadataImage;
}

function coordinators(image: () => MetadataImage, created: object[], warnings: string[]): GroupCoordinators {
  const logger = createLogger({ nodeId: 1, level: 'warn', destination: { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) } });
  return new GroupCoordinators({
    self: 1,
    host: {} as RaftHost,
    image,
    clock: systemClock,
    newId: () => 'id',
    offsetsReplicationFactor: 3,
    createTopic: (request) => {
      created.push(request);
      return Promise.resolve();
    },
    logger,
  });
}

describe('the offsets topic', () => {
  it('is not created while fewer brokers than its replication factor are unfenced; groups hear "loading" and are told why once', async () => {
    let unfenced = [1, 2];
    const created: object[] = [];
    const warnings: string[] = [];
    const groups = coordinators(() => imageWith(unfenced), created, warnings);
    await expect(groups.findCoordinator('g')).rejects.toBeInstanceOf(CoordinatorLoadingError);
    await expect(groups.findCoordinator('g')).rejects.toBeInstanceOf(CoordinatorLoadingError);
    expect(created).toEqual([]);
    expect(warnings).toEqual(['consumer groups wait for enough brokers to create the offsets topic; start the missing brokers']);
    unfenced = [1, 2, 3];
    await expect(groups.findCoordinator('g')).rejects.toBeInstanceOf(CoordinatorLoadingError);
    expect(created).toEqual([{ name: offsetsTopic, partitions: 6, replicationFactor: 3, configs: { 'retention.ms': '-1', 'retention.bytes': '-1', 'segment.bytes': '4194304' } }]);
  });
});

describe('offsets retention', () => {
  it('expireGroups deletes, on the coordinators this node runs, the groups without members past the retention', async () => {
    let nowMs = 1_000_000;
    const clock = { ...systemClock, now: () => nowMs };
    const lines: string[] = [];
    const logger = createLogger({ nodeId: 1, level: 'info', destination: { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) } });
    let listener: BatchListener | undefined;
    // One offsets partition (group 50) that this node leads; produce replays the batch at once, as a commit would.
    const partition = {
      id: { topic: offsetsTopic, partition: 0, groupId: 50 },
      label: `${offsetsTopic}-0`,
      replayInto: (given: BatchListener) => {
        listener = given;
        given.restore(undefined);
      },
      produce: (request: { batch: Uint8Array }) => {
        listener!.batch(request.batch);
        return Promise.resolve({});
      },
    } as unknown as HostedPartition;
    const image = { topicByName: (name: string) => (name === offsetsTopic ? { partitions: [{ leader: 1 }] } : undefined), unfencedBrokers: () => [] } as unknown as MetadataImage;
    const groups = new GroupCoordinators({
      self: 1,
      host: { status: () => ({ role: 'leader', term: 2, leader: 1 }), appliedTerm: () => 2 } as unknown as RaftHost,
      image: () => image,
      clock,
      newId: () => 'id',
      offsetsReplicationFactor: 3,
      offsetsRetentionMs: 60_000,
      createTopic: () => Promise.resolve(),
      logger,
    });
    groups.attach(partition);
    // A group committed before this node led the partition (replayed as a follower would): no client has come since.
    listener!.batch(encodeGroupBatch([{ type: 'offsetCommit', group: 'g', topic: 'orders', partition: 0, offset: 7, metadata: '', commitTimestampMs: nowMs }], nowMs));
    nowMs += 59_999;
    await groups.expireGroups();
    expect(lines).not.toContain('deleted groups past the offsets retention');
    nowMs += 1;
    await groups.expireGroups();
    expect(lines).toContain('deleted groups past the offsets retention');
    expect(groups.listGroups()).toEqual([]);
  });
});
