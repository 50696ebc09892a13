import type { KeyObject } from "node:crypto";
import { loadPrivateKey, loadPublicKey } from "../../crypto/asymmetric-keys.ts";
import { KeywardError } from "../../errors.ts";
import type { KeyVersion } from "../types.ts";

/** Length of the HMAC key every version of a non-`hmac` key carries, in bytes. */
export const VERSION_HMAC_KEY_LENGTH = 32;

function missingMaterial(version: KeyVersion, what: string): KeywardError {
  // Lifecycle checks run first, so this means the stored key is inconsistent.
  return new KeywardError("internal", "key material is missing", {
    details: { version: version.version, missing: what },
  });
}

/** Returns the decoded secret of a version; throws `internal` when it is absent. */
export function secretBytes(version: KeyVersion): Buffer {
  if (version.secret === undefined) throw missingMaterial(version, "secret");
  return Buffer.from(version.secret, "base64");
}

/** Returns the decoded HMAC key of a version; throws `internal` when it is absent. */
export function hmacKeyBytes(version: KeyVersion): Buffer {
  if (version.hmacKey === undefined) throw missingMaterial(version, "hmacKey");
  return Buffer.from(version.hmacKey, "base64");
}

/** Returns the public key PEM of a version; throws `internal` when it is absent. */
export function publicKeyPem(version: KeyVersion): string {
  if (version.publicKeyPem === undefined) throw missingMaterial(version, "publicKeyPem");
  return version.publicKeyPem;
}

// OpenSSL 3 parses an Ed25519 PKCS#8 key in about 0.35 ms on the benchmark
// machine, ten times as long as the signature takes. Each request gets a
// fresh copy of its key from the key cache's JSON, so the parsed keys are
// kept here by their encoded form, and the least recently used go first.
// `forgetParsedKeys` empties both maps at seal.
const PARSED_KEYS_MAX = 256;
const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

/** Returns the key that `encoded` contains, parsing it only when `cache` does not hold it. */
function parsedKey(
  cache: Map<string, KeyObject>,
  encoded: string,
  parse: (encoded: string) => KeyObject,
): KeyObject {
  let key = cache.get(encoded);
  if (key !== undefined) {
    // Re-inserting moves the entry to the end, which Map iteration treats as newest.
    cache.delete(encoded);
  } else {
    key = parse(encoded);
    if (cache.size >= PARSED_KEYS_MAX) cache.delete(cache.keys().next().value as string);
  }
  cache.set(encoded, key);
  return key;
}

/** Returns the version's PKCS#8 private key as a KeyObject; throws `internal` when it is absent. */
export function versionPrivateKey(version: KeyVersion): KeyObject {
  if (version.secret === undefined) throw missingMaterial(version, "secret");
  return parsedKey(privateKeys, version.secret, (secret) =>
    loadPrivateKey(Buffer.from(secret, "base64")),
  );
}

/** Returns the version's public key as a KeyObject; throws `internal` when it is absent. */
export function versionPublicKey(version: KeyVersion): KeyObject {
  return parsedKey(publicKeys, publicKeyPem(version), loadPublicKey);
}

/** Drops every parsed key, so that a sealed server keeps no key material in memory. */
export function forgetParsedKeys(): void {
  privateKeys.clear();
  publicKeys.clear();
}
