// GroupCoordinators creates __consumer_offsets on first use, with its full replication factor only.
import { describe, expect, it } from 'vitest';
import { CoordinatorLoadingError } from '../errors.js';
import type { MetadataImage } from '../metadata/image.js';
import { createLogger } from './logger.js';
import { GroupCoordinators, offsetsTopic } from './group-coordinators.js';
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
