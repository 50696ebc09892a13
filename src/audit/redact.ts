import { createHmac } from "node:crypto";

/** Prefix of every HMAC'd value in an audit record, as in Vault's audit log. */
export const HMAC_PREFIX = "hmac-sha256:";

/**
 * Request and response fields whose string values are replaced by their
 * HMAC. Ciphertexts, signatures and HMAC outputs are left in the clear:
 * they reveal nothing without the key, and an auditor needs them to follow
 * a value through the log.
 */
export const DEFAULT_SENSITIVE_FIELDS: readonly string[] = Object.freeze([
  "plaintext",
  "input",
  "key",
  "keys",
  "keys_base64",
  "private_key",
  // A PEM bundle may carry a CA's private key (pki config/ca, issuers/import/bundle).
  "pem_bundle",
  // A rendered WireGuard configuration carries the preshared keys of its peers.
  "config_text",
  "secret_id",
  // An EST enrolment secret, returned once when it is created.
  "secret",
  // A device bootstrap token, sent at enrolment and returned once when it is created.
  "bootstrap_token",
  // Sealed secret fields of device artifacts. They are JWE ciphertext, but the log has no use for them.
  "secrets",
  // Wi-Fi onboarding responses: the URI and the QR code carry the passphrase.
  "wifi_uri",
  "qr_code_png",
  "role_id",
  "token",
  "client_token",
  "root_token",
  "passphrase",
  "password",
  "backup",
  "context",
  "nonce",
]);

/** Returns `hmac-sha256:<hex>` of `value` (UTF-8) under the installation's audit HMAC key. */
export function hmacValue(key: Uint8Array, value: string): string {
  return HMAC_PREFIX + createHmac("sha256", key).update(value, "utf8").digest("hex");
}

/**
 * Returns a copy of `data` in which every string under a sensitive field is
 * replaced by its HMAC, at any depth. A sensitive field's value is replaced
 * whole: a string directly, and every string inside an array or object
 * (such as the `keys` map of an export). Numbers, booleans and null stay.
 * The input is not modified.
 */
export function redact(data: unknown, sensitiveFields: Iterable<string>, key: Uint8Array): unknown {
  const fields = sensitiveFields instanceof Set ? sensitiveFields : new Set(sensitiveFields);
  return redactValue(data, fields as ReadonlySet<string>, key, false);
}

/** Strings longer than this are recorded as their HMAC whatever their field, so one request cannot make a huge record. */
export const MAX_CLEAR_STRING_LENGTH = 64 * 1024;

/**
 * True for a string that must not appear in the clear under any field: a
 * PEM private key (pasted into the wrong field, for example), or one
 * longer than `MAX_CLEAR_STRING_LENGTH`.
 */
function alwaysHidden(value: string): boolean {
  return value.length > MAX_CLEAR_STRING_LENGTH || value.includes("PRIVATE KEY-----");
}

function redactValue(
  value: unknown,
  fields: ReadonlySet<string>,
  key: Uint8Array,
  sensitive: boolean,
): unknown {
  if (typeof value === "string") {
    return sensitive || alwaysHidden(value) ? hmacValue(key, value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, fields, key, sensitive));
  if (value !== null && typeof value === "object") {
    // Object.fromEntries defines own properties, so a `__proto__` key from
    // parsed JSON stays a plain field instead of replacing the prototype.
    return Object.fromEntries(
      Object.entries(value).map(([name, child]) => [
        name,
        redactValue(child, fields, key, sensitive || fields.has(name)),
      ]),
    );
  }
  return value;
}
