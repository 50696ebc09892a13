import { createHash, randomBytes, type webcrypto } from "node:crypto";
import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import type { EncryptionJwk } from "../../src/agent/identity.ts";
import { sealSecret } from "../../src/devices/sealed.ts";
import * as x509 from "../../src/engines/pki/x509.ts";
import { ALGORITHM, makeLoopbackCa } from "./loopback-ca.ts";

/**
 * A stand-in for the Keyward server's device API, speaking the contract of
 * enrolment, renewal, the long-polled state, applied reports and WireGuard
 * key registration, with mutual TLS checked against its own CA. Tests set
 * the artifacts and watch the requests.
 */

/** A secret artifact as the test defines it; the server seals `value` per request. */
export interface FakeSecret {
  name: string;
  version: number;
  value: string;
}

/** A WireGuard peer as the fake keeps it. */
export interface FakePeer {
  mount: string;
  network: string;
  peer: string;
  /** Active public key, or null before the first registration. */
  publicKey: string | null;
  keyVersion: number;
  configVersion: number;
  rotateKey: boolean;
  staged?: { publicKey: string; activateAt: number };
  /** How long a later key waits before activation, in milliseconds. */
  rotationNoticeMs: number;
}

/** One request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Serial (hex) of the verified client certificate, if one was presented. */
  clientSerial: string | undefined;
  status: number;
  body: unknown;
}

export const PLACEHOLDER_LINE = "PrivateKey = KEYWARD_PRIVATE_KEY_PLACEHOLDER";

export class FakeDeviceServer {
  readonly device: string;
  readonly deviceId = randomBytes(8).toString("hex");
  bootstrapToken = `kwb.${randomBytes(32).toString("base64url")}`;
  tokenUses = 1;
  /** Certificate lifetime and the fraction after which renewal is due. */
  certificateLifetimeMs = 3_600_000;
  renewFraction = 2 / 3;
  secrets: FakeSecret[] = [];
  peers: FakePeer[] = [];
  /** A peer key another device uses, listed in every rendered configuration. */
  readonly otherPeerKey = Buffer.alloc(32, 9).toString("base64");
  /** Number of state requests to fail with 503 before serving again. */
  failStateRequests = 0;
  readonly requests: RecordedRequest[] = [];
  readonly applied: { id: string; version: number }[] = [];
  readonly registeredKeys: string[] = [];
  caPem = "";
  url = "";

  #encryptionKey: EncryptionJwk | undefined;
  #validSerials = new Set<string>();
  #revoked = false;
  #ca: { certificate: x509.X509Certificate; keys: webcrypto.CryptoKeyPair } | undefined;
  #server: Server | undefined;
  #waiters = new Set<() => void>();
  /** Four bytes, so that serial numbers in the colon form contain colons. */
  #serial = 0x2d418c00;

  constructor(device: string) {
    this.device = device;
  }

  get encryptionKey(): EncryptionJwk | undefined {
    return this.#encryptionKey;
  }

