import { type CertificateNames, certificateNames } from "./der.ts";
import { parseCertificateDer } from "./pem.ts";
import * as x509 from "./x509.ts";

/**
 * Entries kept before the caches are cleared. A mount has a handful of
 * issuers, so the limit only matters when issuers are replaced many times
 * within one unsealed period.
 */
const MAX_ENTRIES = 256;

/** A CA certificate parsed once, with what signing and chain building read from it. */
export interface ParsedCaCertificate {
  certificate: x509.X509Certificate;
  names: CertificateNames;
  /** Subject key identifier, hex (RFC 5280 method 1 when the extension is absent). */
  keyIdHex: Promise<string>;
}

/**
 * Parsed issuer certificates and signature checks between them, keyed by
 * the certificates' PEM text. Because the key is the certificate itself, an
 * entry never goes stale: a changed or replaced issuer has other PEM text
 * and gets a new entry. Issuing reads the issuer and its chain on every
 * request, and parsing and verifying them each time cost more than signing.
 */
export class CaCertificateCache {
  readonly #parsed = new Map<string, ParsedCaCertificate>();
  readonly #verified = new Map<string, Promise<boolean>>();

  /** Returns the parsed certificate of the first PEM block in `pem`. */
  parse(pem: string): ParsedCaCertificate {
    const cached = this.#parsed.get(pem);
    if (cached) return cached;
    const certificate = parseCertificateDer(pemDer(pem), "certificate");
    const parsed: ParsedCaCertificate = {
      certificate,
      names: certificateNames(new Uint8Array(certificate.rawData)),
      keyIdHex: subjectKeyIdOf(certificate),
    };
    // A rejected key ID computation stays cached, because it fails the same way each time.
    parsed.keyIdHex.catch(() => {});
    if (this.#parsed.size >= MAX_ENTRIES) this.#parsed.clear();
    this.#parsed.set(pem, parsed);
    return parsed;
  }

  /** Returns whether the key of `issuerPem` verifies the signature of `childPem`. Pass the same PEM twice to check a self-signature. */
  verifies(childPem: string, issuerPem: string): Promise<boolean> {
    const key = `${childPem}\n${issuerPem}`;
    const cached = this.#verified.get(key);
    if (cached) return cached;
    const child = this.parse(childPem).certificate;
    const result =
      childPem === issuerPem
        ? child.verify({ signatureOnly: true })
        : child.verify({
            publicKey: this.parse(issuerPem).certificate.publicKey,
            signatureOnly: true,
          });
    if (this.#verified.size >= MAX_ENTRIES) this.#verified.clear();
    this.#verified.set(key, result);
    // A failed check is not cached, so a later request tries again.
    result.catch(() => this.#verified.delete(key));
    return result;
  }
}

/** Returns the DER of the first PEM block in `pem`. */
export function pemDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** Returns a certificate's subject key identifier, hex, computing it (RFC 5280 method 1) when the extension is absent. */
export async function subjectKeyIdOf(certificate: x509.X509Certificate): Promise<string> {
  const extension = certificate.getExtension(x509.SubjectKeyIdentifierExtension);
  if (extension) return extension.keyId;
  return (await x509.SubjectKeyIdentifierExtension.create(certificate.publicKey)).keyId;
}
