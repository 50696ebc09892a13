/**
 * Binary TTLV encoding of KMIP items. The layout rules are in ttlv-layout.ts
 * and the decoder is in ttlv.ts.
 */
import { KeywardError } from "../errors.ts";
import type { KmipItem, ScalarItem } from "./item.ts";
import { ITEM_TYPES } from "./tags.ts";
import { bigIntToTwosComplement, paddedLength, TTLV_HEADER_BYTES } from "./ttlv-layout.ts";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Encodes an item tree as TTLV. Values outside their type's range are a programming error. */
export function encodeTtlv(item: KmipItem): Buffer {
  const parts: Buffer[] = [];
  writeItem(item, parts);
  return Buffer.concat(parts);
}

function writeItem(item: KmipItem, parts: Buffer[]): number {
  const header = Buffer.alloc(TTLV_HEADER_BYTES);
  if (!Number.isInteger(item.tag) || item.tag < 0 || item.tag > 0xffffff) {
    throw new KeywardError("internal", `KMIP tag ${item.tag} does not fit in 3 bytes`);
  }
  header.writeUIntBE(item.tag, 0, 3);
  header.writeUInt8(ITEM_TYPES[item.type], 3);
  parts.push(header);
  if (item.type === "Structure") {
    let length = 0;
    for (const child of item.value) length += writeItem(child, parts);
    header.writeUInt32BE(length, 4);
    return TTLV_HEADER_BYTES + length;
  }
  const value = scalarBytes(item);
  header.writeUInt32BE(value.length, 4);
  const padded = Buffer.alloc(paddedLength(value.length));
  value.copy(padded);
  parts.push(padded);
  return TTLV_HEADER_BYTES + padded.length;
}

function scalarBytes(item: ScalarItem): Buffer {
  const buffer = Buffer.alloc(8);
  switch (item.type) {
    case "Integer":
      checkRange(
        item,
        Number.isInteger(item.value) && item.value >= -0x80000000 && item.value <= 0x7fffffff,
      );
      buffer.writeInt32BE(item.value);
      return buffer.subarray(0, 4);
    case "Enumeration":
    case "Interval":
      checkRange(item, Number.isInteger(item.value) && item.value >= 0 && item.value <= 0xffffffff);
      buffer.writeUInt32BE(item.value);
      return buffer.subarray(0, 4);
    case "LongInteger":
    case "DateTime":
    case "DateTimeExtended":
      checkRange(item, item.value >= INT64_MIN && item.value <= INT64_MAX);
      buffer.writeBigInt64BE(item.value);
      return buffer;
    case "Boolean":
      buffer.writeUInt8(item.value ? 1 : 0, 7);
      return buffer;
    case "BigInteger":
      return bigIntToTwosComplement(item.value);
    case "TextString":
      return Buffer.from(item.value, "utf8");
    case "ByteString":
      return Buffer.from(item.value);
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
