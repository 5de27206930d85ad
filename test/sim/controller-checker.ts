// ControllerChecker judges the metadata quorum of a controller simulation from the outside, like
// RaftChecker judges Raft: it hears every batch a node is about to apply, every image a node ends
// up with (after an entry or a snapshot), and every answer a controller gives, and throws
// InvariantViolation the moment a property fails.
//
// Images change only when a node applies an entry or restores a snapshot, so checking each new
// image against the first image any node had at the same offset is the same as checking, after
// every event, that every pair of nodes at equal offsets holds equal images.
import type { MetadataImage } from '../../src/metadata/image.js';
import type { MetadataRecord } from '../../src/metadata/records.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import { decodeRecordBatch } from '../../src/rpc/metadata-codec.js';
import { InvariantViolation } from './raft-checker.js';

function violation(property: string, detail: string): never {
  throw new InvariantViolation(property, detail);
}

/**
 * canonicalImage writes an image as JSON that equal images share: maps as entries sorted by key,
 * object keys sorted, except the completed requests, whose order is part of the state (the oldest
 * is forgotten first).
 */
export function canonicalImage(image: MetadataImage): string {
  return canonicalJson({ offset: image.offset, brokers: image.brokers, topics: image.topics, topicIds: image.topicIds, requestsInOrder: [...image.requests.values()], nextGroupId: image.nextGroupId, nextProducerId: image.nextProducerId });
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value));
}

