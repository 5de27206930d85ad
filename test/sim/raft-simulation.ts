// RaftSimulation runs several nodes of one Raft group in one process, in virtual time: the
// production core (RawNode) over an in-memory disk, a faulty network and a seeded scheduler.
// A node persists each Ready after a simulated fsync delay; a crash loses the Ready in flight
// and everything volatile, and a restart rebuilds the node from what its disk holds.
import { applyConfChange, decodeConfChange } from '../../src/raft/confchange.js';
import { seededRandom, type Random } from '../../src/raft/prng.js';
import { unboundedAbstain } from '../../src/raft/raft.js';
import { RawNode } from '../../src/raft/rawnode.js';
import { splitMessages } from '../../src/raft/ready.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, ProposeResult, Ready, Snapshot } from '../../src/raft/types.js';
import { EventHeap } from './heap.js';
import { SimNetwork, type LinkFaults } from './network.js';
import { RaftChecker, entryKey } from './raft-checker.js';

export const simGroup = 0;

export interface SimOptions {
  readonly seed: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** spares: ids of nodes that start empty and may be added by membership changes. */
  readonly spares: readonly NodeId[];
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly tickMs: number;
  readonly fsyncMsMax: number;
  /** snapshotEveryEntries: a node snapshots and compacts when it applied this many past its snapshot. */
  readonly snapshotEveryEntries: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly appendBytesMax: number;
  readonly inflightMessagesMax: number;
  readonly trace: boolean;
  /** extension: an optional state machine every node runs beside the simulation's own (absent: none). */
  readonly extension?: SimExtension;
}

/** SimMachine is a state machine an extension runs on a node: the shape of src/node/raft-host.ts's StateMachine. */
export interface SimMachine {
  apply(entries: readonly Entry[]): void;
  snapshotData(): Uint8Array;
  restore(snapshot: Snapshot): void;
}

/**
 * SimExtension runs a second state machine on every node, beside the simulation's hash machine, and
 * hears what each node applies. Its state travels in every snapshot after the hash machine's 4
 * bytes (the hash machine reads only those), so snapshots, compaction and restarts carry it too.
 */
export interface SimExtension {
  /** bootstrapData: the machine's state in the bootstrap snapshot every initial member starts from. */
  readonly bootstrapData: Uint8Array;
  /** machine: a fresh machine for node (at every start and restart); it is then restored from the node's snapshot. */
  machine(node: NodeId): SimMachine;
  /** restored: node's machine was just restored from snapshot (at start, or on installing a snapshot). */
  restored?(node: NodeId, snapshot: Snapshot, machine: SimMachine): void;
  /** applying: node is about to apply entry (not yet applied); a checker may judge the entry first. */
  applying?(node: NodeId, entry: Entry): void;
  /** applied: node's machine has just applied entry. */
  applied?(node: NodeId, entry: Entry, machine: SimMachine): void;
}

/** withoutHash is the extension's part of a snapshot: the data after the hash machine's 4 bytes. */
function withoutHash(snapshot: Snapshot): Snapshot {
  return { metadata: snapshot.metadata, data: snapshot.data.subarray(4) };
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const data = new Uint8Array(a.length + b.length);
  data.set(a, 0);
  data.set(b, a.length);
  return data;
}

/** The state machine of the simulation: a chained hash of everything applied, and membership. */
class SimStateMachine {
  appliedIndex: number;
  hash: number;
  confState: ConfState;

  constructor(snapshot: Snapshot) {
    this.appliedIndex = snapshot.metadata.index;
    this.hash = snapshot.data.length >= 4 ? new DataView(snapshot.data.buffer, snapshot.data.byteOffset).getUint32(0) : 0;
    this.confState = snapshot.metadata.confState;
  }

  apply(entry: Entry): void {
    let hash = this.hash ^ entry.index;
    for (const byte of Buffer.from(entryKey(entry))) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    this.hash = hash;
    this.appliedIndex = entry.index;
    if (entry.type !== 'confChange') return;
    const change = decodeConfChange(entry.data);
    if (change === undefined) return;
    const outcome = applyConfChange(this.confState, change);
    if (outcome.kind === 'ok') this.confState = outcome.confState;
  }

