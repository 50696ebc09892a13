import { KeywardError } from "../../../errors.ts";
import { pemDer } from "../ca-certificates.ts";
import type { PkiContext } from "../context.ts";
import type { CheckedCsr } from "../csr.ts";
import { certificateNames } from "../der.ts";
import { serialHexOf } from "../key-pairs.ts";
import type { AltName } from "../names.ts";
import { parseCertificateDer } from "../pem.ts";
import type { RevokedRecord } from "../types.ts";
import * as x509 from "../x509.ts";

function rejected(message: string, reason: string): KeywardError {
  return new KeywardError("permission_denied", message, { details: { reason } });
}

/**
 * Checks a TLS client certificate for re-enrolment under `roleName`: it
 * must be signed by one of the mount's issuers, be within its validity
 * period, not be revoked, and be stored in the mount's inventory as issued
 * under `roleName`. The TLS handshake has already proved that the client
 * has its private key. Returns the parsed certificate, and throws
 * `permission_denied` naming the failed check.
 */
export async function verifyClientCertificate(
  context: PkiContext,
  der: Uint8Array,
  roleName: string,
): Promise<x509.X509Certificate> {
  let certificate: x509.X509Certificate;
  try {
    certificate = parseCertificateDer(der, "client certificate");
  } catch {
    throw rejected("the TLS client certificate cannot be parsed", "unparsable");
  }
  checkValidityPeriod(context, certificate.notBefore, certificate.notAfter);
  const issuers = await issuerPems(context);
  if ((await findSigningIssuer(certificate, issuers)) === undefined) {
    throw unknownIssuer(context);
  }
  await checkNotRevoked(context, serialHexOf(certificate));
  await checkIssuedUnderRole(context, certificate, roleName);
  return certificate;
}

/**
 * Throws `permission_denied` unless the mount's inventory stores
 * `certificate` as issued under `roleName`. This keeps EST from renewing
 * certificates that another route, such as the device registry, issued
 * and tracks. Certificates of a `no_store` role have no record, so they fail.
 */
export async function checkIssuedUnderRole(
  context: PkiContext,
  certificate: x509.X509Certificate,
  roleName: string,
): Promise<void> {
  const record = await context.inventory.find(serialHexOf(certificate));
  // A record under the same serial for other bytes (another issuer's certificate) does not count.
  if (!record || !pemDer(record.certificatePem).equals(Buffer.from(certificate.rawData))) {
    throw rejected(
      `the TLS client certificate is not in the certificate inventory of mount "${context.mount}"; re-enrolment needs a certificate that Keyward stored, so enrol again with an enrolment secret`,
      "not_stored",
    );
  }
  if (record.owner !== undefined) {
    throw rejected(
      `the TLS client certificate was issued for Keyward's ${record.owner} service, which renews it; EST does not`,
      "owned",
    );
  }
  if (record.role !== roleName) {
    // CA certificates and sign-verbatim certificates are stored with an empty role.
    const issuedUnder = record.role === "" ? "without a role" : `under role "${record.role}"`;
    throw rejected(
      `the TLS client certificate was issued ${issuedUnder}, but this EST path renews only certificates of role "${roleName}"; use the EST label whose role issued it, or enrol again with an enrolment secret`,
      "other_role",
    );
  }
}

/** Throws `permission_denied` unless the mount's clock is within `notBefore`..`notAfter`. */
export function checkValidityPeriod(context: PkiContext, notBefore: Date, notAfter: Date): void {
  const now = context.clock();
  if (notBefore > now || notAfter < now) {
    throw rejected(
      "the TLS client certificate is expired or not yet valid; enrol again with an enrolment secret",
      "outside_validity",
    );
  }
}

/** Returns the certificates (PEM) of the mount's issuers as stored now. */
export async function issuerPems(context: PkiContext): Promise<string[]> {
  return (await context.issuers.list()).map((issuer) => issuer.certificatePem);
}

/** Returns the PEM of the issuer in `issuers` whose key signed `certificate`, or undefined. */
export async function findSigningIssuer(
  certificate: x509.X509Certificate,
  issuers: readonly string[],
): Promise<string | undefined> {
  const issuerName = Buffer.from(certificateNames(new Uint8Array(certificate.rawData)).issuer);
  for (const issuerPem of issuers) {
    const issuerDer = pemDer(issuerPem);
    const subject = Buffer.from(certificateNames(new Uint8Array(issuerDer)).subject);
    if (!subject.equals(issuerName)) continue;
    const issuerCertificate = new x509.X509Certificate(issuerDer);
    if (await certificate.verify({ publicKey: issuerCertificate, signatureOnly: true })) {
      return issuerPem;
    }
  }
  return undefined;
}

/** Returns the `permission_denied` error for a certificate none of the mount's issuers signed. */
export function unknownIssuer(context: PkiContext): KeywardError {
  return rejected(
    `the TLS client certificate was not issued by a CA of mount "${context.mount}"`,
    "unknown_issuer",
  );
}

/** Throws `permission_denied` when the mount revoked the certificate with serial `serialHex`. */
export async function checkNotRevoked(context: PkiContext, serialHex: string): Promise<void> {
  if (await context.store.get<RevokedRecord>(`revoked/${serialHex}`)) {
    throw rejected("the TLS client certificate is revoked", "revoked");
  }
}

function nameKey(name: AltName): string {
  const value =
    name.type === "dns" || name.type === "email" ? name.value.toLowerCase() : name.value;
  return `${name.type}:${value}`;
}

function certificateAltNames(certificate: x509.X509Certificate): AltName[] {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  const names: AltName[] = [];
  for (const name of extension?.names.items ?? []) {
    if (name.type === "dns" || name.type === "ip" || name.type === "email" || name.type === "url") {
      names.push({ type: name.type, value: name.value });
    }
  }
  return names;
}

/**
 * Checks that a re-enrolment CSR requests the names of the certificate
 * being renewed: RFC 7030 section 4.2.2 requires the subject and the
 * subjectAltName to be identical. Subjects are compared attribute by
 * attribute, so a different string encoding of the same value matches.
 * Issuance copies a hostname, email address or IP common name into the
 * SANs, so a CSR may leave out the SAN that equals its common name.
 * Throws `name_not_allowed`.
 */
export function checkSameNames(certificate: x509.X509Certificate, csr: CheckedCsr): void {
  const certificateSubject = certificate.subjectName.toString();
  const csrSubject = csr.csr.subjectName.toString();
  if (certificateSubject !== csrSubject) {
    throw new KeywardError(
      "name_not_allowed",
      `the CSR's subject "${csrSubject}" differs from the subject "${certificateSubject}" of the certificate being renewed`,
      { field: "csr" },
    );
  }

  const expected = new Set(certificateAltNames(certificate).map(nameKey));
  const requested = new Set(csr.altNames.map(nameKey));
  const commonName = csr.commonName.toLowerCase();
  const missing = [...expected].filter(
    (key) => !requested.has(key) && key.slice(key.indexOf(":") + 1) !== commonName,
  );
  const extra = [...requested].filter((key) => !expected.has(key));
  if (missing.length > 0 || extra.length > 0) {
    throw new KeywardError(
      "name_not_allowed",
      `the CSR's subject alternative names differ from those of the certificate being renewed (missing: ${missing.join(", ") || "none"}; extra: ${extra.join(", ") || "none"})`,
      { field: "csr" },
    );
  }
}
