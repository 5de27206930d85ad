// Transcript tests for the Raft core: a script of commands, each followed by the exact output it
// must produce, in the manner of etcd's datadriven tests. The interpreter drives real RawNodes over
// MemoryStorage and a hand-operated network: nothing moves unless a command says so.
//
// Script format (see testdata/*.txt):
//   # comment lines (kept on rewrite), attached to the command that follows
//   <command> <args...>
//   ----
//   <expected output, one line per event; never empty ("ok" when nothing happened)>
//   <blank line>
//
// After every command each live, unstalled node works off its Readies in id order: persist
// (snapshot, entries, hard state) into its MemoryStorage, send messages into the network, apply,
// advance. The output of a command lists, in this order:
//   dropped <message>        a message discarded by `drop`, a cut link or a crashed receiver
//   <id>: warn <text>        a warning the node logged through the injected logger
//   <id>: <role> term=.. vote=.. leader=.. commit=..   a node whose role/term/vote/leader/commit changed
//   <id>: readState id=.. index=..                     a read confirmed to the node
//   <from>-><to> <type> ...                            a message sent (sorted by from, then to)
//
// Commands:
//   cluster voters=1,2,3 [learners=4] [spares=5] [election=10] [heartbeat=5] [prevote=true]
//           [checkquorum=true] [inflight=256] [appendbytes=1048576]
//                                                bootstrap: snapshot at index 1 term 1 with the
//                                                membership; spares start with empty storage.
//   tick <count> [ids...]      tick the nodes (default all live ones) count times, settling after each
//   campaign <id>              RawNode.campaign()
//   propose <id> <data>        RawNode.propose()
//   confchange <id> <addVoter|addLearner|removeNode> <node>
//   transfer <id> <target>     RawNode.transferLeadership()
//   read <id> <requestId>      RawNode.readIndex()
//   deliver [from->to ...]     deliver the messages pending now (all, or those matching; * is a wildcard)
//   stabilize                  deliver rounds until the network is empty
//   drop from->to ...          discard the matching pending messages
//   partition 1 2|3            cut every link between the groups separated by |
//   heal                       restore every link
//   stall <id> / resume <id>   the node's disk stops / restarts: its Readies wait (nothing persisted or sent)
//   crash <id>                 lose the node's volatile state and its unpersisted Ready
//   restart <id>               rebuild the node from its storage
//   compact <id>               snapshot the node's storage at its applied index and drop the entries
//   status <id>                term vote role leader commit applied lastIndex
//   log <id>                   the snapshot position and every entry of the node's log
//   progress <id>              the leader's progress of each peer
//   conf <id>                  the membership the node uses (latest in its log) and the committed one
import { decodeConfChange } from '../../src/raft/confchange.js';
import type { RaftLogger } from '../../src/raft/raft.js';
import { RawNode } from '../../src/raft/rawnode.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { ConfChangeType, ConfState, Entry, Message, NodeId, ProposeResult, Snapshot } from '../../src/raft/types.js';
import { confChangeTypes } from '../../src/raft/types.js';

export const transcriptGroup = 7;

// ---------------------------------------------------------------------------------------------
// Script parsing and printing.

export interface TranscriptCase {
  readonly comments: readonly string[];
  readonly command: string;
  readonly expected: readonly string[];
  /** line is the 1-based line of the command in the script. */
  readonly line: number;
}

