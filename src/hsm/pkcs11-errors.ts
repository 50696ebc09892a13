import pkcs11js from "pkcs11js";
import { decryptionFailed, KeywardError } from "../errors.ts";

/** The PKCS#11 return value (`CKR_*` number) of an error the library raised, or undefined. */
export function returnValueOf(error: unknown): number | undefined {
  return error instanceof pkcs11js.Pkcs11Error ? error.code : undefined;
}

/** Returns the `CKR_*` name of an error the library raised, or the error's message for anything else. */
export function describePkcs11Error(error: unknown): string {
  if (error instanceof pkcs11js.Pkcs11Error) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Return values after which the session or the login is gone, as when the
 * token was removed or the HSM restarted: a new session and login may work.
 */
const SESSION_LOST = new Set<number>([
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
  pkcs11js.CKR_DEVICE_ERROR,
]);

/** Returns true when `error` reports a lost session or login, so reopening the session may help. */
export function isSessionLost(error: unknown): boolean {
  const code = returnValueOf(error);
  return code !== undefined && SESSION_LOST.has(code);
}

/**
 * Return values after which an operation may still be active on the
 * session: SoftHSM 2.6 returns CKR_ARGUMENTS_BAD from C_Encrypt and
 * C_Decrypt for empty input without ending the operation that the Init
 * call started, and every later call on that session then fails with
 * CKR_OPERATION_ACTIVE.
 */
const OPERATION_LEFT_ACTIVE = new Set<number>([
  pkcs11js.CKR_ARGUMENTS_BAD,
  pkcs11js.CKR_OPERATION_ACTIVE,
]);

/** Returns true when `error` (or the library error it wraps) may have left an operation active on the session. */
export function mayLeaveOperationActive(error: unknown): boolean {
  const code =
    returnValueOf(error) ??
    (error instanceof KeywardError ? returnValueOf(error.cause) : undefined);
  return code !== undefined && OPERATION_LEFT_ACTIVE.has(code);
}

/** Returns true when `error` (or the library error it wraps) reports that another operation is still active. */
export function isOperationActive(error: unknown): boolean {
  const code =
    returnValueOf(error) ??
    (error instanceof KeywardError ? returnValueOf(error.cause) : undefined);
  return code === pkcs11js.CKR_OPERATION_ACTIVE;
}

/** Return values of a decryption whose input or tag is wrong, as different tokens report it. */
const DECRYPTION_REJECTED = new Set<number>([
  pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
  // SoftHSM 2.6 returns this for a GCM tag that does not verify.
  // NOTE: a token that fails with one of the next two codes for another
  // reason, such as a hardware fault, is reported as a failed decryption too.
  pkcs11js.CKR_GENERAL_ERROR,
  pkcs11js.CKR_FUNCTION_FAILED,
]);

/**
 * Maps an error from a decryption call: `decryption_failed` when the token
 * rejected the ciphertext, else the error of `hsmOperationFailed`.
 */
export function decryptionError(operation: string, error: unknown): KeywardError {
  const code = returnValueOf(error);
  if (code !== undefined && DECRYPTION_REJECTED.has(code)) return decryptionFailed(error);
  return hsmOperationFailed(operation, error);
}

/** Returns the error for an HSM call that failed for a reason other than the caller's input. */
export function hsmOperationFailed(operation: string, error: unknown): KeywardError {
  if (error instanceof KeywardError) return error;
  return new KeywardError(
    "hsm_failure",
    `the HSM failed to ${operation}: ${describePkcs11Error(error)}`,
    { cause: error },
  );
}

/** Returns the error for empty input, which PKCS#11 tokens reject (SoftHSM 2.6 with CKR_ARGUMENTS_BAD). */
export function emptyInput(field: string): KeywardError {
  return new KeywardError("invalid_field", `${field} must not be empty for a key held in the HSM`, {
    field,
  });
}

/** Returns the error for a library or token that cannot be used at all. */
export function hsmUnavailable(message: string, cause?: unknown): KeywardError {
  return new KeywardError("hsm_unavailable", message, { cause });
}
