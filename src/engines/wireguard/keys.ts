import { randomBytes } from "../../crypto/random.ts";
import { generateX25519KeyPair, x25519PublicKey, x25519SharedSecret } from "../../crypto/x25519.ts";
import { invalidField } from "../../errors.ts";

/** Length of a WireGuard key in bytes: X25519 keys and preshared keys alike. */
export const KEY_BYTES = 32;

/**
 * A WireGuard key as `wg genkey`, `wg pubkey` and `wg genpsk` print it:
 * canonical padded base64 of 32 bytes. 32 bytes fill 42 characters and 4 bits
 * of the 43rd, so the 43rd must leave its 2 low bits zero (its alphabet index
 * is a multiple of 4) and one `=` follows.
 */
const KEY_TEXT = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** A key pair made on the server for a peer without an agent; the private key is returned once. */
export interface GeneratedKeyPair {
  publicKey: string;
  privateKey: string;
}

/**
 * Decodes a WireGuard key, rejecting anything but the 44-character canonical
 * form with `invalid_field` naming `field`. The message never repeats the key.
 */
export function decodeKey(text: unknown, field: string): Buffer {
  if (typeof text !== "string") {
    throw invalidField(field, `"${field}" must be a string`);
  }
  if (text.length !== 44) {
    throw invalidField(
      field,
      `"${field}" must be 44 characters of base64 (32 bytes, as wg pubkey prints it), got ${text.length} characters`,
    );
  }
  if (!KEY_TEXT.test(text)) {
    throw invalidField(
      field,
      `"${field}" is not canonical base64 of 32 bytes: it has a character outside the base64 alphabet, misplaced padding or non-zero padding bits`,
    );
  }
  return Buffer.from(text, "base64");
}

/**
 * Validates a peer's X25519 public key: canonical text and value, and a point that
 * gives a non-zero shared secret. An all-zero or other low-order point would
 * make every handshake with the peer derive a zero secret, so OpenSSL's
 * X25519 (which rejects a zero result, as RFC 7748 section 6.1 allows) is
 * run once against a throwaway private key.
 */
export function validatePublicKey(text: unknown, field = "public_key"): string {
  const raw = decodeKey(text, field);
  if (!isCanonicalX25519(raw)) {
    throw invalidField(
      field,
      `"${field}" is not in canonical form (the top bit is set or the value is not below 2^255-19); it is another spelling of a key as wg pubkey prints it`,
    );
  }
  try {
    x25519SharedSecret(randomBytes(KEY_BYTES), raw);
  } catch {
    throw invalidField(field, `"${field}" is a low-order X25519 point, which WireGuard cannot use`);
  }
  return text as string;
}

/** The prime 2^255-19 of Curve25519's field. */
const FIELD_PRIME = 2n ** 255n - 19n;

/**
 * Returns whether a public key is in the form `wg pubkey` prints: a
 * little-endian value below 2^255-19 with the top bit clear. X25519 ignores
 * the top bit and reduces the value modulo the prime (RFC 7748 section 5),
 * so other forms name the same key under other bytes, and a comparison of
 * key texts would not catch two peers sharing one key.
 */
function isCanonicalX25519(raw: Buffer): boolean {
  const value = BigInt(`0x${Buffer.from(raw).reverse().toString("hex")}`);
  return value < FIELD_PRIME;
}

/** Returns the base64 public key of a base64 private key, as `wg pubkey` does. */
export function publicKeyOf(privateKey: string): string {
  return x25519PublicKey(decodeKey(privateKey, "private_key")).toString("base64");
}

/**
 * Generates an X25519 key pair in WireGuard's base64 form. OpenSSL clamps
 * the private key, as `wg genkey` does.
 */
export function generateKeyPair(): GeneratedKeyPair {
  const { privateKey, publicKey } = generateX25519KeyPair();
  return { privateKey: privateKey.toString("base64"), publicKey: publicKey.toString("base64") };
}
