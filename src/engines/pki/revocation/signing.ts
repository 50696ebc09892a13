import type { webcrypto } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { KeywardError } from "../../../errors.ts";
import * as x509 from "../x509.ts";
import type { RevocationSigner } from "./types.ts";

/** Hash used with each ECDSA curve, matching the curve's security level. */
const ECDSA_HASH_BY_CURVE: Readonly<Record<string, string>> = {
  "P-256": "SHA-256",
  "P-384": "SHA-384",
  "P-521": "SHA-512",
};

/**
 * Returns the WebCrypto signing parameters for a signer's private key:
 * ecdsa-with-SHA256 for P-256, ecdsa-with-SHA384 for P-384,
 * ecdsa-with-SHA512 for P-521, Ed25519, and sha256WithRSAEncryption for RSA.
 * Throws `unsupported_operation` for any other key, including RSA keys
 * imported with a hash other than SHA-256 (WebCrypto signs with the hash
 * fixed at import) and RSA-PSS keys.
 */
function signingParamsFor(key: webcrypto.CryptoKey): webcrypto.Algorithm | webcrypto.EcdsaParams {
  const name = key.algorithm.name;
  if (name === "ECDSA") {
    const curve = (key.algorithm as webcrypto.EcKeyAlgorithm).namedCurve;
    const hash = ECDSA_HASH_BY_CURVE[curve];
    if (!hash) {
      throw new KeywardError(
        "unsupported_operation",
        `unsupported ECDSA curve ${curve} for signing`,
      );
    }
    return { name, hash } as webcrypto.EcdsaParams;
  }
  if (name === "Ed25519") return { name };
  if (name === "RSASSA-PKCS1-v1_5") {
    const hash = (key.algorithm as webcrypto.RsaHashedKeyAlgorithm).hash.name;
    if (hash !== "SHA-256") {
      throw new KeywardError(
        "unsupported_operation",
        `RSA signing key was imported with hash ${hash}. Import it with hash SHA-256`,
      );
    }
    return { name };
  }
  throw new KeywardError("unsupported_operation", `unsupported signing key algorithm ${name}`);
}

/** Signature algorithm for one signer key, in its WebCrypto and its X.509 form. */
export interface SignatureScheme {
  /** WebCrypto parameters, merged with the key's own algorithm (curve, RSA hash). */
  params: webcrypto.Algorithm | webcrypto.EcdsaParams;
  /** AlgorithmIdentifier written in the signed structure and beside the signature. */
  identifier: AlgorithmIdentifier;
}

/** Returns the signature scheme for a signer key, or throws as `signingParamsFor` does. */
export function signatureSchemeFor(key: webcrypto.CryptoKey): SignatureScheme {
  const params = { ...signingParamsFor(key), ...key.algorithm };
  return { params, identifier: new x509.AlgorithmProvider().toAsnAlgorithm(params) };
}

/** An algorithm identifier and the function that signs a structure that carries it. */
export interface StructureSigner {
  identifier: AlgorithmIdentifier;
  sign(data: ArrayBuffer): Promise<ArrayBuffer>;
}

/** Returns the signing scheme of a CRL or OCSP signer: its `dataSigner` when set, else its WebCrypto key. */
export function structureSignerFor(signer: RevocationSigner): StructureSigner {
  const dataSigner = signer.dataSigner;
  if (dataSigner) {
    return {
      identifier: AsnConvert.parse(dataSigner.algorithm, AlgorithmIdentifier),
      sign: async (data) => {
        const signature = await dataSigner.sign(new Uint8Array(data));
        return new Uint8Array(signature).slice().buffer;
      },
    };
  }
  const key = signer.privateKey;
  if (!key) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "revocation signer has neither a data signer nor a private key" },
    });
  }
  const scheme = signatureSchemeFor(key);
  return { identifier: scheme.identifier, sign: (data) => signDer(key, scheme, data) };
}

/**
 * Signs DER bytes and returns the value for the signature BIT STRING.
 * ECDSA signatures are converted from WebCrypto's r||s form to the DER
 * ECDSA-Sig-Value that RFC 5480 requires.
 */
export async function signDer(
  key: webcrypto.CryptoKey,
  scheme: SignatureScheme,
  data: ArrayBuffer,
): Promise<ArrayBuffer> {
  const raw = await crypto.subtle.sign(scheme.params, key, data);
  return new x509.AsnEcSignatureFormatter().toAsnSignature(scheme.params, raw) ?? raw;
}