/** parseTranscript splits a script into cases; throws on a command without a ---- line. */
export function parseTranscript(text: string): TranscriptCase[] {
  const lines = text.split('\n');
  const cases: TranscriptCase[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '') {
      i++;
      continue;
    }
    if (line.startsWith('#')) {
      comments.push(line);
      i++;
      continue;
    }
    const commandLine = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${commandLine}: expected ---- after "${line}"`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    cases.push({ comments, command: line.trim(), expected, line: commandLine });
    comments = [];
  }
  return cases;
}

/** formatTranscript writes cases back with the given outputs (one per case). */
export function formatTranscript(cases: readonly TranscriptCase[], outputs: readonly (readonly string[])[]): string {
  const blocks = cases.map((testCase, index) => [...testCase.comments, testCase.command, '----', ...(outputs[index] ?? [])].join('\n'));
  return `${blocks.join('\n\n')}\n`;
}

/** runTranscript runs a script on a fresh interpreter; it returns the script with actual outputs. */
export function runTranscript(text: string): { actual: string; cases: TranscriptCase[]; outputs: string[][] } {
  const cases = parseTranscript(text);
  const interpreter = new TranscriptInterpreter();
  const outputs = cases.map((testCase) => {
    try {
      return interpreter.run(testCase.command);
    } catch (error) {
      return [`error: ${error instanceof Error ? error.message : String(error)}`];
    }
  });
  return { actual: formatTranscript(cases, outputs), cases, outputs };
}

// ---------------------------------------------------------------------------------------------
// Formatting of protocol values.

function describeEntry(entry: Entry): string {
  const at = `${entry.index}@${entry.term}`;
  if (entry.type === 'confChange') {
    const change = decodeConfChange(entry.data);
    return change === undefined ? `${at}:confChange(?)` : `${at}:${change.type}(${change.nodeId})`;
  }
  return entry.data.length === 0 ? at : `${at}:${Buffer.from(entry.data).toString()}`;
}

function describeConfState(confState: ConfState): string {
  return `voters=${confState.voters.join(',')} learners=${confState.learners.join(',')}`;
}

/** describeMessage prints a message on one line: `from->to type term=.. fields`. */
export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} term=${message.term}`;
  switch (message.type) {
    case 'requestVote':
      return `${head}${message.preVote ? ' pre' : ''}${message.transfer ? ' transfer' : ''} lastIndex=${message.lastIndex} lastTerm=${message.lastTerm}`;
    case 'requestVoteResponse':
      return `${head}${message.preVote ? ' pre' : ''} ${message.granted ? 'granted' : 'rejected'}`;
    case 'appendEntries':
      return `${head} prev=${message.prevIndex}@${message.prevTerm} commit=${message.commit} entries=[${message.entries.map(describeEntry).join(' ')}]`;
    case 'appendEntriesResponse':
      return message.reject
        ? `${head} reject index=${message.index} hint=${message.hintIndex}@${message.hintTerm}`
        : `${head} index=${message.index}`;
    case 'heartbeat':
      return `${head} commit=${message.commit}${message.context !== 0 ? ` context=${message.context}` : ''}`;
    case 'heartbeatResponse':
      return `${head}${message.context !== 0 ? ` context=${message.context}` : ''}`;
    case 'installSnapshot':
      return `${head} snapshot=${message.snapshot.metadata.index}@${message.snapshot.metadata.term} ${describeConfState(message.snapshot.metadata.confState)}`;
    case 'timeoutNow':
      return head;
    case 'readIndexRequest':
      return `${head} id=${message.requestId}`;
    case 'readIndexResponse':
      return `${head} id=${message.requestId} index=${message.index}${message.rejected ? ' rejected' : ''}`;
    case 'transferLeaderRequest':
      return `${head} target=${message.target}`;
  }
}

