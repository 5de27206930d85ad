// `raftbus topics …` and `raftbus brokers list`: what kafka-topics.sh does, over the SDK's Admin.
import type { Admin, ClusterDescription, TopicDescription } from '../client/admin.js';
import { connectAdmin, type ConnectOptions } from './connect.js';
import { table } from './table.js';

type Output = { json?: boolean };

async function withAdmin<T>(options: ConnectOptions, run: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = await connectAdmin(options);
  try {
    return await run(admin);
  } finally {
    admin.close();
  }
}

/** parseConfigs reads repeated --config key=value options. */
export function parseConfigs(pairs: readonly string[]): Record<string, string> {
  const configs: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new Error(`--config '${pair}' is not key=value (e.g. --config retention.ms=86400000)`);
    configs[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return configs;
}

export async function createTopic(name: string, options: ConnectOptions & Output & { partitions: number; replicationFactor?: number; config: string[] }): Promise<void> {
  const topic = await withAdmin(options, (admin) =>
    admin.createTopic({ name, partitions: options.partitions, ...(options.replicationFactor !== undefined ? { replicationFactor: options.replicationFactor } : {}), configs: parseConfigs(options.config) }),
  );
  if (options.json) console.log(JSON.stringify(topic, null, 2));
  else console.log(`Created topic ${topic.name} with ${topic.partitions.length} partition(s), replication factor ${topic.partitions[0]?.replicas.length ?? 0}.`);
}

export async function listTopics(options: ConnectOptions & Output): Promise<void> {
  const names = await withAdmin(options, (admin) => admin.listTopics());
  if (options.json) console.log(JSON.stringify(names));
  else for (const name of names) console.log(name);
}

export async function describeTopics(names: string[], options: ConnectOptions & Output): Promise<number> {
  const { topics, unknown } = await withAdmin(options, (admin) => admin.describeTopics(names));
  if (options.json) console.log(JSON.stringify({ topics, unknown }, null, 2));
  else {
    for (const topic of topics) console.log(renderTopic(topic));
    for (const name of unknown) console.error(`Topic ${name} does not exist.`);
  }
  return unknown.length > 0 ? 1 : 0;
}

export function renderTopic(topic: TopicDescription): string {
  const configs = Object.entries(topic.configs).map(([key, value]) => `${key}=${value}`).join(',');
  const header = `Topic: ${topic.name}\tTopicId: ${topic.topicId}\tPartitionCount: ${topic.partitions.length}\tReplicationFactor: ${topic.partitions[0]?.replicas.length ?? 0}\tConfigs: ${configs}`;
  const rows = topic.partitions.map((partition) => `\tTopic: ${topic.name}\tPartition: ${partition.partition}\tLeader: ${partition.leader || 'none'}\tLeaderEpoch: ${partition.leaderEpoch}\tReplicas: ${partition.replicas.join(',')}`);
  return [header, ...rows].join('\n');
}

export async function deleteTopic(name: string, options: ConnectOptions): Promise<void> {
  await withAdmin(options, (admin) => admin.deleteTopic(name));
  console.log(`Deleted topic ${name}.`);
}

export async function alterTopic(name: string, options: ConnectOptions & Output & { partitions?: number; config: string[]; deleteConfig: string[] }): Promise<void> {
  if (options.partitions === undefined && options.config.length === 0 && options.deleteConfig.length === 0) {
    throw new Error('nothing to alter: give --partitions N, --config key=value or --delete-config key');
  }
  const topic = await withAdmin(options, async (admin) => {
    let described: TopicDescription | undefined;
    if (options.partitions !== undefined) described = await admin.createPartitions(name, options.partitions);
    if (options.config.length > 0 || options.deleteConfig.length > 0) described = await admin.alterConfigs(name, { set: parseConfigs(options.config), remove: options.deleteConfig });
    return described!;
  });
  if (options.json) console.log(JSON.stringify(topic, null, 2));
  else console.log(renderTopic(topic));
}

export async function listBrokers(options: ConnectOptions & Output): Promise<void> {
  const cluster = await withAdmin(options, (admin) => admin.describeCluster());
  if (options.json) {
    console.log(JSON.stringify(cluster, null, 2));
    return;
  }
  console.log(renderBrokers(cluster));
}

export function renderBrokers(cluster: ClusterDescription): string {
  const rows = [['BROKER', 'ADDRESS', 'RACK', 'STATE', 'EPOCH', 'REPLICAS', 'LEADERS']];
  for (const broker of cluster.brokers) {
    const state = broker.inControlledShutdown ? 'shutting down' : broker.fenced ? 'fenced' : 'unfenced';
    rows.push([String(broker.id), `${broker.host}:${broker.port}`, broker.rack || '-', state, String(broker.epoch), String(broker.partitions), String(broker.leaders)]);
  }
  return [`controller: ${cluster.controllerId || 'none known'}`, ...table(rows)].join('\n');
}
