import type { ErrorCode } from "../../errors.ts";
import type { HsmToken } from "../../hsm/token.ts";
import type { HashAlgorithm, VersionInfo } from "../../keys/index.ts";
import type { KeyState, KeyType } from "../../keys/types.ts";
import type { Barrier } from "../../seal/types.ts";

/** The subset of pino's logger the transit engine and the scheduler use. */
export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  debug?(fields: object, message?: string): void;
}

export interface TransitServiceOptions {
  barrier: Barrier;
  /** The mount path without slashes, such as `transit`. Storage keys start with it. */
  mount: string;
  clock?: () => Date;
  logger?: Logger;
  /**
   * Days a scheduled deletion waits when neither the request nor the mount's
   * stored configuration sets a window. Defaults to 30.
   */
  deletionWindowDays?: number;
  /** The token that keys created with `hsm: true` live in; without it, such keys are rejected. */
  hsm?: HsmToken;
}

/** A result together with the warnings to return beside it. */
export interface Outcome<T> {
  value: T;
  warnings: string[];
}

/** One `batch_results` entry: the item's result, or its error message and stable code. */
export type BatchItemResult<T> =
  | ({ ok: true; reference?: string } & T)
  | { ok: false; error: string; code: ErrorCode; reference?: string };

export interface BatchOutcome<T> {
  results: BatchItemResult<T>[];
  /** The HTTP status for the whole response, following Vault's batch rules. */
  status: number;
  warnings: string[];
}

/** The mount-wide settings stored at `<mount>/config/keys`. */
export interface TransitMountConfig {
  /** When true, encrypting with a missing key fails instead of creating it (Vault's `disable_upsert`). */
  disableUpsert: boolean;
  /** Days a scheduled deletion waits unless the request sets `deletion_window`. */
  deletionWindowDays: number;
}

/** A key as the read endpoint reports it: Vault's fields plus Keyward's lifecycle fields. */
export interface KeyInfo {
  name: string;
  type: KeyType;
  derived: boolean;
  kdf?: string;
  convergentEncryption: boolean;
  exportable: boolean;
  allowPlaintextBackup: boolean;
  deletionAllowed: boolean;
  /**
   * Version number to creation time in Unix seconds for symmetric and HMAC
   * keys, or to `{ name, public_key, creation_time }` for asymmetric keys.
   */
  keys: Record<string, number | VersionInfo>;
  latestVersion: number;
  minAvailableVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  supportsEncryption: boolean;
  supportsDecryption: boolean;
  supportsDerivation: boolean;
  supportsSigning: boolean;
  /** True when the key's material was imported through `keys/:name/import`. */
  imported: boolean;
  /** For imported keys only: whether `rotate` may add versions that Keyward generates. */
  allowRotation?: boolean;
  /** True when the key's versions are non-extractable objects in the HSM (Keyward extension). */
  hsm: boolean;
  /** Seconds between automatic rotations; 0 when disabled. */
  autoRotatePeriod: number;
  keySize?: number;
  /**
   * The hash RSA-OAEP uses for the label hash and MGF1, for RSA keys only:
   * "sha2-256", or "sha1" for an HSM-held key (Keyward extension).
   */
  rsaOaepHash?: HashAlgorithm;
  state: KeyState;
  activationDate: string | null;
  deletionDate: string | null;
  compromisedAt: string | null;
  /** When the key was last deactivated; null for keys deactivated before the time was recorded. */
  deactivatedAt: string | null;
  destroyedAt: string | null;
}

export interface CreateKeyRequest {
  type?: KeyType;
  derived?: boolean;
  convergentEncryption?: boolean;
  exportable?: boolean;
  allowPlaintextBackup?: boolean;
  /** Seconds, or a duration string such as `24h`. */
  autoRotatePeriod?: number | string;
  /** Key size in bytes for `hmac` keys. */
  keySize?: number;
  /** ISO 8601 time at which the key becomes active; the key is `pre-active` until then. */
  activationDate?: string;
  /** Keep every version as a non-extractable object in the HSM (Keyward extension). */
  hsm?: boolean;
}

export interface ConfigureKeyRequest {
  minDecryptionVersion?: number;
  minEncryptionVersion?: number;
  deletionAllowed?: boolean;
  exportable?: boolean;
  allowPlaintextBackup?: boolean;
  autoRotatePeriod?: number | string;
}

/** The states a caller may move a key to; `pre-active` is reached only through an activation date. */
export const TARGET_KEY_STATES = [
  "active",
  "suspended",
  "deactivated",
  "compromised",
  "destroyed",
] as const;
export type TargetKeyState = (typeof TARGET_KEY_STATES)[number];

export interface DeletionSchedule {
  name: string;
  /** ISO 8601 time after which the deletion job removes the key. */
  deletionDate: string;
}

// Operation items carry base64 strings exactly as the request sent them,
// so that a bad value fails only its own batch item.

export interface EncryptItem {
  plaintext?: string;
  context?: string;
  nonce?: string;
  associatedData?: string;
  keyVersion?: number;
  reference?: string;
}

export interface EncryptOptions {
  /** Type of the key to create when the key does not exist (Vault's upsert). */
  type?: KeyType;
  convergentEncryption?: boolean;
  partialFailureResponseCode?: number;
}

export interface EncryptResult {
  ciphertext: string;
  keyVersion: number;
}

export interface DecryptItem {
  ciphertext?: string;
  context?: string;
  nonce?: string;
  associatedData?: string;
  reference?: string;
}

export interface DecryptResult {
  /** Base64. */
  plaintext: string;
}

export interface RewrapItem {
  ciphertext?: string;
  context?: string;
  nonce?: string;
  keyVersion?: number;
  reference?: string;
}

export interface BatchOptions {
  partialFailureResponseCode?: number;
}

export const DATA_KEY_KINDS = ["plaintext", "wrapped"] as const;
export type DataKeyKind = (typeof DATA_KEY_KINDS)[number];

export interface DataKeyRequest {
  kind: DataKeyKind;
  bits?: number;
  context?: string;
  nonce?: string;
  keyVersion?: number;
}

export interface DataKeyResult {
  /** Base64; absent for `wrapped` data keys. */
  plaintext?: string;
  ciphertext: string;
  keyVersion: number;
}

export interface SignatureOptions {
  hashAlgorithm?: string;
  prehashed?: boolean;
  signatureAlgorithm?: string;
  marshalingAlgorithm?: string;
  /** `auto`, `hash` or a number of bytes (as a number or a string of digits). */
  saltLength?: string | number;
}

export interface SignItem {
  input?: string;
  context?: string;
  reference?: string;
}

export interface SignOptions extends SignatureOptions {
  keyVersion?: number;
}

export interface SignResult {
  signature: string;
  keyVersion: number;
  publicKey?: string;
}

export interface VerifyItem {
  input?: string;
  signature?: string;
  hmac?: string;
  context?: string;
  reference?: string;
}

export interface VerifyResult {
  valid: boolean;
}

export interface HmacItem {
  input?: string;
  reference?: string;
}

export interface HmacOptions {
  algorithm?: string;
  keyVersion?: number;
}

export interface HmacResult {
  hmac: string;
  keyVersion: number;
}
