import { describeKey, loadPublicKey } from "../crypto/asymmetric-keys.ts";
import { KeywardError } from "../errors.ts";
import { isCanonicalBase64 } from "../util/base64.ts";
import { keyTypeDefinition } from "./key-types/index.ts";
import { VERSION_HMAC_KEY_LENGTH } from "./key-types/material.ts";
import { validateKeyName } from "./names.ts";
import { validateAutoRotatePeriod, validateKeySize } from "./settings.ts";
import {
  KEY_STATES,
  KEY_TYPES,
  type KeyState,
  type KeyType,
  type KeyVersion,
  type ManagedKey,
} from "./types.ts";

/** A problem found at `path` inside the document being checked. */
class ShapeError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

type Json = Record<string, unknown>;

const KEY_FIELDS = new Set([
  "name",
  "type",
  "state",
  "versions",
  "latestVersion",
  "minDecryptionVersion",
  "minEncryptionVersion",
  "minAvailableVersion",
  "deletionAllowed",
  "exportable",
  "allowPlaintextBackup",
  "autoRotatePeriod",
  "derived",
  "convergentEncryption",
  "keySize",
  "imported",
  "allowRotation",
  "createdAt",
  "updatedAt",
  "lastRotatedAt",
  "activationDate",
  "compromisedAt",
  "deactivatedAt",
  "destroyedAt",
  "deletionDate",
]);
const VERSION_FIELDS = new Set(["version", "createdAt", "secret", "hmacKey", "publicKeyPem"]);
const VERSION_KEY_PATTERN = /^[1-9][0-9]{0,8}$/;

function object(value: unknown, path: string, fields: Set<string>): Json {
  const json = record(value, path);
  for (const field of Object.keys(json)) {
    if (!fields.has(field)) throw new ShapeError(`${path}.${field}`, "unknown field");
  }
  return json;
}

function record(value: unknown, path: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ShapeError(path, "expected an object");
  }
  return value as Json;
}

function string(value: unknown, path: string): string {
  if (typeof value !== "string") throw new ShapeError(path, "expected a string");
  return value;
}

function boolean(value: unknown, path: string): boolean {
  if (typeof value !== "boolean") throw new ShapeError(path, "expected true or false");
  return value;
}

function integer(value: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ShapeError(path, `expected an integer from ${min} to ${max}`);
  }
  return value;
}

function timestamp(value: unknown, path: string): string {
  const text = string(value, path);
  const time = Date.parse(text);
  if (Number.isNaN(time) || new Date(time).toISOString() !== text) {
    throw new ShapeError(path, "expected an ISO 8601 UTC time such as 2024-01-31T12:00:00.000Z");
  }
  return text;
}

function optionalTimestamp(value: unknown, path: string): string | undefined {
  return value === undefined ? undefined : timestamp(value, path);
}

function base64(value: unknown, path: string): string {
  const text = string(value, path);
  if (text.length === 0 || !isCanonicalBase64(text)) throw new ShapeError(path, "expected base64");
  return text;
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new ShapeError(path, `expected one of ${allowed.join(", ")}`);
  }
  return value as T;
}

/** True for errors Keyward raised itself, whose messages are written for callers. */
function isOwnError(error: unknown): error is Error {
  if (error instanceof KeywardError) return true;
  if (!(error instanceof Error)) return false;
  // Node's crypto errors carry OpenSSL's library, reason or an ERR_ code.
  const code = (error as { code?: unknown }).code;
  return (
    !("library" in error) &&
    !("reason" in error) &&
    !(typeof code === "string" && code.startsWith("ERR_"))
  );
}

/**
 * Runs a check and reports its failure at `path`. Errors of the check itself
 * (OpenSSL's, for a key that does not parse) stay out of the message, which
 * reaches the caller.
 */
function at<T>(path: string, check: () => T, problem = "is not valid for the key type"): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ShapeError) throw error;
    throw new ShapeError(path, isOwnError(error) ? error.message : problem);
  }
}

