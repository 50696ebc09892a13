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
  // The one-time password of sys/generate-root, which decodes the encoded_token of the
  // final update response to the new root token.
  "otp",
  // The recovery shares that sys/init returns with a PKCS#11 seal, which unseals itself
  // before the response record is written.
  "recovery_keys",
  "recovery_keys_base64",
  // Output of transit/random, which callers use as keys and passwords.
  "random_bytes",
  "passphrase",
  "password",
  "backup",
  "context",
  "nonce",
]);

/**
 * Transit key import paths (`<mount>/keys/<name>/import` and
 * `import_version`). Their `ciphertext` is a wrapped key that only the
 * mount's wrapping key opens. It is HMAC'd there although other
 * ciphertexts stay clear, because an auditor has no use for it and a
 * leaked wrapping key would otherwise open every import in the log.
 */
const KEY_IMPORT_PATH = /(?:^|\/)keys\/[^/]+\/import(?:_version)?$/;

/** Returns the fields HMAC'd on request path `path` besides the configured ones. */
export function pathSensitiveFields(path: string): readonly string[] {
  return KEY_IMPORT_PATH.test(path) ? ["ciphertext"] : [];
}

/** Returns `hmac-sha256:<hex>` of `value` (UTF-8) under the installation's audit HMAC key. */
export function hmacValue(key: Uint8Array, value: string): string {
  return HMAC_PREFIX + createHmac("sha256", key).update(value, "utf8").digest("hex");
}

/**
 * Returns a copy of `data` as plain JSON values, in which every string
 * under a sensitive field is replaced by its HMAC, at any depth. A
 * sensitive field's value is replaced whole: a string directly, and every
 * string inside an array or object (such as the `keys` map of an export).
 * Numbers, booleans and null stay. The input is not modified.
 *
 * The copy contains what `JSON.stringify` would write: `toJSON` is applied,
 * undefined values and functions leave objects and become null in arrays,
 * and NaN and the infinities become null. So a record hashes the same as
 * the line a device writes, without a JSON round trip before redaction.
 */
export function redact(data: unknown, sensitiveFields: Iterable<string>, key: Uint8Array): unknown {
  return redactInOrder(data, sensitiveFields, key).value;
}

/**
 * Redacts like `redact`, and builds every object of the copy with its keys
 * in code-unit order. `keysInOrder` is false when some object has a key
 * that is an array index: JavaScript lists those first whatever the order
 * they were added in, so that object's `JSON.stringify` is not in order.
 */
export function redactInOrder(
  data: unknown,
  sensitiveFields: Iterable<string>,
  key: Uint8Array,
): { value: unknown; keysInOrder: boolean } {
  const fields = sensitiveFields instanceof Set ? sensitiveFields : new Set(sensitiveFields);
  const walk: Walk = { fields: fields as ReadonlySet<string>, key, keysInOrder: true };
  const value = redactValue(data, "", walk, false);
  return { value, keysInOrder: walk.keysInOrder };
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

/** True for a property name that JavaScript treats as an array index (0 to 2^32 - 2). */
export function isArrayIndex(name: string): boolean {
  const first = name.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return false;
  return /^(?:0|[1-9][0-9]{0,9})$/.test(name) && Number(name) < 4294967295;
}

interface Walk {
  fields: ReadonlySet<string>;
  key: Uint8Array;
  /** Cleared when an object of the copy has an array-index key. */
  keysInOrder: boolean;
}

/** Returns the redacted JSON value of `input`, the value of field `name`; undefined where JSON has no value. */
function redactValue(input: unknown, name: string, walk: Walk, sensitive: boolean): unknown {
  let value = input;
  if (value !== null && typeof value === "object" && "toJSON" in value) {
    const toJSON = (value as { toJSON: unknown }).toJSON;
    if (typeof toJSON === "function") value = toJSON.call(value, name) as unknown;
  }
  switch (typeof value) {
    case "string":
      return sensitive || alwaysHidden(value) ? hmacValue(walk.key, value) : value;
    case "number":
      return Number.isFinite(value) ? value : null;
    case "boolean":
      return value;
    case "bigint":
      throw new TypeError("a BigInt has no JSON form");
    case "object":
      break;
    default:
      // undefined, functions and symbols have no JSON value.
      return undefined;
  }
  if (value === null) return null;
  if (Array.isArray(value)) {
    const items: unknown[] = new Array(value.length);
    for (let index = 0; index < value.length; index++) {
      const item = redactValue(value[index], String(index), walk, sensitive);
      items[index] = item === undefined ? null : item;
    }
    return items;
  }
  // Boxed primitives serialise as their primitive value.
  if (value instanceof String || value instanceof Number || value instanceof Boolean) {
    return redactValue(value.valueOf(), name, walk, sensitive);
  }
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // Array.prototype.sort without a comparator orders by UTF-16 code units.
  for (const field of Object.keys(record).sort()) {
    const child = redactValue(record[field], field, walk, sensitive || walk.fields.has(field));
    if (child === undefined) continue;
    if (isArrayIndex(field)) walk.keysInOrder = false;
    // A `__proto__` key from parsed JSON stays a plain field instead of replacing the prototype.
    if (field === "__proto__") {
      Object.defineProperty(out, field, {
        value: child,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[field] = child;
    }
  }
  return out;
}
