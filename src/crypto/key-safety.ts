import { createPublicKey, type KeyObject } from "node:crypto";
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
  const point = new Uint8Array(info.subjectPublicKey);
  const form = point[0];
  const usable =
    (form === 0x04 && point.length >= 3 && point.length % 2 === 1) ||
    ((form === 0x02 || form === 0x03) && point.length >= 2);
  if (!usable) throw new RangeError("the EC public key is not a compressed or uncompressed point");
}

/**
 * Returns `key` after checking that an EC key's public point is usable
 * (see `checkSpki`) and that an EC private key's scalar is below the
 * curve's order. OpenSSL imports a scalar of the order or above, whose
 * public point is that of the scalar modulo the order, but other
 * implementations (WebCrypto, @noble/curves) refuse to sign with it.
 * Throws a RangeError otherwise.
 */
export function checkKeyObject(key: KeyObject): KeyObject {
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
