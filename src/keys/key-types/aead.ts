import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  type AeadAlgorithm,
  aeadKeyLength,
  aeadOpen,
  aeadSeal,
} from "../../crypto/aead.ts";
import { hmac } from "../../crypto/hash.ts";
import { hkdfSha256 } from "../../crypto/hkdf.ts";
import { randomBytes } from "../../crypto/random.ts";
import { decryptionFailed } from "../../errors.ts";
import type { KeyType, KeyVersion } from "../types.ts";
import type { DecryptParams, EncryptParams, KeyTypeDefinition } from "./definition.ts";
import { hmacKeyBytes, secretBytes, VERSION_HMAC_KEY_LENGTH } from "./material.ts";

/** The HKDF salt for context-derived keys: empty, so RFC 5869 uses 32 zero bytes. */
const EMPTY_SALT = Buffer.alloc(0);

/**
 * Returns the key for one operation: the version key itself, or for derived
 * keys HKDF-SHA256(version key, empty salt, info = context).
 */
function operationKey(algorithm: AeadAlgorithm, secret: Buffer, context?: Buffer): Buffer {
  if (context === undefined) return secret;
  return hkdfSha256(secret, EMPTY_SALT, context, aeadKeyLength(algorithm));
}

/**
 * Derives the nonce of a convergent encryption from the plaintext and the
 * associated data, so equal inputs under one context give equal ciphertexts.
 *
 * The nonce key comes from the version's HMAC key, not the encryption key,
 * to keep the two uses of key material apart. The associated data is part of
 * the input because reusing a GCM nonce with different associated data would
 * expose the authentication key.
 */
function convergentNonce(version: KeyVersion, params: EncryptParams): Buffer {
  const context = params.context ?? Buffer.alloc(0);
  const nonceKey = hkdfSha256(hmacKeyBytes(version), EMPTY_SALT, context, 32);
  const associatedData = params.associatedData ?? Buffer.alloc(0);
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(associatedData.length));
  const mac = hmac("sha2-256", nonceKey, Buffer.concat([length, associatedData, params.plaintext]));
  return mac.subarray(0, AEAD_NONCE_LENGTH);
}

/**
 * Builds the definition of an AEAD key type. Ciphertext payloads are
 * nonce (12 bytes) || ciphertext || tag (16 bytes).
 */
export function aeadKeyType(type: KeyType, algorithm: AeadAlgorithm): KeyTypeDefinition {
  const keyLength = aeadKeyLength(algorithm);
  return {
    type,
    derivation: true,
    convergentEncryption: true,
    exportKinds: ["encryption-key"],
    secretExportFormat: "base64",
    generateVersion: () => ({
      secret: randomBytes(keyLength).toString("base64"),
      hmacKey: randomBytes(VERSION_HMAC_KEY_LENGTH).toString("base64"),
    }),
    checkSecret(version) {
      if (secretBytes(version).length !== keyLength) {
        throw new Error(`a ${type} secret is ${keyLength} bytes`);
      }
    },
    encryptor: {
      encrypt(version, params) {
        const key = operationKey(algorithm, secretBytes(version), params.context);
        const nonce = params.convergent
          ? convergentNonce(version, params)
          : randomBytes(AEAD_NONCE_LENGTH);
        const sealed = aeadSeal(algorithm, key, nonce, params.plaintext, params.associatedData);
        return Buffer.concat([nonce, sealed]);
      },
      decrypt(version, params: DecryptParams) {
        if (params.payload.length < AEAD_NONCE_LENGTH + AEAD_TAG_LENGTH) throw decryptionFailed();
        const key = operationKey(algorithm, secretBytes(version), params.context);
        const nonce = params.payload.subarray(0, AEAD_NONCE_LENGTH);
        const sealed = params.payload.subarray(AEAD_NONCE_LENGTH);
        return aeadOpen(algorithm, key, nonce, sealed, params.associatedData);
      },
    },
  };
}
