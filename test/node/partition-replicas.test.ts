// PartitionReplicas opens the replicas of this node when the topics change, and skips images whose
// topics are the ones it already reconciled. A failed open must not be skipped for good: the next
// image, even one that changed no topic, tries again, and the failed replica is let go first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pollUntil } from '../../src/cluster/poll.js';
import { replayAll } from '../../src/metadata/delta.js';
import { MetadataImage } from '../../src/metadata/image.js';
import type { MetadataRecord } from '../../src/metadata/records.js';
import { createLogger } from '../../src/node/logger.js';
import { PartitionReplicas } from '../../src/node/partition-replicas.js';
import type { HostedGroupOptions, RaftHost } from '../../src/node/raft-host.js';
import { systemRuntime } from '../../src/node/runtime.js';
import { MemoryStateStore } from '../sim/memory-state-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const noOp: MetadataRecord = { type: 'noOp', payload: new Uint8Array(0) };

/** imageWithPartition: brokers 1 to 3 and a topic of one partition (group 7) on all of them, led by 2. */
function imageWithPartition(): MetadataImage {
  const brokers: MetadataRecord[] = [1, 2, 3].map((id) => ({ type: 'registerBroker', brokerId: id, incarnationId: `i${id}`, endpoint: { host: 'h', port: id }, rack: '', brokerEpoch: id }));
  return replayAll(
    MetadataImage.empty,
    [
      ...brokers,
      { type: 'topic', name: 'orders', topicId: 'orders-id', requestId: 'r1' },
      { type: 'partition', topicId: 'orders-id', partition: 0, replicas: [1, 2, 3], leader: 2, leaderEpoch: 0, partitionEpoch: 0, groupId: 7 },
    ],
    1,
  );
}

describe('partition replicas', () => {
  it('retry a replica whose opening failed on the next image, though that image changed no topic', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'raftbus-replicas-'));
    dirs.push(dataDir);
    const errors: string[] = [];
    const logger = createLogger({ nodeId: 1, level: 'error', destination: { write: (line: string) => void errors.push((JSON.parse(line) as { msg: string }).msg) } });
    let attempts = 0;
    const added: number[] = [];
    const attachments: string[] = [];
    const host = {
      addGroup: (options: HostedGroupOptions) => {
        attempts++;
        if (attempts === 1) throw new Error('the first open fails (test)');
        added.push(options.group);
      },
      hosts: () => true,
      status: () => ({ leader: 2, role: 'follower' }),
      campaign: () => {},
    } as unknown as RaftHost;
    const image = imageWithPartition();
    const replicas = new PartitionReplicas({
      self: 1,
      dataDir,
      host,
      stateStore: new MemoryStateStore(() => Promise.resolve()),
      runtime: systemRuntime(),
      image: () => image,
      logger,
      attach: (partition) => attachments.push(`attach ${partition.label}`),
      detach: (partition) => attachments.push(`detach ${partition.label}`),
    });

    replicas.onImage(image);
    await pollUntil(() => errors.length > 0, { what: 'the failed open to be logged', timeoutMs: 10_000, everyMs: 5 });
    expect(errors).toEqual(['could not open or remove a partition replica']);
    expect(replicas.all()).toEqual([]);
    expect(attachments).toEqual(['attach orders-0', 'detach orders-0']); // the failed replica is let go

    const next = replayAll(image, [noOp], 2);
    expect(next.topics).toBe(image.topics); // the premise of the skip: a no-op leaves the topics map as it was
    replicas.onImage(next);
    await pollUntil(() => replicas.all().length === 1, { what: 'the replica to be opened on the second try', timeoutMs: 10_000, everyMs: 5 });
    expect(added).toEqual([7]);
    expect(replicas.all().map((partition) => partition.label)).toEqual(['orders-0']);
    expect(attachments).toEqual(['attach orders-0', 'detach orders-0', 'attach orders-0']);
    replicas.closeLogs();
  });
});
