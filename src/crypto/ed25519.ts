import { type KeyObject, sign, verify } from "node:crypto";

/** Signs `message` with pure Ed25519 (RFC 8032); the result is 64 bytes. */
export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, privateKey);
}

/** Verifies a pure Ed25519 signature; malformed signatures return false. */
export function ed25519Verify(
  publicKey: KeyObject,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}
