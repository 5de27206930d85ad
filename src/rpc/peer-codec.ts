// Raft messages and peer frames <-> the bytes of proto/peer.proto (package raftbus.peer.v1).
// Encoding our own messages asserts their invariants (a bad outgoing message is a bug here);
// decoding a peer's bytes never asserts: anything wrong is a PeerProtocolError.

import protobuf from 'protobufjs';
import { assert } from '../raft/assert.js';
import type { Entry, EntryType, InstallSnapshotMessage, Message, MessageType, NodeId, Snapshot } from '../raft/types.js';
import { protoType } from './proto.js';

export const peerProtocolErrorReasons = [
  'undecodable',
  'missingField',
  'unknownType',
  'unsafeInteger',
  'invalidValue',
] as const;
export type PeerProtocolErrorReason = (typeof peerProtocolErrorReasons)[number];

/** PeerProtocolError is thrown for bytes from a peer that are not a valid frame or message. */
export class PeerProtocolError extends Error {
  override readonly name = 'PeerProtocolError';
  constructor(
    readonly reason: PeerProtocolErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** directoryIdPattern is a data directory id (data-dir.ts, and Hello on the wire): 128 random bits in lowercase hex. */
export const directoryIdPattern = /^[0-9a-f]{32}$/;

/** peerProtocolVersion is the Hello.protocol_version this code speaks. */
export const peerProtocolVersion = 2;

/** PeerFrame is a decoded raftbus.peer.v1.PeerFrame. */
export type PeerFrame =
  | { readonly kind: 'hello'; readonly clusterId: string; readonly from: NodeId; readonly to: NodeId; readonly protocolVersion: number; readonly directoryId: string }
  | { readonly kind: 'helloAck'; readonly nodeId: NodeId }
  | { readonly kind: 'batch'; readonly messages: readonly Message[] }
  | SnapshotChunkFrame
  | { readonly kind: 'snapshotAck'; readonly snapshotId: number };

/**
 * SnapshotChunkFrame is one piece of a snapshot's data. The first chunk (offset 0) carries the
 * installSnapshot message with empty snapshot data as header; later chunks have no header.
 */
export interface SnapshotChunkFrame {
  readonly kind: 'snapshotChunk';
  readonly snapshotId: number;
  readonly offset: number;
  readonly totalBytes: number;
  readonly data: Uint8Array;
  readonly header: InstallSnapshotMessage | undefined;
}

const types = {
  frame: protoType('raftbus.peer.v1.PeerFrame'),
  batch: protoType('raftbus.peer.v1.MessageBatch'),
  message: protoType('raftbus.peer.v1.Message'),
};

// ---------------------------------------------------------------------------------------------
// Field access on decoded protobufjs objects. Presence is an own property: protobufjs decode sets
// only the fields that were on the wire, and the defaults live on the prototype.

type Decoded = Record<string, unknown>;

function has(object: Decoded, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, field) && object[field] !== null && object[field] !== undefined;
}

function missing(path: string): PeerProtocolError {
  return new PeerProtocolError('missingField', `missing field ${path}`);
}

/** readUint returns the unsigned 64-bit field as a safe integer; throws if absent or unsafe. */
function readUint(object: Decoded, field: string, path: string): number {
  if (!has(object, field)) throw missing(`${path}.${field}`);
  return safeInteger(object[field], `${path}.${field}`);
}

function safeInteger(value: unknown, path: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
  } else if (isLong(value)) {
    const high = value.high >>> 0;
    if (high <= 0x1f_ffff) return high * 0x1_0000_0000 + (value.low >>> 0);
  }
  throw new PeerProtocolError('unsafeInteger', `${path} is not an integer below 2^53`);
}

/** isLong says whether the value is a long.js Long, which protobufjs decodes 64-bit fields to. */
function isLong(value: unknown): value is { readonly low: number; readonly high: number } {
  if (typeof value !== 'object' || value === null) return false;
  const { low, high } = value as Record<string, unknown>;
  return typeof low === 'number' && typeof high === 'number';
}

