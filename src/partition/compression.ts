// Compression of the records section of a record batch, with the framing Kafka uses for each codec
// so that batches interoperate with Kafka clients and brokers:
//   gzip (codec 1): one gzip member (RFC 1952), as java.util.zip.GZIPOutputStream writes it.
//   lz4  (codec 3): one LZ4 frame (LZ4 Frame Format v1.6, lz4/doc/lz4_Frame_format.md), with
//                   independent blocks, as Kafka's Lz4BlockOutputStream writes it. Kafka's reader
//                   (Lz4BlockInputStream) requires version 01, independent blocks, no dictionary id
//                   and a block maximum size id of 4 to 7; it honours content size, block and content
//                   checksums. The frame is produced and decoded by lz4-napi (lz4_flex).
// snappy (2) and zstd (4) are known by their ids but not supported: a batch using them is refused.
//
// Decompression is bounded before it runs: gzip through zlib's maxOutputLength, lz4 by walking the
// frame's block headers and adding up the most each block can inflate to (see lz4DecompressBounded).
// Pure code: node:zlib and lz4-napi compute, they do no I/O.
import { gunzipSync, gzipSync } from 'node:zlib';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { assert } from '../raft/assert.js';

/** compressionCodecIds are the values of attributes bits 0-2 of a record batch, as Kafka numbers them. */
export const compressionCodecIds = Object.freeze({ none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const);

/** CompressionCodec is every codec the attribute bits can name (5 to 7 are unused in Kafka). */
export type CompressionCodec = keyof typeof compressionCodecIds;

/** SupportedCompression is what raftbus encodes and decodes. */
export type SupportedCompression = 'none' | 'gzip' | 'lz4';

/** compressionCodecOf returns the codec that attribute bits 0-2 name, or undefined for 5 to 7. */
export function compressionCodecOf(attributes: number): CompressionCodec | undefined {
  switch (attributes & 0x07) {
    case 0:
      return 'none';
    case 1:
      return 'gzip';
    case 2:
      return 'snappy';
    case 3:
      return 'lz4';
    case 4:
      return 'zstd';
    default:
      return undefined;
  }
}

/** isSupportedCompression says whether raftbus can encode and decode codec. */
export function isSupportedCompression(codec: CompressionCodec): codec is SupportedCompression {
  return codec === 'none' || codec === 'gzip' || codec === 'lz4';
}

/** compress returns the records section compressed with codec ('none' returns the same bytes). */
export function compress(codec: SupportedCompression, bytes: Uint8Array): Uint8Array {
  switch (codec) {
    case 'none':
      return bytes;
    case 'gzip':
      return gzipSync(bytes);
    case 'lz4': {
      const frame = compressFrameSync(asBuffer(bytes));
      const flags = frame[4] ?? 0;
      assert(frame.readUInt32LE(0) === lz4FrameMagic && (flags & 0xe3) === 0x60, 'lz4-napi wrote a frame Kafka cannot read', { flags });
      return frame;
    }
  }
}

/** DecompressResult is the decompressed records section, or why the compressed bytes were refused. */
export type DecompressResult = { kind: 'ok'; bytes: Uint8Array } | { kind: 'invalid'; reason: string };

/**
 * decompress inflates a records section compressed with codec, refusing (never throwing on) corrupt
 * input and any input that inflates past decompressedBytesMax. It never allocates more than
 * decompressedBytesMax (gzip) or decompressedBytesMax plus one LZ4 block maximum, at most 4 MiB (lz4)
 * on the way. Invariant on 'ok': bytes.length <= decompressedBytesMax.
 */
export function decompress(codec: SupportedCompression, bytes: Uint8Array, decompressedBytesMax: number): DecompressResult {
  assert(Number.isSafeInteger(decompressedBytesMax) && decompressedBytesMax > 0, 'decompressedBytesMax must be a positive integer', { decompressedBytesMax });
  let result: DecompressResult;
  switch (codec) {
    case 'none':
      result = bytes.length <= decompressedBytesMax ? { kind: 'ok', bytes } : tooLarge(decompressedBytesMax);
      break;
    case 'gzip':
      result = gunzipBounded(bytes, decompressedBytesMax);
      break;
    case 'lz4':
      result = lz4DecompressBounded(bytes, decompressedBytesMax);
      break;
  }
  assert(result.kind === 'invalid' || result.bytes.length <= decompressedBytesMax, 'decompressed past the bound', { codec });
  return result;
}

function tooLarge(decompressedBytesMax: number): DecompressResult {
  return { kind: 'invalid', reason: `decompresses to more than decompressedBytesMax (${decompressedBytesMax} bytes)` };
}

function gunzipBounded(bytes: Uint8Array, decompressedBytesMax: number): DecompressResult {
  try {
    return { kind: 'ok', bytes: plainView(gunzipSync(bytes, { maxOutputLength: decompressedBytesMax })) };
  } catch (error) {
    if (error instanceof RangeError || (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge(decompressedBytesMax);
    return { kind: 'invalid', reason: `gzip data is corrupt: ${(error as Error).message}` };
  }
}

function lz4DecompressBounded(bytes: Uint8Array, decompressedBytesMax: number): DecompressResult {
  const frame = lz4FrameDecompressedBound(bytes);
  if (typeof frame === 'string') return { kind: 'invalid', reason: `lz4 frame is malformed: ${frame}` };
  // Encoders fill every block but the last, so a frame that fits the limit has a bound less than one
  // block maximum past it: inflating such a frame allocates at most decompressedBytesMax + 4 MiB.
  if (frame.bound > decompressedBytesMax + frame.blockBytesMax) return tooLarge(decompressedBytesMax);
  let output: Buffer;
  try {
    output = decompressFrameSync(asBuffer(bytes));
  } catch (error) {
    return { kind: 'invalid', reason: `lz4 frame is corrupt: ${(error as Error).message}` };
  }
  assert(output.length <= frame.bound, 'lz4 frame inflated past the bound its block headers give', { bound: frame.bound, length: output.length });
  return output.length <= decompressedBytesMax ? { kind: 'ok', bytes: plainView(output) } : tooLarge(decompressedBytesMax);
}

const lz4FrameMagic = 0x184d2204;
const lz4UncompressedBlockFlag = 0x8000_0000;

/** Lz4FrameBound is the most a frame's blocks can inflate to, and the frame's block maximum size. */
export interface Lz4FrameBound {
  readonly bound: number;
  readonly blockBytesMax: number;
}

/**
 * lz4FrameDecompressedBound walks one LZ4 frame without decompressing it and returns the most its
 * blocks can inflate to (each compressed block at most the block maximum size, each stored block its
 * own size), or a string saying what is malformed. Checked as Kafka's reader checks: magic, FLG
 * version 01, independent blocks, reserved bits and dictionary id clear, block maximum size id 4-7,
 * each block no larger than that maximum; and the frame must end exactly at the end of bytes (no
 * second frame, no trailing bytes). Header and content checksums are left to the decoder.
 */
export function lz4FrameDecompressedBound(bytes: Uint8Array): Lz4FrameBound | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 7) return 'shorter than a frame header';
  if (view.getUint32(0, true) !== lz4FrameMagic) return 'magic number is not 0x184D2204';
  const flags = view.getUint8(4);
  const blockDescriptor = view.getUint8(5);
  if (flags >> 6 !== 1) return `frame version ${flags >> 6} is not 01`;
  if ((flags & 0x20) === 0) return 'dependent blocks are not supported (Kafka requires independent blocks)';
  if ((flags & 0x03) !== 0) return 'reserved bit or dictionary id flag is set';
  const blockSizeId = (blockDescriptor >> 4) & 0x07;
  if ((blockDescriptor & 0x8f) !== 0 || blockSizeId < 4) return `block descriptor 0x${blockDescriptor.toString(16)} is invalid`;
  const blockBytesMax = 1 << (2 * blockSizeId + 8);
  const blockChecksumBytes = flags & 0x10 ? 4 : 0;
  const contentChecksumBytes = flags & 0x04 ? 4 : 0;
  let position = 6 + (flags & 0x08 ? 8 : 0) + 1; // FLG, BD, optional content size, header checksum
  let bound = 0;
  for (;;) {
    if (position + 4 > bytes.length) return 'ends before its end mark';
    const blockHeader = view.getUint32(position, true);
    position += 4;
    if (blockHeader === 0) break;
    const blockBytes = blockHeader & ~lz4UncompressedBlockFlag;
    if (blockBytes > blockBytesMax) return `block of ${blockBytes} bytes exceeds the frame's block maximum of ${blockBytesMax}`;
    position += blockBytes + blockChecksumBytes;
    if (position > bytes.length) return 'a block runs past the end';
    bound += blockHeader & lz4UncompressedBlockFlag ? blockBytes : blockBytesMax;
  }
  if (position + contentChecksumBytes !== bytes.length) return 'bytes follow the frame, or its content checksum is cut short';
  return { bound, blockBytesMax };
}

/** plainView views a Buffer as a plain Uint8Array, so decoded keys and values are alike whatever the codec. */
function plainView(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** asBuffer views bytes as a Buffer without copying (lz4-napi's sync calls take Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
