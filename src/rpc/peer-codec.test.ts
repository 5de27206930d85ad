import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryTypes, messageTypes, type Entry, type Message, type MessageType, type Snapshot } from '../raft/types.js';
import {
  batchEntryBytes,
  batchFrameBytes,
  decodeBatch,
  decodeFrame,
  decodeMessage,
  encodeBatch,
  encodeBatchFrame,
  encodeFrame,
  encodeMessage,
  PeerProtocolError,
  type PeerFrame,
} from './peer-codec.js';
import { protoType } from './proto.js';

const uint = fc.maxSafeNat();
const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });

const entry: fc.Arbitrary<Entry> = fc.record({
  index: positive,
  term: positive,
  type: fc.constantFrom(...entryTypes),
  data: bytes,
});

const snapshot: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({
    index: uint,
    term: uint,
    confState: fc.record({ voters: fc.array(positive, { maxLength: 5 }), learners: fc.array(positive, { maxLength: 5 }) }),
  }),
  data: fc.uint8Array({ maxLength: 256 }),
});

const base = { group: uint, from: positive, to: positive, term: uint };

/** messageArbitraries holds one arbitrary per Message variant; the type makes it exhaustive. */
const messageArbitraries: { [T in MessageType]: fc.Arbitrary<Extract<Message, { type: T }>> } = {
  appendEntries: fc.record({
    ...base,
    type: fc.constant('appendEntries'),
    prevIndex: uint,
    prevTerm: uint,
    entries: fc.array(entry, { maxLength: 4 }),
    commit: uint,
  }),
  appendEntriesResponse: fc.record({
    ...base,
    type: fc.constant('appendEntriesResponse'),
    reject: fc.boolean(),
    index: uint,
    hintIndex: uint,
    hintTerm: uint,
  }),
  requestVote: fc.record({
    ...base,
    type: fc.constant('requestVote'),
    preVote: fc.boolean(),
    transfer: fc.boolean(),
    lastIndex: uint,
    lastTerm: uint,
  }),
  requestVoteResponse: fc.record({ ...base, type: fc.constant('requestVoteResponse'), preVote: fc.boolean(), granted: fc.boolean() }),
  heartbeat: fc.record({ ...base, type: fc.constant('heartbeat'), commit: uint, context: uint }),
  heartbeatResponse: fc.record({ ...base, type: fc.constant('heartbeatResponse'), context: uint }),
  installSnapshot: fc.record({ ...base, type: fc.constant('installSnapshot'), snapshot }),
  timeoutNow: fc.record({ ...base, type: fc.constant('timeoutNow') }),
  readIndexRequest: fc.record({ ...base, type: fc.constant('readIndexRequest'), requestId: uint }),
  readIndexResponse: fc.record({
    ...base,
    type: fc.constant('readIndexResponse'),
    requestId: uint,
    index: uint,
    rejected: fc.boolean(),
  }),
  transferLeaderRequest: fc.record({ ...base, type: fc.constant('transferLeaderRequest'), target: positive }),
};

/** messageArbitrary is any Raft message of any variant. */
const messageArbitrary: fc.Arbitrary<Message> = fc.oneof(...messageTypes.map((type) => messageArbitraries[type]));

const wireMessage = protoType('raftbus.peer.v1.Message');

function expectProtocolError(decode: () => unknown, reason: PeerProtocolError['reason']): void {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(PeerProtocolError);
    expect((error as PeerProtocolError).reason).toBe(reason);
    return;
  }
  expect.fail('decoding did not throw');
}

