import { createPublicKey } from "node:crypto";
import { importSpki } from "../../../crypto/key-safety.ts";
import { readElement } from "../der.ts";
import { MAX_SERIAL_OCTETS } from "../inventory.ts";
import { pemDer } from "../issuers.ts";
import { serialHexOf } from "../key-pairs.ts";
import { parseCertificateDer } from "../pem.ts";
import { REVOCATION_REASON_CODES, type RevocationReason } from "../revocation/types.ts";
import * as x509 from "../x509.ts";
import type { AuthenticatedRequest } from "./authenticate.ts";
import { refreshAuthorization } from "./authorizations.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { canonicalIp, identifierKey } from "./identifiers.ts";
import { AcmeProblem } from "./problems.ts";

/** Maximum certificate length accepted, in base64url characters. */
const MAX_CERTIFICATE_LENGTH = 64 * 1024;

/** Reasons an ACME client may give; certificateHold, removeFromCRL and aACompromise do not apply (RFC 8555 section 7.6). */
const ALLOWED_REASONS: readonly RevocationReason[] = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "privilegeWithdrawn",
];

function readReason(value: unknown): RevocationReason | undefined {
  if (value === undefined) return undefined;
  const reason = ALLOWED_REASONS.find((name) => REVOCATION_REASON_CODES[name] === value);
  if (reason === undefined) {
    throw new AcmeProblem(
      "badRevocationReason",
      `reason must be one of the codes ${ALLOWED_REASONS.map((name) => REVOCATION_REASON_CODES[name]).join(", ")}`,
    );
  }
  return reason;
}

/**
 * Returns whether the outer DER element spans all of `der`. X509Certificate
 * ignores bytes after the certificate, and a BER indefinite length, which
 * DER forbids, fails here too.
 */
function fillsInput(der: Uint8Array): boolean {
  try {
    return readElement(der, 0).end === der.length;
  } catch {
    return false;
  }
}

/** Returns the DNS and IP names of a certificate as identifier keys. */
function certificateIdentifierKeys(certificate: x509.X509Certificate): string[] {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  const keys: string[] = [];
  for (const name of extension?.names.items ?? []) {
    if (name.type === "dns")
      keys.push(identifierKey({ type: "dns", value: name.value.toLowerCase() }));
    if (name.type === "ip") {
      const ip = canonicalIp(name.value);
      if (ip) keys.push(identifierKey({ type: "ip", value: ip }));
    }
  }
  return keys;
}

/**
 * Checks that an account may revoke a certificate: it ordered the
 * certificate, or it has valid authorizations for every name in it
 * (RFC 8555 section 7.6).
 */
async function accountMayRevoke(
  context: AcmeContext,
  scope: AcmeScope,
  accountId: string,
  ownerId: string | undefined,
  certificate: x509.X509Certificate,
): Promise<boolean> {
  if (ownerId === accountId) return true;
  const needed = new Set(certificateIdentifierKeys(certificate));
  if (needed.size === 0) return false;
  for (const id of await context.store.accountAuthorizationIds(accountId)) {
    const stored = await context.store.authorization(id);
    if (!stored || stored.directory !== scope.directory) continue;
    const authorization = await refreshAuthorization(context, stored);
    if (authorization.status !== "valid") continue;
    const base = identifierKey(authorization.identifier);
    needed.delete(authorization.wildcard ? `dns:*.${authorization.identifier.value}` : base);
  }
  return needed.size === 0;
}

/**
 * Serves revokeCert (RFC 8555 section 7.6), signed either by an account
 * that may revoke the certificate or by the certificate's own key (`jwk`).
 * Revokes through the PKI engine, so the CRL and OCSP responder report it.
 */
export async function revokeCertificate(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
): Promise<AcmeResponse> {
  const payload = request.payload;
  if (payload === undefined || typeof payload.certificate !== "string") {
    throw new AcmeProblem(
      "malformed",
      'revokeCert needs a payload with "certificate", the DER certificate in base64url',
    );
  }
  if (
    payload.certificate.length > MAX_CERTIFICATE_LENGTH ||
    !/^[A-Za-z0-9_-]+$/.test(payload.certificate)
  ) {
    throw new AcmeProblem("malformed", '"certificate" must be a DER certificate in base64url');
  }
  const reason = readReason(payload.reason);
  const der = Buffer.from(payload.certificate, "base64url");
  let certificate: x509.X509Certificate;
  try {
    certificate = parseCertificateDer(der, "certificate");
  } catch (error) {
    throw new AcmeProblem("malformed", '"certificate" is not a valid DER certificate', {
      cause: error,
    });
  }
  if (!fillsInput(der)) {
    throw new AcmeProblem(
      "malformed",
      '"certificate" must be exactly one DER certificate, with no bytes after it',
    );
  }
  const serialHex = serialHexOf(certificate);
  if (serialHex === "" || serialHex.length > MAX_SERIAL_OCTETS * 2) {
    throw new AcmeProblem(
      "malformed",
      `the certificate's serial number must be 1 to ${MAX_SERIAL_OCTETS} octets long`,
    );
  }
  const stored = await context.pki.inventory.find(serialHex);
  if (!stored || !pemDer(stored.certificatePem).equals(der)) {
    throw new AcmeProblem("unauthorized", "the certificate was not issued by this mount");
  }
  const acmeRecord = await context.store.certificate(serialHex);

  if (request.account) {
    const allowed = await accountMayRevoke(
      context,
      scope,
      request.account.id,
      acmeRecord?.accountId,
      certificate,
    );
    if (!allowed) {
      throw new AcmeProblem(
        "unauthorized",
        "the account neither ordered this certificate nor holds authorizations for all its names",
      );
    }
  } else {
    const certificateKey = importSpki(new Uint8Array(certificate.publicKey.rawData));
    const signingKey = createPublicKey({ key: request.jwk as never, format: "jwk" });
    if (!certificateKey.equals(signingKey)) {
      throw new AcmeProblem(
        "unauthorized",
        "the request is signed by neither an account nor the certificate's key",
      );
    }
  }
  if (stored.revokedAt !== undefined) {
    throw new AcmeProblem("alreadyRevoked", "the certificate is already revoked");
  }
  await context.pki.revocation.revoke(serialHex, reason);
  context.logger?.info(
    { mount: context.pki.mount, serial: serialHex, account: request.account?.id, reason },
    "revoked certificate over ACME",
  );
  return { status: 200 };
}
