// PartitionSimulation runs the replicas of ONE partition's Raft group in virtual time: the
// production RawNode (through RaftSimulation: simulated disk, network and crashes) and, on every
// node, the production PartitionState as the group's state machine and a PartitionLeader. Its
// produce() does what src/node/hosted-partition.ts does for acks=all: validate the batch, start
// the leader's term from the entries after the applied index when the term changed, prepare,
// propose to Raft, record the proposal, and answer once the entry is applied on that node in the
// term it was proposed in (or answer a duplicate, a refusal, or a dropped proposal). Producers
// reach nodes over their own lossy, delayed links (FIFO per producer and node, like one TCP
// connection each). PartitionChecker hears everything.
import { PartitionLeader, PartitionState, encodePartitionSnapshot, type PrepareOutcome } from '../../src/partition/partition-state.js';
import { validateBatch } from '../../src/partition/record-batch.js';
import { seededRandom, type Random } from '../../src/raft/prng.js';
import type { Entry, NodeId, Snapshot } from '../../src/raft/types.js';
import { PartitionChecker, type ProducedBatch, type ReplicaView } from './partition-checker.js';
import { RaftSimulation, type SimMachine, type SimOptions } from './raft-simulation.js';

/** ProduceAnswer is what a producer hears back from a node, as the Broker service would map it. */
export type ProduceAnswer =
  | { readonly kind: 'appended'; readonly baseOffset: number }
  | { readonly kind: 'duplicate'; readonly baseOffset: number }
  | { readonly kind: 'duplicateInFlight' }
  | { readonly kind: 'notLeader'; readonly leaderHint: NodeId }
  | { readonly kind: 'proposalDropped' }
  | { readonly kind: 'proposalRejected'; readonly reason: string }
  | { readonly kind: 'outOfOrder'; readonly expectedSequence: number; readonly receivedSequence: number }
  | { readonly kind: 'fenced' }
  | { readonly kind: 'unknownProducer' }
  | { readonly kind: 'invalid'; readonly reason: string };

/** A proposal waiting to be applied on its leader (RaftHost's quorum waiter). */
interface Waiter {
  readonly term: number;
  readonly baseOffset: number;
  readonly reply: (answer: ProduceAnswer) => void;
}

/** SimPartitionReplica is one node's partition replica in one life: the state machine, its leader view and its waiters. */
class SimPartitionReplica implements SimMachine {
  readonly state = new PartitionState();
  readonly leader = new PartitionLeader(this.state);
  readonly waiters = new Map<number, Waiter>();
  /** droppedBelow: the Raft index below which the state forgot its batches (the disk compacted them). */
  droppedBelow = 0;

  constructor(readonly incarnation: number) {}

  apply(entries: readonly Entry[]): void {
    this.state.apply(entries);
  }

  snapshotData(): Uint8Array {
    return this.state.snapshotData();
  }

  restore(snapshot: Snapshot): void {
    this.state.restore(snapshot);
    this.droppedBelow = snapshot.metadata.index + 1;
  }

  /** failWaitersUpTo answers the waiters whose slot a snapshot skipped: their outcome is unknown here. */
  failWaitersUpTo(index: number): void {
    for (const [waiterIndex, waiter] of this.waiters) {
      if (waiterIndex > index) continue;
      this.waiters.delete(waiterIndex);
      waiter.reply({ kind: 'proposalDropped' });
    }
  }
}

/** Counts of what happened, for the test to show progress. */
export interface PartitionCounts {
  readonly answers: Map<string, number>;
  begins: number;
  beginsWithPending: number;
}

export class PartitionSimulation {
  readonly checker = new PartitionChecker();
  readonly simulation: RaftSimulation;
  readonly counts: PartitionCounts = { answers: new Map(), begins: 0, beginsWithPending: 0 };
  private readonly replicas = new Map<NodeId, SimPartitionReplica>();
  private readonly starts = new Map<NodeId, number>();
  private readonly random: Random;
  /** linkFree[`producer/node`]: when the FIFO link from a producer to a node delivers its last request. */
  private readonly linkFree = new Map<string, number>();
  private readonly tracing: boolean;

  /** options: the Raft simulation's, without an extension (the partition replicas are this one's). */
  constructor(options: Omit<SimOptions, 'extension'>) {
    this.tracing = options.trace;
    this.random = seededRandom((options.seed ^ 0x68e31da4) >>> 0);
    this.simulation = new RaftSimulation({
      ...options,
      extension: {
        bootstrapData: encodePartitionSnapshot({ nextOffset: 0, producers: { producers: [] } }),
        machine: (node) => this.startReplica(node),
        restored: (node, snapshot, machine) => this.restored(node, snapshot, machine as SimPartitionReplica),
        applied: (node, entry, machine) => this.applied(node, entry, machine as SimPartitionReplica),
      },
    });
  }

