import { type KeyObject, sign, verify } from "node:crypto";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import type { EcdsaCurve } from "./asymmetric-keys.ts";
import { type HashAlgorithm, hashLength, nodeHashName } from "./hash.ts";

/** Signature encodings: DER `Ecdsa-Sig-Value` (RFC 3279) or raw r || s (IEEE P1363, as JWS uses). */
export type EcdsaSignatureEncoding = "der" | "ieee-p1363";

export interface EcdsaOptions {
  hash: HashAlgorithm;
  /** True when `input` is already the digest of the message under `hash`. */
  prehashed: boolean;
  encoding: EcdsaSignatureEncoding;
}

// node:crypto has no ECDSA over a caller-supplied digest, so prehashed input
// goes through @noble/curves, which implements the same curves.
const NOBLE_CURVES = { "P-256": p256, "P-384": p384, "P-521": p521 } as const;

const NOBLE_FORMATS = { der: "der", "ieee-p1363": "compact" } as const;

function checkDigestLength(input: Uint8Array, options: EcdsaOptions): void {
  if (options.prehashed && input.length !== hashLength(options.hash)) {
    throw new RangeError(`a prehashed ${options.hash} input is ${hashLength(options.hash)} bytes`);
  }
}

/** Signs `input` (a message, or its digest when prehashed) with ECDSA. */
export function ecdsaSign(
  privateKey: KeyObject,
  curve: EcdsaCurve,
  input: Uint8Array,
  options: EcdsaOptions,
): Buffer {
  checkDigestLength(input, options);
  if (!options.prehashed) {
    return sign(nodeHashName(options.hash), input, {
      key: privateKey,
      dsaEncoding: options.encoding,
    });
  }
  const jwk = privateKey.export({ format: "jwk" });
  const scalar = Buffer.from(jwk.d ?? "", "base64url");
  const signature = NOBLE_CURVES[curve].sign(input, scalar, {
    prehash: false,
    lowS: false,
    format: NOBLE_FORMATS[options.encoding],
    // RFC 6979 section 3.6: deterministic k mixed with fresh randomness.
    extraEntropy: true,
  });
  return Buffer.from(signature);
}

/** Verifies an ECDSA signature; malformed signatures return false. */
export function ecdsaVerify(
  publicKey: KeyObject,
  curve: EcdsaCurve,
  input: Uint8Array,
  signature: Uint8Array,
  options: EcdsaOptions,
): boolean {
  checkDigestLength(input, options);
  try {
    if (!options.prehashed) {
      return verify(
        nodeHashName(options.hash),
        input,
        { key: publicKey, dsaEncoding: options.encoding },
        signature,
      );
    }
    return NOBLE_CURVES[curve].verify(signature, input, uncompressedPoint(publicKey), {
      prehash: false,
      // OpenSSL accepts both halves of s, so prehashed verification does too.
      lowS: false,
      format: NOBLE_FORMATS[options.encoding],
    });
  } catch {
    return false;
  }
}

/** Returns the SEC 1 uncompressed encoding (0x04 || x || y) of an EC public key. */
function uncompressedPoint(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: "jwk" });
  return Buffer.concat([
    Buffer.from([0x04]),
    Buffer.from(jwk.x ?? "", "base64url"),
    Buffer.from(jwk.y ?? "", "base64url"),
  ]);
}
