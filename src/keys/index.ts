/**
 * Managed-key operations: pure functions over `ManagedKey` values.
 *
 * Every function that changes a key returns a new object and leaves its
 * input untouched, so a caller can keep the old value and restore it when
 * persisting the new one fails. Nothing here stores, logs or does I/O.
 */
export { HASH_ALGORITHMS, type HashAlgorithm } from "../crypto/hash.ts";
export type { PssSaltLength, RsaSignaturePadding } from "../crypto/rsa.ts";
export { backupKey, restoreKey } from "./backup.ts";
export { configureKey, type KeyConfigChanges, trimKey } from "./config.ts";
export { type CreateKeyOptions, createKey, rotateKey, rotationDue } from "./create.ts";
export { exportKey, publicKeyInfo, type VersionInfo } from "./export.ts";
export type { MarshalingAlgorithm } from "./key-types/index.ts";
export { supports } from "./key-types/index.ts";
export { assertAllowed, effectiveState, legalTransitions, transitionState } from "./lifecycle.ts";
export { MAX_KEY_NAME_LENGTH, validateKeyName } from "./names.ts";
export {
  type DataKeyRequest,
  type DecryptRequest,
  decrypt,
  type EncryptRequest,
  encrypt,
  generateDataKey,
} from "./operations/encrypt.ts";
export { type HmacRequest, type HmacVerifyRequest, hmac, verifyHmac } from "./operations/hmac.ts";
export {
  type SignatureOptions,
  type SignRequest,
  sign,
  type VerifyRequest,
  verify,
} from "./operations/sign.ts";
export { MIN_AUTO_ROTATE_PERIOD } from "./settings.ts";
export * from "./types.ts";
export { validateManagedKey } from "./validate.ts";
export {
  formatVersionedValue,
  parseVersionedValue,
  type ValueEncoding,
  VERSIONED_VALUE_PREFIX,
  type VersionedValue,
} from "./versioned-value.ts";