describe('peer codec', () => {
  it('round-trips a batch of messages of every variant exactly', () => {
    fc.assert(
      fc.property(fc.array(messageArbitrary, { maxLength: 20 }), (messages) => {
        expect(decodeBatch(encodeBatch(messages))).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips each variant as a single message', () => {
    for (const type of messageTypes) {
      fc.assert(
        fc.property(messageArbitraries[type], (message) => {
          expect(decodeMessage(encodeMessage(message))).toEqual(message);
        }),
        { numRuns: 50 },
      );
    }
  });

  it('keeps zero values apart from missing ones', () => {
    const message: Message = { type: 'heartbeat', group: 0, from: 1, to: 2, term: 0, commit: 0, context: 0 };
    expect(decodeMessage(encodeMessage(message))).toEqual(message);
  });

  it('round-trips every frame kind', () => {
    const header: Message = {
      type: 'installSnapshot',
      group: 7,
      from: 1,
      to: 2,
      term: 3,
      snapshot: { metadata: { index: 9, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data: new Uint8Array(0) },
    };
    const frames: PeerFrame[] = [
      { kind: 'hello', clusterId: 'c1', from: 1, to: 2, protocolVersion: 1, directoryId: '0123456789abcdef0123456789abcdef' },
      { kind: 'helloAck', nodeId: 2 },
      { kind: 'batch', messages: [{ type: 'timeoutNow', group: 1, from: 1, to: 2, term: 5 }] },
      { kind: 'snapshotChunk', snapshotId: 1, offset: 0, totalBytes: 3, data: new Uint8Array([1, 2, 3]), header },
      { kind: 'snapshotChunk', snapshotId: 1, offset: 3, totalBytes: 6, data: new Uint8Array([4]), header: undefined },
      { kind: 'snapshotAck', snapshotId: 1 },
    ];
    for (const frame of frames) expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
  });

  it('builds batch frames from encoded messages with the size it predicts', () => {
    fc.assert(
      fc.property(fc.array(messageArbitrary, { maxLength: 10 }), (messages) => {
        const encoded = messages.map(encodeMessage);
        const frame = encodeBatchFrame(encoded);
        expect(frame.byteLength).toBe(batchFrameBytes(encoded.reduce((sum, m) => sum + batchEntryBytes(m.byteLength), 0)));
        expect(decodeFrame(frame)).toEqual({ kind: 'batch', messages });
      }),
      { numRuns: 100 },
    );
  });

  it('never throws anything but PeerProtocolError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        for (const decode of [decodeBatch, decodeFrame, decodeMessage]) {
          try {
            decode(garbage);
          } catch (error) {
            expect(error).toBeInstanceOf(PeerProtocolError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects truncated and undecodable bytes', () => {
    const bytes = encodeBatch([{ type: 'heartbeat', group: 1, from: 1, to: 2, term: 1, commit: 1, context: 0 }]);
    expectProtocolError(() => decodeBatch(bytes.subarray(0, bytes.byteLength - 1)), 'undecodable');
    expectProtocolError(() => decodeBatch(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), 'undecodable');
  });

  it('rejects a message with a missing field', () => {
    const bytes = wireMessage.encode({ group: 1, from: 1, to: 2, heartbeat: { commit: 1, context: 0 } }).finish();
    expectProtocolError(() => decodeMessage(bytes), 'missingField');
    const noCommit = wireMessage.encode({ group: 1, from: 1, to: 2, term: 1, heartbeat: { context: 0 } }).finish();
    expectProtocolError(() => decodeMessage(noCommit), 'missingField');
    const noSnapshot = wireMessage.encode({ group: 1, from: 1, to: 2, term: 1, installSnapshot: {} }).finish();
    expectProtocolError(() => decodeMessage(noSnapshot), 'missingField');
  });

  it('rejects a message of unknown type: no body, or a body field it does not know', () => {
    const noBody = wireMessage.encode({ group: 1, from: 1, to: 2, term: 1 }).finish();
    expectProtocolError(() => decodeMessage(noBody), 'unknownType');
    const futureBody = new Uint8Array([...noBody, 0xfa, 0x06, 0x00]); // field 111, length 0
    expectProtocolError(() => decodeBatch(wrapInBatch(futureBody)), 'unknownType');
    const badEntry = wireMessage
      .encode({ group: 1, from: 1, to: 2, term: 1, appendEntries: { prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ index: 1, term: 1, type: 9 }] } })
      .finish();
    expectProtocolError(() => decodeMessage(badEntry), 'unknownType');
  });

  it('rejects integers that JavaScript cannot hold exactly, and node 0', () => {
    const unsafe = wireMessage.encode({ group: '9007199254740993', from: 1, to: 2, term: 1, timeoutNow: {} }).finish();
    expectProtocolError(() => decodeMessage(unsafe), 'unsafeInteger');
    const fromNobody = wireMessage.encode({ group: 1, from: 0, to: 2, term: 1, timeoutNow: {} }).finish();
    expectProtocolError(() => decodeMessage(fromNobody), 'invalidValue');
  });

  it('rejects a frame of no known kind', () => {
    expectProtocolError(() => decodeFrame(new Uint8Array(0)), 'unknownType');
  });
});

/** wrapInBatch returns a MessageBatch holding the one encoded message (shorter than 128 bytes). */
function wrapInBatch(message: Uint8Array): Uint8Array {
  return new Uint8Array([0x0a, message.byteLength, ...message]);
}
