import { KeywardError } from "../../errors.ts";
import { hasControlCharacter } from "./templates.ts";

/**
 * Checks on the names Keyward writes into certificates and KRLs: principals
 * and key IDs. OpenSSH reads both as C strings, so a NUL byte makes the
 * whole certificate or KRL unreadable ("invalid format" from `ssh-keygen -L`
 * or `-Q`, and sshd then rejects every login that checks it).
 */

/** Maximum principals in one certificate: OpenSSH's SSHKEY_CERT_MAX_PRINCIPALS (sshkey.h). It rejects a certificate with more. */
export const MAX_PRINCIPALS = 256;

/** Maximum principal length, in characters. DNS host names have at most 253. */
export const MAX_PRINCIPAL_LENGTH = 255;

/** Maximum key ID length, in bytes of UTF-8. */
export const MAX_KEY_ID_BYTES = 1024;

/**
 * Returns true when `name` can be one principal: 1 to 255 characters
 * without whitespace, commas or control characters. Commas would split it
 * in `valid_principals` and in sshd's `AuthorizedPrincipalsFile` options.
 */
export function isValidPrincipal(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_PRINCIPAL_LENGTH &&
    !/[\s,]/.test(name) &&
    !hasControlCharacter(name)
  );
}

/**
 * Throws `invalid_field` naming `field` unless `name` is a valid principal.
 * `problem` opens the message; by default it blames the field itself.
 */
export function checkPrincipal(
  name: string,
  field: string,
  problem = `"${field}" has an invalid principal`,
): void {
  if (isValidPrincipal(name)) return;
  throw new KeywardError(
    "invalid_field",
    `${problem}. A principal has 1 to ${MAX_PRINCIPAL_LENGTH} characters without spaces, commas or control characters`,
    { field },
  );
}

/** Throws `invalid_field` naming `field` when a certificate carries more principals than OpenSSH reads. */
export function checkPrincipalCount(count: number, field: string): void {
  if (count <= MAX_PRINCIPALS) return;
  throw new KeywardError(
    "invalid_field",
    `"${field}" names ${count} principals; OpenSSH accepts at most ${MAX_PRINCIPALS} in one certificate`,
    { field },
  );
}

/** Returns true when `keyId` fits in a certificate and a KRL: at most 1024 bytes without control characters. */
export function isValidKeyId(keyId: string): boolean {
  return Buffer.byteLength(keyId) <= MAX_KEY_ID_BYTES && !hasControlCharacter(keyId);
}

/** Throws `invalid_field` naming `field` unless `keyId` is a valid key ID. */
export function checkKeyId(keyId: string, field: string): void {
  if (isValidKeyId(keyId)) return;
  throw new KeywardError(
    "invalid_field",
    `"${field}" must be at most ${MAX_KEY_ID_BYTES} bytes without control characters`,
    { field },
  );
}
