// SimOffsetsPartition is the simulated __consumer_offsets partition that hosts the group
// coordinator: its committed log and its leaderships. A leadership (an incarnation) runs the
// production GroupCoordinator; a persist appends its records to the log, and they commit (in log
// order) after a random delay, are replayed into the leader's GroupStore, and only then does persist
// resolve. A failover deposes the leader: of its uncommitted entries a random prefix commits (the
// new leader had them) and the rest are lost; the deposed coordinator may go on answering the clients
// connected to it for a while (it has not heard of the new term), but nothing it appends commits, and
// when it learns it is closed and every persist it still waits for rejects. After a loading delay a
// NEW GroupCoordinator starts over a GroupStore replayed from the committed entries only.
import { NotCoordinatorError } from '../../src/errors.js';
import { GroupCoordinator } from '../../src/groups/coordinator.js';
import { GroupStore, type GroupRecord } from '../../src/groups/records.js';
import { randomInt, type Random } from '../../src/raft/prng.js';
import type { CommitContext, GroupsChecker } from './groups-checker.js';
import { InvariantViolation } from './raft-checker.js';

export const topic = 'events';

export interface FailoverOptions {
  /** commitFraction: the share (0..1) of the leader's uncommitted entries, from the oldest, that the next leader has. */
  readonly commitFraction: number;
  readonly loadingMs: number;
  readonly staleMs: number;
}

/** FailoverMoment: when an armed failover strikes: once the record is appended (uncommitted), or once it committed and was answered. */
export type FailoverMoment = 'appended' | 'committed';

interface LogEntry {
  readonly records: GroupRecord[];
  readonly context: CommitContext | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  state: 'pending' | 'committed' | 'decided';
}

export type HostState = 'loading' | 'leading' | 'deposed' | 'closed';

/** CoordinatorHost is one leadership of the offsets partition: its store, its coordinator, its uncommitted entries. */
export interface CoordinatorHost {
  readonly incarnation: number;
  state: HostState;
  store: GroupStore;
  coordinator: GroupCoordinator | undefined;
  /** pending: appended while leading, not committed yet, in log order. */
  readonly pending: LogEntry[];
  /** orphans: appended after it was deposed (an old term): they never commit. */
  readonly orphans: LogEntry[];
  /** touched: groups a request other than OffsetFetch loaded into the coordinator. */
  readonly touched: Set<string>;
  /** contactMs[`group/memberId`]: when the member last joined, was answered a join, or heartbeat successfully here. */
  readonly contactMs: Map<string, number>;
}

/** PartitionCounts: what the partition counts, for the test to show what happened. */
export interface PartitionCounts {
  failovers: number;
  /** committedAtFailover, lostAtFailover: uncommitted entries of a deposed leader that the next leader had, or not. */
  committedAtFailover: number;
  lostAtFailover: number;
  persistsRejected: number;
  /** expulsions: members a leading coordinator expelled from a Stable group (their session timed out). */
  expulsions: number;
}

/** PartitionContext is what the partition uses of the simulation. */
export interface PartitionContext {
  readonly random: Random;
  readonly checker: GroupsChecker;
  readonly counts: PartitionCounts;
  /** partitionCount: how many partitions the consumed topic has. */
  readonly partitionCount: number;
  readonly commitDelayMsMax: number;
  nowMs(): number;
  at(at: number, fire: () => boolean | void): void;
  note(line: () => string): void;
}

export class SimOffsetsPartition {
  private readonly hosts = new Map<number, CoordinatorHost>();
  /** leader: the incarnation of the current leadership. */
  leader = 0;
  /** committed: the committed entries of the log, in order. */
  private readonly committed: { records: GroupRecord[]; context: CommitContext | undefined }[] = [];
  private lastCommitAtMs = 0;
  private commitContext: CommitContext | undefined;
  /** armed: a failover waiting for the leader to append (or commit) a record of this type. */
  private armed: { type: GroupRecord['type']; moment: FailoverMoment; failover: FailoverOptions } | undefined;
  private nextMemberNumber = 0;

  constructor(private readonly sim: PartitionContext) {
    const first = this.newHost(0);
    this.hosts.set(0, first);
    this.build(first);
  }

  private newHost(incarnation: number): CoordinatorHost {
    return { incarnation, state: 'loading', store: new GroupStore(), coordinator: undefined, pending: [], orphans: [], touched: new Set(), contactMs: new Map() };
  }

