import { constants, privateDecrypt } from "node:crypto";
import { aesKeyUnwrapPad } from "../../../crypto/keywrap.ts";
import { KeywardError } from "../../../errors.ts";
import {
  assertVersionImportAllowed,
  type ImportKeyOptions,
  importedVersionMaterial,
  importKey,
  importKeyVersion,
  type VersionMaterial,
  validateImportOptions,
} from "../../../keys/index.ts";
import type { KeyType } from "../../../keys/types.ts";
import { assertNotPendingDeletion, type OperationContext, requireValue } from "../access.ts";
import { decodeBase64 } from "../encoding.ts";
import { describeKey } from "../key-info.ts";
import type { KeyInfo, Outcome } from "../types.ts";
import type { WrappingKey, WrappingKeyStore } from "../wrapping-key.ts";
import { parseAutoRotatePeriod } from "./keys.ts";

/** `hash_function` values (Vault's names) and the OAEP hash each selects, for the label and MGF1. */
export const OAEP_HASH_FUNCTIONS = {
  SHA1: "sha1",
  SHA224: "sha224",
  SHA256: "sha256",
  SHA384: "sha384",
  SHA512: "sha512",
} as const;
export type OaepHashFunction = keyof typeof OAEP_HASH_FUNCTIONS;

/** Length of the ephemeral AES-256 key that the RSA-OAEP part carries, in bytes. */
const EPHEMERAL_KEY_LENGTH = 32;

/** Smallest AES-KWP output: one 64-bit integrity block and one data block (RFC 5649). */
const MIN_KWP_LENGTH = 16;

/** The wrapped key and how it was wrapped, as both import endpoints take them. */
export interface WrappedKeyRequest {
  /** Base64 of RSA-OAEP(ephemeral AES-256 key) followed by AES-KWP(target key). */
  ciphertext?: string;
  /** The OAEP hash; SHA256 when absent. */
  hashFunction?: string;
}

export interface ImportKeyRequest extends WrappedKeyRequest {
  type?: KeyType;
  allowRotation?: boolean;
  derived?: boolean;
  /** Rejected when true: Keyward, like Vault, does not import convergent keys. */
  convergentEncryption?: boolean;
  exportable?: boolean;
  allowPlaintextBackup?: boolean;
  /** Seconds, or a duration string such as `24h`. */
  autoRotatePeriod?: number | string;
}

/** Returns the one error of every unwrap failure, so the response does not reveal which step failed. */
function unwrapFailed(cause?: unknown): KeywardError {
  return new KeywardError(
    "key_unwrap_failed",
    "ciphertext could not be unwrapped with this mount's wrapping key: wrap the ephemeral AES-256 key with RSA-OAEP under the key from wrapping_key (with the hash named by hash_function), and the target key with AES-KWP (RFC 5649) under the ephemeral key",
    { field: "ciphertext", cause },
  );
}

function oaepHashOf(value: string | undefined): string {
  if (value === undefined) return OAEP_HASH_FUNCTIONS.SHA256;
  const hash = OAEP_HASH_FUNCTIONS[value.toUpperCase() as OaepHashFunction];
  if (hash === undefined) {
    throw new KeywardError(
      "invalid_field",
      `"hash_function" must be one of ${Object.keys(OAEP_HASH_FUNCTIONS).join(", ")}`,
      { field: "hash_function" },
    );
  }
  return hash;
}

/**
 * Unwraps an import `ciphertext` with the mount's wrapping key and returns
 * the target key's bytes. The caller must zero them once used. Throws
 * `invalid_field` or `invalid_base64` for a malformed value, and
 * `key_unwrap_failed` when RSA-OAEP or the AES-KWP integrity check fails.
 */
