import { createHash, createPublicKey, type JsonWebKey, KeyObject } from "node:crypto";
import { checkEcPointForm, checkEd25519Point, checkRsaExponent } from "../../crypto/key-safety.ts";
import type { VerifierKey } from "../../crypto/verify-pool.ts";
import { KeywardError } from "../../errors.ts";
import { childrenOf, contentOf, type DerElement, decodeOid, readElement } from "./der.ts";
import { describePublicKey, type KeySpec, publicKeyObject } from "./key-pairs.ts";

/** Algorithm and curve OIDs of the SubjectPublicKeyInfo forms read without OpenSSL's decoder. */
const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
} as const;

const EC_CURVES: Record<string, { jwk: string; bits: number; coordinateBytes: number }> = {
  "1.2.840.10045.3.1.7": { jwk: "P-256", bits: 256, coordinateBytes: 32 },
  "1.3.132.0.34": { jwk: "P-384", bits: 384, coordinateBytes: 48 },
};

/** A public key read from a SubjectPublicKeyInfo. */
export interface ReadPublicKey {
  key: KeyObject;
  spec: KeySpec;
  /** The subjectPublicKey BIT STRING's bits, the input of the RFC 5280 key identifier. */
  subjectPublicKey: Uint8Array;
}

/** A SubjectPublicKeyInfo read without importing the common key forms into OpenSSL. */
export interface PublicKeyInfo {
  /** A JWK for EC P-256/P-384 with an uncompressed point, RSA and Ed25519; a key object for any other form. */
  key: VerifierKey;
  spec: KeySpec;
  /** The subjectPublicKey BIT STRING's bits, the input of the RFC 5280 key identifier. */
  subjectPublicKey: Uint8Array;
}

/**
 * Reads a DER SubjectPublicKeyInfo into its key type and size and a key
 * that a signature check can import. The common forms (EC P-256 and P-384
 * with uncompressed points, RSA, Ed25519) become JWKs, which OpenSSL 3
 * imports several times faster than DER. They are not imported here: the
 * signature check imports them on a worker thread, where an invalid key
 * then fails. Any other form is imported through OpenSSL's DER decoder, whose
 * errors name `field` (`unsupported_key_type`).
 */
export function readPublicKeyInfo(spki: Uint8Array, field: string): PublicKeyInfo {
  let subjectPublicKey: Uint8Array;
  let algorithm: string;
  let parameter: string | undefined;
  try {
    const outer = readElement(spki, 0);
    const [algorithmElement, bits] = childrenOf(spki, outer);
    if (!algorithmElement || bits?.tag !== 0x03) throw new RangeError("invalid SPKI");
    const children = childrenOf(spki, algorithmElement);
    const [algorithmOid, parameters] = children;
    if (algorithmOid?.tag !== 0x06) throw new RangeError("invalid SPKI algorithm");
    if (outer.end !== spki.length || children.length > 2) {
      throw new RangeError("bytes follow the SPKI or its algorithm");
    }
    algorithm = decodeOid(contentOf(spki, algorithmOid));
    parameter = parameters?.tag === 0x06 ? decodeOid(contentOf(spki, parameters)) : undefined;
    const bitContent = contentOf(spki, bits);
    if (bitContent[0] !== 0) throw new RangeError("subjectPublicKey has unused bits");
    subjectPublicKey = bitContent.subarray(1);
    checkKeyForm(algorithm, parameters, subjectPublicKey);
  } catch (error) {
    throw new KeywardError("unsupported_key_type", `the public key in "${field}" cannot be read`, {
      field,
      cause: error,
    });
  }
  const jwk = jwkOf(algorithm, parameter, subjectPublicKey);
  if (jwk) return { key: jwk.jwk, spec: jwk.spec, subjectPublicKey };
  const key = importDer(spki, field);
  return { key, spec: describePublicKey(key, field), subjectPublicKey };
}

/**
 * Reads a DER SubjectPublicKeyInfo into a Node key object and its key
 * type and size, as `readPublicKeyInfo` reads it, importing the key at once.
 */
export function readPublicKey(spki: Uint8Array, field: string): ReadPublicKey {
  const info = readPublicKeyInfo(spki, field);
  if (info.key instanceof KeyObject) return { ...info, key: info.key };
  try {
    return { ...info, key: createPublicKey({ key: info.key, format: "jwk" }) };
  } catch {
    // OpenSSL's DER decoder then decides, and its error names the field.
  }
  const key = importDer(spki, field);
  return { key, spec: describePublicKey(key, field), subjectPublicKey: info.subjectPublicKey };
}

function importDer(spki: Uint8Array, field: string): KeyObject {
  try {
    return publicKeyObject(spki);
  } catch (error) {
    throw new KeywardError("unsupported_key_type", `the public key in "${field}" cannot be read`, {
      field,
      cause: error,
    });
  }
}