function parseVersion(value: unknown, path: string, number: number): KeyVersion {
  const fields = object(value, path, VERSION_FIELDS);
  const version: KeyVersion = {
    version: integer(fields.version, `${path}.version`, number, number),
    createdAt: timestamp(fields.createdAt, `${path}.createdAt`),
  };
  if (fields.secret !== undefined) version.secret = base64(fields.secret, `${path}.secret`);
  if (fields.hmacKey !== undefined) version.hmacKey = base64(fields.hmacKey, `${path}.hmacKey`);
  if (fields.publicKeyPem !== undefined) {
    version.publicKeyPem = string(fields.publicKeyPem, `${path}.publicKeyPem`);
  }
  return version;
}

/** Checks that a version's material fits the key's type and state. */
function checkMaterial(key: ManagedKey, version: KeyVersion, path: string): void {
  const definition = keyTypeDefinition(key.type);
  const destroyed = key.state === "destroyed";
  const hasSecret = definition.secretExportFormat !== "none";

  if (destroyed && (version.secret !== undefined || version.hmacKey !== undefined)) {
    throw new ShapeError(path, "a destroyed key must not carry secret material");
  }
  if (!destroyed) {
    if (version.hmacKey === undefined) throw new ShapeError(`${path}.hmacKey`, "missing");
    const expected = key.type === "hmac" ? key.keySize : VERSION_HMAC_KEY_LENGTH;
    if (Buffer.from(version.hmacKey, "base64").length !== expected) {
      throw new ShapeError(`${path}.hmacKey`, `expected ${expected} bytes`);
    }
    if (hasSecret && version.secret === undefined)
      throw new ShapeError(`${path}.secret`, "missing");
  }
  if (!hasSecret && version.secret !== undefined) {
    throw new ShapeError(`${path}.secret`, `${key.type} keys carry no secret`);
  }
  if (version.secret !== undefined) at(`${path}.secret`, () => definition.checkSecret(version));

  const spec = definition.asymmetricSpec;
  if (spec === undefined && version.publicKeyPem !== undefined) {
    throw new ShapeError(`${path}.publicKeyPem`, `${key.type} keys have no public key`);
  }
  if (spec !== undefined) {
    const pem = version.publicKeyPem;
    if (pem === undefined) throw new ShapeError(`${path}.publicKeyPem`, "missing");
    // With a secret present, checkSecret has already matched this public key to it.
    at(`${path}.publicKeyPem`, () => {
      if (JSON.stringify(describeKey(loadPublicKey(pem))) !== JSON.stringify(spec)) {
        throw new Error(`not a public key of type ${key.type}`);
      }
    });
  }
}