function describeProposeResult(result: ProposeResult): string {
  switch (result.kind) {
    case 'accepted':
      return `accepted index=${result.index} term=${result.term}`;
    case 'notLeader':
      return `notLeader leaderHint=${result.leaderHint}`;
    case 'transferring':
      return `transferring target=${result.target}`;
    case 'tooLarge':
      return `tooLarge bytes=${result.bytes}`;
    case 'confChangePending':
      return `confChangePending pendingIndex=${result.pendingIndex}`;
    case 'invalidConfChange':
      return `invalidConfChange ${result.reason}`;
    case 'queueFull':
      return `queueFull uncommittedBytes=${result.uncommittedBytes}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The interpreter.

interface TranscriptNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  raw: RawNode | undefined;
  stalled: boolean;
}

interface ClusterOptions {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  inflightMessagesMax: number;
  appendBytesMax: number;
}

/** Events collected while a command runs; printed in a fixed order. */
interface Events {
  dropped: string[];
  warnings: string[];
  readStates: string[];
  sent: Message[];
}

const linkKey = (from: NodeId, to: NodeId): string => `${Math.min(from, to)}-${Math.max(from, to)}`;

export class TranscriptInterpreter {
  private readonly nodes = new Map<NodeId, TranscriptNode>();
  private options: ClusterOptions = { electionTicks: 10, heartbeatTicks: 5, preVote: true, checkQuorum: true, inflightMessagesMax: 256, appendBytesMax: 1024 * 1024 };
  private pending: Message[] = [];
  private readonly cutLinks = new Set<string>();
  private events: Events = { dropped: [], warnings: [], readStates: [], sent: [] };
  private baseline = new Map<NodeId, string>();

  /** run executes one command line and returns its output lines. Throws on a malformed command. */
  run(command: string): string[] {
    const [name, ...args] = command.split(/\s+/);
    this.baseline = this.stateLines();
    this.events = { dropped: [], warnings: [], readStates: [], sent: [] };
    const result = this.execute(name ?? '', args);
    this.settle();
    const output = [...result, ...this.flush()];
    return output.length > 0 ? output : ['ok'];
  }

  /** flush prints the events and state changes since the baseline, then starts a new baseline. */
  private flush(): string[] {
    const now = this.stateLines();
    const changed = [...now].filter(([id, line]) => this.baseline.get(id) !== line).map(([, line]) => line);
    const sent = [...this.events.sent].sort((a, b) => a.from - b.from || a.to - b.to).map(describeMessage);
    const lines = [...this.events.dropped, ...this.events.warnings, ...changed, ...this.events.readStates, ...sent];
    this.events = { dropped: [], warnings: [], readStates: [], sent: [] };
    this.baseline = now;
    return lines;
  }

  private execute(name: string, args: string[]): string[] {
    switch (name) {
      case 'cluster':
        return this.cluster(args);
      case 'tick':
        return this.tick(args);
      case 'campaign':
        this.live(args[0]).campaign();
        return [];
      case 'propose':
        return [describeProposeResult(this.live(args[0]).propose(new TextEncoder().encode(args[1] ?? '')))];
      case 'confchange':
        return this.confChange(args);
      case 'transfer':
        return [this.live(args[0]).transferLeadership(this.nodeId(args[1])).kind];
      case 'read':
        return [this.live(args[0]).readIndex(Number(args[1])).kind];
      case 'deliver':
        return this.deliver(args);
      case 'stabilize':
        return this.stabilize();
      case 'drop':
        return this.drop(args);
      case 'partition':
        return this.partition(args);
      case 'heal':
        this.cutLinks.clear();
        return [];
      case 'stall':
        this.node(args[0]).stalled = true;
        return [];
      case 'resume':
        this.node(args[0]).stalled = false;
        return [];
      case 'crash':
        return this.crash(args);
      case 'restart':
        return this.restart(args);
      case 'compact':
        return this.compact(args);
      case 'status':
        return [this.status(args)];
      case 'log':
        return this.log(args);
      case 'progress':
        return this.progress(args);
      case 'conf': {
        const raft = this.live(args[0]).raft;
        return [`latest ${describeConfState(raft.confState)}`, `committed ${describeConfState(raft.committedConfState())}`];
      }
      default:
        throw new Error(`unknown command "${name}"`);
    }
  }

  // --- set-up ---------------------------------------------------------------------------------

  private cluster(args: string[]): string[] {
    const fields = new Map(args.map((arg) => arg.split('=') as [string, string]));
    const ids = (key: string): NodeId[] => (fields.get(key) ?? '').split(',').filter((id) => id !== '').map(Number);
    const flag = (key: string, fallback: boolean): boolean => (fields.has(key) ? fields.get(key) === 'true' : fallback);
    const number = (key: string, fallback: number): number => (fields.has(key) ? Number(fields.get(key)) : fallback);
    this.options = {
      electionTicks: number('election', 10),
      heartbeatTicks: number('heartbeat', 5),
      preVote: flag('prevote', true),
      checkQuorum: flag('checkquorum', true),
      inflightMessagesMax: number('inflight', 256),
      appendBytesMax: number('appendbytes', 1024 * 1024),
    };
    const confState: ConfState = { voters: ids('voters'), learners: ids('learners') };
    const bootstrap: Snapshot = { metadata: { index: 1, term: 1, confState }, data: new Uint8Array(0) };
    for (const id of [...confState.voters, ...confState.learners]) {
      this.addNode(id, new MemoryStorage({ snapshot: bootstrap, hardState: { term: 1, vote: 0, commit: 1 } }));
    }
    for (const id of ids('spares')) this.addNode(id, new MemoryStorage());
    return [];
  }

  private addNode(id: NodeId, storage: MemoryStorage): void {
    const node: TranscriptNode = { id, storage, raw: undefined, stalled: false };
    this.nodes.set(id, node);
    this.start(node);
  }

  private start(node: TranscriptNode): void {
    const logger: RaftLogger = {
      debug() {},
      info() {},
      warn: (_details, message) => this.events.warnings.push(`${node.id}: warn ${message}`),
    };
    node.raw = new RawNode({
      id: node.id,
      group: transcriptGroup,
      storage: node.storage,
      random: () => 0, // every randomized election timeout is exactly electionTicks
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      applied: node.storage.snapshot().metadata.index,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      limits: { inflightMessagesMax: this.options.inflightMessagesMax, appendBytesMax: this.options.appendBytesMax },
      logger,
    });
    node.stalled = false;
  }

  private node(arg: string | undefined): TranscriptNode {
    const node = this.nodes.get(this.nodeId(arg));
    if (node === undefined) throw new Error(`no node ${arg}`);
    return node;
  }

  private nodeId(arg: string | undefined): NodeId {
    const id = Number(arg);
    if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`bad node id "${arg}"`);
    return id;
  }

  private live(arg: string | undefined): RawNode {
    const raw = this.node(arg).raw;
    if (raw === undefined) throw new Error(`node ${arg} is crashed`);
    return raw;
  }

  private sortedNodes(): TranscriptNode[] {
    return [...this.nodes.values()].sort((a, b) => a.id - b.id);
  }

  // --- the Ready loop -------------------------------------------------------------------------

  /** settle works off every live, unstalled node's Readies: persist, send, apply, advance. */
  private settle(): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (const node of this.sortedNodes()) {
        const raw = node.raw;
        if (raw === undefined || node.stalled) continue;
        while (raw.hasReady()) {
          progress = true;
          const ready = raw.ready();
          if (ready.snapshot !== undefined) node.storage.applySnapshot(ready.snapshot);
          node.storage.append(ready.entries);
          if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
          for (const message of ready.messages) this.send(message);
          for (const read of ready.readStates) this.events.readStates.push(`${node.id}: readState id=${read.requestId} index=${read.index}`);
          raw.advance(ready);
        }
      }
    }
  }

  private send(message: Message): void {
    this.events.sent.push(message);
    this.pending.push(message);
  }

  private deliverable(message: Message): boolean {
    return !this.cutLinks.has(linkKey(message.from, message.to)) && this.nodes.get(message.to)?.raw !== undefined;
  }

  // --- commands -------------------------------------------------------------------------------

  private tick(args: string[]): string[] {
    const count = Number(args[0]);
    if (!Number.isSafeInteger(count) || count < 1) throw new Error(`bad tick count "${args[0]}"`);
    const targets = args.length > 1 ? args.slice(1).map((arg) => this.node(arg)) : this.sortedNodes();
    for (let i = 0; i < count; i++) {
      for (const node of targets) node.raw?.tick();
      this.settle();
    }
    return [];
  }

  private confChange(args: string[]): string[] {
    const type = args[1] as ConfChangeType;
    if (!confChangeTypes.includes(type)) throw new Error(`bad conf change type "${args[1]}"`);
    return [describeProposeResult(this.live(args[0]).proposeConfChange({ type, nodeId: this.nodeId(args[2]) }))];
  }

  private matcher(args: string[]): (message: Message) => boolean {
    const pairs = args.map((arg) => {
      const [from, to] = arg.split('->');
      if (from === undefined || to === undefined) throw new Error(`bad link "${arg}", expected from->to`);
      return { from, to };
    });
    const fits = (pattern: string, id: NodeId): boolean => pattern === '*' || Number(pattern) === id;
    return (message) => pairs.length === 0 || pairs.some((pair) => fits(pair.from, message.from) && fits(pair.to, message.to));
  }

  private deliver(args: string[]): string[] {
    const matches = this.matcher(args);
    const chosen = this.pending.filter(matches);
    this.pending = this.pending.filter((message) => !matches(message));
    for (const message of chosen) {
      if (!this.deliverable(message)) {
        this.events.dropped.push(`dropped ${describeMessage(message)}`);
        continue;
      }
      this.nodes.get(message.to)!.raw!.step(message);
    }
    return [];
  }

  private stabilize(): string[] {
    const lines = this.flush();
    for (let round = 0; this.pending.length > 0; round++) {
      if (round >= 100) throw new Error('stabilize: the network did not become quiet in 100 rounds');
      this.deliver([]);
      this.settle();
      lines.push(...this.flush());
    }
    return lines;
  }

  private drop(args: string[]): string[] {
    if (args.length === 0) throw new Error('drop needs from->to');
    const matches = this.matcher(args);
    for (const message of this.pending.filter(matches)) this.events.dropped.push(`dropped ${describeMessage(message)}`);
    this.pending = this.pending.filter((message) => !matches(message));
    return [];
  }

  private partition(args: string[]): string[] {
    const groups = args.join(' ').split('|').map((group) => group.trim().split(/[\s,]+/).filter((id) => id !== '').map(Number));
    this.cutLinks.clear();
    for (const [i, group] of groups.entries()) {
      for (const other of groups.slice(i + 1)) {
        for (const a of group) for (const b of other) this.cutLinks.add(linkKey(a, b));
      }
    }
    return [];
  }

  private crash(args: string[]): string[] {
    const node = this.node(args[0]);
    const raw = node.raw;
    if (raw === undefined) throw new Error(`node ${node.id} is already crashed`);
    const durable = node.storage.hardState();
    const unsent = raw.raft.messages.length;
    const lines = [
      `${node.id}: durable term=${durable.term} vote=${durable.vote} commit=${durable.commit} lastIndex=${node.storage.lastIndex()}`,
      `${node.id}: lost term=${raw.raft.term} vote=${raw.raft.vote} commit=${raw.raft.log.committed} lastIndex=${raw.raft.log.lastIndex()} unsentMessages=${unsent}`,
    ];
    node.raw = undefined;
    node.stalled = false;
    return lines;
  }

  private restart(args: string[]): string[] {
    const node = this.node(args[0]);
    if (node.raw !== undefined) throw new Error(`node ${node.id} is running`);
    this.start(node);
    return [];
  }

  private compact(args: string[]): string[] {
    const node = this.node(args[0]);
    const raft = this.live(args[0]).raft;
    if (raft.log.applied !== raft.log.committed || raft.pendingConfChanges() > 0) {
      throw new Error('compact needs applied == commit and no membership change above it');
    }
    const snapshot = node.storage.createSnapshot(raft.log.applied, raft.committedConfState(), new Uint8Array(0));
    return [`${node.id}: snapshot index=${snapshot.metadata.index} term=${snapshot.metadata.term} ${describeConfState(snapshot.metadata.confState)}`];
  }

  private status(args: string[]): string {
    const status = this.live(args[0]).status();
    return `term=${status.term} vote=${status.vote} role=${status.role} leader=${status.leader} commit=${status.commit} applied=${status.applied} lastIndex=${status.lastIndex}`;
  }

  private log(args: string[]): string[] {
    const log = this.live(args[0]).raft.log;
    const snapshot = log.snapshot().metadata;
    const head = `snapshot ${snapshot.index}@${snapshot.term} ${describeConfState(snapshot.confState)}`;
    const entries = log.slice(log.firstIndex(), log.lastIndex() + 1, Infinity);
    return [head, ...entries.map(describeEntry)];
  }

  private progress(args: string[]): string[] {
    const status = this.live(args[0]).status();
    if (status.role !== 'leader') return [`not leader (${status.role})`];
    return [...status.progress]
      .sort((a, b) => a.id - b.id)
      .map((p) => `${p.id}: match=${p.match} next=${p.next} state=${p.state}${p.isLearner ? ' learner' : ''}${p.recentActive ? ' active' : ''}`);
  }

  /** stateLines prints each live node's role, term, vote, leader and commit, keyed by id. */
  private stateLines(): Map<NodeId, string> {
    const lines = new Map<NodeId, string>();
    for (const node of this.sortedNodes()) {
      const raft = node.raw?.raft;
      if (raft === undefined) continue;
      lines.set(node.id, `${node.id}: ${raft.role} term=${raft.term} vote=${raft.vote} leader=${raft.leader} commit=${raft.log.committed}`);
    }
    return lines;
  }
}
