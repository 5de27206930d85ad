// The records a group coordinator writes to its partition of __consumer_offsets, and GroupStore,
// what every replica of that partition builds by replaying them. Pure: no I/O, no clock.
// Their bytes are proto/groups.proto's GroupRecord, encoded by src/rpc/group-codec.ts.

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string;
  readonly commitTimestampMs: number;
}

export interface GroupMemberRecord {
  readonly memberId: string;
  /** instanceId: '' when the member is not static. */
  readonly instanceId: string;
  readonly clientId: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly topics: readonly string[];
  readonly assignment: readonly TopicPartition[];
}

export type GroupRecord =
  | { readonly type: 'offsetCommit'; readonly group: string; readonly topic: string; readonly partition: number; readonly offset: number; readonly metadata: string; readonly commitTimestampMs: number }
  | {
      readonly type: 'groupMetadata';
      readonly group: string;
      readonly generation: number;
      readonly assignor: string;
      readonly leaderId: string;
      readonly members: readonly GroupMemberRecord[];
      /** stateTimestampMs: when the record was written (0: before records kept it); for a group without members, when it became empty. */
      readonly stateTimestampMs: number;
    }
  | { readonly type: 'groupDelete'; readonly group: string };

export type GroupMetadataRecord = Extract<GroupRecord, { type: 'groupMetadata' }>;

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * GroupStore is the replayed state of the groups of one __consumer_offsets partition: committed
 * offsets and the last group metadata (generation, members, assignments) of each group.
 */
export class GroupStore {
  readonly offsets = new Map<string, Map<string, CommittedOffset & TopicPartition>>();
  readonly metadata = new Map<string, GroupMetadataRecord>();

  replay(record: GroupRecord): void {
    switch (record.type) {
      case 'offsetCommit': {
        let offsets = this.offsets.get(record.group);
        if (offsets === undefined) this.offsets.set(record.group, (offsets = new Map()));
        offsets.set(partitionKey(record.topic, record.partition), { topic: record.topic, partition: record.partition, offset: record.offset, metadata: record.metadata, commitTimestampMs: record.commitTimestampMs });
        return;
      }
      case 'groupMetadata':
        this.metadata.set(record.group, record);
        return;
      case 'groupDelete':
        this.offsets.delete(record.group);
        this.metadata.delete(record.group);
        return;
    }
  }

  /** groupCount: how many groups have metadata or offsets. */
  get groupCount(): number {
    let count = this.offsets.size;
    for (const group of this.metadata.keys()) if (!this.offsets.has(group)) count++;
    return count;
  }

  /** groups lists every group with metadata or offsets, sorted. */
  groups(): string[] {
    return [...new Set([...this.metadata.keys(), ...this.offsets.keys()])].sort();
  }

  committed(group: string): (CommittedOffset & TopicPartition)[] {
    return [...(this.offsets.get(group)?.values() ?? [])].sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  clear(): void {
    this.offsets.clear();
    this.metadata.clear();
  }

  /**
   * compacted is the store as records, the last of each: every group's metadata, then its offsets.
   * Replayed into an empty store they rebuild this one. So does replaying, over this store, any
   * suffix of the records that built it: each record sets or deletes what it names, the last write
   * of each name wins, and that last write is already here. That is why a snapshot may carry a
   * store newer than the snapshot's own index (see PartitionSnapshot).
   */
  compacted(): GroupRecord[] {
    const records: GroupRecord[] = [];
    for (const group of this.groups()) {
      const metadata = this.metadata.get(group);
      if (metadata !== undefined) records.push(metadata);
      for (const { topic, partition, offset, metadata: text, commitTimestampMs } of this.offsets.get(group)?.values() ?? []) {
        records.push({ type: 'offsetCommit', group, topic, partition, offset, metadata: text, commitTimestampMs });
      }
    }
    return records;
  }

  /** restore replaces the store with the one compacted records describe. */
  restore(records: readonly GroupRecord[]): void {
    this.clear();
    for (const record of records) this.replay(record);
  }
}

/** coordinatorPartition is the __consumer_offsets partition of a group: Java's String.hashCode, made non-negative, modulo the count (as Kafka). */
export function coordinatorPartition(group: string, partitions: number): number {
  let hash = 0;
  for (let i = 0; i < group.length; i++) hash = (Math.imul(hash, 31) + group.charCodeAt(i)) | 0;
  return (hash & 0x7fffffff) % partitions;
}
