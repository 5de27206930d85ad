// DigestStateMachine applies the metadata log into a running CRC32C digest of every entry. It
// stands in for the metadata image until the controller replays real records, and lets tests and
// `cluster describe` compare nodes: equal digests at equal applied indexes mean equal histories.
import { crc32c } from '@node-rs/crc32';
import type { Entry, Snapshot } from '../raft/types.js';
import type { StateMachine } from './raft-host.js';

export class DigestStateMachine implements StateMachine {
  digest = 0;
  appliedIndex = 0;

  apply(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const header = Buffer.alloc(17);
      header.writeBigUInt64BE(BigInt(entry.index), 0);
      header.writeBigUInt64BE(BigInt(entry.term), 8);
      header.writeUInt8(entry.type === 'normal' ? 0 : 1, 16);
      this.digest = crc32c(Buffer.from(entry.data), crc32c(header, this.digest));
      this.appliedIndex = entry.index;
    }
  }

  snapshotData(): Uint8Array {
    const data = Buffer.alloc(12);
    data.writeUInt32BE(this.digest, 0);
    data.writeBigUInt64BE(BigInt(this.appliedIndex), 4);
    return data;
  }

  restore(snapshot: Snapshot): void {
    const data = Buffer.from(snapshot.data);
    this.digest = data.length >= 4 ? data.readUInt32BE(0) : 0;
    this.appliedIndex = snapshot.metadata.index;
  }
}
