/**
 * The attributes KMIP derives from an X.509 certificate's content: type,
 * length, signature algorithm, the subject and issuer names in DER, and
 * each name's components (Certificate Subject CN, Certificate Issuer O, …).
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, type Name } from "@peculiar/asn1-x509";
import type { KmipItem } from "../item.ts";
import type { KmipAttribute } from "./attributes.ts";
import { invalidField } from "./errors.ts";
import { asStructure, bytes, bytesOf, child, enumName, struct, tag } from "./items.ts";
import { scalarAttribute } from "./objects.ts";

/** Signature algorithm OIDs and their Digital Signature Algorithm values (KMIP 2.1 enumeration). */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, number>> = {
  "1.2.840.113549.1.1.2": 0x01, // md2WithRSAEncryption
  "1.2.840.113549.1.1.4": 0x02, // md5WithRSAEncryption
  "1.2.840.113549.1.1.5": 0x03, // sha1WithRSAEncryption
  "1.2.840.113549.1.1.14": 0x04, // sha224WithRSAEncryption
  "1.2.840.113549.1.1.11": 0x05, // sha256WithRSAEncryption
  "1.2.840.113549.1.1.12": 0x06, // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13": 0x07, // sha512WithRSAEncryption
  "1.2.840.113549.1.1.10": 0x08, // RSASSA-PSS
  "1.2.840.10040.4.3": 0x09, // dsa-with-sha1
  "2.16.840.1.101.3.4.3.1": 0x0a, // dsa-with-sha224
  "2.16.840.1.101.3.4.3.2": 0x0b, // dsa-with-sha256
  "1.2.840.10045.4.1": 0x0c, // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": 0x0d, // ecdsa-with-SHA224
  "1.2.840.10045.4.3.2": 0x0e, // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3": 0x0f, // ecdsa-with-SHA384
  "1.2.840.10045.4.3.4": 0x10, // ecdsa-with-SHA512
  "2.16.840.1.101.3.4.3.14": 0x11, // RSA PKCS#1 v1.5 with SHA3-256
  "2.16.840.1.101.3.4.3.15": 0x12, // RSA PKCS#1 v1.5 with SHA3-384
  "2.16.840.1.101.3.4.3.16": 0x13, // RSA PKCS#1 v1.5 with SHA3-512
};

/** Name attribute OIDs and the suffix of their KMIP attribute ("Certificate Subject CN"). */
const NAME_COMPONENTS: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "1.2.840.113549.1.9.1": "Email",
  "2.5.4.6": "C",
  "2.5.4.8": "ST",
  "2.5.4.7": "L",
  "0.9.2342.19200300.100.1.1": "UID",
  "2.5.4.5": "Serial Number",
  "2.5.4.12": "Title",
  "0.9.2342.19200300.100.1.25": "DC",
  "2.5.4.46": "DN Qualifier",
};

const SUBJECT_ALTERNATIVE_NAME = "2.5.29.17";
const ISSUER_ALTERNATIVE_NAME = "2.5.29.18";

function nameComponents(name: Name, prefix: string): KmipAttribute[] {
  const attributes: KmipAttribute[] = [];
  for (const rdn of name) {
    for (const entry of rdn) {
      const suffix = NAME_COMPONENTS[entry.type];
      if (suffix === undefined) continue;
      const text = entry.value.ia5String ?? (entry.value.anyValue ? undefined : `${entry.value}`);
      if (text === undefined) continue;
      attributes.push(scalarAttribute(`${prefix} ${suffix}`, "TextString", text));
    }
  }
  return attributes;
}

function extensionValue(certificate: Certificate, oid: string): Uint8Array | undefined {
  const extension = certificate.tbsCertificate.extensions?.find((item) => item.extnID === oid);
  return extension === undefined ? undefined : new Uint8Array(extension.extnValue.buffer);
}

function der(name: Name): Uint8Array {
  return new Uint8Array(AsnConvert.serialize(name));
}

/**
 * Derives the attributes of a Certificate object's content. Only X.509
 * certificates are read; the content of another Certificate Type gives
 * only that type. A value that is not DER X.509 is rejected as Invalid Field.
 */
export function certificateAttributes(content: KmipItem): KmipAttribute[] {
  const certificateItem = asStructure(content, "Certificate");
  const typeItem = child(certificateItem, "CertificateType");
  const valueItem = child(certificateItem, "CertificateValue");
  const attributes: KmipAttribute[] = [];
  if (typeItem !== undefined) {
    attributes.push({
      name: "Certificate Type",
      value: { ...typeItem, tag: tag("AttributeValue") },
    });
  }
  if (valueItem === undefined || typeItem === undefined || enumName(typeItem) !== "X_509") {
    return attributes;
  }

  const encoded = bytesOf(valueItem);
  let certificate: Certificate;
  try {
    certificate = AsnConvert.parse(encoded, Certificate);
  } catch {
    throw invalidField("Certificate Value is not a DER-encoded X.509 certificate");
  }

  const tbs = certificate.tbsCertificate;
  attributes.push(scalarAttribute("Certificate Length", "Integer", encoded.length));
  const signature = SIGNATURE_ALGORITHMS[certificate.signatureAlgorithm.algorithm];
  if (signature !== undefined) {
    attributes.push(scalarAttribute("Digital Signature Algorithm", "Enumeration", signature));
  }

  const subjectAlternative = extensionValue(certificate, SUBJECT_ALTERNATIVE_NAME);
  const issuerAlternative = extensionValue(certificate, ISSUER_ALTERNATIVE_NAME);
  attributes.push(
    {
      name: "X.509 Certificate Identifier",
      value: struct("AttributeValue", [
        bytes("IssuerDistinguishedName", der(tbs.issuer)),
        bytes("CertificateSerialNumber", new Uint8Array(tbs.serialNumber)),
      ]),
    },
    {
      name: "X.509 Certificate Subject",
      value: struct("AttributeValue", [
        bytes("SubjectDistinguishedName", der(tbs.subject)),
        ...(subjectAlternative === undefined
          ? []
          : [bytes("SubjectAlternativeName", subjectAlternative)]),
      ]),
    },
    {
      name: "X.509 Certificate Issuer",
      value: struct("AttributeValue", [
        bytes("IssuerDistinguishedName", der(tbs.issuer)),
        ...(issuerAlternative === undefined
          ? []
          : [bytes("IssuerAlternativeName", issuerAlternative)]),
      ]),
    },
    ...nameComponents(tbs.subject, "Certificate Subject"),
    ...nameComponents(tbs.issuer, "Certificate Issuer"),
  );
  return attributes;
}
