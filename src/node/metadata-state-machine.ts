// MetadataStateMachine applies the metadata log (Raft group 0) on every node: each entry is a
// batch of records replayed into the next MetadataImage. It also keeps a running CRC32C digest
// of every applied entry, so that nodes can be compared (equal digests at equal offsets: equal
// histories). Snapshots are the image written out as records, plus the digest.
import { crc32c } from '@node-rs/crc32';
import { MetadataDelta } from '../metadata/delta.js';
import { MetadataImage } from '../metadata/image.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { decodeMetadataSnapshot, decodeRecordBatch, encodeMetadataSnapshot } from '../rpc/metadata-codec.js';
import type { StateMachine } from './raft-host.js';

export type ImageListener = (image: MetadataImage) => void;

export class MetadataStateMachine implements StateMachine {
  image: MetadataImage = MetadataImage.empty;
  digest = 0;
  appliedIndex = 0;
  /** appliedTerm is the term of the last applied entry: equal to the current term once a new leader caught up. */
  appliedTerm = 0;
  private readonly listeners = new Set<ImageListener>();

  /** onImage registers a listener called with every new image; returns a function that removes it. */
  onImage(listener: ImageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(entries: readonly Entry[]): void {
    const delta = new MetadataDelta(this.image);
    for (const entry of entries) {
      this.digest = entryDigest(this.digest, entry);
      if (entry.type === 'normal' && entry.data.length > 0) {
        for (const record of decodeRecordBatch(entry.data)) delta.replay(record, entry.index);
      }
      delta.advanceTo(entry.index);
      this.appliedIndex = entry.index;
      this.appliedTerm = entry.term;
    }
    this.publish(delta.apply());
  }

  snapshotData(): Uint8Array {
    return encodeMetadataSnapshot({ records: this.image.toRecords(), digest: this.digest });
  }

  restore(snapshot: Snapshot): void {
    const { records, digest } = decodeMetadataSnapshot(snapshot.data);
    const delta = new MetadataDelta(MetadataImage.empty);
    for (const record of records) delta.replay(record, snapshot.metadata.index);
    delta.advanceTo(snapshot.metadata.index);
    this.digest = digest;
    this.appliedIndex = snapshot.metadata.index;
    this.appliedTerm = snapshot.metadata.term;
    this.publish(delta.apply());
  }

  private publish(image: MetadataImage): void {
    this.image = image;
    for (const listener of this.listeners) listener(image);
  }
}

/** emptyMetadataSnapshotData is the state before any record: the bootstrap snapshot's data. */
export function emptyMetadataSnapshotData(): Uint8Array {
  return encodeMetadataSnapshot({ records: [], digest: 0 });
}

/** digestHeader is reused by every entryDigest call (crc32c reads it synchronously). */
const digestHeader = Buffer.alloc(17);

/** entryDigest folds (index u64 BE, term u64 BE, type u8, data) into the running CRC32C. */
function entryDigest(digest: number, entry: Entry): number {
  writeUint64(digestHeader, entry.index, 0);
  writeUint64(digestHeader, entry.term, 8);
  digestHeader[16] = entry.type === 'normal' ? 0 : 1;
  return crc32c(Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength), crc32c(digestHeader, digest));
}

/** writeUint64 writes a safe integer as u64 big-endian without a BigInt (one per applied entry adds up). */
function writeUint64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}
