import { createHash } from "node:crypto";
import { connect, type TLSSocket } from "node:tls";
import * as x509 from "../../x509.ts";
import type { AcmeConfig } from "../config.ts";
import { canonicalIp, reverseName } from "../identifiers.ts";
import { ValidationFailure } from "./failure.ts";
import { resolveAllowed } from "./network.ts";
import type { ValidationTarget } from "./validator.ts";

/** The ALPN protocol of tls-alpn-01 (RFC 8737 section 6.2). */
export const ACME_TLS_ALPN = "acme-tls/1";

/** The acmeIdentifier extension (RFC 8737 section 6.1). */
export const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";

function handshake(
  address: string,
  port: number,
  servername: string,
  signal: AbortSignal,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: address,
      port,
      servername,
      ALPNProtocols: [ACME_TLS_ALPN],
      // The validation certificate is self-signed by design; its content is checked below.
      rejectUnauthorized: false,
    });
    const abort = () => socket.destroy(new Error("timed out"));
    signal.addEventListener("abort", abort, { once: true });
    socket.once("secureConnect", () => {
      signal.removeEventListener("abort", abort);
      resolve(socket);
    });
    socket.once("error", (error) => {
      signal.removeEventListener("abort", abort);
      reject(error);
    });
  });
}

/**
 * Validates a tls-alpn-01 challenge (RFC 8737 section 3): a TLS handshake
 * on `tls_port` with ALPN `acme-tls/1` and SNI of the name (the reverse
 * DNS name for an IP address, RFC 8738 section 6) must negotiate that
 * protocol and present a certificate whose only subject alternative name
 * is the identifier and whose critical acmeIdentifier extension contains
 * SHA-256 of the key authorization.
 */
export async function validateTlsAlpn01(
  target: ValidationTarget,
  config: AcmeConfig,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  const { identifier } = target;
  const [address] = await resolveAllowed(identifier.value, config, timeoutMs);
  const servername = identifier.type === "ip" ? reverseName(identifier.value) : identifier.value;
  let socket: TLSSocket;
  try {
    socket = await handshake(address!, config.tls_port, servername, signal);
  } catch (error) {
    throw new ValidationFailure(
      "tls",
      `the TLS handshake with ${identifier.value}:${config.tls_port} failed`,
      error,
    );
  }
  try {
    if (socket.alpnProtocol !== ACME_TLS_ALPN) {
      throw new ValidationFailure(
        "tls",
        `${identifier.value} did not negotiate the ALPN protocol ${ACME_TLS_ALPN}`,
      );
    }
    const peer = socket.getPeerX509Certificate();
    if (!peer) throw new ValidationFailure("tls", `${identifier.value} sent no certificate`);
    checkCertificate(new x509.X509Certificate(peer.raw), target);
  } finally {
    socket.destroy();
  }
}

function checkCertificate(certificate: x509.X509Certificate, target: ValidationTarget): void {
  const { identifier } = target;
  const names = certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  const only = names.length === 1 ? names[0] : undefined;
  const matches =
    only !== undefined &&
    (identifier.type === "dns"
      ? only.type === "dns" && only.value.toLowerCase() === identifier.value
      : only.type === "ip" && canonicalIp(only.value) === identifier.value);
  if (!matches) {
    throw new ValidationFailure(
      "unauthorized",
      `the validation certificate must have exactly one subject alternative name, ${identifier.value}`,
    );
  }
  const extension = certificate.getExtension(ACME_IDENTIFIER_OID);
  if (!extension?.critical) {
    throw new ValidationFailure(
      "unauthorized",
      "the validation certificate has no critical acmeIdentifier extension",
    );
  }
  const digest = createHash("sha256").update(target.keyAuthorization).digest();
  // The extension value is the DER OCTET STRING (tag 4, length 32) around the digest.
  const expected = Buffer.concat([Buffer.from([0x04, 0x20]), digest]);
  if (!Buffer.from(extension.value).equals(expected)) {
    throw new ValidationFailure(
      "unauthorized",
      "the acmeIdentifier extension does not match the key authorization",
    );
  }
}