function readBool(object: Decoded, field: string, path: string): boolean {
  if (!has(object, field)) throw missing(`${path}.${field}`);
  return object[field] === true;
}

function readObject(object: Decoded, field: string, path: string): Decoded {
  if (!has(object, field)) throw missing(`${path}.${field}`);
  return object[field] as Decoded;
}

/** readBytes returns the bytes field (empty when absent) as a Uint8Array view, not a copy. */
function readBytes(object: Decoded, field: string): Uint8Array {
  const value = object[field];
  if (!(value instanceof Uint8Array)) return new Uint8Array(0);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function readUintList(object: Decoded, field: string, path: string): number[] {
  const values = has(object, field) ? (object[field] as unknown[]) : [];
  return values.map((value, i) => safeInteger(value, `${path}.${field}[${i}]`));
}

function readNodeId(object: Decoded, field: string, path: string): NodeId {
  const id = readUint(object, field, path);
  if (id === 0) throw new PeerProtocolError('invalidValue', `${path}.${field} must not be 0`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Messages.

function assertUint(value: number, name: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, 'peer codec: not a safe unsigned integer', { name, value });
}

const entryTypeWire = { normal: 1, confChange: 2 } as const satisfies Record<EntryType, number>;

function encodeEntry(entry: Entry): Decoded {
  assert(entry.index >= 1 && entry.term >= 1, 'peer codec: entry index and term must be >= 1', { index: entry.index });
  assertUint(entry.index, 'entry.index');
  assertUint(entry.term, 'entry.term');
  return { index: entry.index, term: entry.term, type: entryTypeWire[entry.type], data: entry.data };
}

function decodeEntry(object: Decoded, path: string): Entry {
  const index = readUint(object, 'index', path);
  const term = readUint(object, 'term', path);
  if (index < 1 || term < 1) throw new PeerProtocolError('invalidValue', `${path} index and term must be >= 1`);
  const wireType = object['type'];
  const type = wireType === entryTypeWire.normal ? 'normal' : wireType === entryTypeWire.confChange ? 'confChange' : undefined;
  if (type === undefined) throw new PeerProtocolError('unknownType', `${path}.type ${String(wireType)} is unknown`);
  return { index, term, type, data: readBytes(object, 'data') };
}

function encodeSnapshot(snapshot: Snapshot): Decoded {
  const { index, term, confState } = snapshot.metadata;
  assertUint(index, 'snapshot.index');
  assertUint(term, 'snapshot.term');
  for (const id of [...confState.voters, ...confState.learners]) assertUint(id, 'confState node');
  return {
    metadata: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } },
    data: snapshot.data,
  };
}

function decodeSnapshot(object: Decoded, path: string): Snapshot {
  const metadata = readObject(object, 'metadata', path);
  const confState = readObject(metadata, 'confState', `${path}.metadata`);
  return {
    metadata: {
      index: readUint(metadata, 'index', `${path}.metadata`),
      term: readUint(metadata, 'term', `${path}.metadata`),
      confState: {
        voters: readUintList(confState, 'voters', `${path}.metadata.confState`),
        learners: readUintList(confState, 'learners', `${path}.metadata.confState`),
      },
    },
    data: readBytes(object, 'data'),
  };
}

type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
type Base = Pick<Message, 'group' | 'from' | 'to' | 'term'>;

/** BodyCodec maps one Message variant to the fields of its proto body and back. */
interface BodyCodec<T extends MessageType> {
  readonly field: string;
  readonly uints: readonly (keyof MessageOf<T> & string)[];
  encode(message: MessageOf<T>): Decoded;
  decode(body: Decoded, base: Base, path: string): MessageOf<T>;
}

/**
 * withBase starts a decoded message. The fields are written out rather than spread: V8 builds an
 * object literal that spreads and then adds fields on a slow path (a few microseconds a message).
 */
function withBase(type: MessageType, base: Base): Decoded {
  return { type, group: base.group, from: base.from, to: base.to, term: base.term };
}

