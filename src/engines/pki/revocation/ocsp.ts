import {
  BasicOCSPResponse,
  CertID,
  CertStatus,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  KeyHash,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
} from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { Certificate, CRLReason, Extension, Name } from "@peculiar/asn1-x509";
import { KeywardError } from "../../../errors.ts";
import type * as x509 from "../x509.ts";
import { publicKeySha1, subjectNameDer } from "./certificate-fields.ts";
import { wholeSeconds } from "./encoding.ts";
import type { OcspCertId } from "./ocsp-request.ts";
import { structureSignerFor } from "./signing.ts";
import { REVOCATION_REASON_CODES, type RevocationReason, type RevocationSigner } from "./types.ts";

export {
  certIdMatchesIssuer,
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_NONCE_BYTES,
  MAX_OCSP_REQUEST_BYTES,
  type OcspCertId,
  type OcspRequestInfo,
  parseOcspRequest,
} from "./ocsp-request.ts";

export type OcspCertStatus =
  | { status: "good" }
  | { status: "revoked"; revokedAt: Date; reason?: RevocationReason }
  | { status: "unknown" };

/** The status of one certificate in a response: one SingleResponse of RFC 6960 section 4.2.1. */
export interface OcspSingleStatus {
  certId: OcspCertId;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export interface BuildOcspResponseOptions {
  signer: RevocationSigner;
  responses: OcspSingleStatus[];
  producedAt: Date;
  /** Nonce extension value from the request, echoed unchanged. */
  nonce?: Uint8Array;
  /** Certificates to include in the response's `certs` field, such as a delegated responder's. */
  certificates?: x509.X509Certificate[];
  /** ResponderID form: the signer's subject (`name`, the default) or the SHA-1 of its public key (`key`). */
  responderId?: "name" | "key";
}

/**
 * Builds a successful OCSPResponse carrying a BasicOCSPResponse signed by
 * `signer` (RFC 6960 section 4.2.1) and returns its DER. The signature
 * algorithm follows the signer's key as for CRLs. Throws `invalid_request`
 * when `responses` is empty or a nextUpdate is earlier than its thisUpdate.
 */
export async function buildOcspResponse(options: BuildOcspResponseOptions): Promise<Uint8Array> {
  if (options.responses.length === 0) {
    throw new KeywardError(
      "invalid_request",
      "OCSP response needs at least one certificate status",
    );
  }
  const tbsResponseData = new ResponseData({
    responderID: responderIdOf(options.signer.certificate, options.responderId ?? "name"),
    producedAt: wholeSeconds(options.producedAt),
    responses: options.responses.map(singleResponse),
  });
  if (options.nonce !== undefined) {
    tbsResponseData.responseExtensions = [
      new Extension({
        extnID: id_pkix_ocsp_nonce,
        critical: false,
        extnValue: new OctetString(options.nonce),
      }),
    ];
  }

  const scheme = structureSignerFor(options.signer);
  const signature = await scheme.sign(AsnConvert.serialize(tbsResponseData));
  const basic = new BasicOCSPResponse({
    tbsResponseData,
    signatureAlgorithm: scheme.identifier,
    signature,
  });
  if (options.certificates && options.certificates.length > 0) {
    basic.certs = options.certificates.map(embeddedCertificate);
  }

  const response = new OCSPResponse({
    responseStatus: OCSPResponseStatus.successful,
    responseBytes: new ResponseBytes({
      responseType: id_pkix_ocsp_basic,
      response: new OctetString(AsnConvert.serialize(basic)),
    }),
  });
  return new Uint8Array(AsnConvert.serialize(response));
}

/** Returns the DER of an unsuccessful OCSPResponse: the status alone, with no responseBytes. */
export function ocspErrorResponse(
  status: "malformedRequest" | "internalError" | "tryLater" | "sigRequired" | "unauthorized",
): Uint8Array {
  const response = new OCSPResponse({ responseStatus: OCSPResponseStatus[status] });
  return new Uint8Array(AsnConvert.serialize(response));
}

function responderIdOf(certificate: x509.X509Certificate, form: "name" | "key"): ResponderID {
  if (form === "key") {
    return new ResponderID({ byKey: new KeyHash(publicKeySha1(certificate)) });
  }
  return new ResponderID({ byName: AsnConvert.parse(subjectNameDer(certificate), Name) });
}

function singleResponse(item: OcspSingleStatus): SingleResponse {
  if (item.nextUpdate && item.nextUpdate.getTime() < item.thisUpdate.getTime()) {
    throw new KeywardError("invalid_request", "OCSP nextUpdate is earlier than thisUpdate");
  }
  const response = new SingleResponse({
    certID: AsnConvert.parse(item.certId.der, CertID),
    certStatus: certStatusOf(item.status),
    thisUpdate: wholeSeconds(item.thisUpdate),
  });
  if (item.nextUpdate) response.nextUpdate = wholeSeconds(item.nextUpdate);
  return response;
}

function certStatusOf(status: OcspCertStatus): CertStatus {
  switch (status.status) {
    case "good":
      return new CertStatus({ good: null });
    case "unknown":
      return new CertStatus({ unknown: null });
    case "revoked": {
      const info = new RevokedInfo({ revocationTime: wholeSeconds(status.revokedAt) });
      // As in CRLs, the reason is left out when it is unspecified.
      if (status.reason !== undefined && status.reason !== "unspecified") {
        info.revocationReason = new CRLReason(REVOCATION_REASON_CODES[status.reason]);
      }
      return new CertStatus({ revoked: info });
    }
  }
}

/**
 * Parses a certificate for the `certs` field. asn1-schema re-encodes it
 * from the parsed fields, so the result is compared with the original to
 * be sure the embedded copy still carries a valid signature.
 */
function embeddedCertificate(certificate: x509.X509Certificate): Certificate {
  const parsed = AsnConvert.parse(certificate.rawData, Certificate);
  if (!Buffer.from(AsnConvert.serialize(parsed)).equals(Buffer.from(certificate.rawData))) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "certificate for an OCSP response does not re-encode to the same DER" },
    });
  }
  return parsed;
}
