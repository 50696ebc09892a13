import { isKeywardError } from "../../errors.ts";
import type { PkiContext } from "./context.ts";
import { issuerCanSign, type LoadedIssuer } from "./issuers.ts";
import { normaliseSerialHex } from "./key-pairs.ts";
import type { OcspResponders } from "./ocsp-delegation.ts";
import {
  buildOcspResponse,
  certIdMatchesIssuer,
  type OcspCertStatus,
  ocspErrorResponse,
  parseOcspRequest,
} from "./revocation/index.ts";
import type { RevokedRecord } from "./types.ts";

/**
 * Builds the DER response to a DER OCSP request (RFC 6960). The response is signed by the
 * issuer of the first CertID, or by that issuer's delegated responder when
 * `responders` has a current one, whose certificate the response then
 * carries. CertIDs of other issuers get `unknown`. A
 * malformed request gets a `malformedRequest` response, and a request
 * for an issuer this mount does not hold gets `unauthorized`, both as
 * OCSP responses rather than HTTP errors.
 */
export async function answerOcsp(
  context: PkiContext,
  der: Uint8Array,
  responders?: OcspResponders,
): Promise<Uint8Array> {
  let request: ReturnType<typeof parseOcspRequest>;
  try {
    request = parseOcspRequest(der);
  } catch (error) {
    if (isKeywardError(error) && error.isClientError) return ocspErrorResponse("malformedRequest");
    throw error;
  }
  const crlConfig = await context.config.crl();
  if (crlConfig.ocspDisable) return ocspErrorResponse("unauthorized");

  const issuers = (await context.issuers.list()).filter(issuerCanSign);
  let signer: LoadedIssuer | undefined;
  for (const issuer of issuers) {
    const loaded = await context.issuers.load(issuer);
    if (request.certIds.some((certId) => certIdMatchesIssuer(certId, loaded.certificate))) {
      signer = loaded;
      break;
    }
  }
  if (!signer) return ocspErrorResponse("unauthorized");

  const now = context.clock();
  const nextUpdate =
    crlConfig.ocspExpirySeconds > 0
      ? new Date(now.getTime() + crlConfig.ocspExpirySeconds * 1000)
      : undefined;
  const responses = [];
  for (const certId of request.certIds) {
    const status = certIdMatchesIssuer(certId, signer.certificate)
      ? await certificateStatus(context, normaliseSerialHex(certId.serialHex), signer.record.id)
      : ({ status: "unknown" } as const);
    responses.push({ certId, status, thisUpdate: now, ...(nextUpdate ? { nextUpdate } : {}) });
  }
  const delegated = await responders?.signerFor(signer.record, now);
  return buildOcspResponse({
    signer: delegated ?? { certificate: signer.certificate, dataSigner: signer.signer },
    ...(delegated ? { certificates: [delegated.certificate] } : {}),
    responses,
    producedAt: now,
    ...(request.nonce ? { nonce: request.nonce } : {}),
  });
}

/** The maximum length of a certificate serial number in octets (RFC 5280 section 4.1.2.2). */
const MAX_SERIAL_OCTETS = 20;

async function certificateStatus(
  context: PkiContext,
  serialHex: string,
  issuerId: string,
): Promise<OcspCertStatus> {
  // Keyward's serials have at most 20 octets (RFC 5280 section 4.1.2.2),
  // and a longer one would not even make a valid storage key.
  if (serialHex.length > 2 * MAX_SERIAL_OCTETS) return { status: "unknown" };
  const revoked = await context.store.get<RevokedRecord>(`revoked/${serialHex}`);
  if (revoked && revoked.issuerId === issuerId) {
    return {
      status: "revoked",
      revokedAt: new Date(revoked.revokedAt),
      ...(revoked.reason ? { reason: revoked.reason } : {}),
    };
  }
  const record = await context.inventory.find(serialHex);
  if (record && record.issuerId === issuerId) return { status: "good" };
  return { status: "unknown" };
}
