/**
 * Sealed secret fields of device artifacts: JWE compact serialisations
 * (RFC 7516) with ECDH-ES key agreement and A256GCM content encryption,
 * made to the device's EC P-256 encryption key. The protected header names
 * the artifact, content version and field a value belongs to, and is
 * authenticated with the ciphertext, so a value moved to another field or
 * replayed from an older version is rejected when opened.
 *
 * The server seals with `sealSecret`, and the agent opens with `openSealed`.
 */
import type { KeyObject, webcrypto } from "node:crypto";
import { CompactEncrypt, calculateJwkThumbprint, compactDecrypt, importJWK, type JWK } from "jose";
import { decryptionFailed, KeywardError } from "../errors.ts";

/** The place a sealed value belongs to: the protected header's `kw_artifact`, `kw_version` and `kw_field`. */
export interface SealedValueBinding {
  /** Artifact id, such as `secret:radius`. */
  artifact: string;
  /** Content version of the artifact the value is part of. */
  version: number;
  /** Name of the secret field, such as `value` or `wg-quick`. */
  field: string;
}

/** An EC P-256 public key in JWK form, without the private member `d`. */
export interface PublicEncryptionJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

/** The private key that opens sealed values: a node:crypto or WebCrypto key, or a JWK with `d`. */
export type OpeningKey = KeyObject | webcrypto.CryptoKey | JWK;

const KEY_MANAGEMENT_ALGORITHM = "ECDH-ES";
const CONTENT_ENCRYPTION_ALGORITHM = "A256GCM";

/** Imported encryption keys kept for `sealSecret`. Past this size the oldest one is dropped. */
const MAX_CACHED_KEYS = 10_000;

/** An imported encryption key and its `kid`. */
interface RecipientKey {
  kid: string;
  key: webcrypto.CryptoKey | Uint8Array;
}

/**
 * Imported encryption keys by their RFC 7638 thumbprint input, so a device
 * polled again is not imported and hashed anew on every request. The entry
 * depends only on the public key, so a stale entry cannot exist.
 */
const recipientKeys = new Map<string, Promise<RecipientKey>>();

/** Returns the RFC 7638 SHA-256 thumbprint (base64url) of an encryption key: the `kid` of values sealed to it. */
export function encryptionKeyId(publicJwk: PublicEncryptionJwk): Promise<string> {
  const { kty, crv, x, y } = publicJwk;
  return calculateJwkThumbprint({ kty, crv, x, y }, "sha256");
}

/**
 * Encrypts `plaintext` (UTF-8 text or bytes) to `publicJwk` and returns the
 * JWE compact serialisation. Its protected header is `{alg: "ECDH-ES",
 * enc: "A256GCM", kid, kw_artifact, kw_version, kw_field}`, where `kid` is
 * the key's RFC 7638 thumbprint.
 */
export async function sealSecret(
  publicJwk: PublicEncryptionJwk,
  binding: SealedValueBinding,
  plaintext: string | Uint8Array,
): Promise<string> {
  const { kid, key } = await recipientKey(publicJwk);
  const bytes = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
  return new CompactEncrypt(bytes)
    .setProtectedHeader({
      alg: KEY_MANAGEMENT_ALGORITHM,
      enc: CONTENT_ENCRYPTION_ALGORITHM,
      kid,
      kw_artifact: binding.artifact,
      kw_version: binding.version,
      kw_field: binding.field,
    })
    .encrypt(key);
}

/** Returns `publicJwk` imported for ECDH-ES, with its `kid`, from the cache when it is there. */
function recipientKey(publicJwk: PublicEncryptionJwk): Promise<RecipientKey> {
  const { kty, crv, x, y } = publicJwk;
  const cacheKey = JSON.stringify([kty, crv, x, y]);
  let cached = recipientKeys.get(cacheKey);
  if (cached === undefined) {
    cached = Promise.all([
      encryptionKeyId(publicJwk),
      importJWK({ kty, crv, x, y }, KEY_MANAGEMENT_ALGORITHM),
    ]).then(([kid, key]) => ({ kid, key }));
    if (recipientKeys.size >= MAX_CACHED_KEYS) {
      recipientKeys.delete(recipientKeys.keys().next().value as string);
    }
    recipientKeys.set(cacheKey, cached);
    // A key that fails to import is not kept, so the caller's error repeats on the next call.
    cached.catch(() => recipientKeys.delete(cacheKey));
  }
  return cached;
}

/**
 * Decrypts a value made by `sealSecret` and returns its plaintext as UTF-8
 * text. Only ECDH-ES with A256GCM is accepted. Throws `decryption_failed`
 * when the value is malformed or does not decrypt with `privateKey`, and
 * `invalid_request` when its authenticated header names another artifact,
 * version or field than `expected`, such as a value copied from an older
 * version or from another field.
 */
export async function openSealed(
  privateKey: OpeningKey,
  jwe: string,
  expected: SealedValueBinding,
): Promise<string> {
  let result: Awaited<ReturnType<typeof compactDecrypt>>;
  try {
    result = await compactDecrypt(jwe, privateKey, {
      keyManagementAlgorithms: [KEY_MANAGEMENT_ALGORITHM],
      contentEncryptionAlgorithms: [CONTENT_ENCRYPTION_ALGORITHM],
    });
  } catch (error) {
    throw decryptionFailed(error);
  }
  const header = result.protectedHeader;
  const mismatches: string[] = [];
  if (header.kw_artifact !== expected.artifact) mismatches.push("kw_artifact");
  if (header.kw_version !== expected.version) mismatches.push("kw_version");
  if (header.kw_field !== expected.field) mismatches.push("kw_field");
  if (mismatches.length > 0) {
    throw new KeywardError(
      "invalid_request",
      `the sealed value's header does not match where it was found (${mismatches.join(", ")}): ` +
        `it names artifact ${JSON.stringify(header.kw_artifact)} version ${JSON.stringify(header.kw_version)} ` +
        `field ${JSON.stringify(header.kw_field)}, but it came in artifact "${expected.artifact}" ` +
        `version ${expected.version} field "${expected.field}"`,
      { field: expected.field },
    );
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(result.plaintext);
}
