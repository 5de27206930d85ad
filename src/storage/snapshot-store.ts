// SnapshotStore keeps the latest snapshot of one Raft group as a file in its directory,
// written atomically (temporary file, fdatasync, rename, directory sync) and checked by CRC32C.
//
// File layout (big-endian): magic "RBSN", version u32, crc32c u32 over everything after it,
// index u64, term u64, voter count u32, voter ids u32..., learner count u32, learner ids u32...,
// data length u32, data.
import { crc32c } from '@node-rs/crc32';
import { assert } from '../raft/assert.js';
import type { Snapshot } from '../raft/types.js';
import type { Disk } from './disk.js';

const magic = 0x5242534e; // "RBSN"
const formatVersion = 1;
const headerBytes = 12;
const suffix = '.snap';

/** SnapshotCorruptError: a snapshot file that fails its check; the store skips it. */
export class SnapshotCorruptError extends Error {
  override readonly name = 'SnapshotCorruptError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`snapshot ${path} is corrupt: ${reason}`);
  }
}

function fileName(index: number, term: number): string {
  return `${String(index).padStart(20, '0')}-${String(term).padStart(20, '0')}${suffix}`;
}

/** encodeSnapshot lays a snapshot out as described in the file comment. */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { index, term, confState } = snapshot.metadata;
  const bodyBytes = 16 + 4 + confState.voters.length * 4 + 4 + confState.learners.length * 4 + 4 + snapshot.data.length;
  const bytes = Buffer.alloc(headerBytes + bodyBytes);
  let offset = headerBytes;
  bytes.writeBigUInt64BE(BigInt(index), offset);
  bytes.writeBigUInt64BE(BigInt(term), offset + 8);
  offset += 16;
  for (const ids of [confState.voters, confState.learners]) {
    bytes.writeUInt32BE(ids.length, offset);
    offset += 4;
    for (const id of ids) {
      bytes.writeUInt32BE(id, offset);
      offset += 4;
    }
  }
  bytes.writeUInt32BE(snapshot.data.length, offset);
  bytes.set(snapshot.data, offset + 4);
  bytes.writeUInt32BE(magic, 0);
  bytes.writeUInt32BE(formatVersion, 4);
  bytes.writeUInt32BE(crc32c(bytes.subarray(headerBytes)), 8);
  return bytes;
}

/** decodeSnapshot reads what encodeSnapshot wrote; throws SnapshotCorruptError otherwise. */
export function decodeSnapshot(path: string, raw: Uint8Array): Snapshot {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const fail = (reason: string): never => {
    throw new SnapshotCorruptError(path, reason);
  };
  if (bytes.length < headerBytes + 28) fail(`only ${bytes.length} bytes`);
  if (bytes.readUInt32BE(0) !== magic) fail('bad magic');
  if (bytes.readUInt32BE(4) !== formatVersion) fail(`unknown format version ${bytes.readUInt32BE(4)}`);
  if (bytes.readUInt32BE(8) !== crc32c(bytes.subarray(headerBytes))) fail('checksum mismatch');
  let offset = headerBytes;
  const index = Number(bytes.readBigUInt64BE(offset));
  const term = Number(bytes.readBigUInt64BE(offset + 8));
  offset += 16;
  const lists: number[][] = [];
  for (let list = 0; list < 2; list++) {
    const count = bytes.readUInt32BE(offset);
    offset += 4;
    if (offset + count * 4 > bytes.length) fail('membership overruns the file');
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(bytes.readUInt32BE(offset + i * 4));
    offset += count * 4;
    lists.push(ids);
  }
  const dataBytes = bytes.readUInt32BE(offset);
  if (offset + 4 + dataBytes !== bytes.length) fail('data length does not match the file');
  const data = new Uint8Array(bytes.subarray(offset + 4));
  return { metadata: { index, term, confState: { voters: lists[0]!, learners: lists[1]! } }, data };
}

/** SnapshotStore holds the newest durable snapshot of a group in `dir`. */
export class SnapshotStore {
  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
  ) {
    disk.mkdirp(dir);
  }

  /**
   * loadLatest returns the newest snapshot that passes its check, or undefined when there is none.
   * Corrupt files are reported to onCorrupt and left on disk for inspection.
   */
  loadLatest(onCorrupt: (error: SnapshotCorruptError) => void): Snapshot | undefined {
    const names = this.disk.list(this.dir).filter((name) => name.endsWith(suffix)).sort().reverse();
    for (const name of names) {
      const path = `${this.dir}/${name}`;
      const file = this.disk.open(path, { create: false });
      try {
        return decodeSnapshot(path, this.disk.read(file, 0, this.disk.size(file)));
      } catch (error) {
        if (!(error instanceof SnapshotCorruptError)) throw error;
        onCorrupt(error);
      } finally {
        this.disk.close(file);
      }
    }
    return undefined;
  }

  /**
   * setAside renames a corrupt snapshot file to <name>.corrupt-<n> (the first n free), out of
   * loadLatest's sight but kept for forensics; returns the new path. Durable at the next save().
   */
  setAside(path: string): string {
    let generation = 1;
    while (this.disk.exists(`${path}.corrupt-${generation}`)) generation++;
    const to = `${path}.corrupt-${generation}`;
    this.disk.rename(path, to);
    return to;
  }

  /** save makes snapshot durable, then removes older snapshot files. Resolves once durable. */
  async save(snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    assert(index > 0 && term > 0, 'snapshot position must be positive', { index, term });
    const name = fileName(index, term);
    const temporary = `${this.dir}/${name}.tmp`;
    const file = this.disk.open(temporary, { create: true });
    try {
      this.disk.truncate(file, 0);
      this.disk.write(file, 0, encodeSnapshot(snapshot));
      await this.disk.fdatasync(file);
    } finally {
      this.disk.close(file);
    }
    this.disk.rename(temporary, `${this.dir}/${name}`);
    await this.disk.syncDirectory(this.dir);
    for (const old of this.disk.list(this.dir)) {
      if (old !== name && (old.endsWith(suffix) || old.endsWith('.tmp')) && old < name) this.disk.unlink(`${this.dir}/${old}`);
    }
  }
}