function parseKey(value: unknown): ManagedKey {
  // An HSM-held key has no material to restore: its versions are objects in one HSM.
  if (typeof value === "object" && value !== null && "hsm" in value) {
    throw new ShapeError("key.hsm", "an HSM-held key cannot be restored from a document");
  }
  const fields = object(value, "key", KEY_FIELDS);
  const type: KeyType = oneOf(fields.type, "key.type", KEY_TYPES);
  const state: KeyState = oneOf(fields.state, "key.state", KEY_STATES);
  const definition = keyTypeDefinition(type);

  // Versions have at most nine digits, as in ciphertexts.
  const latestVersion = integer(fields.latestVersion, "key.latestVersion", 1, 999_999_999);
  const minAvailableVersion = integer(
    fields.minAvailableVersion,
    "key.minAvailableVersion",
    0,
    latestVersion,
  );
  const minDecryptionVersion = integer(
    fields.minDecryptionVersion,
    "key.minDecryptionVersion",
    Math.max(1, minAvailableVersion),
    latestVersion,
  );
  const minEncryptionVersion = integer(
    fields.minEncryptionVersion,
    "key.minEncryptionVersion",
    0,
    latestVersion,
  );
  if (minEncryptionVersion !== 0 && minEncryptionVersion < minDecryptionVersion) {
    throw new ShapeError("key.minEncryptionVersion", "expected 0 or at least minDecryptionVersion");
  }

  const key: ManagedKey = {
    name: at("key.name", () => validateKeyName(fields.name)),
    type,
    state,
    versions: {},
    latestVersion,
    minDecryptionVersion,
    minEncryptionVersion,
    minAvailableVersion,
    deletionAllowed: boolean(fields.deletionAllowed, "key.deletionAllowed"),
    exportable: boolean(fields.exportable, "key.exportable"),
    allowPlaintextBackup: boolean(fields.allowPlaintextBackup, "key.allowPlaintextBackup"),
    autoRotatePeriod: at("key.autoRotatePeriod", () =>
      validateAutoRotatePeriod(fields.autoRotatePeriod),
    ),
    derived: boolean(fields.derived, "key.derived"),
    convergentEncryption: boolean(fields.convergentEncryption, "key.convergentEncryption"),
    createdAt: timestamp(fields.createdAt, "key.createdAt"),
    updatedAt: timestamp(fields.updatedAt, "key.updatedAt"),
    lastRotatedAt: timestamp(fields.lastRotatedAt, "key.lastRotatedAt"),
  };
  const optionalTimes = [
    "activationDate",
    "compromisedAt",
    "deactivatedAt",
    "destroyedAt",
    "deletionDate",
  ] as const;
  for (const field of optionalTimes) {
    const time = optionalTimestamp(fields[field], `key.${field}`);
    if (time !== undefined) key[field] = time;
  }

  if (fields.imported !== undefined) key.imported = boolean(fields.imported, "key.imported");
  if (fields.allowRotation !== undefined) {
    if (key.imported !== true)
      throw new ShapeError("key.allowRotation", "applies only to imported keys");
    key.allowRotation = boolean(fields.allowRotation, "key.allowRotation");
  }

  if (type === "hmac") {
    key.keySize = at("key.keySize", () => validateKeySize(type, fields.keySize));
  } else if (fields.keySize !== undefined) {
    throw new ShapeError("key.keySize", "applies only to hmac keys");
  }
  if (key.derived && !definition.derivation)
    throw new ShapeError("key.derived", `${type} keys cannot be derived`);
  if (key.convergentEncryption && !(key.derived && definition.convergentEncryption)) {
    throw new ShapeError("key.convergentEncryption", "needs a derived AEAD key");
  }

  for (const [number, version] of Object.entries(record(fields.versions, "key.versions"))) {
    if (!VERSION_KEY_PATTERN.test(number))
      throw new ShapeError(`key.versions.${number}`, "expected a version number");
    const n = Number(number);
    if (n > latestVersion || n < minAvailableVersion) {
      throw new ShapeError(`key.versions.${number}`, "outside minAvailableVersion..latestVersion");
    }
    key.versions[number] = parseVersion(version, `key.versions.${number}`, n);
  }
  for (let n = Math.max(1, minAvailableVersion); n <= latestVersion; n++) {
    const version = key.versions[String(n)];
    if (version === undefined) throw new ShapeError(`key.versions.${n}`, "missing");
    checkMaterial(key, version, `key.versions.${n}`);
  }
  return key;
}

/**
 * Checks that `value` is a complete, consistent managed key and returns a
 * fresh copy built only from known fields. Throws `invalid_field` naming
 * `field`, with the path and reason of the first problem in the message.
 * Use it on any key from outside (a backup, an import).
 */
export function validateManagedKey(value: unknown, field = "backup"): ManagedKey {
  try {
    return parseKey(value);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    throw new KeywardError(
      "invalid_field",
      `${field} is invalid: ${error.path}: ${error.message}`,
      {
        field,
      },
    );
  }
}
