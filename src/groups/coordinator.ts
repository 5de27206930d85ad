// GroupCoordinator runs the consumer groups of one __consumer_offsets partition on the node that
// leads it. Membership lives in memory here; what must survive a failover (each generation's
// members and assignments, committed offsets) is written as records of the partition before it
// is answered, and every replica replays them into its GroupStore. A coordinator that takes over
// starts from that store: members keep their generation and assignment and only have to
// heartbeat within their session timeout.
//
// Group states and their transitions (Kafka's):
//   Empty --join--> PreparingRebalance --all joined or rebalance timeout--> CompletingRebalance
//   CompletingRebalance --metadata record committed--> Stable
//   Stable --join of a new member, leave, session expiry, changed subscription--> PreparingRebalance
//   any --last member gone--> Empty (metadata record with no members)
// With cooperative-sticky, a generation that revoked partitions is followed at once by another
// rebalance that hands them out; members keep consuming the partitions they keep meanwhile.
//
// Time is passed in as nowMs; no timers here (the node calls tick()).
import { GroupNotEmptyError, IllegalGenerationError, InconsistentGroupProtocolError, InvalidRequestError, UnknownGroupError, UnknownMemberIdError } from '../errors.js';
import { assign, type AssignorName } from './assignors.js';
import { GroupStore, partitionKey, type GroupMemberRecord, type GroupRecord, type TopicPartition } from './records.js';

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export const assignorNames: readonly AssignorName[] = ['range', 'roundrobin', 'cooperative-sticky'];

/** The coordinator's bounds and timings, in one place. */
export const groupLimits = Object.freeze({
  groupIdLengthMax: 255,
  membersPerGroupMax: 1000,
  groupsPerCoordinatorMax: 10_000,
  topicsPerMemberMax: 1000,
  sessionTimeoutMsMin: 1000,
  sessionTimeoutMsMax: 300_000,
  rebalanceTimeoutMsMax: 300_000,
  offsetsPerCommitMax: 10_000,
  metadataLengthMax: 4096,
  /** initialRebalanceDelayMs: a new group waits this long for more members before its first generation (Kafka: 3 s). */
  initialRebalanceDelayMs: 300,
  /** expiredPerRunMax: how many expired groups one expire() deletes (one record each, in one batch). */
  expiredPerRunMax: 1000,
});

export interface JoinRequest {
  readonly group: string;
  readonly memberId: string;
  readonly instanceId: string;
  readonly clientId: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly topics: readonly string[];
  readonly assignors: readonly string[];
  readonly owned: readonly TopicPartition[];
}

export interface JoinAnswer {
  readonly generation: number;
  readonly memberId: string;
  readonly leaderId: string;
  readonly assignor: string;
  readonly members: readonly string[];
}

interface LiveMember extends GroupMemberRecord {
  sessionDeadlineMs: number;
  owned: readonly TopicPartition[];
  assignors: readonly string[];
  /** join: the member's pending JoinGroup, answered when the rebalance completes. */
  join: { resolve: (answer: JoinAnswer) => void; reject: (error: Error) => void } | undefined;
}

interface LiveGroup {
  readonly id: string;
  state: GroupStateName;
  generation: number;
  assignor: string;
  leaderId: string;
  readonly members: Map<string, LiveMember>;
  rebalanceDeadlineMs: number;
  /** completing: a generation's record is being committed; no other rebalance step until it is. */
  completing: boolean;
  /** rebalanceAfter: something changed while completing; rebalance again once done. */
  rebalanceAfter: boolean;
  /** partitionsSeen: the partition counts of the subscribed topics the last assignment used. */
  partitionsSeen: string;
}

export interface CoordinatorDeps {
  readonly store: GroupStore;
  /** persist appends records to the partition and resolves once they are committed and replayed. */
  readonly persist: (records: GroupRecord[]) => Promise<void>;
  /** partitionCounts returns how many partitions each topic has (unknown topics are left out). */
  readonly partitionCounts: (topics: readonly string[]) => ReadonlyMap<string, number>;
  /** newMemberId returns a fresh, unique member id for a client id. */
  readonly newMemberId: (clientId: string) => string;
  readonly nowMs: () => number;
}

