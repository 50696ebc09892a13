import { createCipheriv, createDecipheriv } from "node:crypto";
import { decryptionFailed } from "../errors.ts";

/** The alternative initial value of AES key wrap with padding (RFC 5649, section 3). */
const KWP_ALTERNATIVE_IV = Buffer.from("a65959a6", "hex");

function kwpCipherName(
  kek: Uint8Array,
): "id-aes128-wrap-pad" | "id-aes192-wrap-pad" | "id-aes256-wrap-pad" {
  switch (kek.length) {
    case 16:
      return "id-aes128-wrap-pad";
    case 24:
      return "id-aes192-wrap-pad";
    case 32:
      return "id-aes256-wrap-pad";
    default:
      throw new RangeError("AES key wrap needs a 16-, 24- or 32-byte key-encryption key");
  }
}

/** Wraps `key` under `kek` with AES key wrap with padding (RFC 5649). */
export function aesKeyWrapPad(kek: Uint8Array, key: Uint8Array): Buffer {
  const cipher = createCipheriv(kwpCipherName(kek), kek, KWP_ALTERNATIVE_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/**
 * Unwraps an RFC 5649 wrapped key.
 * Throws `decryptionFailed()` when the integrity check or padding is wrong.
 */
export function aesKeyUnwrapPad(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const name = kwpCipherName(kek);
  try {
    const decipher = createDecipheriv(name, kek, KWP_ALTERNATIVE_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch (error) {
    throw decryptionFailed(error);
  }
}