  snapshotData(): Uint8Array {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, this.hash);
    return data;
  }
}

/**
 * Owed: what a node whose disk lost its last entries still owes, as its log's repair bound would
 * say: it lost entries from `from` on, up to `bound` (unboundedAbstain when it cannot tell), in
 * term `term` or earlier.
 */
interface Owed {
  readonly from: number;
  readonly bound: number;
  readonly term: number;
}

interface SimNode {
  readonly id: NodeId;
  disk: MemoryStorage;
  owes: Owed | undefined;
  raw: RawNode | undefined;
  machine: SimStateMachine | undefined;
  /** extra: the extension's machine, when the simulation has an extension. */
  extra: SimMachine | undefined;
  incarnation: number;
  readyInFlight: boolean;
}

type SimEvent =
  | { at: number; seq: number; kind: 'tick'; node: NodeId; incarnation: number }
  | { at: number; seq: number; kind: 'deliver'; message: Message }
  | { at: number; seq: number; kind: 'persisted'; node: NodeId; incarnation: number; ready: Ready }
  | { at: number; seq: number; kind: 'action'; run: () => void };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A proposal accepted by a leader, acknowledged once that node applies it. */
interface Proposal {
  readonly node: NodeId;
  readonly index: number;
  readonly term: number;
  readonly payload: string;
}

export class RaftSimulation {
  now = 0;
  readonly random: Random;
  readonly network: SimNetwork;
  readonly checker = new RaftChecker();
  readonly nodes = new Map<NodeId, SimNode>();
  /** acknowledged: index -> payload of proposals their leader applied (the client got an answer). */
  readonly acknowledged = new Map<number, string>();
  private readonly pending = new Map<string, Proposal>();
  private readonly reads = new Map<number, { node: NodeId; ackedBeforeRequest: number }>();
  private readonly queue = new EventHeap<SimEvent>();
  private seq = 0;
  private nextPayload = 1;
  private nextReadId = 1;
  readonly trace: string[] = [];
  private readonly electedTerm = new Map<NodeId, number>();
  /** lateMessages: per node, the messages of its Ready in flight that wait for it to be durable. */
  private readonly lateMessages = new Map<NodeId, Message[]>();
  /** held: messages from or to these nodes are held back until the given time, then released at once. */
  private readonly held = new Map<NodeId, number>();

  constructor(readonly options: SimOptions) {
    this.random = seededRandom(options.seed);
    this.network = new SimNetwork(seededRandom(options.seed ^ 0x5bd1e995));
    const confState: ConfState = { voters: [...options.voters], learners: [...options.learners] };
    const bootstrapData = options.extension === undefined ? new Uint8Array(4) : concatBytes(new Uint8Array(4), options.extension.bootstrapData);
    const bootstrap: Snapshot = { metadata: { index: 1, term: 1, confState }, data: bootstrapData };
    for (const id of [...options.voters, ...options.learners]) {
      this.addNode(id, new MemoryStorage({ snapshot: bootstrap, hardState: { term: 1, vote: 0, commit: 1 } }));
    }
    for (const id of options.spares) this.addNode(id, new MemoryStorage());
  }

  private addNode(id: NodeId, disk: MemoryStorage): void {
    const node: SimNode = { id, disk, owes: undefined, raw: undefined, machine: undefined, extra: undefined, incarnation: 0, readyInFlight: false };
    this.nodes.set(id, node);
    this.start(node);
  }

  private start(node: SimNode): void {
    node.incarnation++;
    node.machine = new SimStateMachine(node.disk.snapshot());
    const extension = this.options.extension;
    if (extension !== undefined) {
      const snapshot = node.disk.snapshot();
      node.extra = extension.machine(node.id);
      node.extra.restore(withoutHash(snapshot));
      extension.restored?.(node.id, snapshot, node.extra);
    }
    node.raw = new RawNode({
      id: node.id,
      group: simGroup,
      storage: node.disk,
      random: seededRandom((this.options.seed + node.id * 7919 + node.incarnation * 104729) >>> 0),
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      applied: node.machine.appliedIndex,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      limits: { appendBytesMax: this.options.appendBytesMax, inflightMessagesMax: this.options.inflightMessagesMax },
      ...(node.owes === undefined ? {} : { abstainUntilIndex: node.owes.bound, abstainTerm: node.owes.term }),
    });
    node.readyInFlight = false;
    this.checker.restarted(node.id);
    const phase = 1 + Math.floor(this.random() * this.options.tickMs);
    this.schedule({ at: this.now + phase, kind: 'tick', node: node.id, incarnation: node.incarnation });
  }

