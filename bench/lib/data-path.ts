// Helpers for data-path benchmarks: wait until a topic's partitions have leaders every broker agrees
// on, and count the Produce requests the SDK sends. (Brokers: waitForBrokers of src/cluster.)
import { BrokerClient, type ProduceRequest } from '../../src/client/broker-client.js';
import { pollUntil } from '../../src/cluster/poll.js';

/**
 * waitForLeaders resolves with each partition's leader once every node's Metadata answer names
 * the same non-zero leader for every partition of the topic; throws after timeoutMs.
 */
export async function waitForLeaders(options: { bootstrap: readonly string[]; topic: string; partitions: number; timeoutMs: number }): Promise<number[]> {
  const clients = options.bootstrap.map((address) => new BrokerClient(address, 5000));
  try {
    return await pollUntil(
      async () => {
        const views = await Promise.all(clients.map((client) => client.metadata([options.topic]).catch(() => undefined)));
        const leaders = views.map((view) => view?.topics.find((topic) => topic.name === options.topic)?.partitions.map((partition) => partition.leader));
        const first = leaders[0];
        const agreed = first !== undefined && first.length === options.partitions && first.every((leader) => leader !== 0) && leaders.every((other) => other !== undefined && other.join() === first.join());
        return agreed ? first : undefined;
      },
      { what: `an agreed leader for every partition of ${options.topic}`, timeoutMs: options.timeoutMs },
    );
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
