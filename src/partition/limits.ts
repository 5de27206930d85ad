// Bounds of the record-batch codec, in one place. A broker checks every batch a client sends
// against these before it appends it; a consumer checks what it decodes against them too.

/** RecordBatchLimits are the bounds one record batch must keep; defaults below. */
export interface RecordBatchLimits {
  /**
   * batchBytesMax bounds the whole batch as it travels and is stored: the 12 bytes of baseOffset and
   * batchLength plus batchLength bytes. Kafka's default max.message.bytes (1 MiB + 12) is the same bound.
   */
  readonly batchBytesMax: number;
  /** recordsPerBatchMax bounds the records count of one batch. */
  readonly recordsPerBatchMax: number;
  /** headersPerRecordMax bounds the headers of one record. */
  readonly headersPerRecordMax: number;
  /**
   * decompressedBytesMax bounds the records section of a compressed batch once decompressed, so
   * a small batch that inflates to gigabytes (a decompression bomb) is refused before it is inflated.
   */
  readonly decompressedBytesMax: number;
}

/** recordBatchBytesMax is Kafka's default max.message.bytes: 1 MiB plus the 12-byte log overhead. */
export const recordBatchBytesMax = 1024 * 1024 + 12;

export const defaultRecordBatchLimits: RecordBatchLimits = Object.freeze({
  batchBytesMax: recordBatchBytesMax,
  recordsPerBatchMax: 100_000,
  headersPerRecordMax: 1024,
  decompressedBytesMax: 32 * 1024 * 1024,
});
