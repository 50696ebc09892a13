import { KeywardError } from "../errors.ts";
import { DEFAULT_HMAC_KEY_SIZE } from "./key-types/hmac.ts";
import { keyTypeDefinition } from "./key-types/index.ts";
import { assertAllowed, effectiveState } from "./lifecycle.ts";
import { validateKeyName } from "./names.ts";
import { validateAutoRotatePeriod, validateBoolean, validateKeySize } from "./settings.ts";
import { KEY_TYPES, type KeyType, type KeyVersion, type ManagedKey } from "./types.ts";

export interface CreateKeyOptions {
  /** Context-derived keys: every operation takes a `context`. AEAD and ed25519 types only. */
  derived?: boolean;
  /** Equal plaintexts under one context give equal ciphertexts. Needs `derived`; AEAD types only. */
  convergentEncryption?: boolean;
  exportable?: boolean;
  allowPlaintextBackup?: boolean;
  /** Seconds between automatic rotations; 0 disables them, otherwise at least 3600. */
  autoRotatePeriod?: number;
  /** Size of an `hmac` key in bytes, 32 to 512 (default 32); 0 means the default. */
  keySize?: number;
  /** The key stays pre-active until this time. */
  activationDate?: Date;
}

function invalid(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

function checkOptions(type: KeyType, options: CreateKeyOptions): void {
  const definition = keyTypeDefinition(type);
  const derived = validateBoolean("derived", options.derived ?? false);
  const convergent = validateBoolean(
    "convergent_encryption",
    options.convergentEncryption ?? false,
  );
  validateBoolean("exportable", options.exportable ?? false);
  validateBoolean("allow_plaintext_backup", options.allowPlaintextBackup ?? false);

  if (derived && !definition.derivation) {
    throw invalid("derived", `${type} keys cannot be derived`);
  }
  if (convergent && !derived) {
    throw invalid("convergent_encryption", "convergent_encryption requires derived=true");
  }
  if (convergent && !definition.convergentEncryption) {
    throw invalid("convergent_encryption", `${type} keys do not support convergent encryption`);
  }
  if (options.keySize !== undefined && options.keySize !== 0)
    validateKeySize(type, options.keySize);
  validateAutoRotatePeriod(options.autoRotatePeriod ?? 0);
  const activation = options.activationDate;
  if (
    activation !== undefined &&
    (!(activation instanceof Date) || Number.isNaN(activation.getTime()))
  ) {
    throw invalid("activation_date", "activation_date must be a valid time");
  }
}

/** Generates a new version's material for `key`'s type. */
function newVersion(
  key: Pick<ManagedKey, "type" | "keySize">,
  version: number,
  now: Date,
): KeyVersion {
  const material = keyTypeDefinition(key.type).generateVersion(key.keySize);
  return { version, createdAt: now.toISOString(), ...material };
}

/**
 * Creates a managed key with version 1. It is pre-active when
 * `activationDate` is after `now`, and active otherwise.
 */
export function createKey(
  name: string,
  type: KeyType,
  options: CreateKeyOptions,
  now: Date,
): ManagedKey {
  validateKeyName(name);
  if (!(KEY_TYPES as readonly string[]).includes(type)) {
    throw invalid(
      "type",
      `unknown key type "${String(type)}"; expected one of ${KEY_TYPES.join(", ")}`,
    );
  }
  checkOptions(type, options);

  const timestamp = now.toISOString();
  const keySize = type === "hmac" ? options.keySize || DEFAULT_HMAC_KEY_SIZE : undefined;
  const preActive = options.activationDate !== undefined && options.activationDate > now;
  const key: ManagedKey = {
    name,
    type,
    state: preActive ? "pre-active" : "active",
    versions: { "1": newVersion({ type, keySize }, 1, now) },
    latestVersion: 1,
    minDecryptionVersion: 1,
    minEncryptionVersion: 0,
    minAvailableVersion: 0,
    deletionAllowed: false,
    exportable: options.exportable ?? false,
    allowPlaintextBackup: options.allowPlaintextBackup ?? false,
    autoRotatePeriod: options.autoRotatePeriod ?? 0,
    derived: options.derived ?? false,
    convergentEncryption: options.convergentEncryption ?? false,
    createdAt: timestamp,
    updatedAt: timestamp,
    lastRotatedAt: timestamp,
  };
  if (keySize !== undefined) key.keySize = keySize;
  if (options.activationDate !== undefined)
    key.activationDate = options.activationDate.toISOString();
  return key;
}

/** Adds a new latest version with fresh material; the key must be active. */
export function rotateKey(key: ManagedKey, now: Date): ManagedKey {
  assertAllowed(key, "rotate", now);
  const next = structuredClone(key);
  const version = key.latestVersion + 1;
  next.versions[String(version)] = newVersion(key, version, now);
  next.latestVersion = version;
  next.updatedAt = now.toISOString();
  next.lastRotatedAt = now.toISOString();
  return next;
}

/** Returns whether an active key with automatic rotation is due for it at `now`. */
export function rotationDue(key: ManagedKey, now: Date): boolean {
  if (key.autoRotatePeriod <= 0 || effectiveState(key, now) !== "active") return false;
  return now.getTime() - Date.parse(key.lastRotatedAt) >= key.autoRotatePeriod * 1000;
}
