/**
 * Binary TTLV encoding of KMIP items. The layout rules are in ttlv-layout.ts
 * and the decoder is in ttlv.ts.
 */
import { KeywardError } from "../errors.ts";
import type { KmipItem, ScalarItem } from "./item.ts";
import { ITEM_TYPES } from "./tags.ts";
import {
  bigIntToTwosComplement,
  FIXED_LENGTHS,
  paddedLength,
  TTLV_HEADER_BYTES,
} from "./ttlv-layout.ts";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * Encodes an item tree as TTLV. Values outside their type's range are a
 * programming error. The tree is measured first, so the message is written
 * into one zero-filled buffer, whose zeros are the padding.
 */
export function encodeTtlv(item: KmipItem): Buffer {
  const buffer = Buffer.alloc(encodedLength(item));
  writeItem(item, buffer, 0);
  return buffer;
}

/** Returns the bytes an item takes, its header and padding included. */
function encodedLength(item: KmipItem): number {
  if (item.type === "Structure") {
    let length = TTLV_HEADER_BYTES;
    for (const child of item.value) length += encodedLength(child);
    return length;
  }
  return TTLV_HEADER_BYTES + paddedLength(valueLength(item));
}

/** Returns the length of a scalar's value before padding, as its header states it. */
function valueLength(item: ScalarItem): number {
  switch (item.type) {
    case "TextString":
      return Buffer.byteLength(item.value, "utf8");
    case "ByteString":
      return item.value.length;
    case "BigInteger":
      return bigIntToTwosComplement(item.value).length;
    default:
      return FIXED_LENGTHS[item.type]!;
  }
}

/** Writes an item at `offset` and returns the offset after it. */
function writeItem(item: KmipItem, buffer: Buffer, offset: number): number {
  if (!Number.isInteger(item.tag) || item.tag < 0 || item.tag > 0xffffff) {
    throw new KeywardError("internal", `KMIP tag ${item.tag} does not fit in 3 bytes`);
  }
  buffer.writeUIntBE(item.tag, offset, 3);
  buffer.writeUInt8(ITEM_TYPES[item.type], offset + 3);
  const valueStart = offset + TTLV_HEADER_BYTES;
  if (item.type === "Structure") {
    let end = valueStart;
    for (const child of item.value) end = writeItem(child, buffer, end);
    buffer.writeUInt32BE(end - valueStart, offset + 4);
    return end;
  }
  const length = writeScalar(item, buffer, valueStart);
  buffer.writeUInt32BE(length, offset + 4);
  return valueStart + paddedLength(length);
}

/** Writes a scalar's value at `offset` and returns its length before padding. */
function writeScalar(item: ScalarItem, buffer: Buffer, offset: number): number {
  switch (item.type) {
    case "Integer":
      checkRange(
        item,
        Number.isInteger(item.value) && item.value >= -0x80000000 && item.value <= 0x7fffffff,
      );
      buffer.writeInt32BE(item.value, offset);
      return 4;
    case "Enumeration":
    case "Interval":
      checkRange(item, Number.isInteger(item.value) && item.value >= 0 && item.value <= 0xffffffff);
      buffer.writeUInt32BE(item.value, offset);
      return 4;
    case "LongInteger":
    case "DateTime":
    case "DateTimeExtended":
      checkRange(item, item.value >= INT64_MIN && item.value <= INT64_MAX);
      buffer.writeBigInt64BE(item.value, offset);
      return 8;
    case "Boolean":
      buffer.writeUInt8(item.value ? 1 : 0, offset + 7);
      return 8;
    case "BigInteger": {
      const bytes = bigIntToTwosComplement(item.value);
      bytes.copy(buffer, offset);
      return bytes.length;
    }
    case "TextString":
      return buffer.write(item.value, offset, "utf8");
    case "ByteString":
      buffer.set(item.value, offset);
      return item.value.length;
  }
}

function checkRange(item: ScalarItem, inRange: boolean): void {
  if (!inRange) {
    throw new KeywardError(
      "internal",
      `KMIP ${item.type} value for tag 0x${item.tag.toString(16)} is out of range`,
    );
  }
}
