import { createPrivateKey, type KeyObject } from "node:crypto";
import { describeKey, publicKeyPemOf } from "../crypto/asymmetric-keys.ts";
import { checkKeyObject, checkKeyPair } from "../crypto/key-safety.ts";
import { randomBytes } from "../crypto/random.ts";
import { KeywardError } from "../errors.ts";
import { type CreateKeyOptions, createKey, validateKeyOptions } from "./create.ts";
import type { VersionMaterial } from "./key-types/definition.ts";
import { MAX_HMAC_KEY_SIZE, MIN_HMAC_KEY_SIZE } from "./key-types/hmac.ts";
import { keyTypeDefinition } from "./key-types/index.ts";
import { VERSION_HMAC_KEY_LENGTH } from "./key-types/material.ts";
import { assertAllowed } from "./lifecycle.ts";
import type { KeyType, ManagedKey } from "./types.ts";

/** Raw key lengths of the symmetric types, in bytes. */
const SYMMETRIC_KEY_LENGTHS: Partial<Record<KeyType, number>> = {
  "aes128-gcm96": 16,
  "aes256-gcm96": 32,
  "chacha20-poly1305": 32,
};

/** The settings an import takes besides the key material. */
export interface ImportKeyOptions
  extends Pick<
    CreateKeyOptions,
    "derived" | "exportable" | "allowPlaintextBackup" | "autoRotatePeriod"
  > {
  /** Whether Keyward may add generated versions (rotate) to the imported key. */
  allowRotation?: boolean;
}

function invalidMaterial(field: string, message: string): KeywardError {
  return new KeywardError("invalid_key_material", message, { field });
}

/**
 * Builds one version's material from imported key bytes: raw key bytes
 * for AEAD and `hmac` keys, PKCS#8 DER for asymmetric keys. A fresh
 * 32-byte HMAC key is added to every type but `hmac`. `hmacKeySize` is
 * the size an `hmac` key's versions must have; without it any size from
 * 32 to 512 bytes is accepted.
 *
 * Throws `invalid_key_material` naming `field` when the bytes are not a
 * key of `type`. The message never contains the bytes.
 */
export function importedVersionMaterial(
  type: KeyType,
  keyBytes: Buffer,
  field: string,
  hmacKeySize?: number,
): VersionMaterial {
  const symmetricLength = SYMMETRIC_KEY_LENGTHS[type];
  if (symmetricLength !== undefined) {
    if (keyBytes.length !== symmetricLength) {
      throw invalidMaterial(
        field,
        `a ${type} key is ${symmetricLength} bytes, but the unwrapped key is ${keyBytes.length} bytes`,
      );
    }
    return { secret: keyBytes.toString("base64"), hmacKey: newHmacKey() };
  }
  if (type === "hmac") return { hmacKey: hmacMaterial(keyBytes, field, hmacKeySize) };
  return asymmetricMaterial(type, keyBytes, field);
}

function newHmacKey(): string {
  return randomBytes(VERSION_HMAC_KEY_LENGTH).toString("base64");
}

function hmacMaterial(keyBytes: Buffer, field: string, requiredSize: number | undefined): string {
  if (requiredSize !== undefined && keyBytes.length !== requiredSize) {
    throw invalidMaterial(
      field,
      `this hmac key's versions are ${requiredSize} bytes, but the unwrapped key is ${keyBytes.length} bytes`,
    );
  }
  if (keyBytes.length < MIN_HMAC_KEY_SIZE || keyBytes.length > MAX_HMAC_KEY_SIZE) {
    throw invalidMaterial(
      field,
      `an hmac key is ${MIN_HMAC_KEY_SIZE} to ${MAX_HMAC_KEY_SIZE} bytes, but the unwrapped key is ${keyBytes.length} bytes`,
    );
  }
  return keyBytes.toString("base64");
}

/**
 * Parses a PKCS#8 private key of an asymmetric `type`, checks its public
 * values (`checkKeyObject`) before anything reads its details, checks that
 * its algorithm, curve or modulus size is the type's, and that it signs
 * what its public half verifies. Stores the key re-encoded by OpenSSL, so
 * optional PKCS#8 parts of the input (attributes, an embedded public key)
 * are dropped and the public key is derived from the private key.
 */
