import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { estTlsOptions } from "../../../../src/engines/pki/est/tls.ts";
import { toPem } from "../../../../src/engines/pki/pem.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { createPkiApp, ok } from "../fixtures.ts";

export const PKCS10 = { "content-type": "application/pkcs10" };

/**
 * Creates a PKI app with an EC root CA, a role `devices` for names under
 * devices.example.com and a role `sensors` for names under
 * sensors.example.com, and EST enabled as the default mount with label
 * `sensors`. EST over plain HTTP is allowed unless `allowInsecureHttp` is
 * false, because `inject()` sends no TLS.
 */
export async function createEstApp(
  options: { allowInsecureHttp?: boolean; devMode?: boolean } = {},
): Promise<TestApp> {
  const t = await createPkiApp({ devMode: options.devMode === true });
  await ok(t, "POST", "/v1/pki/root/generate/internal", {
    common_name: "EST Test Root",
    key_type: "ec",
    ttl: "87600h",
  });
  await ok(t, "POST", "/v1/pki/roles/devices", {
    allowed_domains: ["devices.example.com"],
    allow_subdomains: true,
    key_type: "ec",
    key_bits: 256,
    max_ttl: "720h",
  });
  await ok(t, "POST", "/v1/pki/roles/sensors", {
    allowed_domains: ["sensors.example.com"],
    allow_subdomains: true,
    key_type: "rsa",
    max_ttl: "720h",
  });
  await ok(t, "POST", "/v1/pki/config/est", {
    enabled: true,
    default_mount: true,
    default_path_policy: "role:devices",
    label_to_path_policy: { sensors: "role:sensors" },
    allow_insecure_http: options.allowInsecureHttp ?? true,
  });
  return t;
}

/** Creates an enrolment secret for `deviceId` and returns it. */
export async function createSecret(t: TestApp, deviceId: string): Promise<string> {
  const data = await ok(t, "POST", `/v1/pki/est/enrollment-secrets/${deviceId}`, {});
  assert.equal(typeof data.secret, "string");
  return data.secret as string;
}

/** Builds the Authorization header value for HTTP Basic. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

export interface GeneratedCsr {
  /** The CSR, base64 DER: an EST request body. */
  base64: string;
  keys: webcrypto.CryptoKeyPair;
}

/** Makes an ECDSA P-256 CSR for `subject` (such as `CN=a.devices.example.com`) with optional DNS SANs. */
export async function makeCsr(subject: string, dnsNames: string[] = []): Promise<GeneratedCsr> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const extensions =
    dnsNames.length > 0
      ? [
          new x509.SubjectAlternativeNameExtension(
            dnsNames.map((value) => ({ type: "dns", value })),
          ),
        ]
      : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: algorithm,
    extensions,
  });
  return { base64: Buffer.from(csr.rawData).toString("base64"), keys };
}

export interface EstTlsServer {
  url: string;
  /** The PKI's root certificate, PEM: the trust anchor for the server and issued certificates. */
  caPem: string;
  close(): Promise<void>;
}

/**
 * Serves the app over HTTPS on 127.0.0.1 with `estTlsOptions`, as the
 * server must listen for re-enrolment: client certificates are requested
 * but not required. The server's certificate is issued by the PKI itself.
 */
export async function startTlsServer(t: TestApp): Promise<EstTlsServer> {
  const issued = await ok(t, "POST", "/v1/pki/issue/devices", {
    common_name: "localhost",
    ip_sans: "127.0.0.1",
    private_key_format: "pkcs8",
  });
  const server = createServer(
    { cert: issued.certificate, key: issued.private_key, ...estTlsOptions() },
    (request, response) => t.app.routing(request, response),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: issued.issuing_ca,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request over TLS with Node's client, presenting `clientCertificate` when given. */
export function tlsRequest(
  server: EstTlsServer,
  options: {
    method: "GET" | "POST";
    path: string;
    headers?: Record<string, string>;
    body?: string;
    clientCertificate?: { certPem: string; keyPem: string };
  },
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      `${server.url}${options.path}`,
      {
        method: options.method,
        headers: options.headers,
        ca: server.caPem,
        ...(options.clientCertificate
          ? { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem }
          : {}),
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    request.on("error", reject);
    request.end(options.body);
  });
}

/** Exports a WebCrypto private key as PKCS#8 PEM. */
export async function privateKeyPem(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return toPem(der, "PRIVATE KEY");
}
