/**
 * Keyward's error model.
 *
 * Every error a caller can see carries a stable `code` from one closed list,
 * and each code maps to exactly one HTTP status. Whether a failure is the
 * caller's fault is decided where the error is raised, so the HTTP layer maps
 * errors mechanically. The `message` is safe to send to the caller; anything
 * internal belongs in `cause` or `details`, which only reach the log.
 */

export const ERROR_CODES = {
  // 400: the request is malformed or names an invalid value.
  invalid_request: 400,
  invalid_field: 400,
  missing_field: 400,
  unknown_field: 400,
  /** Wi-Fi: a key names a VLAN that is not in its network's list. */
  unknown_vlan: 400,
  invalid_base64: 400,
  invalid_ciphertext: 400,
  unsupported_operation: 400,
  invalid_json: 400,
  // 400: a KMIP message (TTLV, XML or JSON) is malformed; KmipDecodeError carries the Result Reason.
  invalid_kmip_message: 400,
  // 400: an ACL policy does not parse or names an unknown key or capability.
  invalid_policy: 400,
  // 401: EST. The request carries no valid HTTP Basic credentials, so the
  // response requests them with WWW-Authenticate (RFC 7030 section 3.2.3).
  authentication_required: 401,
  // 401: devices. The request carries no current identity certificate of an enrolled device.
  device_authentication_failed: 401,
  // 403: authentication and authorisation. A missing token gets 403, as in Vault.
  missing_token: 403,
  permission_denied: 403,
  // 403: devices. A bootstrap token is unknown, expired or has no uses left.
  bootstrap_token_invalid: 403,
  bootstrap_token_expired: 403,
  bootstrap_token_used: 403,
  // 404: the path or object does not exist.
  not_found: 404,
  route_not_found: 404,
  // 405: the route exists with another method.
  method_not_allowed: 405,
  // 409: the request conflicts with the object's current state.
  already_exists: 409,
  invalid_state: 409,
  already_initialized: 409,
  deletion_not_allowed: 409,
  // 409: WireGuard. An address range, tunnel address or route is already in use, or a range is full.
  address_conflict: 409,
  /** Wi-Fi: the MAC address is bound to another key of the network. */
  mac_address_conflict: 409,
  // 409: devices. The device is revoked; delete it and register it again.
  device_revoked: 409,
  // 413: the body is larger than the configured limit.
  body_too_large: 413,
  // 431: the request headers are larger than Node's HTTP parser accepts.
  request_header_too_large: 431,
  // 415: the body is not JSON.
  unsupported_media_type: 415,
  // 429: too many failed logins or token checks from one source or for one role.
  rate_limited: 429,
  // 400: a decrypt, unwrap or MAC check failed. One code and one fixed
  // message for all of them, so the response is no oracle.
  decryption_failed: 400,
  // 400: a signature or HMAC did not verify is not an error (verify returns
  // valid=false); this code is for an unusable signature encoding.
  invalid_signature: 400,
  // 400: a full set of unseal key shares does not rebuild the root key.
  invalid_shares: 400,
  // 400: the key version asked for is below the key's minimum.
  version_too_old: 400,
  // 400: PKI. A certificate, CSR or key in PEM or DER cannot be parsed.
  invalid_certificate: 400,
  // 400: PKI. A certificate signing request's signature does not verify.
  invalid_csr_signature: 400,
  // 400: PKI. A key or signature algorithm the engine does not support.
  unsupported_key_type: 400,
  // 400: PKI. A requested name is outside what the role allows.
  name_not_allowed: 400,
  // 400: PKI. A requested TTL or notAfter is beyond the role's maximum or the issuer's expiry.
  ttl_too_long: 400,
  // 400: transit key import. The ciphertext does not unwrap under the mount's
  // wrapping key: RSA-OAEP or the AES-KWP integrity check failed. One fixed
  // message for both, so the response is no padding oracle.
  key_unwrap_failed: 400,
  // 400: transit key import. The unwrapped key is not a usable key of the requested type.
  invalid_key_material: 400,
  // 400: a request needs the HSM for engine keys (hsm=true), but the server has none configured.
  hsm_not_configured: 400,
  // 503: the server is sealed, not initialised, or still starting.
  sealed: 503,
  not_initialized: 503,
  // 503: transit. A search needs a mount's key indexes, which are still being rebuilt after an upgrade.
  index_rebuilding: 503,
  // 503: the seal's HSM cannot be used: its PKCS#11 library or token is missing, or its key is gone.
  hsm_unavailable: 503,
  hsm_login_failed: 503,
  hsm_key_not_found: 503,
  // 503: the storage was initialised with another seal (Shamir or PKCS#11) or another HSM key than configured.
  seal_mismatch: 503,
  // 503: a change lost a conflict with concurrent changes (on this node or another) on every attempt; retry it.
  write_conflict: 503,
  // 503: the database cannot be reached or cannot serve now (stopped, restarting, unreachable); retry.
  storage_unavailable: 503,
  // 500: a failure that is not the caller's fault. The message sent is fixed.
  internal: 500,
  storage_failure: 500,
  // 500: an HSM operation failed for a reason other than the caller's input.
  hsm_failure: 500,
  // 500: no enabled audit device recorded the request, so it was not served (fail closed).
  audit_failure: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KeywardErrorOptions {
  /** The underlying error; logged, never sent to the caller. */
  cause?: unknown;
  /** The request field the error is about, such as `plaintext` or `batch_input[2].context`. */
  field?: string;
  /** Extra fields for the operator's log; never sent to the caller. */
  details?: Record<string, unknown>;
}

/** The one error class for failures a caller or operator should see. */
export class KeywardError extends Error {
  override readonly name = "KeywardError";
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: KeywardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_CODES[this.code];
  }

  /** True for errors caused by the caller (4xx). */
  get isClientError(): boolean {
    return this.status < 500;
  }
}

/** The fixed message for every failed decrypt, unwrap or authentication-tag check. */
export const DECRYPTION_FAILED_MESSAGE =
  "decryption failed: the ciphertext or its context is invalid";

export function decryptionFailed(cause?: unknown): KeywardError {
  return new KeywardError("decryption_failed", DECRYPTION_FAILED_MESSAGE, { cause });
}

export function invalidField(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

export function missingField(field: string): KeywardError {
  return new KeywardError("missing_field", `missing required field "${field}"`, { field });
}

export function notFound(what: string): KeywardError {
  return new KeywardError("not_found", `${what} not found`);
}

export function isKeywardError(error: unknown): error is KeywardError {
  return error instanceof KeywardError;
}
