import type { webcrypto } from "node:crypto";
import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import * as x509 from "../../src/engines/pki/x509.ts";
import { ALGORITHM, makeLoopbackCa } from "./loopback-ca.ts";

/**
 * An HTTPS server on loopback whose every response a test writes itself,
 * to play a broken or hostile Keyward server: slow bodies, huge bodies,
 * certificates for other names. It has its own CA and signs certificates
 * on request.
 */

/** Handles one request; the test writes the response. */
export type HostileHandler = (
  request: IncomingMessage,
  body: string,
  response: ServerResponse,
) => void | Promise<void>;

export class HostileServer {
  caPem = "";
  url = "";
  /** Requests received, as `METHOD /path`. */
  readonly requests: string[] = [];
  handler: HostileHandler = (_request, _body, response) => {
    response.writeHead(404).end();
  };
  #server: Server | undefined;
  #ca: { certificate: x509.X509Certificate; keys: webcrypto.CryptoKeyPair } | undefined;
  #serial = 0x1000;

  /** Makes the CA and the server certificate and listens on a free loopback port. */
  async start(): Promise<void> {
    const ca = await makeLoopbackCa("Keyward hostile test CA");
    this.#ca = { certificate: ca.certificate, keys: ca.keys };
    this.caPem = ca.caPem;
    this.#server = createServer(
      { key: ca.serverKeyPem, cert: ca.serverCertPem },
      (request, response) => {
        void this.#handle(request, response);
      },
    );
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    this.url = `https://127.0.0.1:${address.port}`;
  }

  /** Closes every connection and stops listening. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Signs the public key of `csrPem` into a certificate with subject `subject`
   * and the DNS and IP alternative names given, valid for one hour.
   */
  async sign(
    csrPem: string,
    subject: string,
    altNames: { dns?: string[]; ip?: string[] } = {},
  ): Promise<{ pem: string; serial: string; notAfter: number }> {
    const ca = this.#ca;
    if (!ca) throw new Error("not started");
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    this.#serial += 1;
    const serial = this.#serial.toString(16);
    const notBefore = Date.now() - 1000;
    const notAfter = notBefore + 3_600_000;
    const names = [
      ...(altNames.dns ?? []).map((value) => ({ type: "dns" as const, value })),
      ...(altNames.ip ?? []).map((value) => ({ type: "ip" as const, value })),
    ];
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject,
      issuer: ca.certificate.subject,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names)],
    });
    return { pem: certificate.toString("pem"), serial, notAfter };
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    this.requests.push(`${request.method} ${new URL(request.url ?? "/", "https://x").pathname}`);
    try {
      await this.handler(request, Buffer.concat(chunks).toString("utf8"), response);
    } catch (error) {
      if (!response.headersSent) response.writeHead(500).end((error as Error).message);
    }
  }
}
