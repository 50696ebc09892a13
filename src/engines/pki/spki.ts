import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { childrenOf, contentOf, decodeOid, readElement } from "./der.ts";
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

/**
 * Reads a DER SubjectPublicKeyInfo into a Node key object and its key
 * type and size. EC P-256 and P-384 keys with uncompressed points, RSA keys
 * and Ed25519 keys are imported as JWK, which OpenSSL 3 imports several
 * times faster than DER. Any other form goes through OpenSSL's DER decoder,
 * whose errors name `field` (`unsupported_key_type`).
 */
export function readPublicKey(spki: Uint8Array, field: string): ReadPublicKey {
  let subjectPublicKey: Uint8Array;
  let algorithm: string;
  let parameter: string | undefined;
  try {
    const outer = readElement(spki, 0);
    const [algorithmElement, bits] = childrenOf(spki, outer);
    if (!algorithmElement || bits?.tag !== 0x03) throw new RangeError("invalid SPKI");
    const [algorithmOid, parameters] = childrenOf(spki, algorithmElement);
    if (algorithmOid?.tag !== 0x06) throw new RangeError("invalid SPKI algorithm");
    algorithm = decodeOid(contentOf(spki, algorithmOid));
    parameter = parameters?.tag === 0x06 ? decodeOid(contentOf(spki, parameters)) : undefined;
    const bitContent = contentOf(spki, bits);
    if (bitContent[0] !== 0) throw new RangeError("subjectPublicKey has unused bits");
    subjectPublicKey = bitContent.subarray(1);
  } catch (error) {
    throw new KeywardError("unsupported_key_type", `the public key in "${field}" cannot be read`, {
      field,
      cause: error,
    });
  }
  const fast = importAsJwk(algorithm, parameter, subjectPublicKey);
  if (fast) return { ...fast, subjectPublicKey };
  let key: KeyObject;
  try {
    key = publicKeyObject(spki);
  } catch (error) {
    throw new KeywardError("unsupported_key_type", `the public key in "${field}" cannot be read`, {
      field,
      cause: error,
    });
  }
  return { key, spec: describePublicKey(key, field), subjectPublicKey };
}

/** Returns the key identifier of RFC 5280 section 4.2.1.2 method 1: the SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(subjectPublicKey: Uint8Array): Buffer {
  return createHash("sha1").update(subjectPublicKey).digest();
}

/** RSA modulus sizes accepted in a CSR or certificate, in bits, as `describePublicKey` accepts them. */
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

/** Imports the common key forms as JWK; returns undefined for any other form or on any doubt. */
function importAsJwk(
  algorithm: string,
  parameter: string | undefined,
  bits: Uint8Array,
): { key: KeyObject; spec: KeySpec } | undefined {
  try {
    if (algorithm === OID.ecPublicKey && parameter !== undefined) {
      const curve = EC_CURVES[parameter];
      if (!curve || bits[0] !== 0x04 || bits.length !== 1 + 2 * curve.coordinateBytes) return;
      const x = Buffer.from(bits.subarray(1, 1 + curve.coordinateBytes)).toString("base64url");
      const y = Buffer.from(bits.subarray(1 + curve.coordinateBytes)).toString("base64url");
      const key = createPublicKey({ key: { kty: "EC", crv: curve.jwk, x, y }, format: "jwk" });
      return { key, spec: { type: "ec", bits: curve.bits } };
    }
    if (algorithm === OID.rsaEncryption) {
      const outer = readElement(bits, 0);
      const [modulus, exponent] = childrenOf(bits, outer);
      if (modulus?.tag !== 0x02 || exponent?.tag !== 0x02) return;
      let n = contentOf(bits, modulus);
      while (n.length > 1 && n[0] === 0) n = n.subarray(1);
      const size = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
      if (size < RSA_MIN_BITS || size > RSA_MAX_BITS) return;
      const key = createPublicKey({
        key: {
          kty: "RSA",
          n: Buffer.from(n).toString("base64url"),
          e: Buffer.from(contentOf(bits, exponent)).toString("base64url"),
        },
        format: "jwk",
      });
      return { key, spec: { type: "rsa", bits: size } };
    }
    if (algorithm === OID.ed25519 && bits.length === 32) {
      const x = Buffer.from(bits).toString("base64url");
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
      return { key, spec: { type: "ed25519", bits: 0 } };
    }
  } catch {
    // OpenSSL's DER decoder then decides, and its error names the field.
  }
  return undefined;
}

/** Returns the subjectPublicKey bits of a DER SubjectPublicKeyInfo; throws RangeError when it is malformed. */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const [, bits] = childrenOf(spki, readElement(spki, 0));
  if (bits?.tag !== 0x03) throw new RangeError("SubjectPublicKeyInfo has no BIT STRING");
  return contentOf(spki, bits).subarray(1);
}
