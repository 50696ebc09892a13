import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import {
  createSecureContext,
  createServer as createTlsServer,
  type Server as TlsServer,
} from "node:tls";
import type { TestApp } from "../../../helpers/app.ts";
import { createPkiApp, ok, tempFiles } from "../fixtures.ts";
import { RawAcmeClient } from "./jws-client.ts";

/** Names under this domain resolve to 127.0.0.1 through the validator's hosts map, so nothing leaves loopback. */
export const TEST_DOMAIN = "acme.test";

/** Returns a loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port assigned"));
      });
    });
  });
}

export interface AcmeTestServer {
  t: TestApp;
  /** `http://127.0.0.1:<port>` of the Keyward server. */
  base: string;
  /** The mount's default directory, which issues with role `web`. */
  directoryUrl: string;
  /** Role `web`'s own directory. */
  roleDirectoryUrl: string;
  rootPem: string;
  /** Port the validator sends http-01 requests to. */
  httpPort: number;
  /** Port the validator sends tls-alpn-01 handshakes to. */
  tlsPort: number;
  files: ReturnType<typeof tempFiles>;
  close(): Promise<void>;
}

/**
 * Starts a Keyward server on loopback with a PKI mount `pki`: an EC root,
 * a role `web` for `*.acme.test` names and 127.0.0.1, and URLs for OCSP.
 * ACME is enabled, with the validator confined to loopback on the given
 * (or fresh) high ports.
 */
export async function startAcmeServer(
  options: { httpPort?: number; tlsPort?: number; acme?: Record<string, unknown> } = {},
): Promise<AcmeTestServer> {
  const t = await createPkiApp();
  await t.app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
  await ok(t, "POST", "/v1/pki/config/urls", {
    issuing_certificates: `${base}/v1/pki/ca`,
    crl_distribution_points: `${base}/v1/pki/crl`,
    ocsp_servers: `${base}/v1/pki/ocsp`,
  });
  const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
    common_name: "Keyward ACME Test Root",
    key_type: "ec",
    key_bits: 256,
    ttl: "87600h",
  });
  await ok(t, "POST", "/v1/pki/roles/web", {
    allowed_domains: TEST_DOMAIN,
    allow_subdomains: true,
    allow_ip_sans: true,
    key_type: "any",
    ttl: "720h",
    max_ttl: "2160h",
  });
  const httpPort = options.httpPort ?? (await freePort());
  const tlsPort = options.tlsPort ?? (await freePort());
  await ok(t, "POST", "/v1/pki/config/acme", {
    enabled: true,
    default_directory_policy: "role:web",
    allowed_roles: ["web"],
    allowed_networks: ["127.0.0.0/8", "::1/128"],
    hosts: { [`*.${TEST_DOMAIN}`]: "127.0.0.1" },
    http_port: httpPort,
    tls_port: tlsPort,
    validation_timeout_seconds: 5,
    ...options.acme,
  });
  const files = tempFiles();
  return {
    t,
    base,
    directoryUrl: `${base}/v1/pki/acme/directory`,
    roleDirectoryUrl: `${base}/v1/pki/roles/web/acme/directory`,
    rootPem: root.certificate,
    httpPort,
    tlsPort,
    files,
    async close() {
      files.cleanup();
      await t.close();
    },
  };
}

/**
 * Returns a raw ACME client that has read the directory of mount `pki` on
 * `server`. With `register` the client also creates its account.
 */
export async function rawAcmeClient(
  server: AcmeTestServer,
  options: { register?: boolean } = {},
): Promise<RawAcmeClient> {
  const client = new RawAcmeClient(server.t);
  await client.init("/v1/pki/acme/directory");
  if (options.register) await client.register();
  return client;
}

/**
 * A rejected request: case name, JWS payload, expected HTTP status and ACME
 * problem type without its `urn:ietf:params:acme:error:` prefix.
 */
export type ProblemCase = [name: string, payload: object, status: number, type: string];

/** Posts each case's payload to `url` as `client` and checks the status and problem type of each response. */
export async function assertProblems(
  client: RawAcmeClient,
  url: string,
  cases: ProblemCase[],
): Promise<void> {
  for (const [name, payload, status, type] of cases) {
    const response = await client.post(url, { payload });
    assert.equal(response.statusCode, status, `${name}: ${response.body}`);
    assert.equal(
      response.json().type,
      `urn:ietf:params:acme:error:${type}`,
      `${name}: ${response.body}`,
    );
  }
}

/** Starts an http-01 responder on loopback that serves the key authorization of each token in `tokens`. */
export async function startHttpResponder(port: number): Promise<{
  tokens: Map<string, string>;
  requests: string[];
  server: Server;
  close(): Promise<void>;
}> {
  const tokens = new Map<string, string>();
  const requests: string[] = [];
  const server = createHttpServer((request, response) => {
    requests.push(`${request.headers.host ?? ""}${request.url ?? ""}`);
    const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(request.url ?? "")?.[1];
    const keyAuthorization = token === undefined ? undefined : tokens.get(token);
    if (keyAuthorization === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "text/plain" }).end(keyAuthorization);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    tokens,
    requests,
    server,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Starts a tls-alpn-01 responder on loopback that presents the certificate in `certificates` for each SNI name. */
export async function startAlpnResponder(port: number): Promise<{
  certificates: Map<string, { key: string; cert: string }>;
  close(): Promise<void>;
}> {
  const certificates = new Map<string, { key: string; cert: string }>();
  const server: TlsServer = createTlsServer({
    ALPNProtocols: ["acme-tls/1"],
    SNICallback: (name, callback) => {
      const entry = certificates.get(name);
      if (!entry) {
        callback(new Error(`no validation certificate for ${name}`));
        return;
      }
      callback(null, createSecureContext({ key: entry.key, cert: entry.cert }));
    },
  });
  server.on("secureConnection", (socket) => socket.end());
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    certificates,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Asserts that `openssl verify` accepts a PEM chain (leaf first) against the root. */
export function assertChainVerifies(
  server: AcmeTestServer,
  chainPem: string,
  run: (program: string, args: string[]) => { status: number | null; output: string },
): void {
  const blocks =
    chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  assert.ok(blocks.length >= 1, "the chain has no certificate");
  const name = `chain-${Math.random().toString(36).slice(2)}`;
  const rootPath = server.files.write(`${name}-root.pem`, server.rootPem);
  const leafPath = server.files.write(`${name}-leaf.pem`, `${blocks[0]}\n`);
  const untrusted = blocks.slice(1).join("\n");
  const args = ["verify", "-CAfile", rootPath];
  if (untrusted !== "")
    args.push("-untrusted", server.files.write(`${name}-chain.pem`, `${untrusted}\n`));
  const result = run("openssl", [...args, leafPath]);
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /: OK/);
}
