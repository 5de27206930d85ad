// Typed errors of the storage layer. Bad data found on disk and bad input from callers are not
// bugs: they are these errors. Broken internal invariants are assertions (see ../raft/assert.js).

/**
 * CorruptLogError says a log holds a frame or header that fails its checksum (or is otherwise
 * malformed) at a place that a crash cannot explain: in the middle of a segment, followed by valid
 * frames, or in a segment that is not the last. The log is left untouched; the node must refuse to
 * serve the group rather than serve wrong data, unless it opened the log with onCorruption
 * 'truncate' (a Raft group whose leader can send the entries back): then the log is cut back to
 * the last valid entry before the corruption instead (see log-recovery.ts).
 */
export class CorruptLogError extends Error {
  override readonly name = 'CorruptLogError';
  readonly path: string;
  readonly offset: number;
  readonly reason: string;
  constructor(options: { path: string; offset: number; reason: string; cause?: unknown }) {
    super(`corrupt log ${options.path} at byte ${options.offset}: ${options.reason}`, { cause: options.cause });
    this.path = options.path;
    this.offset = options.offset;
    this.reason = options.reason;
  }
}

/** EntryTooLargeError says an entry's payload exceeds entryBytesMax. */
export class EntryTooLargeError extends Error {
  override readonly name = 'EntryTooLargeError';
  constructor(
    readonly index: number,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`entry ${index} has ${bytes} bytes, more than ${limitBytes}`);
  }
}

/** LogClosedError says an operation was attempted on a closed SegmentedLog. */
export class LogClosedError extends Error {
  override readonly name = 'LogClosedError';
  constructor(readonly dir: string) {
    super(`log ${dir} is closed`);
  }
}