function asymmetricMaterial(type: KeyType, der: Buffer, field: string): VersionMaterial {
  const spec = keyTypeDefinition(type).asymmetricSpec;
  if (spec === undefined) throw new TypeError(`${type} is not an asymmetric key type`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } catch {
    throw invalidMaterial(field, `the unwrapped key is not a PKCS#8 DER private key (${type})`);
  }
  try {
    checkKeyObject(privateKey);
  } catch (error) {
    const reason = error instanceof RangeError ? error.message : "its public values are invalid";
    throw invalidMaterial(field, `the unwrapped ${type} key is unsafe to use: ${reason}`);
  }
  const actual = describeKey(privateKey);
  if (JSON.stringify(actual) !== JSON.stringify(spec)) {
    throw invalidMaterial(field, `the unwrapped key is ${describeSpec(actual)}, not a ${type} key`);
  }
  try {
    checkKeyPair(privateKey);
  } catch {
    throw invalidMaterial(
      field,
      `the unwrapped ${type} key is inconsistent: its private and public values do not match`,
    );
  }
  return {
    secret: privateKey.export({ format: "der", type: "pkcs8" }).toString("base64"),
    publicKeyPem: publicKeyPemOf(privateKey),
    hmacKey: newHmacKey(),
  };
}

function describeSpec(spec: ReturnType<typeof describeKey>): string {
  if (spec === undefined) return "of an unsupported algorithm or curve";
  switch (spec.algorithm) {
    case "ed25519":
      return "an Ed25519 key";
    case "ecdsa":
      return `an ECDSA ${spec.curve} key`;
    case "rsa":
      return `an RSA key of ${spec.modulusLength} bits`;
  }
}

/**
 * Checks a new imported key's name, type and settings as `importKey` does,
 * before any key material is unwrapped. Throws `invalid_field` naming the
 * setting at fault.
 */
export function validateImportOptions(
  name: string,
  type: KeyType,
  options: ImportKeyOptions,
): void {
  const { allowRotation: _allowRotation, ...createOptions } = options;
  validateKeyOptions(name, type, createOptions);
  if ((options.autoRotatePeriod ?? 0) > 0 && options.allowRotation !== true) {
    throw new KeywardError(
      "invalid_field",
      "auto_rotate_period needs allow_rotation=true, because rotation adds versions generated by Keyward",
      { field: "auto_rotate_period" },
    );
  }
}

/**
 * Creates a key whose version 1 is `material`, imported from outside, and
 * marks it imported. Throws `invalid_field` as `createKey` does, and for
 * `auto_rotate_period` without `allow_rotation`.
 */
export function importKey(
  name: string,
  type: KeyType,
  options: ImportKeyOptions,
  now: Date,
  material: VersionMaterial,
): ManagedKey {
  validateImportOptions(name, type, options);
  const { allowRotation, ...createOptions } = options;
  const hmacSize =
    type === "hmac" && material.hmacKey !== undefined
      ? Buffer.from(material.hmacKey, "base64").length
      : undefined;
  const key = createKey(
    name,
    type,
    { ...createOptions, ...(hmacSize === undefined ? {} : { keySize: hmacSize }) },
    now,
    material,
  );
  return { ...key, imported: true, allowRotation: allowRotation === true };
}

/**
 * Adds `material`, imported from outside, as the key's next version. The
 * key must be an imported one in a state that allows rotation. Unlike
 * `rotateKey`, this works whatever the value of `allowRotation`, because the new
 * version's material is not generated by Keyward.
 */
export function importKeyVersion(
  key: ManagedKey,
  now: Date,
  material: VersionMaterial,
): ManagedKey {
  assertVersionImportAllowed(key, now);
  const next = structuredClone(key);
  const version = key.latestVersion + 1;
  next.versions[String(version)] = { version, createdAt: now.toISOString(), ...material };
  next.latestVersion = version;
  next.updatedAt = now.toISOString();
  next.lastRotatedAt = now.toISOString();
  return next;
}

/**
 * Throws `invalid_state` unless `importKeyVersion` may add a version to
 * `key` at `now`: the key was imported, is not held in an HSM, and its
 * state allows rotation.
 */
export function assertVersionImportAllowed(key: ManagedKey, now: Date): void {
  if (key.imported !== true) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" was created by Keyward, not imported; import_version applies only to imported keys`,
    );
  }
  if (key.hsm === true) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" is held in an HSM, whose versions cannot be imported; import under another name`,
    );
  }
  assertAllowed(key, "rotate", now);
}
