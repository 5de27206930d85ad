// Bounds of the storage layer, with units last. Every size the segmented log handles is checked
// against one of these; tests pass smaller values through the log's options.

/** segmentBytesMax is the size at which the active segment is closed and a new one started. */
export const segmentBytesMax = 64 * 1024 * 1024;

/**
 * preallocateBytes is how far past its data the real disk grows a segment file (NodeDisk): one
 * size change, and so one journal commit, per MiB appended instead of one per sync. Measured on
 * ext4 (the 2-core development machine): fdatasync after a 150-byte append took 138 µs when it grew the
 * file, 84 µs when it did not (p50 of 6,000). The grown part is a hole: it takes no disk space.
 */
export const preallocateBytes = 1024 * 1024;

/** entryBytesMax is the largest entry payload (Entry.data) the log accepts. */
export const entryBytesMax = 8 * 1024 * 1024;

/** frameHeaderBytes is the fixed header before each entry's payload in a segment file. */
export const frameHeaderBytes = 28;

/** segmentFixedHeaderBytes is the part of a segment header before its two sync records. */
export const segmentFixedHeaderBytes = 36;

/** segmentHeaderBytes is the header at the start of each segment file, its two sync records included. */
export const segmentHeaderBytes = 84;

/** readBytesMax bounds one read of contiguous frames in entries(), so a call never buffers more. */
export const readBytesMax = 4 * 1024 * 1024;

/** indexMax is the largest entry index (and term) a frame can hold: 2^53 - 1, a safe JS integer. */
export const indexMax = Number.MAX_SAFE_INTEGER;