export function unwrapImportCiphertext(wrapping: WrappingKey, request: WrappedKeyRequest): Buffer {
  const oaepHash = oaepHashOf(request.hashFunction);
  const wrapped = decodeBase64(requireValue(request.ciphertext, "ciphertext"), "ciphertext");
  const rsaLength = wrapping.ciphertextLength;
  const kwpLength = wrapped.length - rsaLength;
  if (kwpLength < MIN_KWP_LENGTH || kwpLength % 8 !== 0) {
    throw new KeywardError(
      "invalid_field",
      `"ciphertext" is ${wrapped.length} bytes; it must be the ${rsaLength}-byte RSA-OAEP ciphertext followed by the AES-KWP output, a multiple of 8 bytes and at least ${MIN_KWP_LENGTH}`,
      { field: "ciphertext" },
    );
  }

  let ephemeral: Buffer;
  try {
    ephemeral = privateDecrypt(
      { key: wrapping.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
      wrapped.subarray(0, rsaLength),
    );
  } catch (error) {
    throw unwrapFailed(error);
  }
  try {
    if (ephemeral.length !== EPHEMERAL_KEY_LENGTH) throw unwrapFailed();
    return aesKeyUnwrapPad(ephemeral, wrapped.subarray(rsaLength));
  } catch (error) {
    if (error instanceof KeywardError && error.code === "key_unwrap_failed") throw error;
    throw unwrapFailed(error);
  } finally {
    ephemeral.fill(0);
  }
}

/** Unwraps `request` and builds version material of `type` from it, zeroing the unwrapped bytes. */
async function unwrapMaterial(
  wrappingKeys: WrappingKeyStore,
  request: WrappedKeyRequest,
  type: KeyType,
  hmacKeySize?: number,
): Promise<VersionMaterial> {
  // Checked before the wrapping key is read, which may generate it.
  oaepHashOf(request.hashFunction);
  decodeBase64(requireValue(request.ciphertext, "ciphertext"), "ciphertext");
  const keyBytes = unwrapImportCiphertext(await wrappingKeys.get(), request);
  try {
    return importedVersionMaterial(type, keyBytes, "ciphertext", hmacKeySize);
  } finally {
    keyBytes.fill(0);
  }
}

function alreadyExists(name: string): KeywardError {
  return new KeywardError(
    "already_exists",
    `key "${name}" already exists; import a new version with import_version, or import under another name`,
  );
}

/**
 * Imports a wrapped key as the new key `name`, marked imported. Throws
 * `already_exists` when the key exists, and the errors of
 * `unwrapImportCiphertext` and `importedVersionMaterial`.
 */
export async function importNamedKey(
  context: OperationContext,
  wrappingKeys: WrappingKeyStore,
  name: string,
  request: ImportKeyRequest,
): Promise<Outcome<KeyInfo>> {
  if (request.convergentEncryption === true) {
    throw new KeywardError(
      "invalid_field",
      "imported keys cannot use convergent encryption; leave convergent_encryption out",
      { field: "convergent_encryption" },
    );
  }
  const type: KeyType = request.type ?? "aes256-gcm96";
  const options: ImportKeyOptions = {
    derived: request.derived,
    exportable: request.exportable,
    allowPlaintextBackup: request.allowPlaintextBackup,
    autoRotatePeriod: parseAutoRotatePeriod(request.autoRotatePeriod),
    allowRotation: request.allowRotation,
  };
  // Settings are checked before the unwrap, so a bad request costs no RSA decryption.
  validateImportOptions(name, type, options);
  if ((await context.store.find(name)) !== undefined) throw alreadyExists(name);

  const material = await unwrapMaterial(wrappingKeys, request, type);
  const key = importKey(name, type, options, context.now, material);
  const stored = await context.store.withLock(name, () => context.store.create(key));
  if (!stored.created) throw alreadyExists(name);
  context.logger.info(
    { mount: context.mount, key: name, type, allowRotation: key.allowRotation },
    "key imported",
  );
  return { value: describeKey(stored.key, context.now), warnings: [] };
}

/**
 * Imports a wrapped key as the next version of the imported key `name`.
 * The unwrapped key must be of the key's type (and, for `hmac`, of its
 * size). Throws `not_found`, `invalid_state` for a key that was not
 * imported or whose state forbids new versions, and the unwrap errors.
 */
export async function importNamedKeyVersion(
  context: OperationContext,
  wrappingKeys: WrappingKeyStore,
  name: string,
  request: WrappedKeyRequest,
): Promise<Outcome<KeyInfo>> {
  const snapshot = await context.store.get(name);
  // The same checks run again on the key read under the lock below; these spare a doomed unwrap.
  assertNotPendingDeletion(snapshot);
  assertVersionImportAllowed(snapshot, context.now);
  const material = await unwrapMaterial(
    wrappingKeys,
    request,
    snapshot.type,
    snapshot.type === "hmac" ? snapshot.keySize : undefined,
  );
  const key = await context.store.update(name, (current) => {
    assertNotPendingDeletion(current);
    // The material was built for the key as read before the unwrap; a
    // restore may have replaced it with a key of another type since.
    if (current.type !== snapshot.type || current.keySize !== snapshot.keySize) {
      throw new KeywardError(
        "invalid_state",
        `key "${name}" changed type or size while the version was imported; send the request again`,
      );
    }
    return importKeyVersion(current, context.now, material);
  });
  context.logger.info(
    { mount: context.mount, key: name, version: key.latestVersion },
    "key version imported",
  );
  return { value: describeKey(key, context.now), warnings: [] };
}
