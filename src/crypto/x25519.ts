import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { generateKeys } from "./key-generation.ts";

/** DER prefix of an X25519 PKCS#8 private key before its 32 raw bytes (RFC 8410, section 7). */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/** DER prefix of an X25519 SubjectPublicKeyInfo before its 32 raw bytes (RFC 8410, section 4). */
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/**
 * Computes the X25519 shared secret (RFC 7748) of a raw private and raw public key.
 *
 * Throws when either key is not 32 bytes, or when the result is all zero
 * (a low-order public key), which OpenSSL rejects as RFC 7748 section 6.1 allows.
 */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Buffer {
  if (privateKey.length !== 32 || publicKey.length !== 32) {
    throw new RangeError("X25519 keys are 32 bytes");
  }
  return diffieHellman({
    privateKey: createPrivateKey({
      key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]),
      format: "der",
      type: "pkcs8",
    }),
    publicKey: createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]),
      format: "der",
      type: "spki",
    }),
  });
}

/** Returns the raw 32-byte public key of a raw X25519 private key. */
export function x25519PublicKey(privateKey: Uint8Array): Buffer {
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]),
    format: "der",
    type: "pkcs8",
  });
  const jwk = createPublicKey(key).export({ format: "jwk" });
  return Buffer.from(jwk.x ?? "", "base64url");
}

/** Returns the 32 raw key bytes after `prefix` in a DER encoding of an X25519 key. */
function rawKeyOf(der: Buffer, prefix: Buffer): Buffer {
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new Error("node:crypto returned an unexpected DER encoding of an X25519 key");
  }
  return der.subarray(prefix.length);
}

/**
 * Generates an X25519 key pair and returns its raw 32-byte keys. OpenSSL
 * clamps the private key, as `wg genkey` does.
 */
export function generateX25519KeyPair(): { privateKey: Buffer; publicKey: Buffer } {
  const { pkcs8, spki } = generateKeys({ type: "x25519" });
  return {
    privateKey: rawKeyOf(pkcs8, X25519_PKCS8_PREFIX),
    publicKey: rawKeyOf(spki, X25519_SPKI_PREFIX),
  };
}
