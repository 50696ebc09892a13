import { KeywardError } from "../errors.ts";
import { checkHsmKeyOptions } from "./hsm.ts";
import type { VersionMaterial } from "./key-types/definition.ts";
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
  /**
   * Every version is held in an HSM: the caller creates the HSM objects and
   * passes each version's reference as its material. Only the types in
   * `HSM_KEY_TYPES`, and never exportable, backed up, derived or convergent.
   */
  hsm?: boolean;
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
  if (validateBoolean("hsm", options.hsm ?? false)) checkHsmKeyOptions(type, options);

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

/**
 * Builds a new version: with `material` when given, which an HSM-held key
 * needs, and otherwise with material generated for the key's type.
 */
function newVersion(
  key: Pick<ManagedKey, "name" | "type" | "keySize" | "hsm">,
  version: number,
  now: Date,
  material: VersionMaterial | undefined,
): KeyVersion {
  if (key.hsm === true && material?.hsmObject === undefined) {
    throw new KeywardError("internal", "internal error", {
      details: { key: key.name, version, reason: "an HSM-held key version needs its HSM object" },
    });
  }
  const created = material ?? keyTypeDefinition(key.type).generateVersion(key.keySize);
  return { version, createdAt: now.toISOString(), ...created };
}

/**
 * Checks a new key's name, type and options as `createKey` does, without
 * creating it. An engine calls it before it makes anything outside the
 * key, such as HSM objects.
 */
export function validateKeyOptions(name: string, type: KeyType, options: CreateKeyOptions): void {
  validateKeyName(name);
  if (!(KEY_TYPES as readonly string[]).includes(type)) {
    throw invalid(
      "type",
      `unknown key type "${String(type)}"; expected one of ${KEY_TYPES.join(", ")}`,
    );
  }
  checkOptions(type, options);
}

/**
 * Creates a managed key with version 1. It is pre-active when
 * `activationDate` is after `now`, and active otherwise. `material` is the
 * first version's material, required for an HSM-held key and generated
 * otherwise.
 */
export function createKey(
  name: string,
  type: KeyType,
  options: CreateKeyOptions,
  now: Date,
  material?: VersionMaterial,
): ManagedKey {
  validateKeyOptions(name, type, options);

  const timestamp = now.toISOString();
  const keySize = type === "hmac" ? options.keySize || DEFAULT_HMAC_KEY_SIZE : undefined;
  const preActive = options.activationDate !== undefined && options.activationDate > now;
  const hsm = options.hsm === true ? { hsm: true } : {};
  const key: ManagedKey = {
    name,
    type,
    state: preActive ? "pre-active" : "active",
    versions: { "1": newVersion({ name, type, keySize, ...hsm }, 1, now, material) },
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
    ...hsm,
    createdAt: timestamp,
    updatedAt: timestamp,
    lastRotatedAt: timestamp,
  };
  if (keySize !== undefined) key.keySize = keySize;
  if (options.activationDate !== undefined)
    key.activationDate = options.activationDate.toISOString();
  return key;
}

/**
 * Adds a new latest version, with `material` when given (required for an
 * HSM-held key) or fresh material otherwise; the key must be active.
 */
export function rotateKey(key: ManagedKey, now: Date, material?: VersionMaterial): ManagedKey {
  assertAllowed(key, "rotate", now);
  if (!allowsRotation(key)) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" was imported with allow_rotation=false, so Keyward cannot add generated versions; add a version with import_version`,
    );
  }
  const next = structuredClone(key);
  const version = key.latestVersion + 1;
  next.versions[String(version)] = newVersion(key, version, now, material);
  next.latestVersion = version;
  next.updatedAt = now.toISOString();
  next.lastRotatedAt = now.toISOString();
  return next;
}

/** Returns false for an imported key whose `allowRotation` is not true, and true otherwise. */
export function allowsRotation(key: ManagedKey): boolean {
  return key.imported !== true || key.allowRotation === true;
}

/** Returns whether an active key with automatic rotation is due for it at `now`. */
export function rotationDue(key: ManagedKey, now: Date): boolean {
  if (key.autoRotatePeriod <= 0 || effectiveState(key, now) !== "active") return false;
  if (!allowsRotation(key)) return false;
  return now.getTime() - Date.parse(key.lastRotatedAt) >= key.autoRotatePeriod * 1000;
}