export class GroupCoordinator {
  private readonly groups = new Map<string, LiveGroup>();
  /** startedMs: when this coordinator took over; a group whose records carry no time, and that has no commits, counts as active then. */
  private readonly startedMs: number;
  /**
   * commitsInFlight counts, per group, the offset commits proposed and not yet applied: expiry
   * must not delete a group under a commit it is about to acknowledge, and the bound on groups
   * counts the ones such commits are starting.
   */
  private readonly commitsInFlight = new Map<string, number>();

  constructor(private readonly deps: CoordinatorDeps) {
    this.startedMs = deps.nowMs();
  }

  /** live returns a group's in-memory state, loaded from the store the first time (after a takeover). */
  private live(group: string, nowMs: number): LiveGroup {
    let live = this.groups.get(group);
    if (live !== undefined) return live;
    const stored = this.deps.store.metadata.get(group);
    live = { id: group, state: 'Empty', generation: stored?.generation ?? 0, assignor: stored?.assignor ?? '', leaderId: stored?.leaderId ?? '', members: new Map(), rebalanceDeadlineMs: 0, completing: false, rebalanceAfter: false, partitionsSeen: '' };
    for (const member of stored?.members ?? []) {
      live.members.set(member.memberId, { ...member, sessionDeadlineMs: nowMs + member.sessionTimeoutMs, owned: member.assignment, assignors: [stored!.assignor], join: undefined });
    }
    if (live.members.size > 0) {
      live.state = 'Stable';
      // A generation that left partitions unassigned (cooperative-sticky revoked them) was to be followed
      // at once by the rebalance that hands them out; the coordinator that would have started it is gone.
      if (this.revokedSome(live, [...new Set(stored!.members.flatMap((member) => member.topics))])) this.prepareRebalance(live, nowMs);
    }
    if (this.groups.size >= groupLimits.groupsPerCoordinatorMax) throw tooManyGroups();
    this.groups.set(group, live);
    return live;
  }

  /** join adds or refreshes a member and resolves once the group's next generation is ready. */
  join(request: JoinRequest, nowMs: number): Promise<JoinAnswer> {
    checkJoin(request);
    const group = this.live(request.group, nowMs);
    const common = this.commonAssignors(group, request);
    if (common.length === 0) return Promise.reject(new InconsistentGroupProtocolError(request.group, group.assignor === '' ? [] : [group.assignor]));
    const staticRejoin = this.staticRejoin(group, request, nowMs);
    if (staticRejoin !== undefined) return staticRejoin;
    let memberId = request.memberId;
    if (memberId !== '' && !group.members.has(memberId)) return Promise.reject(new UnknownMemberIdError(request.group, memberId));
    if (memberId === '') {
      if (group.members.size >= groupLimits.membersPerGroupMax) throw InvalidRequestError.of('group', `group ${request.group} has ${groupLimits.membersPerGroupMax} members, the most allowed`);
      memberId = this.deps.newMemberId(request.clientId);
    }
    const previous = group.members.get(memberId);
    previous?.join?.reject(new UnknownMemberIdError(request.group, memberId));
    const changed = previous === undefined || !sameTopics(previous.topics, request.topics);
    return new Promise<JoinAnswer>((resolve, reject) => {
      group.members.set(memberId, {
        memberId,
        instanceId: request.instanceId,
        clientId: request.clientId,
        sessionTimeoutMs: request.sessionTimeoutMs,
        rebalanceTimeoutMs: request.rebalanceTimeoutMs,
        topics: [...request.topics],
        assignment: previous?.assignment ?? [],
        owned: request.owned,
        assignors: request.assignors,
        sessionDeadlineMs: nowMs + request.sessionTimeoutMs,
        join: { resolve, reject },
      });
      if (group.completing) group.rebalanceAfter = true;
      else if (group.state !== 'PreparingRebalance' && (changed || group.state === 'Empty' || group.state === 'Stable')) this.prepareRebalance(group, nowMs);
      this.maybeComplete(group, nowMs);
    });
  }

