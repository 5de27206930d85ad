// The Broker service ends a long poll when its client goes away: a Fetch past its deadline and a
// Subscribe stream the client cancels abort the signal the partition's fetch waits on. Without it a
// given-up Fetch stayed parked on the broker for up to maxWaitMs (30 s at most), holding one of
// the node's waiting-fetch slots.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerClient } from '../client/broker-client.js';
import { pollUntil } from '../cluster/poll.js';
import { RemoteError } from './status.js';
import { registerBrokerService, type BrokerBackend, type BrokerPartition, type FetchAnswer } from './broker-service.js';

/** parkedPartition is a partition whose fetch waits until its signal aborts, and remembers each signal. */
function parkedPartition(): { partition: BrokerPartition; signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  const partition: BrokerPartition = {
    produce: () => Promise.reject(new Error('not in this test')),
    fetch: (request, signal) => {
      signals.push(signal!);
      return new Promise<FetchAnswer>((resolve) => {
        signal!.addEventListener('abort', () => resolve({ highWatermark: 0, logStartOffset: 0, batches: new Uint8Array(0), nextOffset: request.offset }), { once: true });
      });
    },
    listOffset: () => 0,
    state: { highWatermark: 0, logStartOffset: 0 },
  };
  return { partition, signals };
}

const servers: grpc.Server[] = [];
const clients: BrokerClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) server.forceShutdown();
});

async function serve(partition: BrokerPartition): Promise<BrokerClient> {
  const server = new grpc.Server();
  const backend: BrokerBackend = { brokerMetadata: () => ({ brokers: [], topics: [], unknownTopics: [] }) as unknown as ReturnType<BrokerBackend['brokerMetadata']>, partition: () => partition };
  registerBrokerService(server, backend);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  servers.push(server);
  const client = new BrokerClient(`127.0.0.1:${port}`, 100);
  clients.push(client);
  return client;
}

describe('a long poll whose client went away', () => {
  it('a Fetch past its deadline: the fetch stops waiting', async () => {
    const { partition, signals } = parkedPartition();
    const client = await serve(partition);
    // The client's deadline is maxWaitMs + 100 ms; maxWaitMs is 200 ms, the parked fetch never answers by itself.
    const error = await client.fetch({ topic: 'orders', partition: 0, offset: 0, maxBytes: 1024, maxWaitMs: 200, minBytes: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(signals).toHaveLength(1);
    await pollUntil(() => signals[0]!.aborted, { what: 'the fetch to be told its client is gone', timeoutMs: 5000, everyMs: 10 });
  });

  it('a Subscribe stream the client cancels: the fetch stops waiting', async () => {
    const { partition, signals } = parkedPartition();
    const client = await serve(partition);
    const stream = client.subscribe({ topic: 'orders', partition: 0, offset: 0, maxBytes: 1024 });
    stream.on('error', () => undefined); // CANCELLED, as asked
    await pollUntil(() => signals.length === 1, { what: 'the stream to park a fetch', timeoutMs: 5000, everyMs: 10 });
    expect(signals[0]!.aborted).toBe(false);
    stream.cancel();
    await pollUntil(() => signals[0]!.aborted, { what: 'the fetch to be told its client is gone', timeoutMs: 5000, everyMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(signals).toHaveLength(1); // and the stream parks no further fetch
  });
});
