/**
 * TTLV layout rules shared by the encoder and decoder (KMIP Specification,
 * "Message Encoding"): header size, fixed value lengths, padding and the
 * two's complement form of Big Integer.
 */
import type { ItemType } from "./tags.ts";

export const TTLV_HEADER_BYTES = 8;

/** Value lengths of the fixed-size item types, before padding. */
export const FIXED_LENGTHS: Partial<Record<ItemType, number>> = {
  Integer: 4,
  LongInteger: 8,
  Enumeration: 4,
  Boolean: 8,
  DateTime: 8,
  Interval: 4,
  DateTimeExtended: 8,
};

export function paddedLength(length: number): number {
  return Math.ceil(length / 8) * 8;
}

/** Reads big-endian two's complement bytes as a bigint. */
export function bigIntFromTwosComplement(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let value = BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
  if ((bytes[0]! & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

/** Writes a bigint as big-endian two's complement, sign-extended to a multiple of 8 bytes. */
export function bigIntToTwosComplement(value: bigint): Buffer {
  let byteLength = 8;
  while (value < -(1n << BigInt(byteLength * 8 - 1)) || value >= 1n << BigInt(byteLength * 8 - 1)) {
    byteLength += 8;
  }
  const unsigned = value < 0n ? value + (1n << BigInt(byteLength * 8)) : value;
  return Buffer.from(unsigned.toString(16).padStart(byteLength * 2, "0"), "hex");
}
