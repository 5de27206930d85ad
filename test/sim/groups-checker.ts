// GroupsChecker judges a consumer-groups simulation from the outside. It hears every entry of the
// committed __consumer_offsets log (in log order, the moment it commits), every record a consumer's
// poll hands to the application, every SyncGroup and OffsetFetch answer, and reads the consumers'
// holdings; it throws InvariantViolation the moment one of these fails:
//   (1) offsets: a group's committed offset of a partition never goes back (the schedules issue no
//       resets), and never passes a record no member of the group was handed (at least once); an
//       OffsetCommit is answered only once it is committed; OffsetFetch answers what is committed;
//   (2) fencing: an offset commit is stored only for a member of the group's current generation: the
//       latest committed generation record of the group, before the commit in the log, has the
//       commit's generation and lists its member;
//   (3) assignment: within a generation record no partition has two members, and a generation never
//       goes back; records of one generation (a static member's restart) only rename members; a
//       JoinGroup answer names a committed generation that lists the member; a SyncGroup answer is
//       the member's assignment in a committed record of that generation; and no
//       record hands a partition to a member while another consumer, itself a member of that
//       generation, still holds it (what cooperative-sticky's revoke-then-assign guarantees; the eager
//       assignors satisfy it trivially, their members hold nothing when they join);
//   (4), (5) at the end (finish): every record of every partition was handed to some member of every
//       group; re-deliveries are counted.
import type { GroupMetadataRecord, GroupRecord } from '../../src/groups/records.js';
import { InvariantViolation } from './raft-checker.js';

function violation(property: string, detail: string): never {
  throw new InvariantViolation(property, detail);
}

/** CommitContext is the OffsetCommit request a persisted offset record came from. */
export interface CommitContext {
  readonly memberId: string;
  readonly generation: number;
  readonly process: number;
}

/** CommittedEntry is one entry of the committed offsets log: the records one persist call wrote. */
export interface CommittedEntry {
  readonly index: number;
  readonly records: readonly GroupRecord[];
  /** context: the commit request, for entries of offset records. */
  readonly context: CommitContext | undefined;
}

/** ConsumerView is how the checker reads a consumer process: the member ids it has had and the partitions it holds. */
export interface ConsumerView {
  readonly process: number;
  readonly group: string;
  readonly knownIds: ReadonlySet<string>;
  readonly holdings: readonly number[];
}

interface GroupMemory {
  /** latest: the latest committed generation record. */
  latest: GroupMetadataRecord | undefined;
  /** byGeneration: every committed record of each generation, in log order. */
  readonly byGeneration: Map<number, GroupMetadataRecord[]>;
  /** committed[partition]: the committed offset. */
  readonly committed: number[];
  /** deliveries[partition][offset]: how often a member of the group was handed the record. */
  readonly deliveries: number[][];
  /** deliveredPrefix[partition]: every record below it was handed to some member. */
  readonly deliveredPrefix: number[];
}

export interface CheckerCounts {
  generations: number;
  metadataRecords: number;
  offsetCommits: number;
  delivered: number;
  redelivered: number;
  syncAnswers: number;
  fetchAnswers: number;
  joinAnswers: number;
  commitAnswers: number;
  /** renames: records that repeat a generation under a new member id (a static member's restart). */
  renames: number;
  /** revocations: generation records that leave partitions unassigned (cooperative-sticky's first step). */
  revocations: number;
}

export class GroupsChecker {
  readonly topic: string;
  private readonly groups = new Map<string, GroupMemory>();
  readonly counts: CheckerCounts = { generations: 0, metadataRecords: 0, offsetCommits: 0, delivered: 0, redelivered: 0, syncAnswers: 0, fetchAnswers: 0, joinAnswers: 0, commitAnswers: 0, renames: 0, revocations: 0 };
  private lastIndex = -1;

  constructor(
    private readonly options: {
      readonly topic: string;
      /** lengths[partition]: how many records the partition holds in the end. */
      readonly lengths: readonly number[];
      readonly groups: readonly string[];
      /** consumers lists every consumer process, stopped ones included (closed ones hold nothing). */
      readonly consumers: () => readonly ConsumerView[];
    },
  ) {
    this.topic = options.topic;
    for (const group of options.groups) {
      this.groups.set(group, {
        latest: undefined,
        byGeneration: new Map(),
        committed: options.lengths.map(() => 0),
        deliveries: options.lengths.map((length) => new Array<number>(length).fill(0)),
        deliveredPrefix: options.lengths.map(() => 0),
      });
    }
  }

  private group(name: string): GroupMemory {
    const memory = this.groups.get(name);
    if (memory === undefined) violation('records', `a record of group ${name}, which no consumer uses`);
    return memory;
  }