  /** build starts a coordinator over a store replayed from the committed entries only. */
  private build(host: CoordinatorHost): void {
    if (host.state !== 'loading') return;
    for (const entry of this.committed) for (const record of entry.records) host.store.replay(record);
    host.coordinator = new GroupCoordinator({
      store: host.store,
      persist: (records) => this.persist(host, records),
      partitionCounts: (topics) => new Map(topics.filter((name) => name === topic).map((name) => [name, this.sim.partitionCount])),
      newMemberId: (clientId) => `${clientId}-m${++this.nextMemberNumber}`,
      nowMs: () => this.sim.nowMs(),
    });
    host.state = 'leading';
    this.sim.note(() => `coordinator ${host.incarnation} leads, over ${this.committed.length} committed entries`);
  }

  private persist(host: CoordinatorHost, records: GroupRecord[]): Promise<void> {
    const context = this.commitContext;
    this.commitContext = undefined;
    return new Promise((resolve, reject) => {
      const entry: LogEntry = { records, context, resolve, reject, state: 'pending' };
      if (host.state !== 'leading') {
        host.orphans.push(entry);
        return;
      }
      host.pending.push(entry);
      const at = Math.max(this.lastCommitAtMs, this.sim.nowMs() + randomInt(this.sim.random, 1, this.sim.commitDelayMsMax));
      this.lastCommitAtMs = at;
      this.sim.at(at, () => this.commitPending(host, entry));
      this.strikeIfArmed(records, 'appended');
    });
  }

  /** commitPending commits the oldest pending entry of a leading host, replays it and resolves its persist. */
  private commitPending(host: CoordinatorHost, entry: LogEntry): boolean {
    if (entry.state !== 'pending') return false;
    if (host.pending[0] !== entry) throw new Error(`offsets log: entry committed out of order on coordinator ${host.incarnation}`);
    host.pending.shift();
    this.commitEntry(entry);
    for (const record of entry.records) host.store.replay(record);
    entry.resolve();
    this.strikeIfArmed(entry.records, 'committed');
    return true;
  }

  /** strikeIfArmed fails over, as the next event (once what the records set off settled), if a failover waits for them. */
  private strikeIfArmed(records: readonly GroupRecord[], moment: FailoverMoment): void {
    const armed = this.armed;
    if (armed === undefined || armed.moment !== moment || !records.some((record) => record.type === armed.type)) return;
    this.armed = undefined;
    this.sim.at(this.sim.nowMs(), () => this.failover(armed.failover));
  }

  private commitEntry(entry: LogEntry): void {
    entry.state = 'committed';
    const index = this.committed.length;
    this.committed.push({ records: entry.records, context: entry.context });
    this.sim.note(() => `commit entry ${index}: ${entry.records.map(describeRecord).join('; ')}`);
    this.sim.checker.committed({ index, records: entry.records, context: entry.context });
  }

  /**
   * failover deposes the leader. A fraction (0..1) of its uncommitted entries, from the oldest, commits;
   * the rest are lost. It is closed after staleMs (answering its clients meanwhile); the next leader's
   * coordinator starts after loadingMs.
   */
  failover(options: FailoverOptions): void {
    const old = this.hosts.get(this.leader)!;
    this.sim.counts.failovers++;
    if (old.state === 'leading') {
      const committing = Math.round(options.commitFraction * old.pending.length);
      old.pending.forEach((entry, i) => {
        if (i < committing) this.commitEntry(entry);
        else entry.state = 'decided';
      });
      this.sim.counts.committedAtFailover += committing;
      this.sim.counts.lostAtFailover += old.pending.length - committing;
      old.state = 'deposed';
      if (options.staleMs === 0) this.close(old);
      else this.sim.at(this.sim.nowMs() + options.staleMs, () => this.close(old));
    } else if (old.state === 'loading') {
      old.state = 'closed';
    }
    const next = this.newHost(this.leader + 1);
    this.hosts.set(next.incarnation, next);
    this.leader = next.incarnation;
    this.sim.note(() => `failover: coordinator ${old.incarnation} deposed with ${old.pending.length} uncommitted entries (${JSON.stringify(options)}), ${next.incarnation} loading`);
    if (options.loadingMs === 0) this.build(next);
    else this.sim.at(this.sim.nowMs() + options.loadingMs, () => this.build(next));
  }

