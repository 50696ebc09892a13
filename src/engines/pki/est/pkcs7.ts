import {
  CertificateChoices,
  CertificateSet,
  ContentInfo,
  DigestAlgorithmIdentifiers,
  EncapsulatedContentInfo,
  id_data,
  id_signedData,
  SignedData,
  SignerInfos,
} from "@peculiar/asn1-cms";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { KeywardError } from "../../../errors.ts";

/**
 * Encodes certificates as a certs-only CMS SignedData (RFC 5652 section 5,
 * "degenerate" with no signers), the "Simple PKI Response" that EST returns
 * from cacerts, simpleenroll and simplereenroll (RFC 7030 section 4.1.3).
 * Returns the DER of the ContentInfo.
 */
export function encodeCertsOnly(certificates: readonly Uint8Array[]): Buffer {
  const signedData = new SignedData({
    version: 1,
    digestAlgorithms: new DigestAlgorithmIdentifiers(),
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(
      certificates.map(
        (der) => new CertificateChoices({ certificate: AsnConvert.parse(der, Certificate) }),
      ),
    ),
    signerInfos: new SignerInfos(),
  });
  const contentInfo = new ContentInfo({
    contentType: id_signedData,
    content: AsnConvert.serialize(signedData),
  });
  return Buffer.from(AsnConvert.serialize(contentInfo));
}

/**
 * Returns the DER of each certificate in a certs-only SignedData, in
 * order. Throws `invalid_certificate` when the input is not a SignedData.
 */
export function decodeCertsOnly(der: Uint8Array): Buffer[] {
  let signedData: SignedData;
  try {
    const contentInfo = AsnConvert.parse(der, ContentInfo);
    if (contentInfo.contentType !== id_signedData) throw new Error("not a SignedData");
    signedData = AsnConvert.parse(contentInfo.content, SignedData);
  } catch (error) {
    throw new KeywardError("invalid_certificate", "the PKCS#7 data is not a CMS SignedData", {
      cause: error,
    });
  }
  const certificates: Buffer[] = [];
  for (const choice of signedData.certificates ?? []) {
    if (choice.certificate)
      certificates.push(Buffer.from(AsnConvert.serialize(choice.certificate)));
  }
  return certificates;
}
