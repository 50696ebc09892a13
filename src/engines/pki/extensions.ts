import type { CertificateTemplate } from "./certificate.ts";
import {
  contextTag,
  DER_NULL,
  DER_TRUE,
  element,
  ia5String,
  octetString,
  oid,
  sequence,
  smallInteger,
  TAG,
} from "./der-writer.ts";
import { encodeGeneralName } from "./general-names.ts";

/** Extension and access method OIDs (RFC 5280 section 4.2). */
const OID = {
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  nameConstraints: "2.5.29.30",
  crlDistributionPoints: "2.5.29.31",
  certificatePolicies: "2.5.29.32",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  ocsp: "1.3.6.1.5.5.7.48.1",
  caIssuers: "1.3.6.1.5.5.7.48.2",
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
} as const;

/** GeneralName tag of a uniformResourceIdentifier: `[6]` IA5String. */
const URI_TAG = contextTag(6, false);

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? sequence(oid(id), DER_TRUE, octetString(value))
    : sequence(oid(id), octetString(value));
}

/**
 * Encodes key usage flags (bit n of `flags` is KeyUsage bit n, as in
 * @peculiar/x509's KeyUsageFlags) as a DER named-bit BIT STRING, without
 * trailing zero bits.
 */
function keyUsageBits(flags: number): Buffer {
  const highest = 31 - Math.clz32(flags);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (let bit = 0; bit <= highest; bit++) {
    if (flags & (1 << bit)) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  return element(TAG.bitString, Buffer.from([7 - (highest & 7)]), bytes);
}

function dnsSubtrees(tag: number, domains: string[]): Buffer {
  return element(
    tag,
    ...domains.map((domain) => sequence(ia5String(domain, contextTag(2, false)))),
  );
}

/**
 * Returns a certificate's extensions, each an Extension DER, in this order:
 * basic constraints, key usage, extended key usage, subject and authority
 * key identifiers, subject alternative names, policies, name constraints,
 * authority information access, CRL distribution points and OCSP no-check.
 */
export function certificateExtensions(
  template: CertificateTemplate,
  ids: { subjectKeyId: Uint8Array; authorityKeyId: Uint8Array; subjectEmpty: boolean },
): Buffer[] {
  const extensions: Buffer[] = [];
  if (template.ca) {
    const pathLength = template.ca.maxPathLength;
    const value =
      pathLength === undefined ? sequence(DER_TRUE) : sequence(DER_TRUE, smallInteger(pathLength));
    extensions.push(extension(OID.basicConstraints, true, value));
  } else if (template.leafBasicConstraints) {
    // cA defaults to FALSE, so DER leaves it out.
    extensions.push(extension(OID.basicConstraints, true, sequence()));
  }

  if (template.keyUsage !== 0) {
    extensions.push(extension(OID.keyUsage, true, keyUsageBits(template.keyUsage)));
  }

  if (template.extKeyUsageOids.length > 0) {
    extensions.push(
      extension(OID.extKeyUsage, false, sequence(...template.extKeyUsageOids.map(oid))),
    );
  }

  extensions.push(extension(OID.subjectKeyIdentifier, false, octetString(ids.subjectKeyId)));
  extensions.push(
    extension(
      OID.authorityKeyIdentifier,
      false,
      sequence(element(contextTag(0, false), ids.authorityKeyId)),
    ),
  );

  if (template.altNames.length > 0) {
    // RFC 5280 section 4.2.1.6: critical when the subject is empty.
    extensions.push(
      extension(
        OID.subjectAltName,
        ids.subjectEmpty,
        sequence(...template.altNames.map(encodeGeneralName)),
      ),
    );
  }

  if (template.policyOids.length > 0) {
    const policies = template.policyOids.map((policy) => sequence(oid(policy)));
    extensions.push(extension(OID.certificatePolicies, false, sequence(...policies)));
  }

  const permitted = template.ca?.permittedDnsDomains ?? [];
  const excluded = template.ca?.excludedDnsDomains ?? [];
  if (permitted.length > 0 || excluded.length > 0) {
    const value = sequence(
      ...(permitted.length > 0 ? [dnsSubtrees(contextTag(0, true), permitted)] : []),
      ...(excluded.length > 0 ? [dnsSubtrees(contextTag(1, true), excluded)] : []),
    );
    // RFC 5280 section 4.2.1.10: conforming CAs MUST mark name constraints critical.
    extensions.push(extension(OID.nameConstraints, true, value));
  }

  if (template.ocspServers.length > 0 || template.issuingCertificateUrls.length > 0) {
    const access = [
      ...template.ocspServers.map((url) => sequence(oid(OID.ocsp), ia5String(url, URI_TAG))),
      ...template.issuingCertificateUrls.map((url) =>
        sequence(oid(OID.caIssuers), ia5String(url, URI_TAG)),
      ),
    ];
    extensions.push(extension(OID.authorityInfoAccess, false, sequence(...access)));
  }

  if (template.crlDistributionPoints.length > 0) {
    const points = template.crlDistributionPoints.map((url) =>
      sequence(element(contextTag(0, true), element(contextTag(0, true), ia5String(url, URI_TAG)))),
    );
    extensions.push(extension(OID.crlDistributionPoints, false, sequence(...points)));
  }

  if (template.ocspNoCheck) extensions.push(extension(OID.ocspNoCheck, false, DER_NULL));
  return extensions;
}
