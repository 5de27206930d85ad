// The primitive encodings of Kafka's record format: big-endian fixed-width integers and the
// zigzag variable-length integers (protobuf's varint with zigzag sign folding) that Kafka's
// ByteUtils.writeVarint/writeVarlong write. Pure code over Uint8Array and DataView.

/** FormatError is thrown by ByteReader on bytes that break the format; callers turn it into a result. */
export class FormatError extends Error {
  override readonly name = 'FormatError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;
const uint64Mask = (1n << 64n) - 1n;

/** isInt32 says whether n is an integer a Java int holds. */
export function isInt32(n: number): boolean {
  return Number.isInteger(n) && n >= -0x8000_0000 && n <= 0x7fff_ffff;
}

/** isInt16 says whether n is an integer a Java short holds. */
export function isInt16(n: number): boolean {
  return Number.isInteger(n) && n >= -0x8000 && n <= 0x7fff;
}

/** isInt64 says whether n is an integer a Java long holds. */
export function isInt64(n: bigint): boolean {
  return n >= int64Min && n <= int64Max;
}

/** varintBytes returns how many bytes the zigzag varint of the int32 n takes (1 to 5). */
export function varintBytes(n: number): number {
  let zigzag = ((n << 1) ^ (n >> 31)) >>> 0;
  let bytes = 1;
  while (zigzag > 0x7f) {
    zigzag >>>= 7;
    bytes += 1;
  }
  return bytes;
}

/** safeZigzagMax bounds the varlongs handled with plain numbers: |n| < 2^52 keeps 2|n| exact. */
const safeZigzagMax = 2n ** 52n;

/** zigzagNumber returns the zigzag fold of n as a number when it is exact (|n| < 2^52), else undefined. */
function zigzagNumber(n: bigint): number | undefined {
  if (n >= safeZigzagMax || n < -safeZigzagMax) return undefined;
  const value = Number(n);
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** varlongBytes returns how many bytes the zigzag varlong of the int64 n takes (1 to 10). */
export function varlongBytes(n: bigint): number {
  const small = zigzagNumber(n);
  if (small !== undefined) {
    let bytes = 1;
    for (let rest = small; rest > 0x7f; rest = Math.floor(rest / 128)) bytes += 1;
    return bytes;
  }
  let zigzag = ((n << 1n) ^ (n >> 63n)) & uint64Mask;
  let bytes = 1;
  while (zigzag > 0x7fn) {
    zigzag >>= 7n;
    bytes += 1;
  }
  return bytes;
}

/** ByteWriter writes into a buffer sized in advance; writing past its end is a bug. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  position = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  int8(n: number): void {
    this.view.setInt8(this.position, n);
    this.position += 1;
  }
  int16(n: number): void {
    this.view.setInt16(this.position, n);
    this.position += 2;
  }
  int32(n: number): void {
    this.view.setInt32(this.position, n);
    this.position += 4;
  }
  uint32(n: number): void {
    this.view.setUint32(this.position, n);
    this.position += 4;
  }
  int64(n: bigint): void {
    this.view.setBigInt64(this.position, n);
    this.position += 8;
  }
  raw(bytes: Uint8Array): void {
    this.bytes.set(bytes, this.position);
    this.position += bytes.length;
  }

  /** varint writes the int32 n as a zigzag varint. */
  varint(n: number): void {
    let zigzag = ((n << 1) ^ (n >> 31)) >>> 0;
    while (zigzag > 0x7f) {
      this.bytes[this.position++] = (zigzag & 0x7f) | 0x80;
      zigzag >>>= 7;
    }
    this.bytes[this.position++] = zigzag;
  }

  /** varlong writes the int64 n as a zigzag varlong. */
  varlong(n: bigint): void {
    const small = zigzagNumber(n);
    if (small !== undefined) {
      let rest = small;
      for (; rest > 0x7f; rest = Math.floor(rest / 128)) this.bytes[this.position++] = (rest % 128) | 0x80;
      this.bytes[this.position++] = rest;
      return;
    }
    let zigzag = ((n << 1n) ^ (n >> 63n)) & uint64Mask;
    while (zigzag > 0x7fn) {
      this.bytes[this.position++] = Number(zigzag & 0x7fn) | 0x80;
      zigzag >>= 7n;
    }
    this.bytes[this.position++] = Number(zigzag);
  }
}

/**
 * ByteReader reads a Uint8Array front to back. Every read checks the bytes left first and throws
 * FormatError (naming the field) when they do not suffice or the encoding is malformed; it never
 * reads past the end and never allocates: `bytes` returns a view, not a copy.
 */
export class ByteReader {
  private readonly view: DataView;
  position = 0;

  constructor(readonly buffer: Uint8Array) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get remaining(): number {
    return this.buffer.length - this.position;
  }

  private need(count: number, field: string): void {
    if (count > this.remaining) throw new FormatError(field, `needs ${count} bytes but only ${this.remaining} remain`);
  }

  int8(field: string): number {
    this.need(1, field);
    return this.view.getInt8(this.position++);
  }

  /** varint reads a zigzag varint of at most 5 bytes whose value fits an int32. */
  varint(field: string): number {
    let unsigned = 0;
    for (let index = 0; index < 5; index++) {
      this.need(1, field);
      const byte = this.buffer[this.position++] ?? 0;
      if (index === 4 && byte > 0x0f) throw new FormatError(field, 'varint does not fit 32 bits');
      unsigned += (byte & 0x7f) * 2 ** (7 * index);
      if ((byte & 0x80) === 0) return (unsigned >>> 1) ^ -(unsigned & 1);
    }
    throw new FormatError(field, 'varint is longer than 5 bytes');
  }

  /** varlong reads a zigzag varlong of at most 10 bytes whose value fits an int64. */
  varlong(field: string): bigint {
    // Up to 7 bytes (49 bits) add up exactly in a number; longer ones are read again as a bigint.
    const start = this.position;
    let unsigned = 0;
    for (let index = 0; index < 7 && this.position < this.buffer.length; index++) {
      const byte = this.buffer[this.position++] ?? 0;
      unsigned += (byte & 0x7f) * 2 ** (7 * index);
      if ((byte & 0x80) === 0) return BigInt(unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2);
    }
    this.position = start;
    return this.longVarlong(field);
  }

  private longVarlong(field: string): bigint {
    let unsigned = 0n;
    for (let index = 0; index < 10; index++) {
      this.need(1, field);
      const byte = this.buffer[this.position++] ?? 0;
      if (index === 9 && byte > 0x01) throw new FormatError(field, 'varlong does not fit 64 bits');
      unsigned |= BigInt(byte & 0x7f) << BigInt(7 * index);
      if ((byte & 0x80) === 0) return (unsigned >> 1n) ^ -(unsigned & 1n);
    }
    throw new FormatError(field, 'varlong is longer than 10 bytes');
  }

  /** bytes returns a view of the next count bytes (count checked against what remains first). */
  bytes(count: number, field: string): Uint8Array {
    this.need(count, field);
    const view = this.buffer.subarray(this.position, this.position + count);
    this.position += count;
    return view;
  }

  /** skip moves past count bytes (count checked against what remains first). */
  skip(count: number, field: string): void {
    this.need(count, field);
    this.position += count;
  }
}
