import { hkdfSync } from "node:crypto";

/** Maximum `info` length node:crypto's HKDF accepts, in bytes. */
export const HKDF_MAX_INFO_LENGTH = 1024;

/** Maximum HKDF-SHA256 output: 255 blocks of 32 bytes (RFC 5869, section 2.3). */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/**
 * Derives `length` bytes with HKDF-SHA256 (RFC 5869).
 * Throws a RangeError when `length` exceeds 255 * 32 bytes or `info` exceeds 1024 bytes.
 */
export function hkdfSha256(
  inputKeyMaterial: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw new RangeError(`HKDF-SHA256 output length must be 1 to ${HKDF_SHA256_MAX_LENGTH} bytes`);
  }
  if (info.length > HKDF_MAX_INFO_LENGTH) {
    throw new RangeError(`HKDF info must be at most ${HKDF_MAX_INFO_LENGTH} bytes`);
  }
  return Buffer.from(hkdfSync("sha256", inputKeyMaterial, salt, info, length));
}