  get now(): number {
    return this.simulation.now;
  }

  get ids(): NodeId[] {
    return [...this.simulation.nodes.keys()];
  }

  private startReplica(node: NodeId): SimPartitionReplica {
    const incarnation = (this.starts.get(node) ?? 0) + 1;
    this.starts.set(node, incarnation);
    const replica = new SimPartitionReplica(incarnation);
    this.replicas.set(node, replica);
    return replica;
  }

  private restored(node: NodeId, snapshot: Snapshot, replica: SimPartitionReplica): void {
    this.trace(() => `restored ${node} at ${snapshot.metadata.index}: high watermark ${replica.state.highWatermark}, ${replica.state.producers.size} producers known`);
    replica.failWaitersUpTo(snapshot.metadata.index);
    this.checker.restored({ node, incarnation: replica.incarnation, snapshotIndex: snapshot.metadata.index, state: replica.state });
  }

  /** trace adds a line to the simulation's trace when tracing (the simulation is not there yet while its constructor starts the nodes). */
  private trace(line: () => string): void {
    if (this.tracing) (this.simulation as RaftSimulation | undefined)?.note(line());
  }

  private applied(node: NodeId, entry: Entry, replica: SimPartitionReplica): void {
    this.checker.applied({ node, incarnation: replica.incarnation, entry, state: replica.state });
    if (entry.data.length > 0) this.trace(() => `applied at ${node}: ${entry.index}/${entry.term}, high watermark ${replica.state.highWatermark}`);
    this.forgetCompacted(node, replica);
    const waiter = replica.waiters.get(entry.index);
    if (waiter === undefined) return;
    replica.waiters.delete(entry.index);
    if (waiter.term === entry.term) waiter.reply({ kind: 'appended', baseOffset: waiter.baseOffset });
    else waiter.reply({ kind: 'proposalDropped' });
  }

  /** forgetCompacted tells the state that its disk dropped the entries below the first it holds, as retention does on a node. */
  private forgetCompacted(node: NodeId, replica: SimPartitionReplica): void {
    const firstIndex = this.simulation.nodes.get(node)!.disk.firstIndex();
    if (firstIndex <= replica.droppedBelow) return;
    replica.state.dropBelow(firstIndex);
    replica.droppedBelow = firstIndex;
  }

  /** replica returns node's live replica, or undefined while the node is down. */
  private replica(node: NodeId): SimPartitionReplica | undefined {
    return this.simulation.isUp(node) ? this.replicas.get(node) : undefined;
  }

  /** view returns how the checker reads node's replica (while it is up). */
  view(node: NodeId): ReplicaView | undefined {
    const replica = this.replica(node);
    if (replica === undefined) return undefined;
    this.forgetCompacted(node, replica);
    const disk = this.simulation.nodes.get(node)!.disk;
    const { state } = replica;
    return {
      node,
      state,
      read: (offset) => {
        const lookup = state.lookup(offset);
        if (lookup.kind !== 'found') return { kind: lookup.kind };
        // As HostedPartition.read: from the batch's index, the first batch entry up to the last batch held.
        const entries = disk.entries(lookup.raftIndex, state.lastBatchIndex() + 1, 1);
        const bytes = entries[0]?.data;
        return bytes === undefined ? { kind: 'outOfRange' } : { kind: 'batch', bytes };
      },
    };
  }

  views(): ReplicaView[] {
    return this.ids.map((id) => this.view(id)).filter((view) => view !== undefined);
  }

  /** crash stops node: its Ready in flight, its waiters and everything volatile are lost. */
  crash(node: NodeId): void {
    if (!this.simulation.isUp(node)) return;
    this.simulation.crash(node);
    this.replicas.get(node)?.waiters.clear(); // the producers never hear: they time out
  }

  restart(node: NodeId): void {
    this.simulation.restart(node);
  }

  /**
   * send carries a produce request from a producer to node over their FIFO link and the answer
   * back, each leg delayed and maybe lost as the network's current faults say. reply runs at most
   * once, when (and if) the answer arrives.
   */
  send(options: { producer: bigint; node: NodeId; bytes: Uint8Array; reply: (answer: ProduceAnswer) => void }): void {
    const { node, bytes, reply } = options;
    const arrival = this.legDelay();
    if (arrival === undefined) return;
    const link = `${options.producer}/${node}`;
    const at = Math.max(this.now + arrival, this.linkFree.get(link) ?? 0);
    this.linkFree.set(link, at);
    this.simulation.at(at, () =>
      this.produce(node, bytes, (answer) => {
        this.count(answer.kind);
        const back = this.legDelay();
        if (back !== undefined) this.simulation.at(this.now + back, () => reply(answer));
      }),
    );
  }

