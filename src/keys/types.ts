/**
 * The managed-key model shared by the transit engine and, later, the PKI,
 * SSH and KMIP engines.
 *
 * A managed key is a versioned policy: a map of versions plus the fields that
 * govern them. Values of this type are plain data (JSON-serialisable), so the
 * engine can store them through the barrier as they are.
 */

export const KEY_TYPES = [
  "aes128-gcm96",
  "aes256-gcm96",
  "chacha20-poly1305",
  "ed25519",
  "ecdsa-p256",
  "ecdsa-p384",
  "ecdsa-p521",
  "rsa-2048",
  "rsa-3072",
  "rsa-4096",
  "hmac",
] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/**
 * NIST SP 800-57 Part 1 key states.
 * - `pre-active`: the activation date is in the future; no operation is allowed.
 * - `active`: every operation the key type supports.
 * - `suspended`: no operation at all until reactivated.
 * - `deactivated`: decrypt and verify only (processing existing data).
 * - `compromised`: decrypt and verify only, and every use is flagged.
 * - `destroyed`: key material erased, metadata kept.
 */
export const KEY_STATES = [
  "pre-active",
  "active",
  "suspended",
  "deactivated",
  "compromised",
  "destroyed",
] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** The operations a key may allow, used by the lifecycle checks. */
export const KEY_OPERATIONS = [
  "encrypt",
  "decrypt",
  "sign",
  "verify",
  "hmac",
  "hmac-verify",
  "export",
  "rotate",
] as const;
export type KeyOperation = (typeof KEY_OPERATIONS)[number];

/** Kinds of key material `exportKey` returns, by their Vault names. */
export const EXPORT_KINDS = ["encryption-key", "signing-key", "hmac-key", "public-key"] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

/**
 * The location of one version of an HSM-held key in the token: the label
 * and CKA_ID of its objects (the secret key, or both halves of a key pair).
 */
export interface HsmObjectRef {
  label: string;
  /** CKA_ID, hex-encoded. */
  id: string;
}

/** One version of a managed key. Secret fields are absent once destroyed or trimmed. */
export interface KeyVersion {
  version: number;
  /** ISO 8601 creation time. */
  createdAt: string;
  /**
   * The secret: raw key bytes for AEAD keys, PKCS#8 DER for asymmetric
   * keys; base64-encoded. Absent for `hmac` keys and once the key is destroyed.
   */
  secret?: string;
  /**
   * The HMAC key every key type carries, as Vault's do (base64): 32 bytes, or
   * `keySize` bytes for `hmac` keys, which keep no `secret`. Absent once the
   * key is destroyed.
   */
  hmacKey?: string;
  /** SubjectPublicKeyInfo PEM for asymmetric types. */
  publicKeyPem?: string;
  /**
   * The HSM objects of a version of an HSM-held key, which then has no
   * `secret` and no `hmacKey`. Kept after the key is destroyed, as metadata.
   */
  hsmObject?: HsmObjectRef;
}

export interface ManagedKey {
  name: string;
  type: KeyType;
  state: KeyState;
  /** Versions by number; trimmed versions are removed. */
  versions: Record<string, KeyVersion>;
  latestVersion: number;
  /** Ciphertexts and signatures of older versions are rejected. */
  minDecryptionVersion: number;
  /** 0 means "the latest version". */
  minEncryptionVersion: number;
  /** Versions below this were trimmed. */
  minAvailableVersion: number;
  deletionAllowed: boolean;
  exportable: boolean;
  allowPlaintextBackup: boolean;
  /** Seconds between automatic rotations; 0 disables them. */
  autoRotatePeriod: number;
  /** Context-derived keys: every operation needs a `context`. */
  derived: boolean;
  /** Convergent encryption: the same plaintext and context give the same ciphertext. */
  convergentEncryption: boolean;
  /**
   * True when every version's key material is a non-extractable object in
   * an HSM (see `hsmObject`); absent for keys held in storage.
   */
  hsm?: boolean;
  /** Key size for `hmac` keys, in bytes. */
  keySize?: number;
  /** True when the key's material was imported (transit `import`); absent for generated keys. */
  imported?: boolean;
  /**
   * For an imported key: whether rotation may add versions that Keyward
   * generates. Absent for generated keys, which always allow rotation.
   */
  allowRotation?: boolean;
  createdAt: string;
  updatedAt: string;
  /** ISO 8601 time of the last rotation (creation counts as one). */
  lastRotatedAt: string;
  /** When a `pre-active` key becomes active. */
  activationDate?: string;
  /** When the key was marked compromised. */
  compromisedAt?: string;
  /** When the key was last moved to `deactivated`. */
  deactivatedAt?: string;
  /** When the key was destroyed. */
  destroyedAt?: string;
  /** When a scheduled deletion runs; absent when none is scheduled. */
  deletionDate?: string;
}
