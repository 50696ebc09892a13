import { randomBytes } from "../../crypto/random.ts";
import { KeywardError } from "../../errors.ts";
import type { DataSigner } from "./data-signer.ts";
import { bitString, contextTag, element, sequence, time, unsignedInteger } from "./der-writer.ts";
import { certificateExtensions } from "./extensions.ts";
import type { KeySpec } from "./key-pairs.ts";
import type { AltName } from "./names.ts";
import { keyIdentifier, subjectPublicKeyBits } from "./spki.ts";
import { encodeName, isEmptyName } from "./subject.ts";
import * as x509 from "./x509.ts";

/** Bytes of randomness in each serial number: 127 bits once the top bit is cleared. */
const SERIAL_BYTES = 16;

/** `[0] EXPLICIT INTEGER 2`: the version field of an X.509 v3 certificate. */
const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/**
 * Returns a new serial number as hex: 16 random bytes with the top bit
 * cleared and the first byte non-zero, so the DER INTEGER is positive,
 * minimal and at most 20 octets, with at least 64 random bits (RFC 5280
 * section 4.1.2.2, CA/Browser Forum baseline requirements 7.1).
 */
export function newSerialHex(): string {
  const bytes = randomBytes(SERIAL_BYTES);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

/** The CA that signs a certificate. */
export interface CertificateSigner {
  /** The CA's subject, DER; copied byte for byte as the issuer name. */
  subjectDer: Uint8Array;
  /** The CA's subject key identifier, hex; written as the authority key identifier. */
  keyIdHex: string;
  /** Signs with the CA's key. */
  signer: DataSigner;
  keySpec: KeySpec;
}

/** The key of a self-signed certificate. */
export interface SelfSigner {
  selfSigner: DataSigner;
  keySpec: KeySpec;
}

export interface CertificateTemplate {
  /** The subject, as attribute lists (see `encodeName`) or DER, which is copied unchanged. */
  subject: x509.JsonName | Uint8Array;
  /** SubjectPublicKeyInfo, DER. */
  publicKey: ArrayBuffer | Uint8Array;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  ca?: { maxPathLength?: number; permittedDnsDomains?: string[]; excludedDnsDomains?: string[] };
  keyUsage: number;
  extKeyUsageOids: string[];
  altNames: AltName[];
  policyOids: string[];
  /** Adds basic constraints CA:FALSE to a leaf certificate, as Vault's `basic_constraints_valid_for_non_ca` does. */
  leafBasicConstraints?: boolean;
  issuingCertificateUrls: string[];
  ocspServers: string[];
  crlDistributionPoints: string[];
  /** Adds id-pkix-ocsp-nocheck (RFC 6960 section 4.2.2.2.1), for delegated OCSP responders. */
  ocspNoCheck?: boolean;
}

function subjectIsEmpty(subject: x509.JsonName | Uint8Array, subjectDer: Uint8Array): boolean {
  if (subject instanceof Uint8Array) {
    // An empty RDNSequence is the two bytes 30 00.
    return subjectDer.length === 2;
  }
  return isEmptyName(subject);
}

/**
 * Builds and signs a certificate and returns its DER. `signer` is the
 * issuing CA, whose subject is copied byte for byte as the issuer name
 * (RFC 5280 section 4.1.2.4), or the key of a self-signed certificate.
 */
export async function buildCertificate(
  template: CertificateTemplate,
  signer: CertificateSigner | SelfSigner,
): Promise<Buffer> {
  const spki = new Uint8Array(template.publicKey as ArrayBuffer);
  let subjectKeyId: Buffer;
  try {
    subjectKeyId = keyIdentifier(subjectPublicKeyBits(spki));
  } catch (error) {
    throw new KeywardError("unsupported_key_type", "the public key cannot be read", {
      cause: error,
    });
  }
  const subjectDer =
    template.subject instanceof Uint8Array ? template.subject : encodeName(template.subject);
  const selfSigned = "selfSigner" in signer;
  const dataSigner = selfSigned ? signer.selfSigner : signer.signer;
  const issuerDer = selfSigned ? subjectDer : signer.subjectDer;
  const authorityKeyId = selfSigned ? subjectKeyId : Buffer.from(signer.keyIdHex, "hex");

  const extensions = certificateExtensions(template, {
    subjectKeyId,
    authorityKeyId,
    subjectEmpty: subjectIsEmpty(template.subject, subjectDer),
  });
  const tbs = sequence(
    VERSION_3,
    unsignedInteger(Buffer.from(template.serialHex, "hex")),
    dataSigner.algorithm,
    issuerDer,
    sequence(time(template.notBefore), time(template.notAfter)),
    subjectDer,
    spki,
    ...(extensions.length > 0 ? [element(contextTag(3, true), sequence(...extensions))] : []),
  );
  const signature = await dataSigner.sign(tbs);
  return sequence(tbs, dataSigner.algorithm, bitString(signature));
}

/** Builds and signs a certificate (see `buildCertificate`) and returns it parsed, for the CA operations. */
export async function signCertificate(
  template: CertificateTemplate,
  signer: CertificateSigner | SelfSigner,
): Promise<x509.X509Certificate> {
  return new x509.X509Certificate(await buildCertificate(template, signer));
}
