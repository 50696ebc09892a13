import { KeywardError } from "../errors.ts";
import { checkHsmKeyOptions } from "./hsm.ts";
import { validateAutoRotatePeriod, validateBoolean } from "./settings.ts";
import type { ManagedKey } from "./types.ts";

export interface KeyConfigChanges {
  /** Oldest version that may decrypt and verify; 1 to the latest version. */
  minDecryptionVersion?: number;
  /** Oldest version that may encrypt, sign and compute HMACs; 0 means the latest. */
  minEncryptionVersion?: number;
  deletionAllowed?: boolean;
  /** May be turned on, never off again. */
  exportable?: boolean;
  /** May be turned on, never off again. */
  allowPlaintextBackup?: boolean;
  /** 0 disables automatic rotation; otherwise at least 3600 seconds. */
  autoRotatePeriod?: number;
}

function invalid(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

function checkVersionNumber(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Turns a flag on; throws when the change would turn it off again. */
function oneWayFlag(field: string, current: boolean, requested: unknown): boolean {
  const value = validateBoolean(field, requested);
  if (current && !value) throw invalid(field, `${field} cannot be disabled once enabled`);
  return value;
}

/**
 * Applies configuration changes and returns the new key.
 * Throws `invalid_field` naming the first field that is out of range, or
 * that an HSM-held key cannot have.
 */
export function configureKey(key: ManagedKey, changes: KeyConfigChanges, now: Date): ManagedKey {
  const next = structuredClone(key);
  if (key.hsm === true) {
    checkHsmKeyOptions(key.type, {
      exportable: changes.exportable,
      allowPlaintextBackup: changes.allowPlaintextBackup,
    });
  }

  if (changes.minDecryptionVersion !== undefined) {
    next.minDecryptionVersion = checkVersionNumber(
      "min_decryption_version",
      changes.minDecryptionVersion,
      Math.max(1, key.minAvailableVersion),
      key.latestVersion,
    );
  }
  if (changes.minEncryptionVersion !== undefined) {
    next.minEncryptionVersion = checkVersionNumber(
      "min_encryption_version",
      changes.minEncryptionVersion,
      0,
      key.latestVersion,
    );
  }
  if (next.minEncryptionVersion !== 0 && next.minEncryptionVersion < next.minDecryptionVersion) {
    const field =
      changes.minEncryptionVersion !== undefined
        ? "min_encryption_version"
        : "min_decryption_version";
    throw invalid(
      field,
      `min_encryption_version (${next.minEncryptionVersion}) must be 0 or at least ` +
        `min_decryption_version (${next.minDecryptionVersion})`,
    );
  }
  if (changes.deletionAllowed !== undefined) {
    next.deletionAllowed = validateBoolean("deletion_allowed", changes.deletionAllowed);
  }
  if (changes.exportable !== undefined) {
    next.exportable = oneWayFlag("exportable", key.exportable, changes.exportable);
  }
  if (changes.allowPlaintextBackup !== undefined) {
    next.allowPlaintextBackup = oneWayFlag(
      "allow_plaintext_backup",
      key.allowPlaintextBackup,
      changes.allowPlaintextBackup,
    );
  }
  if (changes.autoRotatePeriod !== undefined) {
    next.autoRotatePeriod = validateAutoRotatePeriod(changes.autoRotatePeriod);
    if (next.autoRotatePeriod > 0 && key.imported === true && key.allowRotation !== true) {
      throw new KeywardError(
        "invalid_field",
        `key "${key.name}" was imported with allow_rotation=false, so it cannot rotate automatically`,
        { field: "auto_rotate_period" },
      );
    }
  }

  next.updatedAt = now.toISOString();
  return next;
}

/**
 * Deletes every version below `minAvailableVersion` and returns the new key.
 *
 * As in Vault, the value may not exceed `minDecryptionVersion`, nor
 * `minEncryptionVersion` when that is set, and may not go below the current
 * minimum available version. Deleted versions cannot be recovered.
 */
export function trimKey(key: ManagedKey, minAvailableVersion: number, now: Date): ManagedKey {
  const field = "min_available_version";
  if (
    typeof minAvailableVersion !== "number" ||
    !Number.isSafeInteger(minAvailableVersion) ||
    minAvailableVersion < 1
  ) {
    throw invalid(field, `${field} must be a positive integer`);
  }
  if (minAvailableVersion < key.minAvailableVersion) {
    throw invalid(field, `${field} cannot go below the current value ${key.minAvailableVersion}`);
  }
  if (minAvailableVersion > key.minDecryptionVersion) {
    throw invalid(
      field,
      `${field} cannot exceed min_decryption_version (${key.minDecryptionVersion})`,
    );
  }
  if (key.minEncryptionVersion > 0 && minAvailableVersion > key.minEncryptionVersion) {
    throw invalid(
      field,
      `${field} cannot exceed min_encryption_version (${key.minEncryptionVersion})`,
    );
  }

  const next = structuredClone(key);
  for (const version of Object.keys(next.versions)) {
    if (Number(version) < minAvailableVersion) delete next.versions[version];
  }
  next.minAvailableVersion = minAvailableVersion;
  next.updatedAt = now.toISOString();
  return next;
}
