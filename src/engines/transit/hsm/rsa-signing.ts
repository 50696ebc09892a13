import { loadPublicKey } from "../../../crypto/asymmetric-keys.ts";
import { digest, type HashAlgorithm, hashLength } from "../../../crypto/hash.ts";
import { digestInfo } from "../../../crypto/rsa.ts";
import { KeywardError } from "../../../errors.ts";
import type { HsmRsaKey, RsaTokenHash } from "../../../hsm/rsa.ts";
import { rsaSignOptions, type SignParams } from "../../../keys/index.ts";
import type { KeyType } from "../../../keys/types.ts";

/** The token layer's names of the hashes the HSM signs PSS with and decrypts OAEP with. */
const TOKEN_HASHES: Partial<Record<HashAlgorithm, RsaTokenHash>> = {
  sha1: "sha1",
  "sha2-224": "sha224",
  "sha2-256": "sha256",
  "sha2-384": "sha384",
  "sha2-512": "sha512",
};

/** Returns the token layer's name of a SHA-1 or SHA-2 hash, or undefined for SHA-3. */
export function tokenHash(hash: HashAlgorithm): RsaTokenHash | undefined {
  return TOKEN_HASHES[hash];
}

/**
 * Signs with an HSM-held RSA key after the checks a key in storage makes
 * (`rsaSignOptions`: no JWS marshaling, no prehashed PSS, a salt that
 * fits). PKCS#1 v1.5 has the token pad a DigestInfo that Keyward encodes,
 * so every hash works. PSS has the token sign the digest
 * (CKM_RSA_PKCS_PSS, MGF1 with the same hash), which PKCS#11 defines for
 * SHA-1 and SHA-2 only: SHA-3 is rejected with `invalid_field` on
 * `hash_algorithm`. A salt length of "auto" is the maximum, as for keys
 * in storage.
 */
export async function signRsaInHsm(
  type: KeyType,
  pair: HsmRsaKey,
  publicKeyPem: string,
  params: SignParams,
): Promise<Buffer> {
  const publicKey = loadPublicKey(publicKeyPem);
  const options = rsaSignOptions(type, publicKey, params);
  const hashed = options.prehashed ? params.input : digest(options.hash, params.input);
  if (options.padding === "pkcs1v15") return pair.signPkcs1(digestInfo(options.hash, hashed));

  const hash = tokenHash(options.hash);
  if (hash === undefined) {
    throw new KeywardError(
      "invalid_field",
      `HSM-held ${type} keys sign PSS with SHA-1 or SHA-2 only, not ${options.hash}; use another hash_algorithm or signature_algorithm "pkcs1v15"`,
      { field: "hash_algorithm" },
    );
  }
  const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  const maxSalt = Math.ceil((modulusBits - 1) / 8) - hashLength(options.hash) - 2;
  let saltLength = maxSalt;
  if (options.saltLength === "hash") saltLength = hashLength(options.hash);
  else if (typeof options.saltLength === "number") saltLength = options.saltLength;
  return pair.signPss(hashed, hash, saltLength);
}
