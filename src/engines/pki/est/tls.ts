import { TLSSocket } from "node:tls";
import type { FastifyRequest } from "fastify";

/** TLS server options that EST re-enrolment needs, to spread into `https.createServer` options. */
export interface EstTlsOptions {
  requestCert: true;
  rejectUnauthorized: false;
  ca?: string[];
}

/**
 * Returns the TLS listener options for EST re-enrolment: the server requests
 * a certificate from every client but accepts connections without one, or
 * with one it cannot verify, because most clients (Vault API clients among
 * them) present none. The EST routes verify a presented certificate against
 * the mount's issuers themselves. `caPems`, when given, only becomes the
 * list of acceptable CAs the server names in its CertificateRequest.
 */
export function estTlsOptions(caPems?: string[]): EstTlsOptions {
  return {
    requestCert: true,
    rejectUnauthorized: false,
    ...(caPems && caPems.length > 0 ? { ca: caPems } : {}),
  };
}

/** Returns the DER of the certificate the TLS client presented, or undefined on plain HTTP or without one. */
export function peerCertificateDer(request: FastifyRequest): Buffer | undefined {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket)) return undefined;
  const peer = socket.getPeerCertificate();
  // Node returns an empty object when the client sent no certificate.
  return peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0 ? peer.raw : undefined;
}

/** Tells whether a request arrived over TLS on this server's own socket; a proxy's X-Forwarded-Proto does not count. */
export function arrivedOverTls(request: FastifyRequest): boolean {
  return request.raw.socket instanceof TLSSocket;
}
