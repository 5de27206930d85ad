// Helpers for data-path benchmarks: wait until a cluster's brokers serve and a topic's partitions
// have leaders every broker agrees on, and count the Produce requests the SDK sends.
import { Admin } from '../../src/client/admin.js';
import { BrokerClient, type ProduceRequest } from '../../src/client/broker-client.js';

const pollMs = 50;

/** waitForBrokers resolves once `count` brokers are registered and unfenced; throws after timeoutMs. */
export async function waitForBrokers(options: { bootstrap: readonly string[]; count: number; timeoutMs: number }): Promise<void> {
  const admin = new Admin({ bootstrap: options.bootstrap, retryForMs: options.timeoutMs });
  const deadline = Date.now() + options.timeoutMs;
  try {
    for (;;) {
      const cluster = await admin.describeCluster().catch(() => undefined);
      if (cluster !== undefined && cluster.brokers.filter((broker) => !broker.fenced).length >= options.count) return;
      if (Date.now() > deadline) throw new Error(`fewer than ${options.count} unfenced brokers after ${options.timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    admin.close();
  }
}

/**
 * waitForLeaders resolves with each partition's leader once every node's Metadata answer names
 * the same non-zero leader for every partition of the topic; throws after timeoutMs.
 */
export async function waitForLeaders(options: { bootstrap: readonly string[]; topic: string; partitions: number; timeoutMs: number }): Promise<number[]> {
  const clients = options.bootstrap.map((address) => new BrokerClient(address, 5000));
  const deadline = Date.now() + options.timeoutMs;
  try {
    for (;;) {
      const views = await Promise.all(clients.map((client) => client.metadata([options.topic]).catch(() => undefined)));
      const leaders = views.map((view) => view?.topics.find((topic) => topic.name === options.topic)?.partitions.map((partition) => partition.leader));
      const first = leaders[0];
      const agreed = first !== undefined && first.length === options.partitions && first.every((leader) => leader !== 0) && leaders.every((other) => other !== undefined && other.join() === first.join());
      if (agreed) return first;
      if (Date.now() > deadline) throw new Error(`topic ${options.topic}: no agreed leader for every partition after ${options.timeoutMs} ms (${JSON.stringify(leaders)})`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    for (const client of clients) client.close();
  }
}

/** ProduceCounter: Produce requests (batches) the SDK sent in this process, and their bytes. */
export interface ProduceCounter {
  requests: number;
  bytes: number;
}

const produceCounter: ProduceCounter = { requests: 0, bytes: 0 };
let counting = false;

/**
 * countProduceRequests wraps BrokerClient.produce of this process (once) so that every batch the
 * SDK sends is counted; returns the live counter. Benchmarks only: it changes the class for the
 * whole process.
 */
export function countProduceRequests(): Readonly<ProduceCounter> {
  if (counting) return produceCounter;
  counting = true;
  const original = BrokerClient.prototype.produce;
  BrokerClient.prototype.produce = function produce(this: BrokerClient, request: ProduceRequest) {
    produceCounter.requests++;
    produceCounter.bytes += request.batch.length;
    return original.call(this, request);
  };
  return produceCounter;
}
