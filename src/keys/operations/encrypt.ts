import { randomBytes } from "../../crypto/random.ts";
import { KeywardError } from "../../errors.ts";
import type { Encryptor } from "../key-types/definition.ts";
import { keyTypeDefinition } from "../key-types/index.ts";
import { assertAllowed } from "../lifecycle.ts";
import type { ManagedKey } from "../types.ts";
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
  assertAllowed(key, "encrypt", now);
  const version = versionForProtection(key, request.keyVersion);
  const context = requestContext(key, request.context);
  rejectNonce(request.nonce);

  const payload = encryptor.encrypt(version, {
    plaintext: request.plaintext,
    associatedData: request.associatedData,
    context,
    convergent: key.convergentEncryption,
  });
  return {
    ciphertext: formatVersionedValue(version.version, payload),
    keyVersion: version.version,
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
  assertAllowed(key, "decrypt", now);
  const parsed = parseVersionedValue(request.ciphertext, "ciphertext", "invalid_ciphertext");
  const version = versionForProcessing(key, parsed.version, "ciphertext", "invalid_ciphertext");
  const context = requestContext(key, request.context);

  const plaintext = encryptor.decrypt(version, {
    payload: parsed.bytes,
    associatedData: request.associatedData,
    context,
  });
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
  if (!DATA_KEY_BITS.includes(request.bits)) {
    throw new KeywardError("invalid_field", "bits must be 128, 256 or 512", { field: "bits" });
  }
  const plaintext = randomBytes(request.bits / 8);
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
