// `raftbus cluster describe`: every node's view of the metadata quorum, side by side.
import { AdminClient } from '../client/admin-client.js';
import type { QuorumDescription } from '../rpc/admin-service.js';
import { Admin, type ClusterDescription } from '../client/admin.js';
import { renderBrokers } from './topics.js';
import { table } from './table.js';
import { loadCluster } from './connect.js';
import { quantileUpperBoundMicros } from '../node/latency-histogram.js';

const describeDeadlineMs = 2000;

type NodeView = { id: number; address: string } & ({ ok: true; quorum: QuorumDescription } | { ok: false; error: string });

/** describeCluster prints the quorum; returns 0 when a leader is known, 1 otherwise, 2 on a bad file. */
export async function describeCluster(options: { cluster: string; json?: boolean }): Promise<number> {
  const loaded = await loadCluster(options.cluster);
  const views: NodeView[] = await Promise.all(
    loaded.cluster.nodes.map(async (node): Promise<NodeView> => {
      const address = `${node.host}:${node.clientPort}`;
      const client = new AdminClient(address, { deadlineMs: describeDeadlineMs });
      try {
        return { id: node.id, address, ok: true, quorum: await client.describeQuorum() };
      } catch (error) {
        return { id: node.id, address, ok: false, error: (error as Error).message };
      } finally {
        client.close();
      }
    }),
  );
  const leaderView = views.find((view) => view.ok && view.quorum.role === 'leader');
  const brokers = await describeBrokers(views.filter((view) => view.ok).map((view) => view.address));
  if (options.json) {
    console.log(JSON.stringify({ clusterId: loaded.cluster.clusterId, nodes: views, brokers: brokers ?? null }, null, 2));
  } else {
    console.log(render(loaded.cluster.clusterId, views, leaderView));
    console.log('');
    console.log(brokers === undefined ? 'brokers: no node answered' : renderBrokers(brokers));
  }
  return leaderView === undefined ? 1 : 0;
}

async function describeBrokers(addresses: string[]): Promise<ClusterDescription | undefined> {
  if (addresses.length === 0) return undefined;
  const admin = new Admin({ bootstrap: addresses, requestTimeoutMs: describeDeadlineMs, retryForMs: describeDeadlineMs });
  try {
    return await admin.describeCluster();
  } catch {
    return undefined;
  } finally {
    admin.close();
  }
}

function render(clusterId: string, views: NodeView[], leaderView: NodeView | undefined): string {
  const lines: string[] = [];
  if (leaderView?.ok) {
    const q = leaderView.quorum;
    lines.push(`cluster ${clusterId}: metadata quorum led by node ${q.nodeId} in term ${q.term}; voters [${q.voters.join(', ')}], learners [${q.learners.join(', ')}]`);
  } else {
    lines.push(`cluster ${clusterId}: no node reports itself leader of the metadata quorum right now`);
  }
  const heard = new Map(leaderView?.ok ? leaderView.quorum.replicas.map((replica) => [replica.nodeId, replica]) : []);
  const rows = [['NODE', 'ADDRESS', 'ROLE', 'TERM', 'LEADER', 'LAST INDEX', 'COMMIT', 'APPLIED', 'MATCH', 'HEARD FROM', 'SYNC p50/p99']];
  for (const view of views) {
    if (!view.ok) {
      rows.push([String(view.id), view.address, 'unreachable', '-', '-', '-', '-', '-', '-', view.error.split('\n')[0]!, '-']);
      continue;
    }
    const q = view.quorum;
    const replica = heard.get(q.nodeId);
    const heardFrom = replica === undefined ? '-' : q.nodeId === leaderView?.id ? 'self' : replica.lastHeardMsAgo < 0 ? 'never' : `${replica.lastHeardMsAgo} ms ago`;
    rows.push([String(q.nodeId), view.address, q.role, String(q.term), String(q.leaderId || '-'), String(q.lastIndex), String(q.commitIndex), String(q.appliedIndex), replica === undefined ? '-' : String(replica.matchIndex), heardFrom, syncLatency(q)]);
  }
  lines.push(...table(rows));
  return lines.join('\n');
}

/** syncLatency shows the bucket bounds of a node's median and 99th-percentile sync wait since it started. */
export function syncLatency(quorum: Pick<QuorumDescription, 'syncWaitBuckets' | 'syncWaitBucketBoundsMicros'>): string {
  const bounds = quorum.syncWaitBucketBoundsMicros;
  const show = (q: number): string => {
    const micros = quantileUpperBoundMicros(quorum.syncWaitBuckets, q, bounds);
    if (micros === undefined) return '-';
    if (micros === Infinity) return `>${formatMicros(bounds.at(-1) ?? 0)}`;
    return `<${formatMicros(micros)}`;
  };
  return `${show(0.5)}/${show(0.99)}`;
}

function formatMicros(micros: number): string {
  return micros < 1000 ? `${micros}µs` : `${(micros / 1000).toPrecision(2)}ms`;
}
