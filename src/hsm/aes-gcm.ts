import { randomBytes } from "node:crypto";
import { endianness } from "node:os";
import pkcs11js from "pkcs11js";
import { decryptionFailed, KeywardError } from "../errors.ts";
import { HsmKeyObject } from "./key-object.ts";
import {
  decryptToCopy,
  findKey,
  type KeyObjectType,
  type KeyProtection,
  keySelector,
  readAttributes,
  readBoolean,
} from "./objects.ts";
import { emptyInput, hsmOperationFailed } from "./pkcs11-errors.ts";
import { generateSecretKey } from "./templates.ts";
import type { HsmToken, SessionContext } from "./token.ts";

/** AES-256 key length in bytes. */
export const AES_256_KEY_BYTES = 32;
/** GCM IV length in bytes: 96 bits, the length GCM uses without hashing (NIST SP 800-38D). */
export const GCM_IV_BYTES = 12;
/** GCM tag length in bytes (128 bits). */
export const GCM_TAG_BYTES = 16;

/** The output of `HsmAesKey.encrypt`. */
export interface HsmGcmCiphertext {
  /** The 12-byte IV, random for each encryption. */
  iv: Buffer;
  /** The ciphertext followed by the 16-byte tag. */
  ciphertext: Buffer;
}

const SECRET_KEY: KeyObjectType = {
  objectClass: pkcs11js.CKO_SECRET_KEY,
  keyType: pkcs11js.CKK_AES,
  kind: "AES key",
};

/** AES key lengths a token key may have, in bytes. */
export const AES_KEY_BYTES = [16, 24, 32] as const;
export type AesKeyBytes = (typeof AES_KEY_BYTES)[number];

/** AES block length in bytes, the CBC IV length. */
export const AES_BLOCK_BYTES = 16;

function gcmMechanism(iv: Buffer, aad: Uint8Array, tagBytes = GCM_TAG_BYTES): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_GCM,
      iv,
      ivBits: iv.length * 8,
      aad: Buffer.from(aad),
      tagBits: tagBytes * 8,
    } as pkcs11js.GcmParams,
  };
}

/** CKM_AES_CBC_PAD (PKCS#7 padding, which KMIP calls PKCS5) or CKM_AES_CBC (no padding). */
function cbcMechanism(iv: Buffer, pad: boolean): pkcs11js.Mechanism {
  return { mechanism: pad ? pkcs11js.CKM_AES_CBC_PAD : pkcs11js.CKM_AES_CBC, parameter: iv };
}

/**
 * An AES key kept in a token, 256 bits long unless created with another
 * length, and used with CKM_AES_GCM, or CKM_AES_CBC(_PAD). The key value
 * never leaves the token: it is generated there as sensitive and
 * non-extractable, and found again by its label, or by its label and
 * CKA_ID when it was found or generated with an ID. Each call looks the
 * handle up again, so a key deleted or replaced in the token is noticed.
 */
export class HsmAesKey extends HsmKeyObject {
  /**
   * Returns the AES key labelled `label` (and with CKA_ID `id`, when given),
   * or undefined when the token has none. Throws `hsm_failure` when the key
   * is not `lengthBytes` long (default 32, AES-256) or several keys match.
   */
  static find(
    token: HsmToken,
    label: string,
    id?: Buffer,
    lengthBytes: AesKeyBytes = AES_256_KEY_BYTES,
  ): Promise<HsmAesKey | undefined> {
    return token.run(
      (context) => {
        const handle = findKey(context, keySelector(SECRET_KEY, label, id));
        if (handle === undefined) return undefined;
        checkKeyLength(context, handle, label, lengthBytes);
        return new HsmAesKey(token, label, id);
      },
      { retryOnLostSession: true },
    );
  }

  /**
   * Generates an AES key of `lengthBytes` (default 32, AES-256) in the
   * token: a token object (it survives the session), private (usable only
   * after login), sensitive and non-extractable, allowed to encrypt and
   * decrypt and nothing else. Its CKA_ID is `id`, or random when absent.
   * Throws `already_exists` when a key with the label (and that ID, when
   * given) exists.
   */
  static async generate(
    token: HsmToken,
    label: string,
    id?: Buffer,
    lengthBytes: AesKeyBytes = AES_256_KEY_BYTES,
  ): Promise<HsmAesKey> {
    await generateSecretKey(token, {
      mechanism: pkcs11js.CKM_AES_KEY_GEN,
      name: "AES key",
      label,
      id,
      key: {
        type: SECRET_KEY,
        attributes: [{ type: pkcs11js.CKA_VALUE_LEN, value: lengthBytes }],
        usage: {
          encrypt: true,
          decrypt: true,
          wrap: false,
          unwrap: false,
          sign: false,
          verify: false,
          derive: false,
        },
      },
    });
    return new HsmAesKey(token, label, id);
  }

  /**
   * Encrypts `plaintext` with a fresh random IV, authenticating `aad` with it.
   * NOTE: the IV comes from node:crypto. An HSM in a FIPS mode that insists
   * on generating GCM IVs itself rejects it; such tokens are untested.
   */
  encrypt(plaintext: Uint8Array, aad: Uint8Array): Promise<HsmGcmCiphertext> {
    if (plaintext.length === 0) return Promise.reject(emptyInput("plaintext"));
    return this.withObject(SECRET_KEY, async (context, handle) => {
      const iv = randomBytes(GCM_IV_BYTES);
      const output = Buffer.alloc(plaintext.length + GCM_TAG_BYTES);
      try {
        context.module.C_EncryptInit(context.session, gcmMechanism(iv, aad), handle);
        const ciphertext = await context.module.C_EncryptAsync(
          context.session,
          Buffer.from(plaintext),
          output,
        );
        return { iv, ciphertext: Buffer.from(ciphertext) };
      } catch (error) {
        throw hsmOperationFailed(`encrypt with the AES key "${this.label}"`, error);
      }
    });
  }

