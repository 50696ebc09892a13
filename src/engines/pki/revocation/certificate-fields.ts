import { createHash } from "node:crypto";
import { AsnConvert, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from "@peculiar/asn1-schema";
import { Certificate, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { KeywardError } from "../../../errors.ts";
import * as x509 from "../x509.ts";

/**
 * The first six fields of TBSCertificate (RFC 5280 section 4.1), each kept
 * as its raw DER. asn1-x509's TBSCertificate decodes the subject into
 * strings, and encoding those again can change the bytes (an invalid UTF-8
 * sequence, for one), so this schema reads the subject's bytes as they were
 * signed. asn1-schema ignores the fields after `subject`.
 */
class TbsCertificateNames {
  version?: ArrayBuffer;
  serialNumber = new ArrayBuffer(0);
  signature = new ArrayBuffer(0);
  issuer = new ArrayBuffer(0);
  validity = new ArrayBuffer(0);
  subject = new ArrayBuffer(0);
}
// Decorators are applied as calls because the project compiles without
// TypeScript's experimentalDecorators.
AsnProp({ type: AsnPropTypes.Any, context: 0, optional: true })(
  TbsCertificateNames.prototype,
  "version",
);
for (const field of ["serialNumber", "signature", "issuer", "validity", "subject"]) {
  AsnProp({ type: AsnPropTypes.Any })(TbsCertificateNames.prototype, field);
}
AsnType({ type: AsnTypeTypes.Sequence })(TbsCertificateNames);

/** Returns the DER of a certificate's subject Name, byte for byte as in the certificate. */
export function subjectNameDer(certificate: x509.X509Certificate): Uint8Array {
  const parsed = AsnConvert.parse(certificate.rawData, Certificate);
  if (!parsed.tbsCertificateRaw) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "asn1-x509 did not keep the raw TBSCertificate" },
    });
  }
  const names = AsnConvert.parse(parsed.tbsCertificateRaw, TbsCertificateNames);
  return new Uint8Array(names.subject);
}

/**
 * Returns the value of the certificate's subjectPublicKey BIT STRING,
 * without tag, length and unused-bits octet: the input of the key hashes in
 * RFC 5280 key identifiers and RFC 6960 CertIDs and ResponderIDs.
 */
export function subjectPublicKeyBits(certificate: x509.X509Certificate): Uint8Array {
  const info = AsnConvert.parse(certificate.publicKey.rawData, SubjectPublicKeyInfo);
  return new Uint8Array(info.subjectPublicKey);
}

/** Returns the SHA-1 hash of the subjectPublicKey BIT STRING value (RFC 5280 section 4.2.1.2, method 1). */
export function publicKeySha1(certificate: x509.X509Certificate): Uint8Array {
  return createHash("sha1").update(subjectPublicKeyBits(certificate)).digest();
}

/**
 * Returns the key identifier for an authority key identifier: the
 * certificate's subject key identifier when it has one, so that the value
 * matches what issued certificates carry, else the SHA-1 of its public key.
 */
export function authorityKeyId(certificate: x509.X509Certificate): Uint8Array {
  const ski = certificate.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return Buffer.from(ski.keyId, "hex");
  return publicKeySha1(certificate);
}
