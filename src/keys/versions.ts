import { KeywardError } from "../errors.ts";
import type { KeyVersion, ManagedKey } from "./types.ts";

const KEY_VERSION_FIELD = "key_version";

/**
 * Returns the version that encrypts, signs or computes an HMAC: `requested`,
 * or the latest when it is absent or 0 (as Vault treats 0).
 *
 * Throws `invalid_field` for a version that is not a positive integer or does
 * not exist, and `version_too_old` below `minEncryptionVersion`.
 */
export function versionForProtection(key: ManagedKey, requested: number | undefined): KeyVersion {
  if (requested === undefined || requested === 0) return existingVersion(key, key.latestVersion);
  if (!Number.isSafeInteger(requested) || requested < 0) {
    throw new KeywardError("invalid_field", "key_version must be a positive integer", {
      field: KEY_VERSION_FIELD,
    });
  }
  if (requested > key.latestVersion) {
    throw new KeywardError(
      "invalid_field",
      `key version ${requested} does not exist; the latest version is ${key.latestVersion}`,
      { field: KEY_VERSION_FIELD },
    );
  }
  if (key.minEncryptionVersion > 0 && requested < key.minEncryptionVersion) {
    throw new KeywardError(
      "version_too_old",
      `key version ${requested} is below the minimum encryption version ${key.minEncryptionVersion}`,
      { field: KEY_VERSION_FIELD },
    );
  }
  const version = key.versions[String(requested)];
  if (version === undefined) {
    throw new KeywardError("invalid_field", `key version ${requested} was trimmed`, {
      field: KEY_VERSION_FIELD,
    });
  }
  return version;
}

/**
 * Returns the version named by a ciphertext, signature or HMAC.
 *
 * Throws `version_too_old` below `minDecryptionVersion`, and `code` naming
 * `field` when the version was trimmed or never existed.
 */
export function versionForProcessing(
  key: ManagedKey,
  version: number,
  field: string,
  code: "invalid_ciphertext" | "invalid_signature",
): KeyVersion {
  if (version < key.minDecryptionVersion) {
    throw new KeywardError(
      "version_too_old",
      `${field} uses key version ${version}, below the minimum decryption version ${key.minDecryptionVersion}`,
      { field },
    );
  }
  const found = key.versions[String(version)];
  if (found === undefined) {
    throw new KeywardError(
      code,
      `${field} uses key version ${version}, which this key does not have (trimmed or never created)`,
      { field },
    );
  }
  return found;
}

function existingVersion(key: ManagedKey, version: number): KeyVersion {
  const found = key.versions[String(version)];
  if (found === undefined) {
    throw new KeywardError("internal", "the latest key version is missing", {
      details: { key: key.name, version },
    });
  }
  return found;
}
