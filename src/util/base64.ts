const BASE64_ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL_ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * True for canonical padded standard base64 (RFC 4648 section 4), the form
 * Go's `base64.StdEncoding` and so Vault accept. A single character-class
 * loop and a re-encoding check keep this linear in the input: a regular
 * expression with a repeated group overflows V8's stack on a few MiB.
 */
export function isCanonicalBase64(value: string): boolean {
  if (value.length % 4 !== 0 || !BASE64_ALPHABET.test(value)) return false;
  return Buffer.from(value, "base64").toString("base64") === value;
}

/** True for canonical unpadded base64url (RFC 4648 section 5). */
export function isCanonicalBase64url(value: string): boolean {
  if (!BASE64URL_ALPHABET.test(value)) return false;
  return Buffer.from(value, "base64url").toString("base64url") === value;
}
