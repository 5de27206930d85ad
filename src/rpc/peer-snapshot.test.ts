import { describe, expect, it } from 'vitest';
import type { InstallSnapshotMessage } from '../raft/types.js';
import { PeerProtocolError, type SnapshotChunkFrame } from './peer-codec.js';
import { snapshotChunkAt, SnapshotReassembler } from './peer-snapshot.js';

function snapshotMessage(dataBytes: number): InstallSnapshotMessage {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (i * 31 + 7) % 251;
  return {
    type: 'installSnapshot',
    group: 3,
    from: 1,
    to: 2,
    term: 4,
    snapshot: { metadata: { index: 100, term: 4, confState: { voters: [1, 2, 3], learners: [] } }, data },
  };
}

function chunksOf(message: InstallSnapshotMessage, chunkBytesMax: number): SnapshotChunkFrame[] {
  const chunks: SnapshotChunkFrame[] = [];
  let offset = 0;
  do {
    const chunk = snapshotChunkAt({ snapshotId: 1, message, offset, chunkBytesMax });
    chunks.push(chunk);
    offset += chunk.data.byteLength;
  } while (offset < message.snapshot.data.byteLength);
  return chunks;
}

const limits = { snapshotBytesMax: 1000, snapshotChunkBytesMax: 100 };

describe('snapshot chunks', () => {
  it('reassemble into the message sent, for sizes around the chunk size', () => {
    for (const size of [0, 1, 99, 100, 101, 250, 1000]) {
      const message = snapshotMessage(size);
      const reassembler = new SnapshotReassembler(limits);
      const chunks = chunksOf(message, 100);
      expect(chunks.length).toBe(Math.max(1, Math.ceil(size / 100)));
      const results = chunks.map((chunk) => reassembler.accept(chunk));
      expect(results.slice(0, -1).every((result) => result === undefined)).toBe(true);
      expect(results.at(-1)).toEqual(message);
      expect(reassembler.bytesHeld).toBe(0);
    }
  });

  it('reject chunks out of order: a gap, a repeat, a second header, no header', () => {
    const chunks = chunksOf(snapshotMessage(300), 100);
    const [first, second, third] = chunks as [SnapshotChunkFrame, SnapshotChunkFrame, SnapshotChunkFrame];
    const cases: SnapshotChunkFrame[][] = [[first, third], [first, second, second], [first, first], [second]];
    for (const sequence of cases) {
      const reassembler = new SnapshotReassembler(limits);
      const last = sequence.pop()!;
      for (const chunk of sequence) reassembler.accept(chunk);
      expect(() => reassembler.accept(last)).toThrow(PeerProtocolError);
    }
  });

  it('reject a snapshot over the size bound and a chunk over the chunk bound', () => {
    expect(() => new SnapshotReassembler(limits).accept(chunksOf(snapshotMessage(1001), 100)[0]!)).toThrow(/over the limit/);
    expect(() => new SnapshotReassembler(limits).accept(chunksOf(snapshotMessage(300), 101)[0]!)).toThrow(/over the limit/);
    const lying = { ...chunksOf(snapshotMessage(300), 100)[0]!, totalBytes: 50 };
    expect(() => new SnapshotReassembler(limits).accept(lying)).toThrow(/past its total size/);
  });
});