  /** commonAssignors: the assignors every member (this one included) supports, in this member's order. */
  private commonAssignors(group: LiveGroup, request: JoinRequest): string[] {
    const supported = request.assignors.filter((name) => (assignorNames as readonly string[]).includes(name));
    return supported.filter((name) => [...group.members.values()].every((member) => member.memberId === request.memberId || member.assignors.includes(name)));
  }

  /**
   * staticRejoin: a static member (instanceId) that restarts joins with no member id. If the group
   * is stable and its subscription is unchanged, it takes its old place and assignment under a new
   * member id without a rebalance; the old id is fenced.
   */
  private staticRejoin(group: LiveGroup, request: JoinRequest, nowMs: number): Promise<JoinAnswer> | undefined {
    if (request.instanceId === '' || request.memberId !== '') return undefined;
    const old = [...group.members.values()].find((member) => member.instanceId === request.instanceId);
    if (old === undefined || group.state !== 'Stable' || !sameTopics(old.topics, request.topics)) {
      if (old !== undefined) group.members.delete(old.memberId);
      return undefined;
    }
    const memberId = this.deps.newMemberId(request.clientId);
    group.members.delete(old.memberId);
    group.members.set(memberId, { ...old, memberId, clientId: request.clientId, sessionTimeoutMs: request.sessionTimeoutMs, rebalanceTimeoutMs: request.rebalanceTimeoutMs, sessionDeadlineMs: nowMs + request.sessionTimeoutMs, join: undefined });
    if (group.leaderId === old.memberId) group.leaderId = memberId;
    const answer: JoinAnswer = { generation: group.generation, memberId, leaderId: group.leaderId, assignor: group.assignor, members: [...group.members.keys()] };
    return this.deps.persist([this.metadataRecord(group)]).then(() => {
      // The session starts again with the answer, as after a rebalance: the persist may have taken longer than the session timeout.
      const current = group.members.get(memberId);
      if (current !== undefined) current.sessionDeadlineMs = this.deps.nowMs() + current.sessionTimeoutMs;
      return answer;
    });
  }

  private prepareRebalance(group: LiveGroup, nowMs: number): void {
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    const timeoutMs = Math.max(0, ...[...group.members.values()].map((member) => member.rebalanceTimeoutMs));
    group.rebalanceDeadlineMs = nowMs + (wasEmpty ? Math.min(groupLimits.initialRebalanceDelayMs, timeoutMs) : timeoutMs);
    if (wasEmpty) group.rebalanceDeadlineMs = -group.rebalanceDeadlineMs; // negative: an initial delay, not a deadline to drop members
  }

  /** maybeComplete finishes the rebalance when every member has joined (after a new group's initial delay) or when the deadline passed. */
  private maybeComplete(group: LiveGroup, nowMs: number): void {
    if (group.state !== 'PreparingRebalance' || group.completing) return;
    const initialDelay = group.rebalanceDeadlineMs < 0;
    const deadline = Math.abs(group.rebalanceDeadlineMs);
    const allJoined = [...group.members.values()].every((member) => member.join !== undefined);
    if (initialDelay ? nowMs < deadline : !allJoined && nowMs < deadline) return;
    if (initialDelay && !allJoined) {
      group.rebalanceDeadlineMs = nowMs + Math.max(0, ...[...group.members.values()].map((member) => member.rebalanceTimeoutMs));
      return;
    }
    for (const member of [...group.members.values()]) if (member.join === undefined) group.members.delete(member.memberId);
    void this.completeRebalance(group);
  }