/** flatBody returns the codec of a variant whose own fields are unsigned integers and booleans. */
function flatBody<T extends MessageType>(
  type: T,
  field: string,
  uints: readonly (keyof MessageOf<T> & string)[],
  bools: readonly (keyof MessageOf<T> & string)[],
): BodyCodec<T> {
  return {
    field,
    uints,
    encode: (message) => {
      const body: Decoded = {};
      for (const name of [...uints, ...bools]) body[name] = message[name];
      return body;
    },
    decode: (body, base, path) => {
      const fields: Decoded = withBase(type, base);
      for (const name of uints) fields[name] = readUint(body, name, path);
      for (const name of bools) fields[name] = readBool(body, name, path);
      return fields as unknown as MessageOf<T>;
    },
  };
}

const appendEntriesCodec: BodyCodec<'appendEntries'> = {
  field: 'appendEntries',
  uints: ['prevIndex', 'prevTerm', 'commit'],
  encode: (m) => ({ prevIndex: m.prevIndex, prevTerm: m.prevTerm, commit: m.commit, entries: m.entries.map(encodeEntry) }),
  decode: (body, base, path) => ({
    type: 'appendEntries',
    group: base.group,
    from: base.from,
    to: base.to,
    term: base.term,
    prevIndex: readUint(body, 'prevIndex', path),
    prevTerm: readUint(body, 'prevTerm', path),
    commit: readUint(body, 'commit', path),
    entries: has(body, 'entries') ? (body['entries'] as Decoded[]).map((e, i) => decodeEntry(e, `${path}.entries[${i}]`)) : [],
  }),
};

const installSnapshotCodec: BodyCodec<'installSnapshot'> = {
  field: 'installSnapshot',
  uints: [],
  encode: (m) => ({ snapshot: encodeSnapshot(m.snapshot) }),
  decode: (body, base, path) => ({
    type: 'installSnapshot',
    group: base.group,
    from: base.from,
    to: base.to,
    term: base.term,
    snapshot: decodeSnapshot(readObject(body, 'snapshot', path), `${path}.snapshot`),
  }),
};

const bodyCodecs: { readonly [T in MessageType]: BodyCodec<T> } = {
  appendEntries: appendEntriesCodec,
  appendEntriesResponse: flatBody('appendEntriesResponse', 'appendEntriesResponse', ['index', 'hintIndex', 'hintTerm'], ['reject']),
  requestVote: flatBody('requestVote', 'requestVote', ['lastIndex', 'lastTerm'], ['preVote', 'transfer']),
  requestVoteResponse: flatBody('requestVoteResponse', 'requestVoteResponse', [], ['preVote', 'granted']),
  heartbeat: flatBody('heartbeat', 'heartbeat', ['commit', 'context'], []),
  heartbeatResponse: flatBody('heartbeatResponse', 'heartbeatResponse', ['context'], []),
  installSnapshot: installSnapshotCodec,
  timeoutNow: flatBody('timeoutNow', 'timeoutNow', [], []),
  readIndexRequest: flatBody('readIndexRequest', 'readIndexRequest', ['requestId'], []),
  readIndexResponse: flatBody('readIndexResponse', 'readIndexResponse', ['requestId', 'index'], ['rejected']),
  transferLeaderRequest: flatBody('transferLeaderRequest', 'transferLeaderRequest', ['target'], []),
};

const bodyTypeByField = new Map<string, MessageType>(
  Object.entries(bodyCodecs).map(([type, codec]) => [codec.field, type as MessageType]),
);

/** toWireMessage returns the proto object of a Raft message; asserts its integers are safe. */
function toWireMessage(message: Message): Decoded {
  const codec = bodyCodecs[message.type] as BodyCodec<MessageType>;
  assert(codec !== undefined, 'peer codec: unknown message type', { type: message.type });
  for (const name of ['group', 'from', 'to', 'term'] as const) assertUint(message[name], name);
  for (const name of codec.uints) assertUint((message as unknown as Record<string, number>)[name] as number, name);
  const { group, from, to, term } = message;
  return { group, from, to, term, [codec.field]: codec.encode(message) };
}