  private schedule(event: DistributiveOmit<SimEvent, 'seq'>): void {
    this.queue.push({ ...event, seq: this.seq++ } as SimEvent);
  }

  /** at runs an action (a fault, a proposal) at a virtual time. */
  at(time: number, run: () => void): void {
    this.schedule({ at: time, kind: 'action', run });
  }

  /** runUntil processes events until virtual time reaches `time`. */
  runUntil(time: number): void {
    for (;;) {
      const next = this.queue.peek();
      if (next === undefined || next.at > time) break;
      this.queue.pop();
      this.now = next.at;
      this.handle(next);
    }
    this.now = time;
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const node = this.nodes.get(event.node)!;
        if (node.raw === undefined || node.incarnation !== event.incarnation) return;
        node.raw.tick();
        this.schedule({ at: this.now + this.options.tickMs, kind: 'tick', node: node.id, incarnation: node.incarnation });
        this.afterInput(node);
        return;
      }
      case 'deliver': {
        const node = this.nodes.get(event.message.to);
        if (node?.raw === undefined) return;
        if (this.options.trace) this.log(`deliver ${describe(event.message)}`);
        node.raw.step(event.message);
        this.afterInput(node);
        return;
      }
      case 'persisted': {
        const node = this.nodes.get(event.node)!;
        if (node.raw === undefined || node.incarnation !== event.incarnation) return;
        this.finishReady(node, event.ready);
        return;
      }
      case 'action':
        event.run();
        return;
    }
  }

  /** afterInput observes the node and, if it has work and no Ready in flight, starts persisting. */
  private afterInput(node: SimNode): void {
    this.observe(node);
    const raw = node.raw!;
    if (node.readyInFlight || !raw.hasReady()) return;
    const ready = raw.ready();
    node.readyInFlight = true;
    // As the node does: messages that depend on nothing unpersisted leave at once.
    const { early, late } = splitMessages(ready, node.disk.hardState());
    for (const message of early) this.send(message, node);
    this.lateMessages.set(node.id, late);
    const needsFsync = ready.entries.length > 0 || ready.hardState !== undefined || ready.snapshot !== undefined;
    const delay = needsFsync ? Math.floor(this.random() * (this.options.fsyncMsMax + 1)) : 0;
    this.schedule({ at: this.now + delay, kind: 'persisted', node: node.id, incarnation: node.incarnation, ready });
  }

  /** finishReady does a Ready's work in order: persist, send, apply; then advances. */
  private finishReady(node: SimNode, ready: Ready): void {
    const raw = node.raw!;
    if (ready.snapshot !== undefined) node.disk.applySnapshot(ready.snapshot);
    node.disk.append(ready.entries);
    if (ready.hardState !== undefined) node.disk.setHardState(ready.hardState);
    this.settleDebt(node);
    this.checker.persist(node.id, { entries: ready.entries, ...(ready.hardState ?? {}) });
    for (const message of this.lateMessages.get(node.id) ?? ready.messages) this.send(message, node);
    this.lateMessages.delete(node.id);
    if (ready.snapshot !== undefined) this.restoreMachine(node, ready.snapshot);
    for (const entry of ready.committedEntries) this.applyEntry(node, entry);
    for (const read of ready.readStates) this.readConfirmed(node, read.requestId, read.index);
    raw.advance(ready);
    node.readyInFlight = false;
    this.maybeSnapshot(node);
    this.afterInput(node);
  }

  private send(message: Message, node: SimNode): void {
    const disk = node.disk;
    const hardState = disk.hardState();
    this.checker.send(message, {
      term: hardState.term,
      vote: hardState.vote,
      holds: (index) => index <= disk.snapshot().metadata.index || disk.term(index) !== undefined,
    });
    const heldUntil = Math.max(this.held.get(message.from) ?? 0, this.held.get(message.to) ?? 0);
    for (const delay of this.network.deliveries(message)) {
      let at = this.now + delay;
      // A held message arrives late, together with the others held, in a random order.
      if (heldUntil > this.now) at = Math.max(at, heldUntil + Math.floor(this.random() * this.options.tickMs * 3));
      this.schedule({ at, kind: 'deliver', message });
    }
  }

  private restoreMachine(node: SimNode, snapshot: Snapshot): void {
    node.machine = new SimStateMachine(snapshot);
    this.checker.applied(node.id, snapshot.metadata.index, node.machine.hash);
    if (node.extra !== undefined) {
      node.extra.restore(withoutHash(snapshot));
      this.options.extension!.restored?.(node.id, snapshot, node.extra);
    }
  }

  private applyEntry(node: SimNode, entry: Entry): void {
    const machine = node.machine!;
    if (entry.index <= machine.appliedIndex) return;
    if (entry.index !== machine.appliedIndex + 1) throw new Error(`node ${node.id} applied ${entry.index} after ${machine.appliedIndex}`);
    machine.apply(entry);
    this.checker.applied(node.id, entry.index, machine.hash);
    if (node.extra !== undefined) {
      const extension = this.options.extension!;
      extension.applying?.(node.id, entry);
      node.extra.apply([entry]);
      extension.applied?.(node.id, entry, node.extra);
    }
    if (entry.type !== 'normal' || entry.data.length === 0) return;
    const payload = Buffer.from(entry.data).toString();
    const proposal = this.pending.get(payload);
    if (proposal !== undefined && proposal.node === node.id && proposal.index === entry.index && proposal.term === entry.term) {
      this.pending.delete(payload);
      this.acknowledged.set(entry.index, payload);
    }
  }

  private readConfirmed(node: SimNode, requestId: number, index: number): void {
    const read = this.reads.get(requestId);
    if (read === undefined) return;
    this.reads.delete(requestId);
    this.checker.read({ node: node.id, index, ackedBeforeRequest: read.ackedBeforeRequest });
  }

  private maybeSnapshot(node: SimNode): void {
    const machine = node.machine!;
    const snapshotIndex = node.disk.snapshot().metadata.index;
    if (machine.appliedIndex - snapshotIndex < this.options.snapshotEveryEntries) return;
    if (machine.appliedIndex > node.disk.lastIndex()) return;
    const data = node.extra === undefined ? machine.snapshotData() : concatBytes(machine.snapshotData(), node.extra.snapshotData());
    node.disk.createSnapshot(machine.appliedIndex, machine.confState, data);
  }

  private observe(node: SimNode): void {
    const raw = node.raw!;
    const raft = raw.raft;
    this.checker.observe({
      node: node.id,
      role: raft.role,
      term: raft.term,
      commit: raft.log.committed,
      confState: raft.confState,
      entryAt: (index) => (index >= raft.log.firstIndex() && index <= raft.log.lastIndex() ? raft.log.slice(index, index + 1, Infinity)[0] : undefined),
      durable: (id) => {
        const other = this.nodes.get(id);
        if (other === undefined) return undefined;
        const { disk, owes } = other;
        return { term: (index) => disk.term(index), snapshotIndex: () => disk.snapshot().metadata.index, owes: (index) => owes !== undefined && index >= owes.from };
      },
    });
    if (raft.role === 'leader' && this.electedTerm.get(node.id) !== raft.term) {
      this.electedTerm.set(node.id, raft.term);
      this.checker.elected({
        node: node.id,
        term: raft.term,
        voters: raft.confState.voters,
        selfVote: raft.vote,
        entryAt: (index) => (index >= raft.log.firstIndex() && index <= raft.log.lastIndex() ? raft.log.slice(index, index + 1, Infinity)[0] : undefined),
        firstIndex: raft.log.firstIndex(),
        lastIndex: raft.log.lastIndex(),
      });
    }
    if (raft.role === 'leader') {
      this.checker.leaderMembership({ node: node.id, committed: raft.committedConfState(), effective: raft.confState, pendingChanges: raft.pendingConfChanges() });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Operations a schedule performs.

  crash(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return;
    if (this.options.trace) this.log(`crash ${id}`);
    node.raw = undefined;
    node.machine = undefined;
    node.extra = undefined;
    node.readyInFlight = false;
    this.lateMessages.delete(id); // what waited for the disk is lost with the Ready
  }

  /** tailsLost counts the losses loseTail inflicted, by whether the repair could bound them. */
  readonly tailsLost = { bounded: 0, unbounded: 0 };
  /**
   * lossesMeetChanges counts where losses and membership changes overlap: a tail lost while some
   * node's log holds an uncommitted change, and a change accepted while some node owes lost entries.
   */
  readonly lossesMeetChanges = { lossDuringChange: 0, changeDuringDebt: 0 };

  /**
   * loseTail crashes node id, and its disk loses its last `count` entries (damage its log repairs
   * on open: the segmented log's cut and repair bound, bounded or not). It restarts owing them. At
   * most one node owes at a time: a minority of the voters, which is what the repair covers (of
   * three or more: membership changes can make it half of fewer, see raft-scenario's heal).
   */
  loseTail(id: NodeId, count: number, options: { bounded: boolean }): void {
    const node = this.nodes.get(id)!;
    // A node owes until its Raft stops abstaining too, which may be later than its disk's bound
    // says (the bound drops with any entry of a later term on disk, abstaining ends with a
    // committed one): two abstaining voters could be half of three, so the loss waits.
    if (this.owing().some((other) => other !== id)) return;
    const disk = node.disk;
    const held = disk.allEntries();
    const cut = Math.min(count, held.length);
    if (cut === 0 || node.raw === undefined) return;
    if ([...this.nodes.values()].some((other) => (other.raw?.raft.pendingConfChanges() ?? 0) > 0)) this.lossesMeetChanges.lossDuringChange++;
    this.crash(id);
    this.tailsLost[options.bounded ? 'bounded' : 'unbounded']++;
    if (this.options.trace) this.log(`loseTail ${id}: entries ${disk.lastIndex() - cut + 1}..${disk.lastIndex()} lost, bound ${options.bounded ? 'known' : 'unknown'}`);
    // A node persists its commit index lazily (raft-host: up to a second behind), so it may say
    // nothing of the lost entries: only the repair bound covers them then.
    const kept = held.slice(0, held.length - cut);
    const hardState = { ...disk.hardState(), commit: Math.min(disk.hardState().commit, disk.snapshot().metadata.index + kept.length) };
    node.disk = new MemoryStorage({ snapshot: disk.snapshot(), hardState, entries: kept });
    this.checker.lostCommit(id, hardState.commit);
    const bound = options.bounded ? Math.max(disk.lastIndex(), node.owes?.bound ?? 0) : unboundedAbstain;
    node.owes = { from: Math.min(node.disk.lastIndex() + 1, node.owes?.from ?? Infinity), bound, term: Math.min(disk.hardState().term, node.owes?.term ?? Infinity) };
    this.start(node);
  }

  /** settleDebt: a node owes nothing once its disk holds the bound again, or (bound unknown) an entry of a later term, as SegmentedLog.sync drops the bound. */
  private settleDebt(node: SimNode): void {
    const { owes, disk } = node;
    if (owes === undefined) return;
    const last = disk.lastIndex();
    const laterTerm = owes.bound === unboundedAbstain && last >= disk.firstIndex() && (disk.term(last) ?? 0) > owes.term;
    if (last >= owes.bound || laterTerm) node.owes = undefined;
  }

  restart(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.raw !== undefined) return;
    if (this.options.trace) this.log(`restart ${id}`);
    this.start(node);
  }

  /**
   * owing: the nodes that still owe entries their disk lost: as the simulated disk says (its repair
   * bound), or as the node's Raft says while it still abstains (it stops only once it holds them,
   * which may come after the disk's bound was dropped).
   */
  owing(): NodeId[] {
    const owing: NodeId[] = [];
    for (const node of this.nodes.values()) {
      const abstaining = node.raw?.raft.owesLostEntries === true;
      if (node.owes !== undefined || abstaining) owing.push(node.id);
    }
    return owing;
  }

  /** voterSets: the voters of node id's latest configuration and of its committed one (none while it is down). */
  voterSets(id: NodeId): (readonly NodeId[])[] {
    const raft = this.nodes.get(id)?.raw?.raft;
    return raft === undefined ? [] : [raft.confState.voters, raft.committedConfState().voters];
  }

  isUp(id: NodeId): boolean {
    return this.nodes.get(id)?.raw !== undefined;
  }

  /** propose sends a unique payload to node id; it counts only if that node accepts it. */
  propose(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return;
    const payload = `p${this.nextPayload++}`;
    const result = node.raw.propose(Buffer.from(payload));
    if (result.kind === 'accepted') this.pending.set(payload, { node: id, index: result.index, term: result.term, payload });
    this.afterInput(node);
  }

  /** proposeData proposes raw bytes to node id (an extension's entry) and returns what its Raft answered. */
  proposeData(id: NodeId, data: Uint8Array): ProposeResult | undefined {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return undefined;
    const result = node.raw.propose(data);
    if (this.options.trace) this.log(`proposeData ${data.length}B at ${id}: ${result.kind}${result.kind === 'accepted' ? ` ${result.index}/${result.term}` : ''}`);
    this.afterInput(node);
    return result;
  }

  proposeConfChange(id: NodeId, change: ConfChange): void {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return;
    const result = node.raw.proposeConfChange(change);
    if (result.kind === 'accepted' && this.owing().length > 0) this.lossesMeetChanges.changeDuringDebt++;
    if (this.options.trace) this.log(`confChange ${change.type} ${change.nodeId} at ${id}: ${result.kind}`);
    this.afterInput(node);
  }

  transferLeadership(id: NodeId, target: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return;
    node.raw.transferLeadership(target);
    this.afterInput(node);
  }

  readIndex(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.raw === undefined) return;
    const requestId = this.nextReadId++;
    const ackedBeforeRequest = Math.max(0, ...this.acknowledged.keys());
    this.reads.set(requestId, { node: id, ackedBeforeRequest });
    node.raw.readIndex(requestId);
    this.afterInput(node);
  }

  /** hold delays every message from or to node until `untilMs`, then releases them together. */
  hold(id: NodeId, untilMs: number): void {
    this.held.set(id, Math.max(this.held.get(id) ?? 0, untilMs));
  }

  releaseAll(): void {
    this.held.clear();
  }

  setLinkFaults(faults: LinkFaults): void {
    this.network.faults = faults;
  }

  /** leaderOf returns the node that leads the highest term among live nodes, if any. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const node of this.nodes.values()) {
      const raft = node.raw?.raft;
      if (raft?.role === 'leader' && (best === undefined || raft.term > best.term)) best = { id: node.id, term: raft.term };
    }
    return best?.id;
  }

  /** members returns the voters and learners in the configuration of the given node. */
  members(id: NodeId): NodeId[] {
    const raft = this.nodes.get(id)?.raw?.raft;
    return raft === undefined ? [] : [...raft.confState.voters, ...raft.confState.learners];
  }

  appliedIndex(id: NodeId): number {
    return this.nodes.get(id)?.machine?.appliedIndex ?? 0;
  }

  /** extraMachine: the extension's machine on node id while it is up. */
  extraMachine(id: NodeId): SimMachine | undefined {
    return this.nodes.get(id)?.extra;
  }

  /** incarnation counts the starts of node id: it changes when the node restarts. */
  incarnation(id: NodeId): number {
    return this.nodes.get(id)?.incarnation ?? 0;
  }

  /** log appends a line to the trace (when tracing). */
  note(line: string): void {
    if (this.options.trace) this.log(line);
  }

  status(id: NodeId): ReturnType<RawNode['status']> | undefined {
    return this.nodes.get(id)?.raw?.status();
  }

  private log(line: string): void {
    this.trace.push(`${this.now} ${line}`);
  }
}

function describe(message: Message): string {
  const base = `${message.type} ${message.from}->${message.to} t${message.term}`;
  if (message.type === 'appendEntries') return `${base} prev=${message.prevIndex}/${message.prevTerm} n=${message.entries.length} c=${message.commit}`;
  if (message.type === 'appendEntriesResponse') return `${base} ${message.reject ? 'reject' : 'ok'} i=${message.index}`;
  if (message.type === 'requestVoteResponse') return `${base} ${message.preVote ? 'pre' : ''}${message.granted ? 'granted' : 'denied'}`;
  return base;
}
