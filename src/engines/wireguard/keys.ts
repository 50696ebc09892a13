import { generateKeyPairSync } from "node:crypto";
import { randomBytes } from "../../crypto/random.ts";
import { x25519PublicKey, x25519SharedSecret } from "../../crypto/x25519.ts";
import { invalidField, KeywardError } from "../../errors.ts";

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
 * Validates a peer's X25519 public key: canonical text, and a point that
 * gives a non-zero shared secret. An all-zero or other low-order point would
 * make every handshake with the peer derive a zero secret, so OpenSSL's
 * X25519 (which rejects a zero result, as RFC 7748 section 6.1 allows) is
 * run once against a throwaway private key.
 */
export function validatePublicKey(text: unknown, field = "public_key"): string {
  const raw = decodeKey(text, field);
  try {
    x25519SharedSecret(randomBytes(KEY_BYTES), raw);
  } catch {
    throw invalidField(field, `"${field}" is a low-order X25519 point, which WireGuard cannot use`);
  }
  return text as string;
}

/** Returns the base64 public key of a base64 private key, as `wg pubkey` does. */
export function publicKeyOf(privateKey: string): string {
  return x25519PublicKey(decodeKey(privateKey, "private_key")).toString("base64");
}

/** DER prefix of an X25519 PKCS#8 private key before its 32 raw bytes (RFC 8410, section 7). */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/** DER prefix of an X25519 SubjectPublicKeyInfo before its 32 raw bytes (RFC 8410, section 4). */
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** Returns the raw key after `prefix` in a DER encoding that node:crypto just generated. */
function rawKeyOf(der: Buffer, prefix: Buffer, keyType: "private key" | "public key"): Buffer {
  if (der.length !== prefix.length + KEY_BYTES || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new KeywardError("internal", "internal error", {
      details: {
        reason: `node:crypto returned an unexpected DER encoding of an X25519 ${keyType}`,
      },
    });
  }
  return der.subarray(prefix.length);
}

/**
 * Generates an X25519 key pair in WireGuard's base64 form. OpenSSL clamps
 * the private key, as `wg genkey` does.
 *
 * The keys are encoded as DER inside the generation call, and no KeyObject
 * is exported afterwards. On Node.js 20.20.2, exporting a freshly generated
 * X25519 KeyObject as JWK can deadlock the thread (seen in a gdb backtrace).
 * The export holds the key's mutex while it allocates. A garbage collection
 * during that allocation can free the finished generation job, whose
 * destructor then locks the same mutex again.
 */
export function generateKeyPair(): GeneratedKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("x25519", {
    publicKeyEncoding: { format: "der", type: "spki" },
    privateKeyEncoding: { format: "der", type: "pkcs8" },
  });
  return {
    privateKey: rawKeyOf(privateKey, PKCS8_PREFIX, "private key").toString("base64"),
    publicKey: rawKeyOf(publicKey, SPKI_PREFIX, "public key").toString("base64"),
  };
}