  private async completeRebalance(group: LiveGroup): Promise<void> {
    group.completing = true;
    group.rebalanceAfter = false;
    group.state = 'CompletingRebalance';
    const members = [...group.members.values()];
    const topics = [...new Set(members.flatMap((member) => member.topics))];
    const assignor = (members[0]?.assignors.find((name) => members.every((member) => member.assignors.includes(name))) ?? group.assignor) as AssignorName;
    const counts = this.deps.partitionCounts(topics);
    group.partitionsSeen = countsKey(counts);
    const assignment = members.length === 0 ? new Map<string, readonly TopicPartition[]>() : assign(assignor, members.map((member) => ({ memberId: member.memberId, instanceId: member.instanceId === '' ? undefined : member.instanceId, topics: member.topics, owned: member.owned })), counts);
    group.generation++;
    group.assignor = members.length === 0 ? group.assignor : assignor;
    group.leaderId = members.length === 0 ? '' : members.some((member) => member.memberId === group.leaderId) ? group.leaderId : members[0]!.memberId;
    for (const member of members) {
      const assigned = assignment.get(member.memberId) ?? [];
      group.members.set(member.memberId, { ...member, assignment: assigned, owned: assigned });
    }
    const assigned = members.map((member) => group.members.get(member.memberId)!);
    try {
      await this.deps.persist([this.metadataRecord(group, assigned)]);
    } catch (error) {
      for (const member of group.members.values()) member.join?.reject(error as Error);
      this.groups.delete(group.id);
      return;
    } finally {
      group.completing = false;
    }
    group.state = members.length === 0 ? 'Empty' : 'Stable';
    const answer = { generation: group.generation, leaderId: group.leaderId, assignor: group.assignor, members: members.map((member) => member.memberId) };
    const nowMs = this.deps.nowMs();
    for (const member of members) {
      const current = group.members.get(member.memberId);
      current?.join?.resolve({ ...answer, memberId: member.memberId });
      if (current === undefined) continue;
      current.join = undefined;
      // The session starts again with the answer: a member that waited in the rebalance longer than its session timeout is not expired before its first heartbeat.
      current.sessionDeadlineMs = nowMs + current.sessionTimeoutMs;
    }
    const joinedMeanwhile = [...group.members.values()].some((member) => member.join !== undefined);
    if (group.rebalanceAfter || joinedMeanwhile || (assignor === 'cooperative-sticky' && this.revokedSome(group, topics))) {
      this.prepareRebalance(group, nowMs);
      group.rebalanceDeadlineMs = Math.abs(group.rebalanceDeadlineMs);
      this.maybeComplete(group, nowMs);
    }
  }

  /** revokedSome: a cooperative generation left subscribed partitions unassigned (revoked from their old owner); they move next generation. */
  private revokedSome(group: LiveGroup, topics: readonly string[]): boolean {
    const assigned = new Set([...group.members.values()].flatMap((member) => member.assignment.map((tp) => partitionKey(tp.topic, tp.partition))));
    for (const [topic, count] of this.deps.partitionCounts(topics)) for (let partition = 0; partition < count; partition++) if (!assigned.has(partitionKey(topic, partition))) return true;
    return false;
  }

  private metadataRecord(group: LiveGroup, of: readonly LiveMember[] = [...group.members.values()]): GroupRecord {
    const members = of.map(({ memberId, instanceId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignment }) => ({ memberId, instanceId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignment }));
    return { type: 'groupMetadata', group: group.id, generation: group.generation, assignor: group.assignor, leaderId: group.leaderId, members, stateTimestampMs: this.deps.nowMs() };
  }

  /** sync returns a member's assignment for its generation. */
  sync(request: { group: string; memberId: string; generation: number }, nowMs: number): TopicPartition[] {
    const member = this.requireMember(request, nowMs);
    return [...member.assignment];
  }

  /** heartbeat keeps a member's session alive; rebalanceInProgress tells it to join again. */
  heartbeat(request: { group: string; memberId: string; generation: number }, nowMs: number): { rebalanceInProgress: boolean } {
    const member = this.requireMember(request, nowMs);
    const group = this.live(request.group, nowMs);
    member.sessionDeadlineMs = nowMs + member.sessionTimeoutMs;
    return { rebalanceInProgress: group.state === 'PreparingRebalance' };
  }