  /** committed hears an entry of the offsets log as it commits; entries come in log order, each once. */
  committed(entry: CommittedEntry): void {
    if (entry.index !== this.lastIndex + 1) violation('log', `entry ${entry.index} committed after entry ${this.lastIndex}`);
    this.lastIndex = entry.index;
    for (const record of entry.records) {
      if (record.type === 'groupMetadata') this.metadata(record, entry.index);
      else if (record.type === 'offsetCommit') this.offsetCommit(record, entry);
      else violation('records', `a groupDelete of ${record.group} at entry ${entry.index}; the simulation deletes nothing`);
    }
  }

  private metadata(record: GroupMetadataRecord, index: number): void {
    const memory = this.group(record.group);
    const where = `group ${record.group} generation ${record.generation} (entry ${index})`;
    const owners = this.owners(record, where);
    const previous = memory.latest;
    if (previous !== undefined && record.generation < previous.generation) violation('(3) assignment', `${where} after generation ${previous.generation}`);
    const same = memory.byGeneration.get(record.generation);
    if (same !== undefined) {
      this.onlyRenames(same.at(-1)!, record, owners, where);
      this.counts.renames++;
    } else {
      this.counts.generations++;
    }
    if (record.members.length > 0 && owners.size < this.options.lengths.length) this.counts.revocations++;
    this.counts.metadataRecords++;
    this.heldElsewhere(record, owners, where);
    memory.latest = record;
    memory.byGeneration.set(record.generation, [...(same ?? []), record]);
  }

  /** owners maps each assigned partition to its member, asserting no partition has two and each exists. */
  private owners(record: GroupMetadataRecord, where: string): Map<number, string> {
    const owners = new Map<number, string>();
    for (const member of record.members) {
      for (const tp of member.assignment) {
        if (tp.topic !== this.topic || tp.partition < 0 || tp.partition >= this.options.lengths.length) violation('(3) assignment', `${where} assigns ${tp.topic}-${tp.partition}, which does not exist`);
        const other = owners.get(tp.partition);
        if (other !== undefined) violation('(3) assignment', `${where} assigns partition ${tp.partition} to ${other} and to ${member.memberId}`);
        owners.set(tp.partition, member.memberId);
      }
    }
    return owners;
  }

  /** onlyRenames: a second record of one generation may only give a member's place to a new member id. */
  private onlyRenames(before: GroupMetadataRecord, after: GroupMetadataRecord, owners: Map<number, string>, where: string): void {
    const beforeIds = new Set(before.members.map((member) => member.memberId));
    const afterIds = new Set(after.members.map((member) => member.memberId));
    for (const member of before.members) {
      for (const tp of member.assignment) {
        const owner = owners.get(tp.partition);
        if (owner === member.memberId) continue;
        const renamed = owner !== undefined && !afterIds.has(member.memberId) && !beforeIds.has(owner);
        if (!renamed) violation('(3) assignment', `${where} moves partition ${tp.partition} from ${member.memberId} to ${owner ?? 'nobody'} within the generation`);
      }
    }
  }

  /**
   * heldElsewhere: no partition goes to a member while a consumer that is a member of this generation
   * under another id still holds it (it would read and commit it alongside the new owner).
   */
  private heldElsewhere(record: GroupMetadataRecord, owners: Map<number, string>, where: string): void {
    const memberIds = new Set(record.members.map((member) => member.memberId));
    for (const consumer of this.options.consumers()) {
      if (consumer.group !== record.group) continue;
      const asMember = [...consumer.knownIds].find((id) => memberIds.has(id));
      if (asMember === undefined) continue;
      for (const partition of consumer.holdings) {
        const owner = owners.get(partition);
        if (owner !== undefined && !consumer.knownIds.has(owner)) {
          violation('(3) assignment', `${where} gives partition ${partition} to ${owner} while consumer ${consumer.process}, member ${asMember} of the generation, still holds it`);
        }
      }
    }
  }

  private offsetCommit(record: Extract<GroupRecord, { type: 'offsetCommit' }>, entry: CommittedEntry): void {
    const memory = this.group(record.group);
    const context = entry.context;
    const where = `group ${record.group} partition ${record.partition} offset ${record.offset} (entry ${entry.index})`;
    if (context === undefined) violation('(2) fencing', `${where} was stored without an OffsetCommit request`);
    const latest = memory.latest;
    if (latest === undefined || latest.generation !== context.generation || !latest.members.some((member) => member.memberId === context.memberId)) {
      const current = latest === undefined ? 'no generation' : `generation ${latest.generation} of ${latest.members.map((member) => member.memberId).join(', ') || 'nobody'}`;
      violation('(2) fencing', `${where} stored for ${context.memberId || '(no member id)'} of generation ${context.generation} (consumer ${context.process}), but the group's is ${current}`);
    }
    if (record.topic !== this.topic || record.partition < 0 || record.partition >= this.options.lengths.length) violation('(1) offsets', `${where}: no such partition`);
    const before = memory.committed[record.partition]!;
    if (record.offset < before) violation('(1) offsets', `${where} goes back from ${before} (by ${context.memberId} of generation ${context.generation}, consumer ${context.process})`);
    const prefix = memory.deliveredPrefix[record.partition]!;
    if (record.offset > prefix) violation('(1) offsets', `${where} passes records never handed to a member: only those below ${prefix} were`);
    memory.committed[record.partition] = record.offset;
    this.counts.offsetCommits++;
  }

