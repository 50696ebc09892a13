/**
 * Managed-key operations: pure functions over `ManagedKey` values.
 *
 * Every function that changes a key returns a new object and leaves its
 * input untouched, so a caller can keep the old value and restore it when
 * persisting the new one fails. Nothing here stores, logs or does I/O.
 * Parsed private and public keys are kept in memory until
 * `forgetParsedKeys`, which the server calls at seal.
 */
export { HASH_ALGORITHMS, type HashAlgorithm } from "../crypto/hash.ts";
export type { PssSaltLength, RsaSignaturePadding } from "../crypto/rsa.ts";
export { backupKey, restoreKey } from "./backup.ts";
export { configureKey, type KeyConfigChanges, trimKey } from "./config.ts";
export {
  allowsRotation,
  type CreateKeyOptions,
  createKey,
  rotateKey,
  rotationDue,
  validateKeyOptions,
} from "./create.ts";
export { exportKey, publicKeyInfo, type VersionInfo } from "./export.ts";
export {
  checkHsmKeyOptions,
  droppedHsmObjects,
  HSM_KEY_TYPES,
  HSM_RSA_OAEP_HASH,
  hsmObjectsOf,
  rejectHsmMaterialUse,
  rsaOaepHashOf,
} from "./hsm.ts";
export {
  assertVersionImportAllowed,
  type ImportKeyOptions,
  importedVersionMaterial,
  importKey,
  importKeyVersion,
  validateImportOptions,
} from "./import.ts";
export { checkPrehashedInput } from "./key-types/asymmetric.ts";
export type {
  DecryptParams,
  EncryptParams,
  MarshalingAlgorithm,
  SignParams,
  VersionMaterial,
} from "./key-types/index.ts";
export { supports } from "./key-types/index.ts";
export { forgetParsedKeys } from "./key-types/material.ts";
export {
  rejectAssociatedData,
  rsaOaepEncryptVersion,
  rsaSignOptions,
} from "./key-types/rsa.ts";
export { assertAllowed, effectiveState, legalTransitions, transitionState } from "./lifecycle.ts";
export { MAX_KEY_NAME_LENGTH, validateKeyName } from "./names.ts";
export {
  type DataKeyRequest,
  type DecryptRequest,
  decrypt,
  type EncryptRequest,
  encrypt,
  generateDataKey,
  newDataKey,
  type PreparedDecryption,
  type PreparedEncryption,
  prepareDecryption,
  prepareEncryption,
} from "./operations/encrypt.ts";
export { type HmacRequest, type HmacVerifyRequest, hmac, verifyHmac } from "./operations/hmac.ts";
export {
  formatSignature,
  type PreparedSignature,
  prepareSignature,
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
