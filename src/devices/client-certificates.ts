import { createHash } from "node:crypto";
import type { PkiContext } from "../engines/pki/context.ts";
import {
  checkNotRevoked,
  checkValidityPeriod,
  findSigningIssuer,
  issuerPems,
  unknownIssuer,
} from "../engines/pki/est/client-certificate.ts";
import { serialHexOf } from "../engines/pki/key-pairs.ts";
import { parseCertificateDer } from "../engines/pki/pem.ts";
import type { X509Certificate } from "../engines/pki/x509.ts";

/** Max number of verified certificates kept. Past this size the least recently used one is dropped. */
const MAX_CACHED_CERTIFICATES = 10_000;

/** The facts of a client certificate that authentication checks on every request. */
export interface ClientCertificate {
  /** SHA-256 (hex) of the DER bytes. */
  digest: string;
  /** Serial number (hex). */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The issuer certificate (PEM) whose key was found to have signed it, once verified. */
  signedBy?: string;
  /** The parsed certificate, when this request parsed it. */
  parsed?: X509Certificate;
}

/**
 * Client certificates by the SHA-256 of their DER bytes, so that a device
 * polling again is not parsed and its signature not verified anew on every
 * request. Only what depends on the bytes alone is kept: the serial, the
 * validity period and the issuer certificate that signed it. On every
 * call `verify` still checks the time against the validity period, that
 * this issuer is one of the mount's issuers and that the serial is not
 * revoked. So an issuer removal or a revocation takes effect at once.
 * Only certificates whose signature verified are added.
 */
export class ClientCertificates {
  readonly #verified = new Map<string, ClientCertificate>();

  /** Returns the certificate's facts, parsing `der` unless it was verified before. Throws when it cannot be parsed. */
  parse(der: Uint8Array): ClientCertificate {
    const digest = createHash("sha256").update(der).digest("hex");
    const cached = this.#verified.get(digest);
    if (cached !== undefined) {
      // Moves the entry to the end, so the map's order is least recently used first.
      this.#verified.delete(digest);
      this.#verified.set(digest, cached);
      return cached;
    }
    const parsed = parseCertificateDer(der, "client certificate");
    return {
      digest,
      serial: serialHexOf(parsed),
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      parsed,
    };
  }

  /**
   * Checks `certificate`, returned by `parse(der)`, against the PKI mount
   * `context` as `verifyClientCertificate` does: validity period, signature
   * by one of the mount's issuers, and revocation. Throws
   * `permission_denied` naming the failed check.
   */
  async verify(
    context: PkiContext,
    der: Uint8Array,
    certificate: ClientCertificate,
  ): Promise<void> {
    checkValidityPeriod(context, certificate.notBefore, certificate.notAfter);
    const issuers = await issuerPems(context);
    const known = certificate.signedBy !== undefined && issuers.includes(certificate.signedBy);
    if (!known) {
      // A cached certificate whose issuer left the mount is parsed again,
      // because another of the mount's issuers may have signed it too.
      const parsed = certificate.parsed ?? parseCertificateDer(der, "client certificate");
      const signedBy = await findSigningIssuer(parsed, issuers);
      if (signedBy === undefined) throw unknownIssuer(context);
      const { digest, serial, notBefore, notAfter } = certificate;
      this.#remember({ digest, serial, notBefore, notAfter, signedBy });
    }
    await checkNotRevoked(context, certificate.serial);
  }

  #remember(certificate: ClientCertificate): void {
    if (this.#verified.size >= MAX_CACHED_CERTIFICATES) {
      this.#verified.delete(this.#verified.keys().next().value as string);
    }
    this.#verified.set(certificate.digest, certificate);
  }
}
