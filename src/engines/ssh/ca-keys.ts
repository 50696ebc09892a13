import type { KeyObject } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { parsePrivateKey } from "./private-keys.ts";
import {
  fingerprintSha256,
  formatPublicKeyLine,
  type KeyAlgorithm,
  parsePublicKeyLine,
  publicKeyBlob,
} from "./public-keys.ts";
import type { CaKeyRecord, CaKeyRequest } from "./types.ts";

// CA key records, built from a generated key or an imported one.

/** Smallest RSA CA key accepted for import, in bits. */
const MIN_RSA_CA_BITS = 2048;

/**
 * Builds the record of an imported CA key. Throws `invalid_field` or
 * `unsupported_key_type` naming `private_key` for a key that cannot be a CA
 * key, and `invalid_field` naming `public_key` when it does not match.
 */
export function importKey(
  request: CaKeyRequest,
  state: CaKeyRecord["state"],
  now: string,
): CaKeyRecord {
  const privateKey = parsePrivateKey(request.privateKey as string, "private_key");
  let record: CaKeyRecord;
  try {
    record = recordFor(privateKey, state, now, false);
  } catch (error) {
    if (error instanceof KeywardError) {
      throw new KeywardError(error.code, `"private_key": ${error.message}`, {
        field: "private_key",
      });
    }
    throw error;
  }
  if (record.algorithm === "ssh-rsa" && record.bits < MIN_RSA_CA_BITS) {
    throw new KeywardError(
      "invalid_field",
      `"private_key" is an RSA key of ${record.bits} bits; a CA key needs at least ${MIN_RSA_CA_BITS}`,
      { field: "private_key" },
    );
  }
  if (request.publicKey !== undefined && request.publicKey !== "") {
    const requestedPublicKey = parsePublicKeyLine(request.publicKey, "public_key");
    if (fingerprintSha256(requestedPublicKey.blob) !== record.id) {
      throw new KeywardError("invalid_field", '"public_key" does not match "private_key"', {
        field: "public_key",
      });
    }
  }
  return record;
}

/** Builds the stored record of a CA key. `generated` is true for a key Keyward generated. */
export function recordFor(
  privateKey: KeyObject,
  state: CaKeyRecord["state"],
  createdAt: string,
  generated: boolean,
): CaKeyRecord {
  const { algorithm, blob, bits } = publicKeyBlob(privateKey);
  return {
    id: fingerprintSha256(blob),
    algorithm: algorithm as KeyAlgorithm,
    bits,
    publicKey: formatPublicKeyLine(algorithm, blob),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    state,
    createdAt,
    generated,
  };
}

/** Returns the SSH public key blob of a record's one-line public key. */
export function publicBlobOf(record: Pick<CaKeyRecord, "publicKey">): Buffer {
  return Buffer.from(record.publicKey.split(" ")[1] as string, "base64");
}