function canonicalValue(value: unknown): unknown {
  if (value instanceof Map) {
    return [...value.entries()].map(([key, item]) => [String(key), canonicalValue(item)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  if (Array.isArray(value)) return value.map(canonicalValue);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = canonicalValue(item);
    }
    return out;
  }
  return value;
}

/** batchKey identifies an applied entry: its term, type and bytes. */
function batchKey(entry: Entry): string {
  return `${entry.term}/${entry.type}/${Buffer.from(entry.data).toString('hex')}`;
}

function describeBatch(entry: Entry): string {
  if (entry.type !== 'normal' || entry.data.length === 0) return `${entry.index}/${entry.term} ${entry.type}${entry.data.length === 0 ? ' (empty)' : ''}`;
  try {
    return `${entry.index}/${entry.term} ${canonicalJson(decodeRecordBatch(entry.data))}`;
  } catch {
    return `${entry.index}/${entry.term} (undecodable)`;
  }
}

export class ControllerChecker {
  /** stateAt[offset]: the canonical image (and log digest) the first node to reach offset had there. */
  private readonly stateAt = new Map<number, { node: NodeId; key: string }>();
  /** sequence[offset]: the one global sequence of applied batches every node's must be a prefix of. */
  private readonly sequence = new Map<number, { key: string; entry: Entry; node: NodeId }>();
  private sequenceEnd = 1;
  /** cursor[node]: the offset the node's image is at (in its current life). */
  private readonly cursor = new Map<NodeId, number>();
  /** lastImage[node]: the node's image before its next entry (this life). */
  private readonly lastImage = new Map<NodeId, MetadataImage>();
  /** epochsSeen[node][broker]: broker epochs in the node's last image (this life). */
  private readonly epochsSeen = new Map<NodeId, Map<NodeId, number>>();
  /** In the global sequence: the topic each request id created, topic ids, each broker's last epoch. */
  private readonly topicOfRequest = new Map<string, { topicId: string; offset: number }>();
  private readonly topicIds = new Map<string, number>();
  private readonly brokerEpoch = new Map<NodeId, { epoch: number; offset: number; incarnationId: string }>();
  /** registrations[`broker/incarnation`]: the epoch of that incarnation's latest registration. */
  private readonly registrations = new Map<string, number>();
  checks = 0;
  topicRecords = 0;
  batches = 0;

  /** restored: node's image is now a snapshot's (at start, restart, or on installing one). */
  restored(node: NodeId, options: { offset: number; image: MetadataImage; digest: number; sameLife: boolean }): void {
    this.checks++;
    const previous = this.cursor.get(node);
    if (options.sameLife && previous !== undefined && options.offset < previous) {
      violation('a node never goes back in the metadata log', `node ${node} installed a snapshot at ${options.offset} after applying up to ${previous}`);
    }
    if (options.offset > this.sequenceEnd) {
      violation('a snapshot holds only applied batches', `node ${node} restored a snapshot at ${options.offset}, but no node applied past ${this.sequenceEnd}`);
    }
    this.cursor.set(node, options.offset);
    this.checkState(node, options.offset, options.image, options.digest);
    this.epochsSeen.set(node, epochsOf(options.image));
    this.lastImage.set(node, options.image);
  }

  /** applying: node is about to apply entry. Checks the prefix property, and judges a batch new to the global sequence. */
  applying(node: NodeId, entry: Entry): void {
    this.checks++;
    const cursor = this.cursor.get(node) ?? 0;
    if (entry.index !== cursor + 1) violation('a node applies the metadata log in order, without gaps', `node ${node} applies ${entry.index} after ${cursor}`);
    const key = batchKey(entry);
    const known = this.sequence.get(entry.index);
    if (known !== undefined) {
      if (known.key !== key) {
        violation(
          "every node's applied batches are a prefix of one sequence",
          `node ${node} applies ${describeBatch(entry)}, node ${known.node} applied ${describeBatch(known.entry)} at the same offset`,
        );
      }
      return;
    }
    if (entry.index !== this.sequenceEnd + 1) violation("every node's applied batches are a prefix of one sequence", `node ${node} applies ${entry.index}, the sequence ends at ${this.sequenceEnd}`);
    this.sequence.set(entry.index, { key, entry, node });
    this.sequenceEnd = entry.index;
    if (entry.type !== 'normal' || entry.data.length === 0) return;
    this.batches++;
    let records: MetadataRecord[];
    try {
      records = decodeRecordBatch(entry.data);
    } catch (error) {
      return violation('every metadata entry is a record batch', `node ${node} applies ${entry.index}: ${(error as Error).message}`);
    }
    for (const record of records) this.judgeRecord(node, entry.index, record);
  }

  private judgeRecord(node: NodeId, offset: number, record: MetadataRecord): void {
    if (record.type === 'topic') {
      this.topicRecords++;
      const idOffset = this.topicIds.get(record.topicId);
      if (idOffset !== undefined) violation('topic ids are unique', `topic id ${record.topicId} (${record.name}) created at ${idOffset} and again at ${offset} (node ${node} applies it)`);
      this.topicIds.set(record.topicId, offset);
      if (record.requestId !== '') {
        const earlier = this.topicOfRequest.get(record.requestId);
        if (earlier !== undefined) {
          violation(
            'at most one topic is created per request id',
            `request ${record.requestId} created topic ${earlier.topicId} at ${earlier.offset} and ${record.name} (${record.topicId}) at ${offset}`,
          );
        }
        this.topicOfRequest.set(record.requestId, { topicId: record.topicId, offset });
      }
    }
    if (record.type === 'registerBroker') {
      const previous = this.brokerEpoch.get(record.brokerId);
      if (previous !== undefined && record.brokerEpoch <= previous.epoch) {
        violation(
          "a broker's epoch only grows",
          `broker ${record.brokerId} registered (${record.incarnationId}) with epoch ${record.brokerEpoch} at ${offset}, after epoch ${previous.epoch} (${previous.incarnationId}) at ${previous.offset}`,
        );
      }
      this.brokerEpoch.set(record.brokerId, { epoch: record.brokerEpoch, offset, incarnationId: record.incarnationId });
      this.registrations.set(`${record.brokerId}/${record.incarnationId}`, record.brokerEpoch);
    }
  }

  /** applied: node applied entry; its image is now at entry.index. */
  applied(node: NodeId, entry: Entry, image: MetadataImage, digest: number): void {
    this.checks++;
    this.cursor.set(node, entry.index);
    const first = !this.stateAt.has(entry.index);
    this.checkState(node, entry.index, image, digest);
    const before = this.lastImage.get(node);
    this.lastImage.set(node, image);
    // Judged once per offset, on the first node to get there (all others must then be equal).
    if (first) {
      checkLeaders(image);
      if (before !== undefined) checkPartitionEpochs(before, image);
    }
    const seen = this.epochsSeen.get(node) ?? new Map<NodeId, number>();
    for (const broker of image.brokers.values()) {
      const before = seen.get(broker.id);
      if (before !== undefined && broker.epoch < before) violation("a broker's epoch only grows", `node ${node}'s image has broker ${broker.id} at epoch ${broker.epoch} at ${entry.index}, after ${before}`);
      seen.set(broker.id, broker.epoch);
    }
    this.epochsSeen.set(node, seen);
  }

  private checkState(node: NodeId, offset: number, image: MetadataImage, digest: number): void {
    if (image.offset !== offset) violation("an image's offset is the last applied entry", `node ${node} applied up to ${offset}, its image is at ${image.offset}`);
    const key = `${digest}|${canonicalImage(image)}`;
    const known = this.stateAt.get(offset);
    if (known === undefined) this.stateAt.set(offset, { node, key });
    else if (known.key !== key) {
      violation('images at equal offsets are equal', `at offset ${offset}, node ${node} and node ${known.node} differ ${firstDifference(key, known.key)}; node ${node} has ${key}; node ${known.node} had ${known.key}`);
    }
  }

  /** forget: node crashed; its next life starts from its snapshot. */
  forget(node: NodeId): void {
    this.cursor.delete(node);
    this.lastImage.delete(node);
    this.epochsSeen.delete(node);
  }

  // ------------------------------------------------------------------------------------------
  // Answers of the controller.

  /** createAnswered: a create with requestId was answered as done with topicId. */
  createAnswered(requestId: string, name: string, topicId: string): void {
    this.checks++;
    const created = this.topicOfRequest.get(requestId);
    if (created === undefined || created.topicId !== topicId) {
      violation('a create is answered with the topic its request id created', `request ${requestId} (${name}) answered with ${topicId}; the log has ${created === undefined ? 'no topic for it' : `${created.topicId} at ${created.offset}`}`);
    }
  }

  /** registerAnswered: a registration of (broker, incarnation) was answered with brokerEpoch. */
  registerAnswered(brokerId: NodeId, incarnationId: string, brokerEpoch: number): void {
    this.checks++;
    const epoch = this.registrations.get(`${brokerId}/${incarnationId}`);
    if (epoch !== brokerEpoch) {
      violation('a registration is answered with the epoch the log gave it', `broker ${brokerId} (${incarnationId}) answered epoch ${brokerEpoch}; the log has ${epoch ?? 'no registration of it'}`);
    }
  }

  /** converged: at the end of a liveness phase, every member's image equals the leader's. */
  converged(leader: { node: NodeId; image: MetadataImage }, members: readonly { node: NodeId; image: MetadataImage | undefined }[]): void {
    this.checks++;
    const expected = canonicalImage(leader.image);
    for (const member of members) {
      if (member.image === undefined) violation('every member converges to the leader image', `member ${member.node} is down after healing`);
      const actual = canonicalImage(member.image);
      if (actual !== expected) violation('every member converges to the leader image', `member ${member.node} has ${actual}; leader ${leader.node} has ${expected}`);
    }
  }

  highestApplied(): number {
    return this.sequenceEnd;
  }
}

/** checkLeaders: every partition is led by a usable broker (registered, unfenced, not shutting down) or by none. */
function checkLeaders(image: MetadataImage): void {
  for (const topic of image.topics.values()) {
    topic.partitions.forEach((partition, index) => {
      if (partition.leader === 0) return;
      const broker = image.brokers.get(partition.leader);
      if (broker === undefined || broker.fenced || broker.inControlledShutdown) {
        const state = broker === undefined ? 'unregistered' : broker.inControlledShutdown ? 'in controlled shutdown' : 'fenced';
        violation('a partition is led by a usable broker or by none', `at offset ${image.offset}, ${topic.name}-${index} (${topic.id}) is led by broker ${partition.leader}, which is ${state}`);
      }
    });
  }
}

/** checkPartitionEpochs: from one offset to the next, epochs never go back and a new leader has a new leader epoch. */
function checkPartitionEpochs(before: MetadataImage, after: MetadataImage): void {
  for (const topic of after.topics.values()) {
    const old = before.topics.get(topic.id);
    if (old === undefined) continue;
    topic.partitions.forEach((partition, index) => {
      const previous = old.partitions[index];
      if (previous === undefined) return;
      const where = `${topic.name}-${index} at offset ${after.offset}`;
      if (partition.leaderEpoch < previous.leaderEpoch || partition.partitionEpoch < previous.partitionEpoch) {
        violation('partition epochs never go back', `${where}: leader epoch ${previous.leaderEpoch} -> ${partition.leaderEpoch}, partition epoch ${previous.partitionEpoch} -> ${partition.partitionEpoch}`);
      }
      if (partition.leader !== previous.leader && partition.leaderEpoch <= previous.leaderEpoch) {
        violation('a new partition leader has a new leader epoch', `${where}: leader ${previous.leader} -> ${partition.leader} at leader epoch ${partition.leaderEpoch}`);
      }
    });
  }
}

/** firstDifference shows where two canonical images first differ, with some context. */
function firstDifference(a: string, b: string): string {
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  const from = Math.max(0, at - 60);
  return `at character ${at}: ...${a.slice(from, at + 40)}... vs ...${b.slice(from, at + 40)}...`;
}

function epochsOf(image: MetadataImage): Map<NodeId, number> {
  return new Map([...image.brokers.values()].map((broker) => [broker.id, broker.epoch]));
}
