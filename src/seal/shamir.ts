import { combine, split } from "shamir-secret-sharing";
import { invalidField } from "../errors.ts";

/**
 * Shamir secret sharing of the root key, over the audited
 * `shamir-secret-sharing` package (GF(2^8), one x-coordinate byte appended
 * to each share).
 *
 * With one share, as in Vault, the share is the root key itself: the
 * package needs at least two shares, and one share of a 1-of-1 split would
 * reveal the key anyway.
 */

/** Shares a root key may be split into, as Vault allows. */
export const MAX_SHARES = 255;

/** Returns the byte length of each share of a `secretBytes`-byte secret split into `shares` shares. */
export function shareLength(secretBytes: number, shares: number): number {
  return shares === 1 ? secretBytes : secretBytes + 1;
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which rebuild it.
 * The counts must already be valid (see `validateShareCounts`).
 */
export async function splitSecret(
  secret: Uint8Array,
  shares: number,
  threshold: number,
): Promise<Uint8Array[]> {
  if (shares === 1) return [Uint8Array.from(secret)];
  // The package checks `constructor === Uint8Array`, so a Buffer is copied
  // into a plain Uint8Array first.
  const plain = Uint8Array.from(secret);
  try {
    return await split(plain, shares, threshold);
  } finally {
    plain.fill(0);
  }
}

/**
 * Rebuilds a secret from shares. A wrong set of shares yields a wrong
 * secret, not an error, so the caller must check the result (the keyring's
 * AEAD tag does that). Throws when two shares have the same x-coordinate.
 */
export async function combineShares(shares: Uint8Array[]): Promise<Uint8Array> {
  if (shares.length === 1) return Uint8Array.from(shares[0]!);
  const plain = shares.map((share) => Uint8Array.from(share));
  try {
    return await combine(plain);
  } finally {
    for (const share of plain) share.fill(0);
  }
}

/** The shares, each as hex and as base64, in the same order. */
export interface EncodedShares {
  keysHex: string[];
  keysBase64: string[];
}

export function encodeShares(shares: Uint8Array[]): EncodedShares {
  return {
    keysHex: shares.map((share) => Buffer.from(share).toString("hex")),
    keysBase64: shares.map((share) => Buffer.from(share).toString("base64")),
  };
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes one share given as hex or standard base64 (with padding). Hex is
 * tried first: a share's hex form has twice as many characters as its bytes
 * and its base64 form about 4/3 as many, so one length never fits both.
 * Throws `invalid_field` on field `key` for anything else or a share of the
 * wrong length; the message never contains the input.
 */
export function decodeShare(input: string, expectedBytes: number): Buffer {
  const text = typeof input === "string" ? input.trim() : "";
  if (text.length === expectedBytes * 2 && HEX.test(text)) {
    return Buffer.from(text, "hex");
  }
  if (text.length % 4 === 0 && BASE64.test(text)) {
    const decoded = Buffer.from(text, "base64");
    if (decoded.length === expectedBytes) return decoded;
    decoded.fill(0);
  }
  throw invalidField(
    "key",
    `invalid unseal key: expected ${expectedBytes} bytes encoded as hex (${expectedBytes * 2} characters) or base64`,
  );
}