  private legDelay(): number | undefined {
    const faults = this.simulation.network.faults;
    if (this.random() < faults.dropRate / 2) return undefined;
    return faults.delayMinMs + Math.floor(this.random() * (faults.delayMaxMs - faults.delayMinMs + 1));
  }

  /** produce is HostedPartition.produce with acks=all on node; a request to a node that is down is lost. */
  produce(node: NodeId, bytes: Uint8Array, reply: (answer: ProduceAnswer) => void): void {
    const replica = this.replica(node);
    if (replica === undefined) return;
    const validation = validateBatch(bytes);
    if (validation.kind === 'invalid') return reply({ kind: 'invalid', reason: `${validation.field} ${validation.reason}` });
    const status = this.simulation.status(node)!;
    if (status.role !== 'leader') return reply({ kind: 'notLeader', leaderHint: status.leader });
    if (replica.leader.term !== status.term) this.begin(node, replica, status.term);
    const outcome = replica.leader.prepare(bytes, validation.header);
    const { producerId, producerEpoch, baseSequence } = validation.header;
    this.trace(() => `produce at ${node} t${status.term}: producer ${producerId} epoch ${producerEpoch} seq ${baseSequence} -> ${JSON.stringify(outcome, (_key, value: unknown) => (value instanceof Uint8Array ? undefined : value))}`);
    if (outcome.kind === 'unknownProducer') this.checker.unknownProducer({ node, producerId, state: replica.state });
    if (outcome.kind !== 'append') return reply(answerWithoutAppend(outcome));
    const result = this.simulation.proposeData(node, outcome.bytes)!;
    if (result.kind !== 'accepted') return reply(result.kind === 'notLeader' ? { kind: 'notLeader', leaderHint: result.leaderHint } : { kind: 'proposalRejected', reason: result.kind });
    replica.leader.proposed(outcome.bytes);
    replica.waiters.set(result.index, { term: result.term, baseOffset: outcome.baseOffset, reply });
  }

  /** begin starts the leader's view of its term from the entries after the applied index (RaftHost.pendingEntries). */
  private begin(node: NodeId, replica: SimPartitionReplica, term: number): void {
    const log = this.simulation.nodes.get(node)!.raw!.raft.log;
    const lastIndex = log.lastIndex();
    const pending: Entry[] = [];
    for (let next = this.simulation.appliedIndex(node) + 1; next <= lastIndex; next = pending[pending.length - 1]!.index + 1) {
      pending.push(...log.slice(next, lastIndex + 1, Number.MAX_SAFE_INTEGER));
    }
    this.counts.begins++;
    this.trace(() => `begin at ${node} t${term}: high watermark ${replica.state.highWatermark}, ${pending.length} pending entries after ${this.simulation.appliedIndex(node)}`);
    if (pending.some((entry) => entry.type === 'normal' && entry.data.length > 0)) this.counts.beginsWithPending++;
    replica.leader.begin(term, pending);
  }

  /** acknowledged: a producer heard that batch is at baseOffset; the checker judges it against every replica. */
  acknowledged(batch: ProducedBatch, baseOffset: number): void {
    this.checker.acknowledged({ batch, baseOffset, replicas: this.views() });
  }

  private count(kind: string): void {
    this.counts.answers.set(kind, (this.counts.answers.get(kind) ?? 0) + 1);
  }

  /** describe is one line per node, for liveness failures. */
  describe(): string {
    return this.ids
      .map((id) => {
        const status = this.simulation.status(id);
        if (status === undefined) return `${id}: down`;
        const state = this.replicas.get(id)!.state;
        return `${id}: ${status.role} t${status.term} leader=${status.leader} commit=${status.commit} applied=${this.simulation.appliedIndex(id)} last=${status.lastIndex} hw=${state.highWatermark} logStart=${state.logStartOffset}`;
      })
      .join('; ');
  }
}

/** answerWithoutAppend is HostedPartition.answerWithoutAppend for acks=all, as answers instead of thrown errors. */
function answerWithoutAppend(outcome: Exclude<PrepareOutcome, { kind: 'append' }>): ProduceAnswer {
  switch (outcome.kind) {
    case 'duplicate':
      return outcome.committed ? { kind: 'duplicate', baseOffset: outcome.baseOffset } : { kind: 'duplicateInFlight' };
    case 'outOfOrder':
      return { kind: 'outOfOrder', expectedSequence: outcome.expectedSequence, receivedSequence: outcome.receivedSequence };
    case 'fenced':
      return { kind: 'fenced' };
    case 'unknownProducer':
      return { kind: 'unknownProducer' };
    case 'invalid':
      return { kind: 'invalid', reason: `${outcome.field} ${outcome.reason}` };
  }
}
