import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { importSpki } from "../../crypto/key-safety.ts";

/** Data signed by the pairwise consistency check; any fixed bytes do. */
const PAIRWISE_TEST_DATA = Buffer.from("keyward pairwise consistency check");

/**
 * Throws a RangeError unless `privateKey` is consistent with the public key
 * it carries. A SEC 1 or PKCS#8 EC key contains its public point next to the
 * scalar, and OpenSSL 3 takes that point as given, so a key can pair one
 * CA's scalar with another CA's point. OpenSSL also imports an RSA key
 * whose primes do not multiply to its modulus, and signs with it by
 * falling back to the private exponent. This check signs with the private
 * key and verifies with its public key, and for RSA it also checks the
 * primes and CRT values against the modulus and the exponents.
 * `privateKey` must have passed `checkKeyObject`.
 */
export function checkKeyPair(privateKey: KeyObject): void {
  if (privateKey.asymmetricKeyType === "rsa") checkRsaPrimes(privateKey);
  const algorithm = privateKey.asymmetricKeyType === "ed25519" ? null : "sha256";
  const signature = sign(algorithm, PAIRWISE_TEST_DATA, privateKey);
  if (!verify(algorithm, PAIRWISE_TEST_DATA, createPublicKey(privateKey), signature)) {
    throw new RangeError("the private key does not match its public key");
  }
}

/**
 * Throws a RangeError unless an RSA private key has two primes p and q
 * with n = p*q, e*d = 1 modulo p-1 and q-1, dp = d mod (p-1),
 * dq = d mod (q-1) and qi*q = 1 mod p (RFC 8017 section 3.2).
 */
function checkRsaPrimes(privateKey: KeyObject): void {
  const jwk = privateKey.export({ format: "jwk" });
  const values = [jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi];
  if (values.some((value) => value === undefined)) {
    throw new RangeError("the RSA private key lacks its primes or CRT values");
  }
  const [n, e, d, p, q, dp, dq, qi] = values.map((value) => bigintOf(value!)) as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  const consistent =
    p > 1n &&
    q > 1n &&
    p * q === n &&
    (e * d) % (p - 1n) === 1n &&
    (e * d) % (q - 1n) === 1n &&
    d % (p - 1n) === dp &&
    d % (q - 1n) === dq &&
    (qi * q) % p === 1n;
  if (!consistent) throw new RangeError("the RSA private key's primes do not match its modulus");
}

function bigintOf(base64url: string): bigint {
  return BigInt(`0x${Buffer.from(base64url, "base64url").toString("hex") || "0"}`);
}

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
