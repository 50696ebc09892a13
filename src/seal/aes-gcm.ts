import { createCipheriv, createDecipheriv } from "node:crypto";
import { randomBytes } from "../crypto/random.ts";

/** AES-256-GCM key length in bytes. */
export const AES_KEY_BYTES = 32;
/** GCM nonce length in bytes: 96 bits, the size GCM handles without hashing (NIST SP 800-38D). */
export const GCM_NONCE_BYTES = 12;
/** GCM authentication tag length in bytes. */
export const GCM_TAG_BYTES = 16;

export interface GcmCiphertext {
  nonce: Buffer;
  /** The ciphertext followed by the 16-byte tag. */
  sealed: Buffer;
}

/** Encrypts `plaintext` under a fresh random nonce, authenticating `aad` with it. */
export function encryptAesGcm(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): GcmCiphertext {
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { nonce, sealed };
}

/**
 * Decrypts the output of `encryptAesGcm`. Returns `undefined` when the tag
 * does not verify (wrong key, nonce, AAD or modified bytes), and the caller
 * turns that into its own error.
 */
export function decryptAesGcm(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer | undefined {
  if (sealed.length < GCM_TAG_BYTES || nonce.length !== GCM_NONCE_BYTES) return undefined;
  const tagStart = sealed.length - GCM_TAG_BYTES;
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(tagStart));
  const plaintext = decipher.update(sealed.subarray(0, tagStart));
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch {
    plaintext.fill(0);
    return undefined;
  }
}
