import { KeywardError } from "../../errors.ts";
import { describePublicKey, type KeySpec, publicKeyObject } from "./key-pairs.ts";
import type { AltName } from "./names.ts";
import { parseCsr } from "./pem.ts";
import * as x509 from "./x509.ts";

/** Signature algorithms accepted on a CSR. SHA-1, MD5 and RSA-PSS (not yet tested) are rejected. */
const CSR_SIGNATURES = new Set([
  "RSASSA-PKCS1-v1_5:SHA-256",
  "RSASSA-PKCS1-v1_5:SHA-384",
  "RSASSA-PKCS1-v1_5:SHA-512",
  "ECDSA:SHA-256",
  "ECDSA:SHA-384",
  "ECDSA:SHA-512",
  "Ed25519:",
]);

export interface CheckedCsr {
  csr: x509.Pkcs10CertificateRequest;
  /** SubjectPublicKeyInfo, DER. */
  publicKey: ArrayBuffer;
  keySpec: KeySpec;
  /** The CSR's subject, DER. */
  subjectDer: ArrayBuffer;
  commonName: string;
  altNames: AltName[];
}

/**
 * Parses a CSR and checks that its key type and signature algorithm are
 * supported and that its signature verifies, which proves the requester
 * holds the private key. Throws `invalid_certificate`,
 * `unsupported_key_type` or `invalid_csr_signature` naming `field`.
 */
export async function checkCsr(text: string, field = "csr"): Promise<CheckedCsr> {
  const csr = parseCsr(text, field);
  const publicKey = csr.publicKey.rawData;
  let keySpec: KeySpec;
  try {
    keySpec = describePublicKey(publicKeyObject(publicKey), field);
  } catch (error) {
    if (error instanceof KeywardError) throw error;
    throw new KeywardError("unsupported_key_type", `the public key in "${field}" cannot be read`, {
      field,
      cause: error,
    });
  }
  const algorithm = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  const signatureName = `${algorithm.name ?? "unknown"}:${algorithm.hash?.name ?? ""}`;
  if (!CSR_SIGNATURES.has(signatureName)) {
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" is signed with an unsupported algorithm (${signatureName.replace(/:$/, "")}); use SHA-256 or stronger with RSA or ECDSA, or Ed25519`,
      { field },
    );
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (error) {
    throw new KeywardError(
      "invalid_csr_signature",
      `the signature of "${field}" cannot be verified`,
      {
        field,
        cause: error,
      },
    );
  }
  if (!valid) {
    throw new KeywardError("invalid_csr_signature", `the signature of "${field}" does not verify`, {
      field,
    });
  }

  const commonName = csr.subjectName.getField("CN")[0] ?? "";
  const altNames: AltName[] = [];
  const extension = csr.getExtension("2.5.29.17");
  const san = extension ? new x509.SubjectAlternativeNameExtension(extension.rawData) : undefined;
  for (const name of san?.names.items ?? []) {
    if (name.type === "dns" || name.type === "ip" || name.type === "email" || name.type === "url") {
      altNames.push({ type: name.type, value: name.value });
    }
  }
  return {
    csr,
    publicKey,
    keySpec,
    subjectDer: csr.subjectName.toArrayBuffer(),
    commonName,
    altNames,
  };
}
