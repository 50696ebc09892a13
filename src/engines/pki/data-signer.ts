import { type KeyObject, sign } from "node:crypto";
import { DER_NULL, oid, sequence } from "./der-writer.ts";
import type { KeySpec } from "./key-pairs.ts";

/** Signs the DER of a to-be-signed structure (TBSCertificate) with a CA key. */
export interface DataSigner {
  /** The AlgorithmIdentifier DER written inside the signed structure and beside the signature. */
  algorithm: Buffer;
  /** Returns the signature value: DER Ecdsa-Sig-Value for ECDSA (RFC 5480), raw for RSA and Ed25519. */
  sign(data: Uint8Array): Promise<Buffer>;
}

/** Signature algorithm OIDs and hashes by key: RSA PKCS#1 v1.5 with SHA-256, ECDSA with the curve's hash, Ed25519. */
const SCHEMES = {
  rsa: { oid: "1.2.840.113549.1.1.11", hash: "sha256", nullParameters: true },
  ec256: { oid: "1.2.840.10045.4.3.2", hash: "sha256", nullParameters: false },
  ec384: { oid: "1.2.840.10045.4.3.3", hash: "sha384", nullParameters: false },
  ed25519: { oid: "1.3.101.112", hash: null, nullParameters: false },
} as const;

function schemeFor(spec: KeySpec) {
  if (spec.type === "rsa") return SCHEMES.rsa;
  if (spec.type === "ed25519") return SCHEMES.ed25519;
  return spec.bits === 384 ? SCHEMES.ec384 : SCHEMES.ec256;
}

/** Returns the AlgorithmIdentifier DER for signatures by a key of this spec (RFC 4055 puts NULL parameters on RSA). */
export function signatureAlgorithmDer(spec: KeySpec): Buffer {
  const scheme = schemeFor(spec);
  return scheme.nullParameters ? sequence(oid(scheme.oid), DER_NULL) : sequence(oid(scheme.oid));
}

/** Returns a signer for a private key held in this process, signing with node:crypto. */
export function keyObjectSigner(key: KeyObject, spec: KeySpec): DataSigner {
  const scheme = schemeFor(spec);
  return {
    algorithm: signatureAlgorithmDer(spec),
    sign: async (data) => sign(scheme.hash, data, { key, dsaEncoding: "der" }),
  };
}
