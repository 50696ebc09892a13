/**
 * SSH wire encoding (RFC 4251 section 5): byte, uint32, uint64, string
 * (a uint32 length and the bytes) and mpint (a string holding a two's
 * complement big-endian integer with no unneeded leading bytes).
 */

/** Thrown by `SshReader` when the input ends early or a value is malformed. */
export class WireFormatError extends Error {
  override readonly name = "WireFormatError";
}

/** Builds an SSH wire-encoded buffer from appended values. */
export class SshWriter {
  readonly #chunks: Buffer[] = [];

  byte(value: number): this {
    this.#chunks.push(Buffer.from([value & 0xff]));
    return this;
  }

  uint32(value: number): this {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value);
    this.#chunks.push(bytes);
    return this;
  }

  uint64(value: bigint): this {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(value);
    this.#chunks.push(bytes);
    return this;
  }

  /** Appends a string: its length as uint32, then the bytes (UTF-8 for text). */
  string(value: Uint8Array | string): this {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
    this.uint32(bytes.length);
    this.#chunks.push(bytes);
    return this;
  }

  /** Appends a non-negative integer given as unsigned big-endian bytes, as an mpint. */
  mpint(unsigned: Uint8Array): this {
    return this.string(mpintBytes(unsigned));
  }

  /** Appends bytes with no length prefix. */
  raw(bytes: Uint8Array): this {
    this.#chunks.push(Buffer.from(bytes));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/**
 * Returns the mpint body of a non-negative integer: leading zero bytes
 * removed, and one zero byte added when the top bit is set so the value
 * does not read as negative. Zero is the empty string.
 */
export function mpintBytes(unsigned: Uint8Array): Buffer {
  let start = 0;
  while (start < unsigned.length && unsigned[start] === 0) start += 1;
  const trimmed = Buffer.from(unsigned.subarray(start));
  if (trimmed.length > 0 && (trimmed[0] as number) & 0x80) {
    return Buffer.concat([Buffer.from([0]), trimmed]);
  }
  return trimmed;
}

/** Reads SSH wire-encoded values in order, throwing `WireFormatError` on truncated or malformed input. */
export class SshReader {
  readonly #bytes: Buffer;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /** Bytes read so far, from the start. */
  get consumed(): Buffer {
    return this.#bytes.subarray(0, this.#offset);
  }

  #take(length: number): Buffer {
    if (length > this.remaining) throw new WireFormatError("the data ends before the value does");
    const slice = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return slice;
  }

  byte(): number {
    return this.#take(1)[0] as number;
  }

  uint32(): number {
    return this.#take(4).readUInt32BE();
  }

  uint64(): bigint {
    return this.#take(8).readBigUInt64BE();
  }

  string(): Buffer {
    return this.#take(this.uint32());
  }

  /** Reads a string that must be valid UTF-8 text. */
  text(): string {
    const bytes = this.string();
    const text = bytes.toString("utf8");
    if (!Buffer.from(text, "utf8").equals(bytes)) {
      throw new WireFormatError("a text field is not valid UTF-8");
    }
    return text;
  }

  /**
   * Reads a non-negative mpint and returns its unsigned big-endian bytes.
   * Rejects negative values and encodings with an unneeded leading byte.
   */
  positiveMpint(): Buffer {
    const body = this.string();
    if (body.length === 0) return body;
    if ((body[0] as number) & 0x80) throw new WireFormatError("an mpint is negative");
    if (body[0] === 0 && (body.length === 1 || !((body[1] as number) & 0x80))) {
      throw new WireFormatError("an mpint has an unneeded leading zero byte");
    }
    return body[0] === 0 ? body.subarray(1) : body;
  }

  /** Throws unless every byte has been read. */
  end(): void {
    if (this.remaining !== 0) throw new WireFormatError("unexpected data after the last field");
  }
}