  /** known returns a group that exists (members, a stored generation or offsets); a request about any other creates nothing. */
  private known(group: string, nowMs: number): LiveGroup | undefined {
    if (!this.groups.has(group) && !this.deps.store.metadata.has(group) && !this.deps.store.offsets.has(group)) return undefined;
    return this.live(group, nowMs);
  }

  private requireMember(request: { group: string; memberId: string; generation: number }, nowMs: number): LiveMember {
    const group = this.known(request.group, nowMs);
    const member = group?.members.get(request.memberId);
    if (group === undefined || member === undefined) throw new UnknownMemberIdError(request.group, request.memberId);
    if (request.generation !== group.generation) throw new IllegalGenerationError(request.group, request.generation, group.generation);
    return member;
  }

  /** leave removes a member at once (no session timeout) and rebalances the others. */
  leave(request: { group: string; memberId: string }, nowMs: number): void {
    const group = this.known(request.group, nowMs);
    const member = group?.members.get(request.memberId);
    if (group === undefined || member === undefined) throw new UnknownMemberIdError(request.group, request.memberId);
    this.removeMember(group, member, nowMs);
  }

  private removeMember(group: LiveGroup, member: LiveMember, nowMs: number): void {
    group.members.delete(member.memberId);
    member.join?.reject(new UnknownMemberIdError(group.id, member.memberId));
    if (group.completing) {
      group.rebalanceAfter = true;
      return;
    }
    if (group.state !== 'PreparingRebalance') this.prepareRebalance(group, nowMs);
    group.rebalanceDeadlineMs = Math.abs(group.rebalanceDeadlineMs);
    this.maybeComplete(group, nowMs);
  }

  /**
   * tick expires silent members, finishes rebalances whose time has come, and rebalances a stable
   * group whose subscribed topics gained partitions (or appeared) since its assignment.
   */
  tick(nowMs: number): void {
    for (const group of this.groups.values()) {
      if (group.state === 'Stable' && !group.completing) {
        const topics = [...new Set([...group.members.values()].flatMap((member) => member.topics))];
        const seen = countsKey(this.deps.partitionCounts(topics));
        if (group.partitionsSeen === '') group.partitionsSeen = seen; // taken over: what the last generation saw is not known
        else if (seen !== group.partitionsSeen) this.prepareRebalance(group, nowMs);
      }
      for (const member of [...group.members.values()]) {
        if (member.join === undefined && member.sessionDeadlineMs < nowMs && group.state !== 'CompletingRebalance') this.removeMember(group, member, nowMs);
      }
      this.maybeComplete(group, nowMs);
    }
  }

  /**
   * commitOffsets stores offsets for the group. While the group has members only a member of the
   * current generation may commit; a zombie of an older generation is refused.
   */
  async commitOffsets(request: { group: string; memberId: string; generation: number; offsets: readonly { topic: string; partition: number; offset: number; metadata: string }[] }, nowMs: number): Promise<void> {
    checkGroupId(request.group);
    if (request.offsets.length > groupLimits.offsetsPerCommitMax) throw InvalidRequestError.of('offsets', `${request.offsets.length} offsets in one commit; at most ${groupLimits.offsetsPerCommitMax}`);
    for (const offset of request.offsets) {
      if (!Number.isSafeInteger(offset.offset) || offset.offset < 0) throw InvalidRequestError.of('offsets.offset', `must be an offset from 0, got ${offset.offset}`);
      if (offset.metadata.length > groupLimits.metadataLengthMax) throw InvalidRequestError.of('offsets.metadata', `is ${offset.metadata.length} characters; at most ${groupLimits.metadataLengthMax}`);
    }
    const fromOutside = request.generation < 0 && request.memberId === '';
    if (fromOutside) {
      // A commit from outside a membership may start a group: the groups it can start are bounded as joins are.
      const known = this.known(request.group, nowMs);
      if (known === undefined && !this.commitsInFlight.has(request.group) && this.groupsHeld() >= groupLimits.groupsPerCoordinatorMax) throw tooManyGroups();
      if ((known?.members.size ?? 0) > 0) this.requireMember(request, nowMs);
    } else {
      this.requireMember(request, nowMs);
    }
    this.commitsInFlight.set(request.group, (this.commitsInFlight.get(request.group) ?? 0) + 1);
    try {
      await this.deps.persist(request.offsets.map((offset) => ({ type: 'offsetCommit', group: request.group, topic: offset.topic, partition: offset.partition, offset: offset.offset, metadata: offset.metadata, commitTimestampMs: nowMs })));
    } finally {
      const left = this.commitsInFlight.get(request.group)! - 1;
      if (left === 0) this.commitsInFlight.delete(request.group);
      else this.commitsInFlight.set(request.group, left);
    }
  }