  /**
   * Decrypts the output of `encrypt`. Throws `decryption_failed` when the
   * tag does not verify (another key, IV or AAD, or modified bytes).
   */
  decrypt(input: HsmGcmCiphertext, aad: Uint8Array): Promise<Buffer> {
    if (input.iv.length !== GCM_IV_BYTES || input.ciphertext.length < GCM_TAG_BYTES) {
      return Promise.reject(decryptionFailed());
    }
    return this.#decrypt(gcmMechanism(input.iv, aad), input.ciphertext);
  }

  /**
   * Encrypts with AES-GCM under a caller's IV and returns ciphertext || tag
   * (`tagBytes` long). The caller must never repeat an IV under one key.
   */
  encryptGcm(
    iv: Buffer,
    plaintext: Uint8Array,
    aad: Uint8Array,
    tagBytes: number,
  ): Promise<Buffer> {
    return this.#encrypt(
      gcmMechanism(iv, aad, tagBytes),
      plaintext,
      plaintext.length + tagBytes,
      "GCM",
    );
  }

  /** Decrypts ciphertext || tag of `encryptGcm`; throws `decryption_failed` when the tag does not verify. */
  decryptGcm(iv: Buffer, input: Uint8Array, aad: Uint8Array, tagBytes: number): Promise<Buffer> {
    if (input.length < tagBytes) return Promise.reject(decryptionFailed());
    return this.#decrypt(gcmMechanism(iv, aad, tagBytes), input);
  }

  /**
   * Encrypts with AES-CBC under a 16-byte IV, with PKCS#7 padding when `pad`
   * is true. Without padding the input must be whole blocks, or the token
   * fails the call (`hsm_failure`).
   */
  encryptCbc(iv: Buffer, plaintext: Uint8Array, pad: boolean): Promise<Buffer> {
    const length = pad
      ? (Math.floor(plaintext.length / AES_BLOCK_BYTES) + 1) * AES_BLOCK_BYTES
      : plaintext.length;
    return this.#encrypt(cbcMechanism(iv, pad), plaintext, length, "CBC");
  }

  /** Decrypts `encryptCbc` output; throws `decryption_failed` when the padding is invalid. */
  decryptCbc(iv: Buffer, ciphertext: Uint8Array, pad: boolean): Promise<Buffer> {
    return this.#decrypt(cbcMechanism(iv, pad), ciphertext);
  }

  #encrypt(
    mechanism: pkcs11js.Mechanism,
    plaintext: Uint8Array,
    outputLength: number,
    mode: string,
  ): Promise<Buffer> {
    if (plaintext.length === 0) return Promise.reject(emptyInput("plaintext"));
    return this.withObject(SECRET_KEY, async (context, handle) => {
      try {
        context.module.C_EncryptInit(context.session, mechanism, handle);
        const output = await context.module.C_EncryptAsync(
          context.session,
          Buffer.from(plaintext),
          Buffer.alloc(outputLength),
        );
        return Buffer.from(output);
      } catch (error) {
        throw hsmOperationFailed(`encrypt (${mode}) with the AES key "${this.label}"`, error);
      }
    });
  }

  #decrypt(mechanism: pkcs11js.Mechanism, input: Uint8Array): Promise<Buffer> {
    if (input.length === 0) return Promise.reject(emptyInput("ciphertext"));
    return this.withObject(SECRET_KEY, (context, handle) =>
      decryptToCopy(
        context,
        mechanism,
        handle,
        Buffer.from(input),
        input.length,
        `decrypt with the AES key "${this.label}"`,
      ),
    );
  }

  /** Reads CKA_ENCRYPT and CKA_DECRYPT, which encryption and decryption with this key need. */
  permissions(): Promise<{ encrypt: boolean; decrypt: boolean }> {
    return this.withObject(SECRET_KEY, (context, handle) => {
      const [encrypt, decrypt] = readAttributes(context, handle, [
        pkcs11js.CKA_ENCRYPT,
        pkcs11js.CKA_DECRYPT,
      ]);
      return { encrypt: readBoolean(encrypt), decrypt: readBoolean(decrypt) };
    });
  }

  /** Reads whether the token keeps the key's value secret. */
  protection(): Promise<KeyProtection> {
    return this.readProtection(SECRET_KEY, pkcs11js.CKA_VALUE);
  }
}

function checkKeyLength(
  context: SessionContext,
  handle: Buffer,
  label: string,
  expectedBytes: number,
): void {
  const [length] = readAttributes(context, handle, [pkcs11js.CKA_VALUE_LEN]);
  const bytes = length === undefined || length.length === 0 ? 0 : Number(readUlong(length));
  if (bytes !== expectedBytes) {
    throw new KeywardError(
      "hsm_failure",
      `the AES key labelled "${label}" is ${bytes * 8} bits long, but Keyward needs a ${expectedBytes * 8}-bit key: use another label`,
    );
  }
}

/** Decodes a CK_ULONG attribute value, which the library returns in the platform's byte order. */
export function readUlong(value: Buffer): bigint {
  const little = endianness() === "LE";
  if (value.length === 8) return little ? value.readBigUInt64LE(0) : value.readBigUInt64BE(0);
  if (value.length === 4) return BigInt(little ? value.readUInt32LE(0) : value.readUInt32BE(0));
  return 0n;
}
