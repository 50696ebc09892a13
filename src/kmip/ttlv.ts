/**
 * Binary TTLV encoding of KMIP items (KMIP Specification, "Message
 * Encoding"): a 3-byte tag, a 1-byte item type, a 4-byte big-endian length,
 * then the value padded with zero bytes to a multiple of 8.
 *
 * Fixed lengths: Integer, Enumeration and Interval 4 (plus 4 padding bytes);
 * Long Integer, Boolean, Date-Time and Date-Time Extended 8. Big Integer is
 * two's complement, sign-extended to a multiple of 8 bytes. Text and Byte
 * Strings carry their byte count and are padded. A structure's length is the
 * sum of its encoded children, each already a multiple of 8.
 *
 * The decoder is strict and raises only KmipDecodeError for bad input. The
 * encoder lives in ttlv-encode.ts and is re-exported here.
 */
import { KmipDecodeError } from "./errors.ts";
import type { KmipItem, ScalarItem } from "./item.ts";
import { type ItemType, isTagInValidRange, itemTypeFromByte } from "./tags.ts";
import {
  bigIntFromTwosComplement,
  FIXED_LENGTHS,
  paddedLength,
  TTLV_HEADER_BYTES,
} from "./ttlv-layout.ts";

export { encodeTtlv } from "./ttlv-encode.ts";
export {
  bigIntFromTwosComplement,
  bigIntToTwosComplement,
  TTLV_HEADER_BYTES,
} from "./ttlv-layout.ts";

/** Limits applied while decoding, so a hostile message cannot exhaust memory or the stack. */
export interface TtlvDecodeOptions {
  /** Maximum size of a whole message in bytes, header included. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Maximum item nesting depth; the outermost item is depth 1. Default 32. */
  maxDepth?: number;
}

/**
 * Default limits. The largest message in the KMIP 1.4 and 2.1 conformance
 * cases is 1,776 bytes of TTLV and nests items 9 deep, so both defaults leave
 * wide room for large keys, certificates and batches while bounding what one
 * request can cost.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 32;

/**
 * Reads the total length of the TTLV message that starts with `header` (at
 * least 8 bytes), for framing a stream. It checks the length against
 * `maxMessageBytes`, so a caller can reject a message before reading its body.
 */
export function ttlvMessageLength(header: Uint8Array, options: TtlvDecodeOptions = {}): number {
  if (header.length < TTLV_HEADER_BYTES) {
    throw new KmipDecodeError("InvalidMessage", "TTLV header is truncated", header.length);
  }
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const total = TTLV_HEADER_BYTES + paddedLength(view.getUint32(4));
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (total > max) {
    throw new KmipDecodeError(
      "InvalidMessage",
      `message of ${total} bytes exceeds the maximum of ${max}`,
      4,
    );
  }
  return total;
}