/** Returns the key identifier of RFC 5280 section 4.2.1.2 method 1: the SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(subjectPublicKey: Uint8Array): Buffer {
  return createHash("sha1").update(subjectPublicKey).digest();
}

/** RSA modulus sizes accepted in a CSR or certificate, in bits, as `describePublicKey` accepts them. */
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

/**
 * Throws a RangeError for key encodings that OpenSSL would import but
 * that must not reach a certificate:
 * - EC: parameters other than a named curve (RFC 5480 section 2.1.1
 *   forbids the others), or a point that is neither compressed nor
 *   uncompressed. Node.js aborts the process on some of these (see
 *   `crypto/key-safety.ts`).
 * - RSA: parameters other than NULL (RFC 3279 section 2.3.1), a key that
 *   is not exactly two positive INTEGERs, or an even exponent or one
 *   below 3.
 * - Ed25519: parameters, or a point of small order, with which a
 *   signature can verify for every message, so it proves no private key.
 */
function checkKeyForm(algorithm: string, parameters: DerElement | undefined, bits: Uint8Array) {
  if (algorithm === OID.ecPublicKey) {
    if (parameters?.tag !== 0x06) throw new RangeError("the EC key does not name its curve");
    checkEcPointForm(bits);
  } else if (algorithm === OID.rsaEncryption) {
    if (
      parameters !== undefined &&
      (parameters.tag !== 0x05 || parameters.end !== parameters.contentStart)
    ) {
      throw new RangeError("the RSA key's algorithm parameters are not NULL");
    }
    const outer = readElement(bits, 0);
    const integers = childrenOf(bits, outer);
    if (outer.tag !== 0x30 || outer.end !== bits.length || integers.length !== 2) {
      throw new RangeError("the RSA key is not a sequence of two integers");
    }
    for (const integer of integers) {
      const content = contentOf(bits, integer);
      if (integer.tag !== 0x02 || content.length === 0 || (content[0]! & 0x80) !== 0) {
        throw new RangeError("the RSA key has a negative or empty integer");
      }
    }
    checkRsaExponent(BigInt(`0x${Buffer.from(contentOf(bits, integers[1]!)).toString("hex")}`));
  } else if (algorithm === OID.ed25519) {
    if (parameters !== undefined) throw new RangeError("the Ed25519 key has parameters");
    checkEd25519Point(bits);
  }
}

/** Returns the JWK of the common key forms, checked by `checkKeyForm`, or undefined for any other form. */
function jwkOf(
  algorithm: string,
  parameter: string | undefined,
  bits: Uint8Array,
): { jwk: JsonWebKey; spec: KeySpec } | undefined {
  if (algorithm === OID.ecPublicKey && parameter !== undefined) {
    const curve = EC_CURVES[parameter];
    if (!curve || bits[0] !== 0x04 || bits.length !== 1 + 2 * curve.coordinateBytes) {
      return undefined;
    }
    const x = Buffer.from(bits.subarray(1, 1 + curve.coordinateBytes)).toString("base64url");
    const y = Buffer.from(bits.subarray(1 + curve.coordinateBytes)).toString("base64url");
    return { jwk: { kty: "EC", crv: curve.jwk, x, y }, spec: { type: "ec", bits: curve.bits } };
  }
  if (algorithm === OID.rsaEncryption) {
    // `checkKeyForm` has checked that the key is two positive INTEGERs.
    const [modulus, exponent] = childrenOf(bits, readElement(bits, 0)) as [DerElement, DerElement];
    let n = contentOf(bits, modulus);
    while (n.length > 1 && n[0] === 0) n = n.subarray(1);
    const size = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
    if (size < RSA_MIN_BITS || size > RSA_MAX_BITS) return undefined;
    const jwk = {
      kty: "RSA",
      n: Buffer.from(n).toString("base64url"),
      e: Buffer.from(contentOf(bits, exponent)).toString("base64url"),
    };
    return { jwk, spec: { type: "rsa", bits: size } };
  }
  if (algorithm === OID.ed25519 && bits.length === 32) {
    const jwk = { kty: "OKP", crv: "Ed25519", x: Buffer.from(bits).toString("base64url") };
    return { jwk, spec: { type: "ed25519", bits: 0 } };
  }
  return undefined;
}

/** Returns the subjectPublicKey bits of a DER SubjectPublicKeyInfo; throws RangeError when it is malformed. */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const [, bits] = childrenOf(spki, readElement(spki, 0));
  if (bits?.tag !== 0x03) throw new RangeError("SubjectPublicKeyInfo has no BIT STRING");
  return contentOf(spki, bits).subarray(1);
}
