import { randomBytes } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  GeneralName as AsnGeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from "@peculiar/asn1-x509";
import { KeywardError } from "../../errors.ts";
import { type KeySpec, type SigningKey, signingAlgorithm } from "./key-pairs.ts";
import type { AltName } from "./names.ts";
import * as x509 from "./x509.ts";

/** Bytes of randomness in each serial number: 127 bits once the top bit is cleared. */
const SERIAL_BYTES = 16;

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
  subjectDer: ArrayBuffer;
  /** The CA's subject key identifier, hex; written as the authority key identifier. */
  keyIdHex: string;
  privateKey: SigningKey;
  keySpec: KeySpec;
}

export interface CertificateTemplate {
  /** The subject, as @peculiar/x509's JSON name or DER (copied unchanged). */
  subject: x509.JsonName | ArrayBuffer;
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
}

function nameConstraintsExtension(permitted: string[], excluded: string[]): x509.Extension {
  const subtrees = (domains: string[]) =>
    new GeneralSubtrees(
      domains.map(
        (domain) => new GeneralSubtree({ base: new AsnGeneralName({ dNSName: domain }) }),
      ),
    );
  const value = new NameConstraints({
    ...(permitted.length > 0 ? { permittedSubtrees: subtrees(permitted) } : {}),
    ...(excluded.length > 0 ? { excludedSubtrees: subtrees(excluded) } : {}),
  });
  // RFC 5280 section 4.2.1.10: conforming CAs MUST mark name constraints critical.
  return new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(value));
}

function subjectIsEmpty(subject: x509.JsonName | ArrayBuffer): boolean {
  if (subject instanceof ArrayBuffer) return new x509.Name(subject).toJSON().length === 0;
  return subject.length === 0;
}

/**
 * Builds and signs a certificate. `signer` is the issuing CA, or undefined
 * for a self-signed certificate, which is then signed with `selfKey`.
 */
export async function signCertificate(
  template: CertificateTemplate,
  signer: CertificateSigner | { selfKey: SigningKey; keySpec: KeySpec },
): Promise<x509.X509Certificate> {
  const publicKey = new x509.PublicKey(template.publicKey);
  const subjectKeyId = await x509.SubjectKeyIdentifierExtension.create(publicKey);
  const subjectName =
    template.subject instanceof ArrayBuffer
      ? new x509.Name(template.subject)
      : new x509.Name(template.subject);
  const selfSigned = "selfKey" in signer;
  const issuerDer = selfSigned ? subjectName.toArrayBuffer() : signer.subjectDer;
  const authorityKeyId = selfSigned ? subjectKeyId.keyId : signer.keyIdHex;

  const extensions: x509.Extension[] = [];
  if (template.ca) {
    extensions.push(new x509.BasicConstraintsExtension(true, template.ca.maxPathLength, true));
  } else if (template.leafBasicConstraints) {
    extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
  }
  if (template.keyUsage !== 0)
    extensions.push(new x509.KeyUsagesExtension(template.keyUsage, true));
  if (template.extKeyUsageOids.length > 0) {
    extensions.push(new x509.ExtendedKeyUsageExtension(template.extKeyUsageOids, false));
  }
  extensions.push(subjectKeyId);
  extensions.push(new x509.AuthorityKeyIdentifierExtension(authorityKeyId, false));
  if (template.altNames.length > 0) {
    // RFC 5280 section 4.2.1.6: critical when the subject is empty.
    const critical = subjectIsEmpty(template.subject);
    extensions.push(new x509.SubjectAlternativeNameExtension(template.altNames, critical));
  }
  if (template.policyOids.length > 0) {
    extensions.push(new x509.CertificatePolicyExtension(template.policyOids, false));
  }
  if (
    template.ca &&
    ((template.ca.permittedDnsDomains?.length ?? 0) > 0 ||
      (template.ca.excludedDnsDomains?.length ?? 0) > 0)
  ) {
    extensions.push(
      nameConstraintsExtension(
        template.ca.permittedDnsDomains ?? [],
        template.ca.excludedDnsDomains ?? [],
      ),
    );
  }
  if (template.issuingCertificateUrls.length > 0 || template.ocspServers.length > 0) {
    extensions.push(
      new x509.AuthorityInfoAccessExtension({
        ...(template.ocspServers.length > 0 ? { ocsp: template.ocspServers } : {}),
        ...(template.issuingCertificateUrls.length > 0
          ? { caIssuers: template.issuingCertificateUrls }
          : {}),
      }),
    );
  }
  if (template.crlDistributionPoints.length > 0) {
    extensions.push(new x509.CRLDistributionPointsExtension(template.crlDistributionPoints));
  }

  const signingKey = selfSigned ? signer.selfKey : signer.privateKey;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: template.serialHex,
    subject: subjectName,
    issuer: new x509.Name(issuerDer),
    notBefore: template.notBefore,
    notAfter: template.notAfter,
    publicKey,
    signingKey,
    signingAlgorithm: signingAlgorithm(signer.keySpec),
    extensions,
  });
  // RFC 5280 section 4.1.2.4: the issuer field must equal the CA's subject;
  // a re-encoded name could break path building in strict verifiers.
  if (!Buffer.from(certificate.issuerName.toArrayBuffer()).equals(Buffer.from(issuerDer))) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "issuer name changed in encoding" },
    });
  }
  return certificate;
}
