// Bounds of the storage layer, with units last. Every size the segmented log handles is checked
// against one of these; tests pass smaller values through the log's options.

/** segmentBytesMax is the size at which the active segment is closed and a new one started. */
export const segmentBytesMax = 64 * 1024 * 1024;

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