  /** failoverAt fails over just after the leader appends (or commits) its next record of a type. */
  failoverAt(options: { type: GroupRecord['type']; moment: FailoverMoment; failover: FailoverOptions }): void {
    this.armed = options;
  }

  /** close: the deposed coordinator learns of the new term: it closes, and every persist it waits for rejects. */
  private close(host: CoordinatorHost): void {
    if (host.state !== 'deposed') return;
    host.state = 'closed';
    host.coordinator?.close(new NotCoordinatorError('', 0));
    const waiting = [...host.pending, ...host.orphans];
    host.pending.length = 0;
    host.orphans.length = 0;
    this.sim.counts.persistsRejected += waiting.length;
    for (const entry of waiting) entry.reject(new NotCoordinatorError(entry.records[0]?.group ?? '', 0));
    this.sim.note(() => `coordinator ${host.incarnation} closed, ${waiting.length} persists rejected`);
  }

  /** tick ticks every coordinator still running (a deposed one does not know yet). */
  tick(): void {
    for (const host of this.hosts.values()) {
      if (host.state === 'deposed') host.coordinator!.tick(this.sim.nowMs());
      if (host.state === 'leading') this.tickLeader(host);
    }
  }

  /**
   * tickLeader ticks the leader's coordinator and judges whom it expelled from a Stable group (by
   * session timeout: nothing else removes a member there in a tick). Kafka's rule: a member's session
   * runs from its last heartbeat, its join, or the answer to its join, whichever is last; a member
   * expelled sooner violates (session). describe() only reads groups the coordinator already loaded.
   */
  private tickLeader(host: CoordinatorHost): void {
    const coordinator = host.coordinator!;
    const before = [...host.touched].map((group) => ({ group, described: coordinator.describe(group, this.sim.nowMs()) }));
    coordinator.tick(this.sim.nowMs());
    for (const { group, described } of before) {
      if (described.state !== 'Stable') continue;
      const after = new Set(coordinator.describe(group, this.sim.nowMs()).members.map((member) => member.memberId));
      for (const member of described.members) {
        if (after.has(member.memberId)) continue;
        const contact = host.contactMs.get(`${group}/${member.memberId}`);
        this.sim.note(() => `coordinator ${host.incarnation} expelled ${member.memberId} of ${group} (last contact ${contact ?? 'before it led'})`);
        this.sim.counts.expulsions++;
        if (contact !== undefined && this.sim.nowMs() - contact <= member.sessionTimeoutMs) {
          throw new InvariantViolation('session', `${member.memberId} of ${group} expelled at ${this.sim.nowMs()} ms by coordinator ${host.incarnation}, ${this.sim.nowMs() - contact} ms after its last join, join answer or heartbeat (session ${member.sessionTimeoutMs} ms)`);
        }
      }
    }
  }

  /** host returns a leadership by its incarnation. */
  host(incarnation: number): CoordinatorHost {
    const host = this.hosts.get(incarnation);
    if (host === undefined) throw new Error(`no coordinator incarnation ${incarnation}`);
    return host;
  }

  /** withCommitContext runs commit (an OffsetCommit on a coordinator) so that the records it persists carry its request. */
  withCommitContext<T>(context: CommitContext, commit: () => T): T {
    this.commitContext = context;
    try {
      return commit();
    } finally {
      this.commitContext = undefined;
    }
  }

  /** leading returns the coordinator of the current leader, once it has started. */
  leading(): { coordinator: GroupCoordinator; touched: ReadonlySet<string> } | undefined {
    const host = this.hosts.get(this.leader)!;
    return host.state === 'leading' ? { coordinator: host.coordinator!, touched: host.touched } : undefined;
  }
}

function describeRecord(record: GroupRecord): string {
  switch (record.type) {
    case 'offsetCommit':
      return `offset ${record.group} ${record.partition}=${record.offset}`;
    case 'groupMetadata':
      return `generation ${record.group} ${record.generation} ${record.assignor} [${record.members.map((member) => `${member.memberId}:${member.assignment.map((tp) => tp.partition).join(',')}`).join(' ')}]`;
    case 'groupDelete':
      return `delete ${record.group}`;
  }
}