/** fromWireMessage returns the Raft message of a decoded proto Message; throws PeerProtocolError. */
function fromWireMessage(object: Decoded, path: string): Message {
  const base: Base = {
    group: readUint(object, 'group', path),
    from: readNodeId(object, 'from', path),
    to: readNodeId(object, 'to', path),
    term: readUint(object, 'term', path),
  };
  const field = object['body'];
  const type = typeof field === 'string' ? bodyTypeByField.get(field) : undefined;
  if (type === undefined) throw new PeerProtocolError('unknownType', `${path} has no known body`);
  const codec = bodyCodecs[type] as BodyCodec<MessageType>;
  return codec.decode(readObject(object, codec.field, path), base, `${path}.${codec.field}`);
}

function decodeWith<T>(type: protobuf.Type, bytes: Uint8Array, what: string, convert: (object: Decoded) => T): T {
  let decoded: Decoded;
  try {
    decoded = type.decode(bytes) as unknown as Decoded;
  } catch (error) {
    throw new PeerProtocolError('undecodable', `${what} is not decodable: ${(error as Error).message}`, { cause: error });
  }
  return convert(decoded);
}

/** encodeMessage returns the bytes of one raftbus.peer.v1.Message. Asserts the message is valid. */
export function encodeMessage(message: Message): Uint8Array {
  return types.message.encode(toWireMessage(message)).finish();
}

/** decodeMessage returns the Raft message of the bytes; throws PeerProtocolError if invalid. */
export function decodeMessage(bytes: Uint8Array): Message {
  return decodeWith(types.message, bytes, 'Message', (object) => fromWireMessage(object, 'message'));
}

/** encodeBatch returns the bytes of a MessageBatch holding the messages, in order. */
export function encodeBatch(messages: readonly Message[]): Uint8Array {
  return types.batch.encode({ messages: messages.map(toWireMessage) }).finish();
}

/** decodeBatch returns the messages of MessageBatch bytes, in order; throws PeerProtocolError. */
export function decodeBatch(bytes: Uint8Array): Message[] {
  return decodeWith(types.batch, bytes, 'MessageBatch', decodeBatchObject);
}

function decodeBatchObject(object: Decoded): Message[] {
  const messages = has(object, 'messages') ? (object['messages'] as Decoded[]) : [];
  return messages.map((message, i) => fromWireMessage(message, `batch.messages[${i}]`));
}

// ---------------------------------------------------------------------------------------------
// Frames.

/** encodeFrame returns the bytes of a PeerFrame. Asserts the frame is valid. */
export function encodeFrame(frame: PeerFrame): Uint8Array {
  return types.frame.encode(toWireFrame(frame)).finish();
}

function toWireFrame(frame: PeerFrame): Decoded {
  switch (frame.kind) {
    case 'hello':
      return { hello: { clusterId: frame.clusterId, from: frame.from, to: frame.to, protocolVersion: frame.protocolVersion, directoryId: frame.directoryId } };
    case 'helloAck':
      return { helloAck: { nodeId: frame.nodeId } };
    case 'batch':
      return { batch: { messages: frame.messages.map(toWireMessage) } };
    case 'snapshotChunk': {
      const { snapshotId, offset, totalBytes, data, header } = frame;
      assert(header === undefined || header.snapshot.data.byteLength === 0, 'peer codec: chunk header carries data');
      const wireHeader = header === undefined ? undefined : toWireMessage(header);
      return { snapshotChunk: { snapshotId, offset, totalBytes, data, header: wireHeader } };
    }
    case 'snapshotAck':
      return { snapshotAck: { snapshotId: frame.snapshotId } };
  }
}

