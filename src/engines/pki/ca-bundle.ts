import { checkSpki } from "../../crypto/key-safety.ts";
import { KeywardError } from "../../errors.ts";
import { type CertificateNames, certificateNames } from "./der.ts";
import type { ImportedCertificate, ImportedKey } from "./issuer-import.ts";
import { canonicalPublicKey } from "./key-checks.ts";
import {
  describePublicKey,
  KEY_BITS,
  publicKeyObject,
  publicKeyOf,
  readPrivateKeyPem,
} from "./key-pairs.ts";
import { type PemBlock, parseCertificateDer, toPem } from "./pem.ts";
import * as x509 from "./x509.ts";

/**
 * Maximum number of certificates and private keys, counted together, in
 * one import bundle. Each certificate is checked against every other one
 * that could have signed it, so the work grows with the square of the count.
 */
export const MAX_BUNDLE_ENTRIES = 100;

/** Maximum number of certificates above an imported one that its stored chain keeps. */
const MAX_CHAIN_DEPTH = 10;

/** Throws `invalid_field` naming `field` when `blocks` has more certificates and keys than `MAX_BUNDLE_ENTRIES`. */
export function checkBundleSize(blocks: readonly PemBlock[], field: string): void {
  const entries = blocks.filter(
    (block) => block.label === "CERTIFICATE" || block.label.endsWith("PRIVATE KEY"),
  ).length;
  if (entries > MAX_BUNDLE_ENTRIES) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" contains ${entries} certificates and private keys; at most ${MAX_BUNDLE_ENTRIES} are accepted in one request`,
      { field },
    );
  }
}

/**
 * Reads a private key block of a bundle. Throws `invalid_certificate` or
 * `unsupported_key_type` naming `field` (see `readPrivateKeyPem`), and
 * `unsupported_key_type` for an RSA size that CA keys may not have.
 */
export function readBundleKey(block: PemBlock, field: string): ImportedKey {
  const pkcs8 = readPrivateKeyPem(toPem(block.der, block.label), field);
  const spki = publicKeyOf(pkcs8);
  const spec = describePublicKey(publicKeyObject(spki), field);
  if (!KEY_BITS[spec.type].includes(spec.bits)) {
    throw new KeywardError(
      "unsupported_key_type",
      `the ${spec.type.toUpperCase()} private key in "${field}" has ${spec.bits} bits; CA keys of ${KEY_BITS[spec.type].join(", ")} bits are supported`,
      { field },
    );
  }
  return { pkcs8, spec, publicKey: canonicalPublicKey(spki) };
}

/** A CA certificate of a bundle, read and checked, before its chain is known. */
export interface BundleCertificate {
  certificate: x509.X509Certificate;
  pem: string;
  names: CertificateNames;
  publicKey: string;
}

/**
 * Reads certificate number `index` (from 0) of a bundle and checks that it
 * is a CA with a usable public key. Throws `invalid_certificate` naming
 * `field` when it cannot be parsed, is not a CA or has an EC point that is
 * neither compressed nor uncompressed, and `unsupported_key_type` for key
 * types and sizes that `describePublicKey` rejects.
 */
export function readBundleCertificate(
  block: PemBlock,
  index: number,
  field: string,
): BundleCertificate {
  const certificate = parseCertificateDer(block.der, field);
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new KeywardError(
      "invalid_certificate",
      `certificate ${index + 1} in "${field}" is not a CA certificate`,
      { field },
    );
  }
  const names = certificateNames(new Uint8Array(certificate.rawData));
  checkCaPublicKey(names.spki, field, `certificate ${index + 1} in "${field}"`);
  return {
    certificate,
    pem: toPem(certificate.rawData, "CERTIFICATE"),
    names,
    publicKey: canonicalPublicKey(names.spki),
  };
}

/**
 * Checks the public key of a CA certificate (`subject` names it in the
 * message). Throws `invalid_certificate` naming `field` for an EC point
 * that is neither compressed nor uncompressed, and `unsupported_key_type`
 * for key types and sizes that `describePublicKey` rejects.
 */
export function checkCaPublicKey(spki: Uint8Array, field: string, subject: string): void {
  try {
    checkSpki(spki);
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      `${subject} has a public key that cannot be used`,
      {
        field,
        cause: error,
      },
    );
  }
  describePublicKey(publicKeyObject(spki), field);
}

/**
 * Returns the bundle's certificates, each with its chain: the bundle's
 * certificates above it, nearest first. A certificate's parent is another
 * certificate of the bundle whose subject equals its issuer name and whose
 * key verifies its signature, so a certificate that signed none of the
 * chain is never part of it. A self-signed certificate has no parent.
 */
export async function withChains(
  certificates: readonly BundleCertificate[],
): Promise<ImportedCertificate[]> {
  const parents = await Promise.all(
    certificates.map((child) => parentIndexOf(child, certificates)),
  );
  return certificates.map((certificate, index) => {
    const chainPems: string[] = [];
    const seen = new Set([index]);
    let parent = parents[index];
    while (parent !== undefined && !seen.has(parent) && chainPems.length < MAX_CHAIN_DEPTH) {
      seen.add(parent);
      chainPems.push(certificates[parent]!.pem);
      parent = parents[parent];
    }
    return {
      certificate: certificate.certificate,
      pem: certificate.pem,
      publicKey: certificate.publicKey,
      chainPems,
    };
  });
}

async function parentIndexOf(
  child: BundleCertificate,
  certificates: readonly BundleCertificate[],
): Promise<number | undefined> {
  const issuerName = Buffer.from(child.names.issuer);
  if (issuerName.equals(Buffer.from(child.names.subject)) && (await verifies(child, child))) {
    return undefined;
  }
  for (const [index, candidate] of certificates.entries()) {
    if (candidate.pem === child.pem) continue;
    if (!issuerName.equals(Buffer.from(candidate.names.subject))) continue;
    if (await verifies(child, candidate)) return index;
  }
  return undefined;
}

async function verifies(child: BundleCertificate, parent: BundleCertificate): Promise<boolean> {
  try {
    return await child.certificate.verify({
      publicKey: parent.certificate.publicKey,
      signatureOnly: true,
    });
  } catch {
    // A key that cannot verify this signature algorithm did not sign the certificate.
    return false;
  }
}
