import type { webcrypto } from "node:crypto";
import type { DataSigner } from "../data-signer.ts";
import type * as x509 from "../x509.ts";

/** The CRLReason values of RFC 5280 section 5.3.1, in the order of their codes. */
export const REVOCATION_REASONS = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  "removeFromCRL",
  "privilegeWithdrawn",
  "aACompromise",
] as const;

export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** CRLReason code of each reason. Code 7 is unused in RFC 5280. */
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, number>> = Object.freeze({
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
});

/** One revoked certificate, as a CRL entry or an OCSP revoked status. */
export interface RevokedEntry {
  /** Serial number in lower-case hex without colons, such as `"1f03a9"`. */
  serialHex: string;
  revokedAt: Date;
  /** Written as the reasonCode entry extension, except `unspecified`, which RFC 5280 says to omit. */
  reason?: RevocationReason;
  /** Time the key is known or suspected to have been compromised. */
  invalidityDate?: Date;
}

/**
 * Certificate and private key that sign a CRL or an OCSP response: the
 * issuing CA, or for OCSP a delegated responder certificate that the CA
 * issued with the id-kp-OCSPSigning extended key usage.
 */
export interface RevocationSigner {
  certificate: x509.X509Certificate;
  /** The signing key in WebCrypto; used when `dataSigner` is absent. */
  privateKey?: webcrypto.CryptoKey;
  /** Signs with a key held elsewhere, such as a node:crypto key object or a transit key. */
  dataSigner?: DataSigner;
}
