import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";

/**
 * Node.js 20 aborts the whole process (a failed native assertion, not an
 * exception) when it is asked for the details or the JWK of an EC key
 * whose public point is the point at infinity. `createPublicKey` accepts
 * such a key from an SPKI whose point is the single byte 00, and a
 * private key whose scalar is 0 has that public point too. The imports of
 * keys from requests (CSRs, CA certificates and keys, KMIP Register,
 * transit key import, SSH private keys) call these checks first.
 */

/**
 * Throws a RangeError unless the SPKI's key, when it is an EC key, is an
 * uncompressed (04) or compressed (02, 03) point. The infinity point (00)
 * and the hybrid forms (06, 07) are rejected.
 */
export function checkSpki(spki: Uint8Array): void {
  const info = AsnConvert.parse(spki, SubjectPublicKeyInfo);
  if (info.algorithm.algorithm !== EC_PUBLIC_KEY) return;
  checkEcPointForm(new Uint8Array(info.subjectPublicKey));
}

/**
 * Throws a RangeError unless `point` is an uncompressed (04) or compressed
 * (02, 03) EC point encoding. The infinity point (00) and the hybrid
 * forms (06, 07) are rejected.
 */
export function checkEcPointForm(point: Uint8Array): void {
  const form = point[0];
  const usable =
    (form === 0x04 && point.length >= 3 && point.length % 2 === 1) ||
    ((form === 0x02 || form === 0x03) && point.length >= 2);
  if (!usable) throw new RangeError("the EC public key is not a compressed or uncompressed point");
}

/**
 * Returns `key` after checking its public values. An EC key's public
 * point must be usable (see `checkSpki`), and an EC private key's scalar
 * below the curve's order. An RSA key's exponent must be odd and at least
 * 3, and an Ed25519 key a point of large order. OpenSSL imports an EC
 * scalar of the order or above, whose public point is that of the scalar
 * modulo the order, but other implementations (WebCrypto, @noble/curves)
 * refuse to sign with it. Throws a RangeError otherwise.
 */
export function checkKeyObject(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType === "rsa") {
    checkRsaExponent(key.asymmetricKeyDetails?.publicExponent);
    return key;
  }
  if (key.asymmetricKeyType === "ed25519") {
    const raw = (key.type === "private" ? createPublicKey(key) : key)
      .export({ format: "der", type: "spki" })
      .subarray(-32);
    checkEd25519Point(raw);
    return key;
  }
  if (key.asymmetricKeyType !== "ec") return key;
  // The DER export of the public half is safe for every point, unlike the details and the JWK.
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  checkSpki(publicKey.export({ format: "der", type: "spki" }));
  if (key.type === "private") {
    const order = CURVE_ORDERS[key.asymmetricKeyDetails?.namedCurve ?? ""];
    const { d } = key.export({ format: "jwk" });
    if (order !== undefined && d !== undefined) {
      const scalar = BigInt(`0x${Buffer.from(d, "base64url").toString("hex") || "0"}`);
      if (scalar === 0n || scalar >= order) {
        throw new RangeError("the EC private key's scalar is not below the curve's order");
      }
    }
  }
  return key;
}

/**
 * Throws a RangeError unless an RSA public exponent is odd and at least 3
 * (RFC 8017 section 3.1). With exponent 1, "encryption" returns the padded
 * plaintext and any padded digest is a valid signature.
 */
export function checkRsaExponent(exponent: bigint | undefined): void {
  if (exponent === undefined || exponent < 3n || exponent % 2n === 0n) {
    throw new RangeError("the RSA public exponent is even or below 3");
  }
}

/**
 * Throws a RangeError unless `raw` is an Ed25519 public key of large
 * order. With a point of small order, such as the identity, a signature
 * can verify for every message, so it proves no private key.
 */
export function checkEd25519Point(raw: Uint8Array): void {
  let small: boolean;
  try {
    small = raw.length !== 32 || ed25519.Point.fromBytes(raw).isSmallOrder();
  } catch {
    small = true;
  }
  if (small) throw new RangeError("the Ed25519 public key is not a point of large order");
}

/** The orders of the curves' base points, by OpenSSL's curve name. */
const CURVE_ORDERS: Record<string, bigint> = {
  prime256v1: p256.Point.Fn.ORDER,
  secp384r1: p384.Point.Fn.ORDER,
  secp521r1: p521.Point.Fn.ORDER,
  secp256k1: secp256k1.Point.Fn.ORDER,
};

/** Imports a DER SubjectPublicKeyInfo after `checkSpki`; throws when the bytes are not a usable key. */
export function importSpki(spki: Uint8Array): KeyObject {
  checkSpki(spki);
  return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
}

const EC_PUBLIC_KEY = "1.2.840.10045.2.1";

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
 * `privateKey` must have passed `checkKeyObject`. Used for private keys
 * that requests import: CA keys and transit key imports.
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
