// Names and small helper files of a log directory.
//   <base, 20 digits>.log        a live segment whose first entry has index base
//   <base, 20 digits>.log.stale.<n>  a segment cut off by truncateSuffix (n counts up, so several
//                                cut-offs of the same base never collide), unlinked at the next
//                                sync; recovery restores it when the live log still chains into it
//   log-start                    the logical first index (compactPrefix), written tmp + rename
import { crc32c } from '@node-rs/crc32';
import { join } from 'node:path';
import type { Disk } from './disk.js';
import { CorruptLogError } from './errors.js';

const baseDigits = 20;
const livePattern = /^(\d{20})\.log$/;
const stalePattern = /^(\d{20})\.log\.stale\.(\d+)$/;
export const startFileName = 'log-start';
export const startTmpFileName = 'log-start.tmp';
const startFileBytes = 12;

/** segmentPath returns the path of the live segment starting at baseIndex. */
export function segmentPath(dir: string, baseIndex: number): string {
  return join(dir, `${String(baseIndex).padStart(baseDigits, '0')}.log`);
}

/** stalePath returns the path a live segment is renamed to when truncateSuffix cuts it off. */
export function stalePath(livePath: string, generation: number): string {
  return `${livePath}.stale.${generation}`;
}

/** StaleSegment is a segment file cut off by truncateSuffix and not yet unlinked. */
export interface StaleSegment {
  readonly baseIndex: number;
  readonly generation: number;
  readonly path: string;
}

/** listSegments returns the live segments' base indexes (ascending) and the stale segments in dir. */
export function listSegments(disk: Disk, dir: string): { live: number[]; stale: StaleSegment[] } {
  const live: number[] = [];
  const stale: StaleSegment[] = [];
  for (const name of disk.list(dir)) {
    const liveMatch = livePattern.exec(name);
    if (liveMatch?.[1] !== undefined) live.push(Number(liveMatch[1]));
    const staleMatch = stalePattern.exec(name);
    if (staleMatch?.[1] !== undefined && staleMatch[2] !== undefined) {
      stale.push({ baseIndex: Number(staleMatch[1]), generation: Number(staleMatch[2]), path: join(dir, name) });
    }
  }
  stale.sort((a, b) => b.generation - a.generation);
  return { live: live.sort((a, b) => a - b), stale };
}

/** fileSize returns the length of the file at path. */
export function fileSize(disk: Disk, path: string): number {
  const file = disk.open(path, { create: false });
  try {
    return disk.size(file);
  } finally {
    disk.close(file);
  }
}

/** readWholeFile returns a file's content. */
export function readWholeFile(disk: Disk, path: string): Uint8Array {
  const file = disk.open(path, { create: false });
  try {
    return disk.read(file, 0, disk.size(file));
  } finally {
    disk.close(file);
  }
}

/** readStartFile returns the recorded first index, undefined when none. Throws CorruptLogError. */
export function readStartFile(disk: Disk, dir: string): number | undefined {
  const path = join(dir, startFileName);
  if (!disk.exists(path)) return undefined;
  const bytes = Buffer.from(readWholeFile(disk, path));
  if (bytes.length !== startFileBytes || crc32c(bytes.subarray(0, 8)) !== bytes.readUInt32LE(8)) {
    throw new CorruptLogError({ path, offset: 0, reason: 'bad start file' });
  }
  return bytes.readUInt32LE(0) + bytes.readUInt32LE(4) * 0x1_0000_0000;
}

/** writeStartFile durably records firstIndex: write a temporary file, fdatasync it, rename it. */
export async function writeStartFile(disk: Disk, dir: string, firstIndex: number): Promise<void> {
  const bytes = Buffer.alloc(startFileBytes);
  bytes.writeUInt32LE(firstIndex % 0x1_0000_0000, 0);
  bytes.writeUInt32LE(Math.floor(firstIndex / 0x1_0000_0000), 4);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, 8)), 8);
  const tmpPath = join(dir, startTmpFileName);
  const file = disk.open(tmpPath, { create: true });
  try {
    disk.truncate(file, 0);
    disk.write(file, 0, bytes);
    await disk.fdatasync(file);
  } finally {
    disk.close(file);
  }
  disk.rename(tmpPath, join(dir, startFileName));
}
