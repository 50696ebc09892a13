import { randomBytes } from "../../crypto/random.ts";
import { KeywardError } from "../../errors.ts";
import type { DecryptParams, Encryptor, EncryptParams } from "../key-types/definition.ts";
import { keyTypeDefinition } from "../key-types/index.ts";
import { assertAllowed } from "../lifecycle.ts";
import type { KeyVersion, ManagedKey } from "../types.ts";
import { formatVersionedValue, parseVersionedValue } from "../versioned-value.ts";
import { versionForProcessing, versionForProtection } from "../versions.ts";
import { requestContext, requireSupport } from "./checks.ts";

export interface EncryptRequest {
  plaintext: Buffer;
  context?: Buffer;
  /** Rejected: Keyward always chooses the nonce (random, or derived for convergent keys). */
  nonce?: Buffer;
  associatedData?: Buffer;
  keyVersion?: number;
}

export interface DecryptRequest {
  ciphertext: string;
  context?: Buffer;
  associatedData?: Buffer;
}

export interface DataKeyRequest {
  bits: 128 | 256 | 512;
  context?: Buffer;
  nonce?: Buffer;
  keyVersion?: number;
}

const DATA_KEY_BITS: readonly number[] = [128, 256, 512];

function encryptorOf(key: ManagedKey, operation: "encrypt" | "decrypt"): Encryptor {
  requireSupport(key, operation);
  const encryptor = keyTypeDefinition(key.type).encryptor;
  if (encryptor === undefined) throw new KeywardError("internal", "key type has no encryptor");
  return encryptor;
}

function rejectNonce(nonce: Buffer | undefined): void {
  if (nonce !== undefined) {
    throw new KeywardError(
      "invalid_field",
      "nonce is not accepted: Keyward generates a random nonce, or derives it for convergent keys",
      { field: "nonce" },
    );
  }
}

/** A checked encryption: the version that encrypts and the parameters for its key type. */
export interface PreparedEncryption {
  version: KeyVersion;
  params: EncryptParams;
}

/** A checked decryption: the version the ciphertext names and the parameters for its key type. */
export interface PreparedDecryption {
  version: KeyVersion;
  params: DecryptParams;
}

/**
 * Checks an encryption request as `encrypt` does and returns the version
 * and parameters, for an engine that encrypts outside this process (an
 * HSM-held key) and formats the result with `formatVersionedValue`.
 */
export function prepareEncryption(
  key: ManagedKey,
  request: EncryptRequest,
  now: Date,
): PreparedEncryption {
  requireSupport(key, "encrypt");
  assertAllowed(key, "encrypt", now);
  const version = versionForProtection(key, request.keyVersion);
  const context = requestContext(key, request.context);
  rejectNonce(request.nonce);
  return {
    version,
    params: {
      plaintext: request.plaintext,
      associatedData: request.associatedData,
      context,
      convergent: key.convergentEncryption,
    },
  };
}

/**
 * Encrypts `plaintext` with version `keyVersion` (default: latest) and returns
 * `keyward:v<N>:<base64>`.
 */
export function encrypt(
  key: ManagedKey,
  request: EncryptRequest,
  now: Date,
): { ciphertext: string; keyVersion: number } {
  const encryptor = encryptorOf(key, "encrypt");
  const { version, params } = prepareEncryption(key, request, now);
  const payload = encryptor.encrypt(version, params);
  return {
    ciphertext: formatVersionedValue(version.version, payload),
    keyVersion: version.version,
  };
}

/**
 * Checks a decryption request as `decrypt` does: parses the ciphertext and
 * returns the version it names and the parameters (see `prepareEncryption`).
 */
export function prepareDecryption(
  key: ManagedKey,
  request: DecryptRequest,
  now: Date,
): PreparedDecryption {
  requireSupport(key, "decrypt");
  assertAllowed(key, "decrypt", now);
  const parsed = parseVersionedValue(request.ciphertext, "ciphertext", "invalid_ciphertext");
  const version = versionForProcessing(key, parsed.version, "ciphertext", "invalid_ciphertext");
  const context = requestContext(key, request.context);
  return {
    version,
    params: { payload: parsed.bytes, associatedData: request.associatedData, context },
  };
}

/**
 * Decrypts a `keyward:v<N>:<base64>` ciphertext.
 *
 * A malformed string is `invalid_ciphertext`; a version below
 * `minDecryptionVersion` is `version_too_old`; a wrong key, tag, context or
 * associated data is `decryption_failed` with one fixed message.
 */
export function decrypt(
  key: ManagedKey,
  request: DecryptRequest,
  now: Date,
): { plaintext: Buffer; keyVersion: number } {
  const encryptor = encryptorOf(key, "decrypt");
  const { version, params } = prepareDecryption(key, request, now);
  const plaintext = encryptor.decrypt(version, params);
  return { plaintext, keyVersion: version.version };
}

/**
 * Generates a random data key of `bits` bits and returns it with its
 * encryption under the managed key, as `encrypt` would produce.
 */
export function generateDataKey(
  key: ManagedKey,
  request: DataKeyRequest,
  now: Date,
): { plaintext: Buffer; ciphertext: string; keyVersion: number } {
  const plaintext = newDataKey(request.bits);
  const { ciphertext, keyVersion } = encrypt(
    key,
    {
      plaintext,
      context: request.context,
      nonce: request.nonce,
      keyVersion: request.keyVersion,
    },
    now,
  );
  return { plaintext, ciphertext, keyVersion };
}

/** Returns a random data key of `bits` bits; throws `invalid_field` ("bits") for another size. */
export function newDataKey(bits: number): Buffer {
  if (!DATA_KEY_BITS.includes(bits)) {
    throw new KeywardError("invalid_field", "bits must be 128, 256 or 512", { field: "bits" });
  }
  return randomBytes(bits / 8);
}