/** Decodes one TTLV item that must span the whole buffer. */
export function decodeTtlv(bytes: Uint8Array, options: TtlvDecodeOptions = {}): KmipItem {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (bytes.length > max) {
    throw new KmipDecodeError(
      "InvalidMessage",
      `message of ${bytes.length} bytes exceeds the maximum of ${max}`,
    );
  }
  const reader = new TtlvReader(bytes, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  const item = reader.readItem(0, bytes.length, 1);
  if (item.end !== bytes.length) {
    throw new KmipDecodeError(
      "InvalidMessage",
      "bytes follow the end of the TTLV message",
      item.end,
    );
  }
  return item.item;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalidMessage(message: string, offset: number): KmipDecodeError {
  return new KmipDecodeError("InvalidMessage", message, offset);
}

class TtlvReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #maxDepth: number;

  constructor(bytes: Uint8Array, maxDepth: number) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#maxDepth = maxDepth;
  }

  /** Reads the item at `offset`, which must end at or before `limit`. */
  readItem(offset: number, limit: number, depth: number): { item: KmipItem; end: number } {
    if (depth > this.#maxDepth) {
      throw invalidMessage(`items nest deeper than ${this.#maxDepth}`, offset);
    }
    const { tag, type, length, end } = this.#readHeader(offset, limit);
    const valueStart = offset + TTLV_HEADER_BYTES;

    if (type === "Structure") {
      const children: KmipItem[] = [];
      let position = valueStart;
      while (position < end) {
        const child = this.readItem(position, end, depth + 1);
        children.push(child.item);
        position = child.end;
      }
      return { item: { tag, type, value: children }, end };
    }

    this.#checkPadding(valueStart + length, end);
    return { item: this.#readScalar(tag, type, valueStart, length), end };
  }

  /** Reads and checks an item header; `end` is the offset after the padded value. */
  #readHeader(offset: number, limit: number) {
    if (limit - offset < TTLV_HEADER_BYTES) {
      throw invalidMessage("TTLV item header is truncated", offset);
    }
    const view = this.#view;
    const tag = (view.getUint8(offset) << 16) | view.getUint16(offset + 1);
    if (!isTagInValidRange(tag)) {
      throw invalidMessage(`tag 0x${tag.toString(16)} is outside the KMIP ranges`, offset);
    }
    const typeByte = view.getUint8(offset + 3);
    const type = itemTypeFromByte(typeByte);
    if (type === undefined) {
      throw invalidMessage(`unknown item type 0x${typeByte.toString(16)}`, offset + 3);
    }

    const length = view.getUint32(offset + 4);
    const end = offset + TTLV_HEADER_BYTES + paddedLength(length);
    if (end > limit) {
      throw invalidMessage("TTLV item length runs past the end of its container", offset + 4);
    }
    const fixed = FIXED_LENGTHS[type];
    if (fixed !== undefined && length !== fixed) {
      throw invalidMessage(`${type} item has length ${length}, expected ${fixed}`, offset + 4);
    }
    if (type === "Structure" && length % 8 !== 0) {
      throw invalidMessage("Structure length is not a multiple of 8", offset + 4);
    }
    return { tag, type, length, end };
  }

  #checkPadding(from: number, to: number): void {
    for (let position = from; position < to; position++) {
      if (this.#bytes[position] !== 0) {
        throw new KmipDecodeError("InvalidMessage", "TTLV padding byte is not zero", position);
      }
    }
  }

  #readScalar(
    tag: number,
    type: Exclude<ItemType, "Structure">,
    start: number,
    length: number,
  ): ScalarItem {
    const view = this.#view;
    switch (type) {
      case "Integer":
        return { tag, type, value: view.getInt32(start) };
      case "Enumeration":
      case "Interval":
        return { tag, type, value: view.getUint32(start) };
      case "LongInteger":
      case "DateTime":
      case "DateTimeExtended":
        return { tag, type, value: view.getBigInt64(start) };
      case "Boolean":
        return { tag, type, value: this.#readBoolean(start) };
      case "BigInteger":
        if (length === 0 || length % 8 !== 0) {
          throw new KmipDecodeError(
            "InvalidMessage",
            `BigInteger length ${length} is not a positive multiple of 8`,
            start - 4,
          );
        }
        return {
          tag,
          type,
          value: bigIntFromTwosComplement(this.#bytes.subarray(start, start + length)),
        };
      case "TextString":
        return { tag, type, value: this.#readText(start, length) };
      case "ByteString":
        return { tag, type, value: this.#bytes.slice(start, start + length) };
    }
  }

  #readBoolean(start: number): boolean {
    const value = this.#view.getBigUint64(start);
    if (value > 1n)
      throw new KmipDecodeError("InvalidField", "Boolean value is neither 0 nor 1", start);
    return value === 1n;
  }

  #readText(start: number, length: number): string {
    try {
      return UTF8.decode(this.#bytes.subarray(start, start + length));
    } catch {
      throw new KmipDecodeError("InvalidField", "TextString is not valid UTF-8", start);
    }
  }
}
