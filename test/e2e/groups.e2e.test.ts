// Consumer groups on an in-process cluster: members share partitions, every group gets every
// record, a member that vanishes loses its partitions to the others, a restarted member resumes
// from the committed offsets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { startCluster, type RunningCluster } from '../../src/cluster/start-cluster.js';

let cluster: RunningCluster;
let admin: Admin;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
  admin = new Admin({ bootstrap: cluster.bootstrap });
  await admin.createTopic({ name: 'jobs', partitions: 6, replicationFactor: 3 });
  const producer = new Producer({ bootstrap: cluster.bootstrap });
  await Promise.all(Array.from({ length: 600 }, (_, i) => producer.send({ topic: 'jobs', partition: i % 6, value: `job-${i}` })));
  await producer.close();
}, 60_000);

afterAll(async () => {
  admin?.close();
  await cluster?.close();
});

const decoder = new TextDecoder();

function member(group: string, extra: Partial<ConstructorParameters<typeof Consumer>[0]> = {}): Consumer {
  const consumer = new Consumer({ bootstrap: cluster.bootstrap, groupId: group, autoOffsetReset: 'earliest', maxWaitMs: 100, sessionTimeoutMs: 2000, heartbeatIntervalMs: 300, rebalanceTimeoutMs: 3000, ...extra });
  consumer.subscribe(['jobs']);
  return consumer;
}

/** pollAll polls every consumer in turn until stop() says enough or the time is up. */
async function pollAll(consumers: readonly Consumer[], seen: Map<Consumer, ConsumerRecord[]>, stop: () => boolean, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!stop()) {
    if (Date.now() > deadline) throw new Error('timed out polling the group');
    await Promise.all(consumers.map(async (consumer) => seen.get(consumer)!.push(...(await consumer.poll()))));
  }
}

function assigned(consumer: Consumer): number[] {
  return consumer.assignment().map((tp) => tp.partition).sort((a, b) => a - b);
}

