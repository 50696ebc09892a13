import { KeywardError } from "../errors.ts";
import { isCanonicalBase64, isCanonicalBase64url } from "../util/base64.ts";

/**
 * The text form of ciphertexts, signatures and HMACs: `keyward:v<N>:<data>`,
 * where N is the key version and data is standard base64 (base64url without
 * padding for JWS-marshaled signatures, as RFC 7515 encodes them).
 */
export const VERSIONED_VALUE_PREFIX = "keyward:v";

export type ValueEncoding = "base64" | "base64url";

export interface VersionedValue {
  version: number;
  bytes: Buffer;
}

/** Largest version a value may name: nine digits keep it a safe integer. */
const VERSION_PATTERN = /^[1-9][0-9]{0,8}$/;

export function formatVersionedValue(
  version: number,
  bytes: Uint8Array,
  encoding: ValueEncoding = "base64",
): string {
  return `${VERSIONED_VALUE_PREFIX}${version}:${Buffer.from(bytes).toString(encoding)}`;
}

/**
 * Parses `keyward:v<N>:<data>` strictly: the prefix, a positive version
 * without leading zeros, and non-empty canonical base64 (or base64url).
 * Throws `code` naming `field` for anything else.
 */
export function parseVersionedValue(
  value: unknown,
  field: string,
  code: "invalid_ciphertext" | "invalid_signature",
  encoding: ValueEncoding = "base64",
): VersionedValue {
  const invalid = (reason: string) =>
    new KeywardError(code, `${field} is invalid: ${reason}`, { field });

  if (typeof value !== "string") throw invalid("expected a string");
  if (!value.startsWith(VERSIONED_VALUE_PREFIX)) {
    throw invalid(`expected the form "${VERSIONED_VALUE_PREFIX}<version>:<${encoding}>"`);
  }
  const rest = value.slice(VERSIONED_VALUE_PREFIX.length);
  const separator = rest.indexOf(":");
  if (separator < 0) throw invalid('missing ":" after the key version');

  const versionText = rest.slice(0, separator);
  if (!VERSION_PATTERN.test(versionText)) {
    throw invalid("the key version must be a positive integer without leading zeros");
  }

  const data = rest.slice(separator + 1);
  const canonical = encoding === "base64" ? isCanonicalBase64(data) : isCanonicalBase64url(data);
  if (data.length === 0 || !canonical) throw invalid(`the data is not valid ${encoding}`);
  const bytes = Buffer.from(data, encoding);

  return { version: Number(versionText), bytes };
}
