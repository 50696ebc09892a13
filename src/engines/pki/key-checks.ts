import { createPublicKey } from "node:crypto";
import { importSpki } from "../../crypto/key-safety.ts";

/**
 * Returns a canonical form of a DER SubjectPublicKeyInfo, as hex, so that
 * one key compares equal in every encoding: an EC point becomes
 * uncompressed, because a certificate may carry the compressed form of a
 * key stored uncompressed. Throws a RangeError or an OpenSSL error when
 * `spki` is not a usable key (see `importSpki`).
 */
export function canonicalPublicKey(spki: Uint8Array): string {
  const key = importSpki(spki);
  // The JWK export is safe here because importSpki rejected the point at infinity.
  const normal =
    key.asymmetricKeyType === "ec"
      ? createPublicKey({ key: key.export({ format: "jwk" }), format: "jwk" })
      : key;
  return normal.export({ format: "der", type: "spki" }).toString("hex");
}
