// NodeDisk is the Disk of a real node: node:fs, synchronous for page-cache I/O and, for
// fdatasync, asynchronous on the libuv thread pool or, when the caller asks, on its own thread. It
// is the only production code that touches node:fs for logs.
import * as fs from 'node:fs';
import { assert } from '../raft/assert.js';
import type { Disk, DiskFile } from './disk.js';
import * as limits from './limits.js';

class NodeFile implements DiskFile {
  closed = false;
  constructor(
    readonly path: string,
    readonly fd: number,
  ) {}
}

function asNodeFile(file: DiskFile): NodeFile {
  assert(file instanceof NodeFile, 'not a NodeDisk file', { path: file.path });
  assert(!file.closed, 'file is closed', { path: file.path });
  return file;
}

/** NodeDisk implements Disk on the local file system. */
export class NodeDisk implements Disk {
  readonly preallocateBytes: number;

  constructor(options: { preallocateBytes?: number } = {}) {
    this.preallocateBytes = options.preallocateBytes ?? limits.preallocateBytes;
  }

  mkdirp(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
  }

  list(dir: string): string[] {
    return fs.readdirSync(dir).sort();
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  open(path: string, options: { create: boolean }): DiskFile {
    const flags = options.create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR;
    return new NodeFile(path, fs.openSync(path, flags, 0o644));
  }

  size(file: DiskFile): number {
    return fs.fstatSync(asNodeFile(file).fd).size;
  }

  read(file: DiskFile, position: number, length: number, into?: Uint8Array): Uint8Array {
    const fd = asNodeFile(file).fd;
    if (into !== undefined && into.length < length) throw new RangeError(`read of ${length} bytes into a buffer of ${into.length}`);
    const buffer = into === undefined ? Buffer.allocUnsafe(length) : Buffer.from(into.buffer, into.byteOffset, length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buffer, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buffer : buffer.subarray(0, done);
  }

  write(file: DiskFile, position: number, data: Uint8Array): void {
    const fd = asNodeFile(file).fd;
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(fd, data, done, data.length - done, position + done);
    }
  }

  truncate(file: DiskFile, length: number): void {
    fs.ftruncateSync(asNodeFile(file).fd, length);
  }

  close(file: DiskFile): void {
    const nodeFile = asNodeFile(file);
    nodeFile.closed = true;
    fs.closeSync(nodeFile.fd);
  }

  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }

  unlink(path: string): void {
    fs.unlinkSync(path);
  }

  removeTree(dir: string): Promise<void> {
    return fs.promises.rm(dir, { recursive: true, force: true });
  }

  /**
   * fdatasync on the thread pool hands the call to a worker thread and its completion back to the
   * event loop: two thread wake-ups, each of which waits for a free core when the cores are busy.
   * inline makes the call on the event loop, which then waits for the device and can do nothing
   * else: worth it for a lone, small flush that the caller would only wait for (RaftHost decides).
   */
  fdatasync(file: DiskFile, options: { readonly inline?: boolean } = {}): Promise<void> {
    const fd = asNodeFile(file).fd;
    if (options.inline === true) {
      try {
        fs.fdatasyncSync(fd);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (error) => (error ? reject(error) : resolve()));
    });
  }

  async syncDirectory(dir: string): Promise<void> {
    const handle = await fs.promises.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
