import { randomBytes as nodeRandomBytes } from "node:crypto";

/** Returns `length` cryptographically secure random bytes from node:crypto (OpenSSL's DRBG). */
export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}