/** decodeFrame returns the PeerFrame of the bytes; throws PeerProtocolError if invalid. */
export function decodeFrame(bytes: Uint8Array): PeerFrame {
  return decodeWith(types.frame, bytes, 'PeerFrame', fromWireFrame);
}

function fromWireFrame(object: Decoded): PeerFrame {
  const kind = object['kind'];
  switch (kind) {
    case 'hello': {
      const hello = object['hello'] as Decoded;
      const clusterId = typeof hello['clusterId'] === 'string' ? hello['clusterId'] : '';
      const from = readUint(hello, 'from', 'hello');
      const to = readUint(hello, 'to', 'hello');
      const directoryId = typeof hello['directoryId'] === 'string' ? hello['directoryId'] : '';
      return { kind, clusterId, from, to, protocolVersion: readUint(hello, 'protocolVersion', 'hello'), directoryId };
    }
    case 'helloAck':
      return { kind, nodeId: readUint(object['helloAck'] as Decoded, 'nodeId', 'helloAck') };
    case 'batch':
      return { kind, messages: decodeBatchObject(object['batch'] as Decoded) };
    case 'snapshotChunk':
      return fromWireChunk(object['snapshotChunk'] as Decoded);
    case 'snapshotAck':
      return { kind, snapshotId: readUint(object['snapshotAck'] as Decoded, 'snapshotId', 'snapshotAck') };
    default:
      throw new PeerProtocolError('unknownType', 'PeerFrame has no known kind');
  }
}

function fromWireChunk(chunk: Decoded): SnapshotChunkFrame {
  const path = 'snapshotChunk';
  let header: InstallSnapshotMessage | undefined;
  if (has(chunk, 'header')) {
    const message = fromWireMessage(chunk['header'] as Decoded, `${path}.header`);
    if (message.type !== 'installSnapshot') throw new PeerProtocolError('invalidValue', `${path}.header is ${message.type}`);
    header = message;
  }
  return {
    kind: 'snapshotChunk',
    snapshotId: readUint(chunk, 'snapshotId', path),
    offset: readUint(chunk, 'offset', path),
    totalBytes: readUint(chunk, 'totalBytes', path),
    data: readBytes(chunk, 'data'),
    header,
  };
}

// ---------------------------------------------------------------------------------------------
// Batch frames of messages encoded one by one (the sender encodes each message when it is queued,
// so that it knows its size, and writes a frame of many without encoding them again).

const lengthDelimitedWireType = 2;
const frameBatchTag = (types.frame.fields['batch']!.id << 3) | lengthDelimitedWireType;
const batchMessagesTag = (types.batch.fields['messages']!.id << 3) | lengthDelimitedWireType;

function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) bytes++;
  return bytes;
}

/** batchEntryBytes returns how many bytes an encoded message of messageBytes adds to a batch. */
export function batchEntryBytes(messageBytes: number): number {
  return varintBytes(batchMessagesTag) + varintBytes(messageBytes) + messageBytes;
}

/** batchFrameBytes returns the size of a batch PeerFrame whose entries add up to entriesBytes. */
export function batchFrameBytes(entriesBytes: number): number {
  return varintBytes(frameBatchTag) + varintBytes(entriesBytes) + entriesBytes;
}

/**
 * encodeBatchFrame returns the bytes of a batch PeerFrame of messages already encoded with
 * encodeMessage. Invariant: its length is batchFrameBytes(sum of batchEntryBytes).
 */
export function encodeBatchFrame(encodedMessages: readonly Uint8Array[]): Uint8Array {
  const writer = protobuf.Writer.create();
  writer.uint32(frameBatchTag).fork();
  let entriesBytes = 0;
  for (const message of encodedMessages) {
    writer.uint32(batchMessagesTag).bytes(message);
    entriesBytes += batchEntryBytes(message.byteLength);
  }
  const bytes = writer.ldelim().finish();
  assert(bytes.byteLength === batchFrameBytes(entriesBytes), 'peer codec: batch frame size mismatch', {
    actual: bytes.byteLength,
    entriesBytes,
  });
  return bytes;
}