  /** delivered hears a record a poll handed to the application of a member of group. */
  delivered(options: { group: string; partition: number; offset: number }): void {
    const memory = this.group(options.group);
    const deliveries = memory.deliveries[options.partition];
    if (deliveries === undefined || options.offset < 0 || options.offset >= deliveries.length) violation('delivery', `a record at ${options.partition}/${options.offset}, which does not exist`);
    deliveries[options.offset]!++;
    this.counts.delivered++;
    if (deliveries[options.offset]! > 1) this.counts.redelivered++;
    let prefix = memory.deliveredPrefix[options.partition]!;
    while (prefix < deliveries.length && deliveries[prefix]! > 0) prefix++;
    memory.deliveredPrefix[options.partition] = prefix;
  }

  /** syncAnswered: a SyncGroup answer must be the member's assignment in a committed record of its generation. */
  syncAnswered(options: { group: string; memberId: string; generation: number; assignment: readonly { topic: string; partition: number }[] }): void {
    const records = this.group(options.group).byGeneration.get(options.generation) ?? [];
    const member = records.findLast((record) => record.members.some((candidate) => candidate.memberId === options.memberId))?.members.find((candidate) => candidate.memberId === options.memberId);
    const where = `SyncGroup of ${options.memberId} in group ${options.group} generation ${options.generation}`;
    if (member === undefined) violation('(3) assignment', `${where} answered, but no committed record of the generation lists the member`);
    const expected = member.assignment.map((tp) => tp.partition).sort((a, b) => a - b).join(',');
    const answered = options.assignment.map((tp) => tp.partition).sort((a, b) => a - b).join(',');
    if (expected !== answered) violation('(3) assignment', `${where} answered [${answered}], the committed record says [${expected}]`);
    this.counts.syncAnswers++;
  }

  /** joinAnswered: a JoinGroup answer names a committed generation whose last record lists the member. */
  joinAnswered(options: { group: string; memberId: string; generation: number; members: readonly string[] }): void {
    const record = this.group(options.group).byGeneration.get(options.generation)?.at(-1);
    const where = `JoinGroup of group ${options.group} answered ${options.memberId} generation ${options.generation}`;
    if (record === undefined) violation('(3) assignment', `${where}, which is not committed`);
    if (!record.members.some((member) => member.memberId === options.memberId)) violation('(3) assignment', `${where}; the committed record does not list the member`);
    this.counts.joinAnswers++;
  }

  /** commitAnswered: an OffsetCommit is answered only once committed (offsets never go back, so at least that much is). */
  commitAnswered(options: { group: string; offsets: readonly { partition: number; offset: number }[] }): void {
    const memory = this.group(options.group);
    for (const { partition, offset } of options.offsets) {
      const committed = memory.committed[partition];
      if (committed === undefined || committed < offset) violation('(1) offsets', `OffsetCommit of group ${options.group} partition ${partition} offset ${offset} answered, but ${committed} is committed`);
    }
    this.counts.commitAnswers++;
  }

  /**
   * fetchAnswered: OffsetFetch answers what is committed. A coordinator that lost its leadership and
   * does not know yet may answer less (never more).
   */
  fetchAnswered(options: { group: string; offsets: readonly { partition: number; offset: number }[]; current: boolean }): void {
    const memory = this.group(options.group);
    for (const { partition, offset } of options.offsets) {
      const committed = memory.committed[partition];
      if (committed === undefined || offset > committed || (options.current && offset !== committed)) {
        violation('(1) offsets', `OffsetFetch of group ${options.group} answered ${offset} for partition ${partition}; committed is ${committed}`);
      }
    }
    this.counts.fetchAnswers++;
  }

  /** latest returns the latest committed generation record of a group. */
  latest(group: string): GroupMetadataRecord | undefined {
    return this.group(group).latest;
  }

  committedOffsets(group: string): readonly number[] {
    return this.group(group).committed;
  }

  /** undelivered counts the records no member of the group was handed yet. */
  undelivered(group: string): number {
    const memory = this.group(group);
    return memory.deliveries.reduce((sum, deliveries) => sum + deliveries.filter((count) => count === 0).length, 0);
  }

  /** finish checks (5): every record of every partition was handed to a member of every group. */
  finish(): void {
    for (const [name, memory] of this.groups) {
      memory.deliveries.forEach((deliveries, partition) => {
        const missing = deliveries.findIndex((count) => count === 0);
        if (missing !== -1) violation('(5) delivery', `group ${name} never got partition ${partition} offset ${missing}`);
      });
    }
  }
}
