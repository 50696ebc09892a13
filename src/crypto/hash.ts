import { createHash, createHmac } from "node:crypto";
import { constantTimeEqual } from "./compare.ts";

/** Hash algorithms by their Vault transit names. */
export const HASH_ALGORITHMS = [
  "sha1",
  "sha2-224",
  "sha2-256",
  "sha2-384",
  "sha2-512",
  "sha3-224",
  "sha3-256",
  "sha3-384",
  "sha3-512",
] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

interface HashSpec {
  /** The OpenSSL digest name node:crypto takes. */
  nodeName: string;
  /** Output length in bytes. */
  length: number;
}

const HASH_SPECS: Record<HashAlgorithm, HashSpec> = {
  sha1: { nodeName: "sha1", length: 20 },
  "sha2-224": { nodeName: "sha224", length: 28 },
  "sha2-256": { nodeName: "sha256", length: 32 },
  "sha2-384": { nodeName: "sha384", length: 48 },
  "sha2-512": { nodeName: "sha512", length: 64 },
  "sha3-224": { nodeName: "sha3-224", length: 28 },
  "sha3-256": { nodeName: "sha3-256", length: 32 },
  "sha3-384": { nodeName: "sha3-384", length: 48 },
  "sha3-512": { nodeName: "sha3-512", length: 64 },
};

export function isHashAlgorithm(value: unknown): value is HashAlgorithm {
  return typeof value === "string" && (HASH_ALGORITHMS as readonly string[]).includes(value);
}

/** Returns the digest name node:crypto and OpenSSL use for `algorithm`. */
export function nodeHashName(algorithm: HashAlgorithm): string {
  return HASH_SPECS[algorithm].nodeName;
}

/** Returns the digest length of `algorithm` in bytes. */
export function hashLength(algorithm: HashAlgorithm): number {
  return HASH_SPECS[algorithm].length;
}

export function digest(algorithm: HashAlgorithm, data: Uint8Array): Buffer {
  return createHash(nodeHashName(algorithm)).update(data).digest();
}

export function hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac(nodeHashName(algorithm), key).update(data).digest();
}

/**
 * Checks an HMAC tag in constant time. `tagLength` (bytes) allows a
 * truncated tag (RFC 2104, section 5); `tag` must have exactly that length.
 */
export function hmacVerify(
  algorithm: HashAlgorithm,
  key: Uint8Array,
  data: Uint8Array,
  tag: Uint8Array,
  tagLength: number = hashLength(algorithm),
): boolean {
  if (tag.length !== tagLength || tagLength > hashLength(algorithm)) return false;
  const expected = hmac(algorithm, key, data).subarray(0, tagLength);
  return constantTimeEqual(expected, tag);
}
