/** Public API of the revocation library: CRL building, OCSP request parsing and OCSP response building. */
export { type BuildCrlOptions, buildCrl } from "./crl.ts";
export {
  type BuildOcspResponseOptions,
  buildOcspResponse,
  certIdMatchesIssuer,
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_NONCE_BYTES,
  MAX_OCSP_REQUEST_BYTES,
  type OcspCertId,
  type OcspCertStatus,
  type OcspRequestInfo,
  type OcspSingleStatus,
  ocspErrorResponse,
  parseOcspRequest,
} from "./ocsp.ts";
export {
  REVOCATION_REASON_CODES,
  REVOCATION_REASONS,
  type RevocationReason,
  type RevocationSigner,
  type RevokedEntry,
} from "./types.ts";