  /** groupsHeld counts the stored groups and those that commits in flight are starting. */
  private groupsHeld(): number {
    let starting = 0;
    for (const group of this.commitsInFlight.keys()) if (!this.deps.store.metadata.has(group) && !this.deps.store.offsets.has(group)) starting++;
    return this.deps.store.groupCount + starting;
  }

  fetchOffsets(request: { group: string; partitions: readonly TopicPartition[] }): { topic: string; partition: number; offset: number; metadata: string }[] {
    const committed = this.deps.store.committed(request.group);
    const wanted = new Set(request.partitions.map((tp) => partitionKey(tp.topic, tp.partition)));
    return committed.filter((offset) => wanted.size === 0 || wanted.has(partitionKey(offset.topic, offset.partition))).map(({ topic, partition, offset, metadata }) => ({ topic, partition, offset, metadata }));
  }

  describe(group: string, nowMs: number): { state: GroupStateName; generation: number; assignor: string; members: GroupMemberRecord[]; offsets: { topic: string; partition: number; offset: number; metadata: string }[] } {
    if (!this.groups.has(group) && !this.deps.store.groups().includes(group)) throw new UnknownGroupError(group);
    const live = this.live(group, nowMs);
    return {
      state: live.state,
      generation: live.generation,
      assignor: live.assignor,
      members: [...live.members.values()].map(({ memberId, instanceId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignment }) => ({ memberId, instanceId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignment })),
      offsets: this.fetchOffsets({ group, partitions: [] }),
    };
  }

  list(nowMs: number): { group: string; state: GroupStateName; members: number }[] {
    const names = [...new Set([...this.groups.keys(), ...this.deps.store.groups()])].sort();
    return names.map((name) => {
      const live = this.live(name, nowMs);
      return { group: name, state: live.state, members: live.members.size };
    });
  }

  /**
   * expire deletes the groups that have had no members for retentionMs, counted from when the last
   * one left or from the group's last commit, whichever is later: Kafka's offsets.retention.minutes,
   * as KIP-211 counts it for an empty group, for all of a group's offsets at once. A group with
   * members keeps its offsets. A stored group with members that this coordinator has not seen yet is
   * loaded, so that members who never come back time out and leave it empty. Returns the groups
   * deleted (at most expiredPerRunMax; the next run goes on).
   */
  async expire(nowMs: number, retentionMs: number): Promise<string[]> {
    const expired: string[] = [];
    for (const group of this.deps.store.groups()) {
      const stored = this.deps.store.metadata.get(group);
      let live = this.groups.get(group);
      if (live === undefined && (stored?.members.length ?? 0) > 0) {
        try {
          live = this.live(group, nowMs);
        } catch {
          continue; // this coordinator holds as many groups as it may: the group waits for a later run
        }
      }
      if (live !== undefined && (live.members.size > 0 || live.state !== 'Empty' || live.completing)) continue;
      if (this.commitsInFlight.has(group)) continue; // a commit about to be acknowledged keeps it
      const committed = this.deps.store.committed(group);
      // A record written before records carried their time counts from the group's commits; with
      // none either, from this coordinator's start (a new leader each term would otherwise keep
      // moving that start, and such a group would never expire).
      const writtenMs = stored === undefined ? 0 : stored.stateTimestampMs !== 0 ? stored.stateTimestampMs : committed.length > 0 ? 0 : this.startedMs;
      const lastActiveMs = committed.reduce((latest, offset) => Math.max(latest, offset.commitTimestampMs), writtenMs);
      if (nowMs - lastActiveMs < retentionMs) continue;
      expired.push(group);
      if (expired.length >= groupLimits.expiredPerRunMax) break;
    }
    if (expired.length === 0) return expired;
    await this.deps.persist(expired.map((group) => ({ type: 'groupDelete', group })));
    // A member may have joined while the deletes were being committed: its group lives on.
    for (const group of expired) if (this.groups.get(group)?.members.size === 0) this.groups.delete(group);
    return expired;
  }

