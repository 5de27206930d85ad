// Admin reads never go back in time. Every node answers ListTopics, DescribeTopics and
// DescribeCluster from its own copy of the metadata, which may lag. The process test of a
// controller kill once saw a topic deleted before the kill listed again: the read was answered by
// a survivor that had not applied the delete yet. Here two in-process nodes stand in: the
// controller, up to date, and a node that lags.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { StaleMetadataError } from '../errors.js';
import { registerAdminService, type AdminBackend, type ClusterDescription } from '../rpc/admin-service.js';
import { Admin } from './admin.js';

/** NodeView is what a stand-in node answers from: its topics and how far its metadata has been applied. */
interface NodeView {
  topics: string[];
  metadataOffset: number;
}

const servers: grpc.Server[] = [];
const admins: Admin[] = [];
afterEach(() => {
  for (const admin of admins.splice(0)) admin.close();
  for (const server of servers.splice(0)) server.forceShutdown();
});

/** startNodes serves node 1 (the controller) and node 2 from their views; each describes both. */
async function startNodes(views: { 1: NodeView; 2: NodeView }): Promise<{ servers: Map<number, grpc.Server>; ports: Map<number, number> }> {
  const byId = new Map<number, grpc.Server>();
  const ports = new Map<number, number>();
  for (const id of [1, 2] as const) {
    const server = new grpc.Server();
    const view = views[id];
    const backend = {
      listTopics: () => ({ names: [...view.topics], metadataOffset: view.metadataOffset }),
      describeTopics: () => ({ topics: view.topics.map((name) => ({ name, topicId: `${name}-id`, partitions: [], configs: {} })), unknown: [], metadataOffset: view.metadataOffset }),
      describeCluster: (): ClusterDescription => ({
        clusterId: 'c',
        controllerId: 1,
        brokers: [],
        metadataOffset: view.metadataOffset,
        nodes: [1, 2].map((node) => ({ id: node, host: '127.0.0.1', port: ports.get(node)!, roles: ['controller', 'broker'] })),
      }),
    } as unknown as AdminBackend;
    registerAdminService(server, backend);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    byId.set(id, server);
    ports.set(id, port);
    servers.push(server);
  }
  return { servers: byId, ports };
}

describe('Admin reads after the controller is gone', () => {
  it('pass over a node whose metadata is older than what was read, until it catches up', async () => {
    const lagging: NodeView = { topics: ['doomed', 'orders'], metadataOffset: 40 };
    const { servers: nodes, ports } = await startNodes({ 1: { topics: ['orders'], metadataOffset: 42 }, 2: lagging });
    const admin = new Admin({ bootstrap: [`127.0.0.1:${ports.get(1)}`], retryForMs: 10_000 });
    admins.push(admin);
    expect(await admin.listTopics()).toEqual(['orders']); // from the controller, at offset 42

    nodes.get(1)!.forceShutdown();
    // Node 2 applies the delete 300 ms later; until then its answer (offset 40) is passed over.
    setTimeout(() => Object.assign(lagging, { topics: ['orders'], metadataOffset: 43 }), 300);
    expect(await admin.listTopics()).toEqual(['orders']);
    expect((await admin.describeTopics()).topics.map((topic) => topic.name)).toEqual(['orders']);
  });

  it('say so when no node catches up within retryForMs: StaleMetadataError naming both offsets', async () => {
    const { servers: nodes, ports } = await startNodes({ 1: { topics: ['orders'], metadataOffset: 42 }, 2: { topics: ['doomed', 'orders'], metadataOffset: 40 } });
    const admin = new Admin({ bootstrap: [`127.0.0.1:${ports.get(1)}`, `127.0.0.1:${ports.get(2)}`], retryForMs: 500 });
    admins.push(admin);
    expect((await admin.describeCluster()).metadataOffset).toBe(42);

    nodes.get(1)!.forceShutdown();
    const error = await admin.listTopics().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StaleMetadataError);
    expect(error).toMatchObject({ metadataOffset: 40, seenOffset: 42, retriable: true });
    await expect(admin.describeCluster()).rejects.toBeInstanceOf(StaleMetadataError);
  });
});
