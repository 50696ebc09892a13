import { randomBytes } from "node:crypto";
import { decryptionFailed } from "../errors.ts";
import { AES_KEY_BYTES } from "./aes-gcm.ts";
import type { SealConfig } from "./seal-config.ts";
import { combineShares, decodeShare, encodeShares, shareLength, splitSecret } from "./shamir.ts";
import type { InitResult } from "./types.ts";

/** The root key length in bytes: one AES-256 key, which encrypts the keyring. */
export const ROOT_KEY_BYTES = AES_KEY_BYTES;

export function generateRootKey(): Buffer {
  return randomBytes(ROOT_KEY_BYTES);
}

/** Splits the root key into the shares that `config` requests, encoded as hex and base64. */
export async function splitRootKey(rootKey: Buffer, config: SealConfig): Promise<InitResult> {
  const shares = await splitSecret(rootKey, config.shares, config.threshold);
  try {
    return encodeShares(shares);
  } finally {
    for (const share of shares) share.fill(0);
  }
}

/** Decodes one submitted share of a root key split with `config`. Throws `invalid_field` on `key`. */
export function decodeRootKeyShare(share: string, config: SealConfig): Buffer {
  return decodeShare(share, shareLength(ROOT_KEY_BYTES, config.shares));
}

/**
 * Rebuilds a root key from shares and zeroes the shares. Any failure, such
 * as two shares with the same x-coordinate, counts as a wrong set of shares
 * and throws `decryption_failed`. A wrong set can also rebuild a wrong key
 * without failing here, so the caller must check the key.
 */
export async function rebuildRootKey(shares: Buffer[]): Promise<Buffer> {
  try {
    const combined = await combineShares(shares);
    const rootKey = Buffer.from(combined);
    combined.fill(0);
    return rootKey;
  } catch (error) {
    throw decryptionFailed(error);
  } finally {
    for (const share of shares) share.fill(0);
  }
}