  /** deleteGroup forgets a group without members, its offsets included. */
  async deleteGroup(group: string, nowMs: number): Promise<void> {
    const live = this.requireEmpty(group, nowMs);
    await this.deps.persist([{ type: 'groupDelete', group }]);
    // A member may have joined while the delete was being committed: its group lives on.
    if (this.groups.get(group) === live && live.members.size === 0) this.groups.delete(group);
  }

  /** resetOffsets sets committed offsets of a group without members. */
  async resetOffsets(request: { group: string; offsets: readonly { topic: string; partition: number; offset: number; metadata: string }[] }, nowMs: number): Promise<void> {
    this.requireEmpty(request.group, nowMs);
    await this.commitOffsets({ group: request.group, memberId: '', generation: -1, offsets: request.offsets }, nowMs);
  }

  private requireEmpty(group: string, nowMs: number): LiveGroup {
    if (!this.groups.has(group) && !this.deps.store.groups().includes(group)) throw new UnknownGroupError(group);
    const live = this.live(group, nowMs);
    if (live.members.size > 0) throw new GroupNotEmptyError(group, live.members.size);
    return live;
  }

  /** close fails every pending join (leadership moved away); the next coordinator takes over from the store. */
  close(error: Error): void {
    for (const group of this.groups.values()) for (const member of group.members.values()) member.join?.reject(error);
    this.groups.clear();
  }
}

function tooManyGroups(): InvalidRequestError {
  return InvalidRequestError.of('group', `this coordinator already holds ${groupLimits.groupsPerCoordinatorMax} groups`);
}

function countsKey(counts: ReadonlyMap<string, number>): string {
  return [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, count]) => `${topic}:${count}`).join(',');
}

function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((topic, i) => topic === [...b].sort()[i]);
}

export function checkGroupId(group: string): void {
  if (group.length === 0) throw InvalidRequestError.of('group', 'is required');
  if (group.length > groupLimits.groupIdLengthMax) throw InvalidRequestError.of('group', `is ${group.length} characters; at most ${groupLimits.groupIdLengthMax}`);
}

function checkJoin(request: JoinRequest): void {
  checkGroupId(request.group);
  if (request.sessionTimeoutMs < groupLimits.sessionTimeoutMsMin || request.sessionTimeoutMs > groupLimits.sessionTimeoutMsMax) {
    throw InvalidRequestError.of('sessionTimeoutMs', `must be ${groupLimits.sessionTimeoutMsMin} to ${groupLimits.sessionTimeoutMsMax}, got ${request.sessionTimeoutMs}`);
  }
  if (request.rebalanceTimeoutMs > groupLimits.rebalanceTimeoutMsMax) throw InvalidRequestError.of('rebalanceTimeoutMs', `must be at most ${groupLimits.rebalanceTimeoutMsMax}, got ${request.rebalanceTimeoutMs}`);
  if (request.topics.length > groupLimits.topicsPerMemberMax) throw InvalidRequestError.of('topics', `${request.topics.length} topics; at most ${groupLimits.topicsPerMemberMax}`);
  if (!request.assignors.some((name) => (assignorNames as readonly string[]).includes(name))) throw InvalidRequestError.of('assignors', `must include one of ${assignorNames.join(', ')}`);
}
