// Snapshots on the peer stream: the sender cuts an installSnapshot message into chunks of bounded
// size; the receiver puts them back together in a buffer of bounded size.

import { assert } from '../raft/assert.js';
import type { InstallSnapshotMessage } from '../raft/types.js';
import { PeerProtocolError, type SnapshotChunkFrame } from './peer-codec.js';

/**
 * snapshotChunkAt returns the chunk of the message's snapshot data that starts at offset, at most
 * chunkBytesMax long. The chunk at offset 0 carries the message (without its data) as header.
 * Invariant: 0 <= offset < data length, or offset == 0 for empty data.
 */
export function snapshotChunkAt(options: {
  readonly snapshotId: number;
  readonly message: InstallSnapshotMessage;
  readonly offset: number;
  readonly chunkBytesMax: number;
}): SnapshotChunkFrame {
  const { snapshotId, message, offset, chunkBytesMax } = options;
  const data = message.snapshot.data;
  assert(offset === 0 || offset < data.byteLength, 'snapshot chunk: offset past the data', { offset });
  const header: InstallSnapshotMessage | undefined =
    offset === 0 ? { ...message, snapshot: { ...message.snapshot, data: new Uint8Array(0) } } : undefined;
  return {
    kind: 'snapshotChunk',
    snapshotId,
    offset,
    totalBytes: data.byteLength,
    data: data.subarray(offset, Math.min(data.byteLength, offset + chunkBytesMax)),
    header,
  };
}

/** ReassemblyLimits bound what a SnapshotReassembler accepts. */
export interface ReassemblyLimits {
  readonly snapshotBytesMax: number;
  readonly snapshotChunkBytesMax: number;
}

interface Assembly {
  readonly snapshotId: number;
  readonly header: InstallSnapshotMessage;
  readonly data: Uint8Array;
  received: number;
}

/**
 * SnapshotReassembler rebuilds the snapshots of one inbound stream, one at a time.
 * accept throws PeerProtocolError for a chunk out of order (a new snapshot before the last is
 * whole, a gap, a wrong id), or too large (a chunk over snapshotChunkBytesMax, a snapshot over
 * snapshotBytesMax); the stream is then beyond repair and must be closed.
 * Invariant: at most one snapshot in progress, holding at most snapshotBytesMax bytes.
 */
export class SnapshotReassembler {
  #assembly: Assembly | undefined;

  constructor(private readonly limits: ReassemblyLimits) {}

  /** bytesHeld returns the size of the buffer of the snapshot in progress (0 if none). */
  get bytesHeld(): number {
    return this.#assembly?.data.byteLength ?? 0;
  }

  /** accept takes the next chunk and returns the whole message once its last chunk is in. */
  accept(chunk: SnapshotChunkFrame): InstallSnapshotMessage | undefined {
    if (chunk.data.byteLength > this.limits.snapshotChunkBytesMax) {
      throw new PeerProtocolError('invalidValue', `snapshot chunk of ${chunk.data.byteLength} bytes is over the limit`);
    }
    const assembly = chunk.header === undefined ? this.#continue(chunk) : this.#start(chunk, chunk.header);
    if (assembly.received + chunk.data.byteLength > assembly.data.byteLength) {
      throw new PeerProtocolError('invalidValue', `snapshot ${chunk.snapshotId} chunk runs past its total size`);
    }
    assembly.data.set(chunk.data, assembly.received);
    assembly.received += chunk.data.byteLength;
    if (assembly.received < assembly.data.byteLength) return undefined;
    this.#assembly = undefined;
    return { ...assembly.header, snapshot: { ...assembly.header.snapshot, data: assembly.data } };
  }

  #start(chunk: SnapshotChunkFrame, header: InstallSnapshotMessage): Assembly {
    if (this.#assembly !== undefined) {
      throw new PeerProtocolError('invalidValue', `snapshot ${chunk.snapshotId} started before snapshot ${this.#assembly.snapshotId} was whole`);
    }
    if (chunk.offset !== 0) throw new PeerProtocolError('invalidValue', `snapshot ${chunk.snapshotId} header at offset ${chunk.offset}`);
    if (chunk.totalBytes > this.limits.snapshotBytesMax) {
      throw new PeerProtocolError('invalidValue', `snapshot of ${chunk.totalBytes} bytes is over the limit`);
    }
    if (header.snapshot.data.byteLength !== 0) throw new PeerProtocolError('invalidValue', 'snapshot header carries data');
    if (chunk.totalBytes > 0 && chunk.data.byteLength === 0) throw new PeerProtocolError('invalidValue', 'empty snapshot chunk');
    this.#assembly = { snapshotId: chunk.snapshotId, header, data: new Uint8Array(chunk.totalBytes), received: 0 };
    return this.#assembly;
  }

  #continue(chunk: SnapshotChunkFrame): Assembly {
    const assembly = this.#assembly;
    if (assembly === undefined) throw new PeerProtocolError('invalidValue', `snapshot ${chunk.snapshotId} chunk without a header`);
    if (chunk.snapshotId !== assembly.snapshotId || chunk.offset !== assembly.received || chunk.totalBytes !== assembly.data.byteLength) {
      throw new PeerProtocolError('invalidValue', `snapshot ${chunk.snapshotId} chunk at ${chunk.offset} is out of order`);
    }
    if (chunk.data.byteLength === 0) throw new PeerProtocolError('invalidValue', 'empty snapshot chunk');
    return assembly;
  }
}
