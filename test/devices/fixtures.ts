import assert from "node:assert/strict";
import { type KeyObject, webcrypto } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpsRequest, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../src/api/app.ts";
import type { LoginRateLimiterOptions } from "../../src/auth/rate-limiter.ts";
import { Keyward } from "../../src/core/keyward.ts";
import { generateKeys } from "../../src/crypto/key-generation.ts";
import type { DeviceArtifactSource } from "../../src/devices/artifacts.ts";
import type { PublicEncryptionJwk } from "../../src/devices/sealed.ts";
import { estTlsOptions } from "../../src/engines/pki/est/tls.ts";
import { toPem } from "../../src/engines/pki/pem.ts";
import * as x509 from "../../src/engines/pki/x509.ts";
import { openSqliteStorage } from "../../src/storage/index.ts";
import type { Storage } from "../../src/storage/storage.ts";

/** A clock the test moves by hand. */
export class TestClock {
  #now: number;

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now = (): Date => new Date(this.#now);

  advance(milliseconds: number): void {
    this.#now += milliseconds;
  }
}

export interface DeviceApp {
  app: FastifyInstance;
  keyward: Keyward;
  rootToken: string;
  /** The one unseal key share, hex. */
  unsealShare: string;
  /** Sends a request with the root token unless `token` is given (null sends none). */
  request(options: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface DeviceAppOptions {
  clock?: TestClock;
  enrolmentRateLimit?: LoginRateLimiterOptions;
  deviceSources?: DeviceArtifactSource[];
  /** Leave `devices/config` unset. */
  unconfigured?: boolean;
  /** Default time limit of one audit write. */
  auditWriteTimeoutMs?: number;
  /** Wraps the SQLite storage, for example in a FailingStorage. */
  wrapStorage?: (storage: Storage) => Storage;
}

/**
 * Builds a Keyward API on SQLite in a temporary folder, unsealed, with a
 * PKI mount `pki` (EC root, role `devices` for identity certificates, role
 * `server` for the test server's certificate) and the device registry
 * configured to sign with `pki/devices`.
 */
export async function createDeviceApp(options: DeviceAppOptions = {}): Promise<DeviceApp> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-devices-"));
  const opened = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  const storage = options.wrapStorage ? options.wrapStorage(opened) : opened;
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({
    storage,
    logger,
    ...(options.clock ? { clock: options.clock.now } : {}),
    ...(options.enrolmentRateLimit ? { enrolmentRateLimit: options.enrolmentRateLimit } : {}),
    ...(options.deviceSources ? { deviceSources: options.deviceSources } : {}),
    ...(options.auditWriteTimeoutMs ? { auditWriteTimeoutMs: options.auditWriteTimeoutMs } : {}),
  });
  const init = await keyward.init({ shares: 1, threshold: 1 });
  await keyward.seal.submitUnsealShare(init.keysHex[0]!);
  const app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
  await app.ready();
  const t: DeviceApp = {
    app,
    keyward,
    rootToken: init.rootToken,
    unsealShare: init.keysHex[0]!,
    request({ token, headers, ...rest }) {
      const sent = token === null ? undefined : (token ?? init.rootToken);
      return app.inject({
        ...rest,
        headers: { ...(sent ? { "x-vault-token": sent } : {}), ...headers },
      });
    },
    async close() {
      await app.close();
      await keyward.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };

  await ok(
    t,
    "POST",
    "/v1/sys/mounts/pki",
    { type: "pki", config: { max_lease_ttl: "87600h" } },
    204,
  );
  await ok(t, "POST", "/v1/pki/root/generate/internal", {
    common_name: "Device Test Root",
    key_type: "ec",
    ttl: "87600h",
  });
  await ok(t, "POST", "/v1/pki/roles/devices", {
    allow_any_name: true,
    enforce_hostnames: false,
    key_type: "any",
    server_flag: false,
    client_flag: true,
    ttl: "720h",
    max_ttl: "720h",
  });
  await ok(t, "POST", "/v1/pki/roles/server", {
    allow_any_name: true,
    allow_ip_sans: true,
    key_type: "ec",
    max_ttl: "720h",
  });
  if (!options.unconfigured) {
    await ok(t, "POST", "/v1/devices/config", { pki_mount: "pki", pki_role: "devices" });
  }
  return t;
}

/**
 * Sends a request with the root token and returns `data` of the response,
 * failing with the body when the status is not `status` (200 by default).
 */
export async function ok(
  t: DeviceApp,
  method: "GET" | "POST" | "DELETE",
  url: string,
  payload?: object,
  status = 200,
  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
): Promise<Record<string, any>> {
  const response = await t.request({ method, url, ...(payload ? { payload } : {}) });
  assert.equal(response.statusCode, status, `${method} ${url}: ${response.body}`);
  return status === 200 ? response.json().data : {};
}

/** Sends a request and returns the error code of a failed response, checking its status. */
export async function errorCode(
  t: DeviceApp,
  options: InjectOptions & { token?: string | null },
  status: number,
): Promise<{ code: string; field?: string; message: string }> {
  const response = await t.request(options);
  assert.equal(response.statusCode, status, response.body);
  const body = response.json();
  return { code: body.code, field: body.field, message: body.errors?.[0] };
}

/** A device's keys: the identity key in a CSR and the encryption key pair. */
export interface DeviceKeys {
  csr: string;
  /** The identity private key, PKCS#8 PEM, for the TLS client. */
  keyPem: string;
  encryptionKey: PublicEncryptionJwk;
  encryptionPrivateKey: KeyObject;
}

/** Makes a CSR for `commonName` with a new key of `type`, and a new encryption key pair. */
export async function makeDeviceKeys(
  commonName: string,
  type: "ec" | "ed25519" | "rsa" | "ec384" = "ec",
): Promise<DeviceKeys> {
  const algorithm =
    type === "ed25519"
      ? { name: "Ed25519" }
      : type === "rsa"
        ? {
            name: "RSASSA-PKCS1-v1_5",
            hash: "SHA-256",
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
          }
        : type === "ec384"
          ? { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" }
          : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: algorithm,
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  const encryption = generateKeys({ type: "ec", namedCurve: "P-256" });
  const jwk = encryption.publicKey.export({ format: "jwk" });
  return {
    csr: csr.toString("pem"),
    keyPem: toPem(pkcs8, "PRIVATE KEY"),
    encryptionKey: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! },
    encryptionPrivateKey: encryption.privateKey,
  };
}

/** Registers device `name` with `groups` and returns a bootstrap token for it. */
export async function registerDevice(
  t: DeviceApp,
  name: string,
  body: object = {},
  tokenBody: object = {},
): Promise<string> {
  await ok(t, "POST", `/v1/devices/registry/${name}`, body);
  const data = await ok(t, "POST", `/v1/devices/registry/${name}/bootstrap-token`, tokenBody);
  return data.bootstrap_token as string;
}

/** An enrolled device: its keys and the certificate it received. */
export interface EnrolledDevice {
  name: string;
  keys: DeviceKeys;
  certificatePem: string;
  serialNumber: string;
  deviceId: string;
  // biome-ignore lint/suspicious/noExplicitAny: the enrolment response as sent.
  response: Record<string, any>;
}

/** Registers and enrols `name` over inject (enrolment needs no TLS). */
export async function enrolDevice(
  t: DeviceApp,
  name: string,
  body: object = {},
): Promise<EnrolledDevice> {
  const token = await registerDevice(t, name, body);
  const keys = await makeDeviceKeys(name);
  const response = await t.request({
    method: "POST",
    url: "/v1/devices/enroll",
    token: null,
    payload: { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey },
  });
  assert.equal(response.statusCode, 200, response.body);
  const data = response.json().data;
  return {
    name,
    keys,
    certificatePem: data.certificate,
    serialNumber: data.serial_number,
    deviceId: data.device_id,
    response: data,
  };
}

export interface TlsServer {
  server: Server;
  url: string;
  caPem: string;
  close(): Promise<void>;
}

/**
 * Serves the app over HTTPS on 127.0.0.1 with the listener's TLS options
 * (client certificates requested, not required), with a server
 * certificate from the PKI's `server` role.
 */
export async function startTlsServer(t: DeviceApp): Promise<TlsServer> {
  const issued = await ok(t, "POST", "/v1/pki/issue/server", {
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
    server,
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
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON of the response, when there is one.
  json(): any;
}

/** Sends a JSON request over TLS, presenting `device`'s certificate when given. */
export function deviceRequest(
  server: TlsServer,
  options: {
    method: "GET" | "POST";
    path: string;
    body?: unknown;
    rawBody?: string;
    device?: { certificatePem: string; keys: { keyPem: string } };
    signal?: AbortSignal;
  },
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const payload =
      options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const request = httpsRequest(
      `${server.url}${options.path}`,
      {
        method: options.method,
        headers: payload === undefined ? {} : { "content-type": "application/json" },
        ca: server.caPem,
        agent: false,
        ...(options.device
          ? { cert: options.device.certificatePem, key: options.device.keys.keyPem }
          : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            body,
            json: () => JSON.parse(body),
          }),
        );
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}

/** Waits until `condition` returns true, checking every 20 ms, and fails after `timeoutMs`. */
export async function eventually(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