describe('consumer groups', () => {
  it('three members share six partitions; a second group gets every record too; a vanished member\'s partitions move', async () => {
    const consumers = [member('billing'), member('billing'), member('billing')];
    const seen = new Map(consumers.map((consumer) => [consumer, [] as ConsumerRecord[]]));
    const total = (): number => [...seen.values()].reduce((sum, records) => sum + records.length, 0);
    await pollAll(consumers, seen, () => total() >= 600 && consumers.every((consumer) => assigned(consumer).length === 2));
    const partitions = consumers.flatMap(assigned).sort((a, b) => a - b);
    expect(partitions).toEqual([0, 1, 2, 3, 4, 5]);
    const values = [...seen.values()].flat().map((record) => decoder.decode(record.value!));
    expect(new Set(values).size).toBe(600);

    // Another group reads everything on its own.
    const auditor = member('audit');
    const audited = new Map([[auditor, [] as ConsumerRecord[]]]);
    await pollAll([auditor], audited, () => audited.get(auditor)!.length >= 600);
    expect(new Set(audited.get(auditor)!.map((record) => decoder.decode(record.value!))).size).toBe(600);
    await auditor.close();

    // A member that stops heartbeating (a crash) loses its partitions to the others within the session timeout.
    await Promise.all(consumers.map((consumer) => consumer.commit()));
    const crashed = consumers[2]!;
    (crashed as unknown as { group: { close(): void } }).group.close();
    const survivors = consumers.slice(0, 2);
    await pollAll(survivors, seen, () => survivors.flatMap(assigned).length === 6, 30_000);
    expect(survivors.flatMap(assigned).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    await Promise.all(survivors.map((consumer) => consumer.close()));
  }, 120_000);

  it('one loop polling two members in turn: a rebalance completes without dropping either', async () => {
    // A poll that waited for the whole rebalance would hold the loop while the rebalance waits for
    // the other member's poll: its deadline would drop that member, which then loses its partitions.
    const lost: string[] = [];
    const first = member('serial', { rebalanceListener: { onPartitionsLost: (partitions) => void lost.push(...partitions.map((tp) => `${tp.topic}-${tp.partition}`)) } });
    while (assigned(first).length < 6) await first.poll();
    const second = member('serial');
    const settled = (): boolean => assigned(first).length === 3 && assigned(second).length === 3;
    for (const deadline = Date.now() + 25_000; Date.now() < deadline && !settled(); ) {
      await second.poll();
      await first.poll();
    }
    expect(lost).toEqual([]);
    expect([...assigned(first), ...assigned(second)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    await Promise.all([first.close(), second.close()]);
  }, 60_000);

  it('a restarted member resumes from the committed offsets; a zombie\'s commit is refused', async () => {
    const first = member('resume', { autoCommit: false });
    const records: ConsumerRecord[] = [];
    while (records.length < 300) records.push(...(await first.poll()));
    // Commit as if only the first half had been processed: the rest must be read again.
    const processed = new Map<number, number>();
    for (const record of records.slice(0, 150)) processed.set(record.partition, Math.max(processed.get(record.partition) ?? 0, record.offset + 1));
    await first.commit([...processed].map(([partition, offset]) => ({ topic: 'jobs', partition, offset })));
    const committed = await first.committed([0, 1, 2, 3, 4, 5].map((partition) => ({ topic: 'jobs', partition })));
    await first.close();
    const second = member('resume', { autoCommit: false });
    const resumed: ConsumerRecord[] = [];
    const want = 600 - [...committed.values()].reduce((sum, offset) => sum + offset, 0);
    while (resumed.length < want) resumed.push(...(await second.poll()));
    for (const record of resumed) expect(record.offset).toBeGreaterThanOrEqual(committed.get(`jobs\u0000${record.partition}`) ?? 0);
    expect(resumed).toHaveLength(want);
    expect(want).toBeGreaterThanOrEqual(450);

    // A member of an older generation (a zombie) cannot commit once the group moved on.
    const zombie = second as unknown as { group: { current: { memberId: string; generation: number }; commit(offsets: object[]): Promise<void> } };
    const stale = { ...zombie.group.current };
    const third = member('resume', { autoCommit: false });
    await Promise.all([(async () => { while (third.assignment().length === 0) await third.poll(); })(), (async () => { for (let i = 0; i < 40 && third.assignment().length === 0; i++) await second.poll(); })()]);
    expect(zombie.group.current.generation).toBeGreaterThan(stale.generation);
    Object.assign(zombie.group, { memberId: stale.memberId, generation: stale.generation });
    await expect(zombie.group.commit([{ topic: 'jobs', partition: 0, offset: 1 }])).rejects.toMatchObject({ name: 'IllegalGenerationError' });
    await Promise.all([second.close(), third.close()]);
  }, 120_000);

  it('a pattern subscription picks up matching topics, and the rebalance listener hears of what is assigned and revoked', async () => {
    await admin.createTopic({ name: 'metrics-cpu', partitions: 2, replicationFactor: 3 });
    const events: string[] = [];
    const watcher = new Consumer({
      bootstrap: cluster.bootstrap,
      groupId: 'watchers',
      autoOffsetReset: 'earliest',
      maxWaitMs: 100,
      sessionTimeoutMs: 2000,
      heartbeatIntervalMs: 300,
      rebalanceListener: {
        onPartitionsAssigned: (partitions) => void events.push(...partitions.map((tp) => `+${tp.topic}-${tp.partition}`)),
        onPartitionsRevoked: (partitions) => void events.push(...partitions.map((tp) => `-${tp.topic}-${tp.partition}`)),
      },
    });
    watcher.subscribe(/^metrics-/);
    const deadline = Date.now() + 20_000;
    while (watcher.assignment().length < 2 && Date.now() < deadline) await watcher.poll();
    expect(watcher.assignment().map((tp) => `${tp.topic}-${tp.partition}`).sort()).toEqual(['metrics-cpu-0', 'metrics-cpu-1']);
    await admin.createTopic({ name: 'metrics-disk', partitions: 1, replicationFactor: 3 });
    while (watcher.assignment().length < 3 && Date.now() < deadline) await watcher.poll();
    expect(watcher.assignment().map((tp) => `${tp.topic}-${tp.partition}`).sort()).toEqual(['metrics-cpu-0', 'metrics-cpu-1', 'metrics-disk-0']);
    expect(events.filter((event) => event.startsWith('+')).sort()).toEqual(['+metrics-cpu-0', '+metrics-cpu-1', '+metrics-disk-0']);
    await watcher.close();
  }, 120_000);
});
