import { type CipherGCMTypes, createCipheriv, createDecipheriv } from "node:crypto";
import { decryptionFailed } from "../errors.ts";

/** The AEAD ciphers Keyward uses, by their OpenSSL names. */
export const AEAD_ALGORITHMS = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] as const;
export type AeadAlgorithm = (typeof AEAD_ALGORITHMS)[number];

/** Nonce length for every AEAD algorithm here: 96 bits (NIST SP 800-38D, RFC 8439). */
export const AEAD_NONCE_LENGTH = 12;

/** Authentication tag length for every AEAD algorithm here: 128 bits. */
export const AEAD_TAG_LENGTH = 16;

const KEY_LENGTHS: Record<AeadAlgorithm, number> = {
  "aes-128-gcm": 16,
  "aes-256-gcm": 32,
  "chacha20-poly1305": 32,
};

/** Returns the key length of `algorithm` in bytes. */
export function aeadKeyLength(algorithm: AeadAlgorithm): number {
  return KEY_LENGTHS[algorithm];
}

function checkParameters(algorithm: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== KEY_LENGTHS[algorithm]) {
    throw new RangeError(`${algorithm} needs a ${KEY_LENGTHS[algorithm]}-byte key`);
  }
  if (nonce.length !== AEAD_NONCE_LENGTH) {
    throw new RangeError(`${algorithm} needs a ${AEAD_NONCE_LENGTH}-byte nonce`);
  }
}

/**
 * Encrypts `plaintext` and returns ciphertext || tag.
 * Throws a RangeError when the key or nonce has the wrong length.
 */
export function aeadSeal(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associatedData?: Uint8Array,
): Buffer {
  checkParameters(algorithm, key, nonce);
  // The cast selects node's AEAD overload; chacha20-poly1305 takes the same options.
  const cipher = createCipheriv(algorithm as CipherGCMTypes, key, nonce, {
    authTagLength: AEAD_TAG_LENGTH,
  });
  if (associatedData !== undefined && associatedData.length > 0) cipher.setAAD(associatedData);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([ciphertext, cipher.getAuthTag()]);
}

/**
 * Decrypts ciphertext || tag and returns the plaintext.
 * Throws `decryptionFailed()` for a short input, a wrong key, nonce, tag or
 * associated data, and a RangeError when the key or nonce has the wrong length.
 */
export function aeadOpen(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  associatedData?: Uint8Array,
): Buffer {
  checkParameters(algorithm, key, nonce);
  if (sealed.length < AEAD_TAG_LENGTH) throw decryptionFailed();
  const ciphertext = sealed.subarray(0, sealed.length - AEAD_TAG_LENGTH);
  const tag = sealed.subarray(sealed.length - AEAD_TAG_LENGTH);
  try {
    // authTagLength pins the tag size, so node rejects truncated GCM tags.
    const decipher = createDecipheriv(algorithm as CipherGCMTypes, key, nonce, {
      authTagLength: AEAD_TAG_LENGTH,
    });
    decipher.setAuthTag(tag);
    if (associatedData !== undefined && associatedData.length > 0) decipher.setAAD(associatedData);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw decryptionFailed(error);
  }
}