  /** Serials of the certificates currently accepted, hex. */
  get validSerials(): string[] {
    return [...this.#validSerials];
  }

  /** Makes the CA and server certificate and listens on a free loopback port. */
  async start(): Promise<void> {
    const ca = await makeLoopbackCa("Keyward agent test CA");
    this.#ca = { certificate: ca.certificate, keys: ca.keys };
    this.caPem = ca.caPem;

    this.#server = createServer(
      {
        key: ca.serverKeyPem,
        cert: ca.serverCertPem,
        ca: this.caPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
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

  /** Stops listening and closes every connection, including waiting long polls. */
  async stop(): Promise<void> {
    for (const wake of this.#waiters) wake();
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Wakes long polls, as the real server does after a change. */
  changed(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Revokes the device: its certificates stop working. */
  revoke(): void {
    this.#revoked = true;
    this.#validSerials.clear();
    this.changed();
  }

  /** Issues a new bootstrap token (and lifts a revocation, as re-registration would). */
  newBootstrapToken(): string {
    this.bootstrapToken = `kwb.${randomBytes(32).toString("base64url")}`;
    this.tokenUses = 1;
    this.#revoked = false;
    return this.bootstrapToken;
  }

  #send(response: ServerResponse, status: number, body?: unknown): number {
    if (body === undefined) {
      response.writeHead(status).end();
    } else {
      const payload = JSON.stringify(
        status < 300 ? { request_id: randomBytes(4).toString("hex"), data: body } : body,
      );
      response.writeHead(status, { "content-type": "application/json" }).end(payload);
    }
    return status;
  }

  #error(response: ServerResponse, status: number, code: string, message: string): number {
    return this.#send(response, status, { errors: [message], code });
  }

  async #readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
  }

  #clientSerial(request: IncomingMessage): string | undefined {
    const socket = request.socket as TLSSocket;
    if (!socket.authorized) return undefined;
    const certificate = socket.getPeerCertificate();
    return certificate?.serialNumber?.toLowerCase().replace(/^0+/, "");
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "https://fake");
    const body = request.method === "POST" ? await this.#readJson(request) : undefined;
    // Recorded on arrival, so a test can detect a long poll while it waits. Status is 0 until the response.
    const record: RecordedRequest = {
      method: request.method ?? "",
      path: url.pathname,
      query: url.searchParams,
      clientSerial: this.#clientSerial(request),
      status: 0,
      body,
    };
    this.requests.push(record);
    try {
      record.status = await this.#route(record.method, url, record.clientSerial, body, response);
    } catch (error) {
      record.status = this.#error(response, 500, "internal", (error as Error).message);
    }
  }

  async #route(
    method: string,
    url: URL,
    clientSerial: string | undefined,
    body: Record<string, unknown> | undefined,
    response: ServerResponse,
  ): Promise<number> {
    const route = `${method} ${url.pathname}`;
    if (route === "POST /v1/devices/enroll") return this.#enroll(body ?? {}, response);
    if (!url.pathname.startsWith("/v1/devices/self/")) {
      return this.#error(response, 404, "route_not_found", "no such route");
    }
    if (clientSerial === undefined || !this.#validSerials.has(clientSerial) || this.#revoked) {
      return this.#error(
        response,
        401,
        "device_authentication_failed",
        "a current identity certificate of an enrolled device is required",
      );
    }
    switch (route) {
      case "POST /v1/devices/self/renew":
        return this.#issue(body ?? {}, response);
      case "GET /v1/devices/self/state":
        return this.#state(url, response);
      case "POST /v1/devices/self/applied":
        for (const item of (body?.artifacts ?? []) as { id: string; version: number }[]) {
          this.applied.push({ id: item.id, version: item.version });
        }
        return this.#send(response, 204);
      case "POST /v1/devices/self/wireguard/key":
        return this.#registerKey(body ?? {}, response);
      default:
        return this.#error(response, 404, "route_not_found", "no such route");
    }
  }

  async #enroll(body: Record<string, unknown>, response: ServerResponse): Promise<number> {
    if (body.bootstrap_token !== this.bootstrapToken) {
      return this.#error(response, 403, "bootstrap_token_invalid", "unknown bootstrap token");
    }
    if (this.tokenUses <= 0) {
      return this.#error(response, 403, "bootstrap_token_used", "the token has no uses left");
    }
    const key = body.encryption_key as Record<string, unknown>;
    if (key?.kty !== "EC" || key.crv !== "P-256" || "d" in key) {
      return this.#error(response, 400, "invalid_field", "encryption_key is invalid");
    }
    this.tokenUses -= 1;
    this.#encryptionKey = { kty: "EC", crv: "P-256", x: String(key.x), y: String(key.y) };
    this.#validSerials.clear();
    return this.#issue(body, response);
  }

  async #issue(body: Record<string, unknown>, response: ServerResponse): Promise<number> {
    const csr = new x509.Pkcs10CertificateRequest(String(body.csr));
    if (!(await csr.verify())) {
      return this.#error(response, 400, "invalid_field", "csr signature does not verify");
    }
    if (csr.subject !== `CN=${this.device}`) {
      return this.#error(response, 400, "invalid_field", `csr subject ${csr.subject} is wrong`);
    }
    const ca = this.#ca;
    if (!ca) throw new Error("not started");
    this.#serial += 1;
    const serial = this.#serial.toString(16);
    const notBefore = Date.now() - 1000;
    const notAfter = notBefore + this.certificateLifetimeMs;
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: csr.subject,
      issuer: ca.certificate.subject,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
    this.#validSerials.add(serial);
    return this.#send(response, 200, {
      device: this.device,
      device_id: this.deviceId,
      certificate: certificate.toString("pem"),
      ca_chain: [this.caPem],
      serial_number: serial.match(/../g)?.join(":") ?? serial,
      expiration: Math.floor(notAfter / 1000),
      renew_after: Math.floor((notBefore + (notAfter - notBefore) * this.renewFraction) / 1000),
    });
  }

  #registerKey(body: Record<string, unknown>, response: ServerResponse): number {
    const peer = this.peers.find(
      (item) =>
        item.mount === body.mount && item.network === body.network && item.peer === body.peer,
    );
    if (!peer) return this.#error(response, 403, "permission_denied", "not this device's peer");
    const publicKey = String(body.public_key);
    this.registeredKeys.push(publicKey);
    peer.keyVersion += 1;
    peer.rotateKey = false;
    let activateAt = Date.now();
    if (peer.publicKey === null || peer.rotationNoticeMs === 0) {
      peer.publicKey = publicKey;
      delete peer.staged;
    } else {
      activateAt += peer.rotationNoticeMs;
      peer.staged = { publicKey, activateAt };
      // The real server wakes long polls when a staged key activates.
      setTimeout(() => this.changed(), peer.rotationNoticeMs + 5).unref();
    }
    peer.configVersion += 1;
    this.changed();
    return this.#send(response, 200, {
      key_version: peer.keyVersion,
      activate_at: new Date(activateAt).toISOString(),
    });
  }

  /** Activates staged keys whose time has come, as the real server's timers do. */
  #activateDue(): void {
    for (const peer of this.peers) {
      if (peer.staged && peer.staged.activateAt <= Date.now()) {
        peer.publicKey = peer.staged.publicKey;
        delete peer.staged;
        peer.configVersion += 1;
      }
    }
  }

  #render(peer: FakePeer, version: number): string {
    return [
      `# Rendered by the fake server: network ${peer.network}, peer ${peer.peer}, configuration version ${version}`,
      "[Interface]",
      PLACEHOLDER_LINE,
      "ListenPort = 51820",
      "",
      "[Peer]",
      `PublicKey = ${this.otherPeerKey}`,
      "AllowedIPs = 10.9.0.2/32",
      "",
    ].join("\n");
  }

  /** The artifacts without secrets: what decides the etag. */
  #plainArtifacts() {
    this.#activateDue();
    const secrets = this.secrets.map((secret) => ({
      id: `secret:${secret.name}`,
      kind: "secret",
      version: secret.version,
      fields: { name: secret.name, encoding: "base64" },
      next: null as null | { version: number; activate_at: string; fields: object },
    }));
    const peers = this.peers.map((peer) => {
      const fields = {
        mount: peer.mount,
        network: peer.network,
        peer: peer.peer,
        public_key: peer.publicKey,
        key_version: peer.keyVersion,
        addresses: ["10.9.0.1/24"],
        listen_port: 51820,
        rotate_key: peer.rotateKey,
      };
      return {
        id: `wireguard:${peer.mount}:${peer.network}:${peer.peer}`,
        kind: "wireguard",
        version: peer.configVersion,
        fields,
        next: peer.staged
          ? {
              version: peer.configVersion + 1,
              activate_at: new Date(peer.staged.activateAt).toISOString(),
              fields: { ...fields, public_key: peer.staged.publicKey, rotate_key: false },
            }
          : null,
      };
    });
    return [...secrets, ...peers];
  }

  etag(): string {
    return createHash("sha256").update(JSON.stringify(this.#plainArtifacts())).digest("hex");
  }

  async #sealed(id: string, version: number, values: Record<string, string>) {
    const jwk = this.#encryptionKey;
    if (!jwk) throw new Error("not enrolled");
    const sealed: Record<string, string> = {};
    for (const [field, value] of Object.entries(values)) {
      sealed[field] = await sealSecret(jwk, { artifact: id, version, field }, value);
    }
    return sealed;
  }

  async #state(url: URL, response: ServerResponse): Promise<number> {
    if (this.failStateRequests > 0) {
      this.failStateRequests -= 1;
      return this.#error(response, 503, "sealed", "the server is sealed");
    }
    const since = url.searchParams.get("since");
    const wait = Number(url.searchParams.get("wait") ?? "0");
    if (since !== null && since === this.etag() && wait > 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, wait * 1000);
        this.#waiters.add(wake);
      });
    }
    const etag = this.etag();
    if (since === etag) return this.#send(response, 304);
    const plain = this.#plainArtifacts();
    const artifacts = [];
    for (const artifact of plain) {
      if (artifact.kind === "secret") {
        const secret = this.secrets.find((item) => `secret:${item.name}` === artifact.id);
        artifacts.push({
          ...artifact,
          secrets: await this.#sealed(artifact.id, artifact.version, {
            value: secret?.value ?? "",
          }),
        });
        continue;
      }
      const peer = this.peers.find((item) => artifact.id.endsWith(`:${item.peer}`)) as FakePeer;
      const text = this.#render(peer, artifact.version);
      const next = artifact.next
        ? {
            ...artifact.next,
            secrets: await this.#sealed(artifact.id, artifact.next.version, {
              wg: this.#render(peer, artifact.next.version),
              "wg-quick": this.#render(peer, artifact.next.version),
            }),
          }
        : null;
      artifacts.push({
        ...artifact,
        secrets: await this.#sealed(artifact.id, artifact.version, { wg: text, "wg-quick": text }),
        next,
      });
    }
    return this.#send(response, 200, {
      device: this.device,
      device_id: this.deviceId,
      etag,
      artifacts,
    });
  }
}
