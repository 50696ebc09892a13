import { normaliseSerialHex } from "../key-pairs.ts";
import { parseCertificates } from "../pem.ts";
import * as x509 from "../x509.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { notFoundProblem } from "./problems.ts";

/** Retry-After of renewalInfo responses: when clients should check the window again, in seconds (RFC 9773 section 4.3.3). */
export const RENEWAL_INFO_RETRY_SECONDS = 6 * 3600;

/** Length of the window suggested after a revocation or issuer change, in milliseconds. */
const EARLY_WINDOW_MS = 3600 * 1000;

/** Returns the DER content octets of a serial number, from its hex (with a leading zero byte when the high bit is set). */
function serialOctets(serialHex: string): Buffer {
  const bytes = Buffer.from(normaliseSerialHex(serialHex), "hex");
  return bytes[0]! > 0x7f ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

/**
 * Returns a certificate's ARI identifier (RFC 9773 section 4.1):
 * base64url of the authority key identifier's keyIdentifier, a dot, and
 * base64url of the serial number's DER content octets.
 */
export function certificateId(certificate: x509.X509Certificate): string | undefined {
  const aki = certificate.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) return undefined;
  const keyId = Buffer.from(aki.keyId, "hex").toString("base64url");
  return `${keyId}.${serialOctets(certificate.serialNumber).toString("base64url")}`;
}

/** Splits an ARI certificate identifier into the key identifier and the serial (normalised hex); undefined when malformed. */
export function parseCertificateId(
  id: string,
): { keyIdHex: string; serialHex: string } | undefined {
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(id);
  if (!match) return undefined;
  const keyId = Buffer.from(match[1]!, "base64url");
  const serial = Buffer.from(match[2]!, "base64url");
  if (keyId.length === 0 || serial.length === 0 || serial.length > 21) return undefined;
  return { keyIdHex: keyId.toString("hex"), serialHex: normaliseSerialHex(serial.toString("hex")) };
}

/**
 * Serves renewalInfo (RFC 9773): the window in which to renew a
 * certificate of this mount. Normally it spans two thirds to three
 * quarters of the certificate's lifetime. A revoked certificate gets a
 * window that has already begun, and so does one whose issuer is no
 * longer the mount's default issuer (after a CA rotation), so clients
 * renew at once.
 */
export async function renewalInfo(
  context: AcmeContext,
  _scope: AcmeScope,
  id: string,
): Promise<AcmeResponse> {
  const parsed = parseCertificateId(id);
  if (!parsed) throw notFoundProblem("certificate");
  const record = await context.pki.inventory.find(parsed.serialHex);
  if (!record) throw notFoundProblem("certificate");
  const [certificate] = parseCertificates(record.certificatePem, "certificate");
  if (!certificate || certificateId(certificate) !== id) throw notFoundProblem("certificate");

  const now = context.clock().getTime();
  const notBefore = Date.parse(record.notBefore);
  const lifetime = Date.parse(record.notAfter) - notBefore;
  let start = notBefore + (lifetime * 2) / 3;
  let end = notBefore + (lifetime * 3) / 4;
  const defaultIssuerId = (await context.pki.issuers.config()).defaultIssuerId;
  if (
    record.revokedAt !== undefined ||
    (defaultIssuerId !== "" && record.issuerId !== defaultIssuerId)
  ) {
    start = now - EARLY_WINDOW_MS;
    end = now;
  }
  return {
    status: 200,
    body: {
      suggestedWindow: {
        start: new Date(Math.floor(start / 1000) * 1000).toISOString(),
        end: new Date(Math.floor(end / 1000) * 1000).toISOString(),
      },
    },
    retryAfter: RENEWAL_INFO_RETRY_SECONDS,
  };
}
