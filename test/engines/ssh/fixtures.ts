import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse, RouteOptions } from "fastify";
import { createFastify } from "../../../src/api/app.ts";
import { registerSshRoutes, SshService } from "../../../src/engines/ssh/index.ts";
import { formatPublicKeyLine, publicKeyBlob } from "../../../src/engines/ssh/public-keys.ts";
import type { RoleWrite } from "../../../src/engines/ssh/types.ts";
import { SshReader } from "../../../src/engines/ssh/wire.ts";
import { KeywardError } from "../../../src/errors.ts";
import { createSealManager } from "../../../src/seal/seal-manager.ts";
import type { Barrier } from "../../../src/seal/types.ts";
import { openSqliteStorage } from "../../../src/storage/index.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { FixedClock, RecordingLogger } from "../transit/fixtures.ts";

export { FixedClock, logText, RecordingLogger } from "../transit/fixtures.ts";

export interface SshFixture {
  service: SshService;
  barrier: Barrier;
  clock: FixedClock;
  logger: RecordingLogger;
  close(): Promise<void>;
}

/**
 * Opens a real barrier: a SQLite file in a temporary folder, initialised
 * and unsealed with one share.
 */
export async function openSqliteBarrier(): Promise<{ barrier: Barrier; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "keyward-ssh-"));
  const storage = await openSqliteStorage({ path: join(dir, "keyward.db") });
  const seal = createSealManager(storage);
  const result = await seal.init({ shares: 1, threshold: 1 });
  await seal.submitUnsealShare(result.keysHex[0] as string);
  return {
    barrier: seal.barrier,
    async close() {
      await seal.seal();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a service on a fixed clock, over an in-memory barrier unless `sqlite` is set. */
export async function createSshFixture(
  options: { sqlite?: boolean; clock?: FixedClock } = {},
): Promise<SshFixture> {
  const clock = options.clock ?? new FixedClock();
  const logger = new RecordingLogger();
  if (options.sqlite) {
    const opened = await openSqliteBarrier();
    const service = new SshService({
      barrier: opened.barrier,
      mount: "ssh",
      clock: clock.now,
      logger,
    });
    return { service, barrier: opened.barrier, clock, logger, close: opened.close };
  }
  const barrier = new MemoryBarrier();
  const service = new SshService({ barrier, mount: "ssh", clock: clock.now, logger });
  return { service, barrier, clock, logger, close: async () => {} };
}

export interface SshRouteFixture extends SshFixture {
  app: FastifyInstance;
  routes: RouteOptions[];
  /** Sends a request; `identity` becomes the request's token identity, as the auth hook would set it. */
  request(
    options: InjectOptions & { identity?: { displayName: string; meta?: Record<string, string> } },
  ): Promise<LightMyRequestResponse>;
}

/**
 * Builds a bare Fastify app with the SSH routes under `/v1/ssh`, set up as
 * the API's app is (unknown fields rejected, JSON bodies, Keyward's error
 * handler), on a real SQLite barrier. No authentication: a test sets the
 * request's identity through the `x-test-identity` header instead.
 */
export async function createSshRouteFixture(
  options: { sqlite?: boolean; clock?: FixedClock } = { sqlite: true },
): Promise<SshRouteFixture> {
  const fixture = await createSshFixture(options);
  const app = createFastify();
  const routes: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/v1/ssh")) routes.push(route);
  });
  app.addHook("onRequest", async (request) => {
    const header = request.headers["x-test-identity"];
    if (typeof header !== "string") return;
    const { displayName, meta } = JSON.parse(header) as {
      displayName: string;
      meta?: Record<string, string>;
    };
    request.identity = {
      accessor: "test-accessor",
      displayName,
      policies: [],
      record: { meta: meta ?? {} } as never,
    };
  });
  await app.register(async (scope) => registerSshRoutes(scope, () => fixture.service), {
    prefix: "/v1/ssh",
  });
  await app.ready();
  return {
    ...fixture,
    app,
    routes,
    request: ({ identity, ...options }) =>
      app.inject({
        ...options,
        headers: {
          ...(options.headers ?? {}),
          ...(identity ? { "x-test-identity": JSON.stringify(identity) } : {}),
        },
      }),
    async close() {
      await app.close();
      await fixture.close();
    },
  };
}

/** Sends a request and returns `data` of a 200 response, failing with the body otherwise. */
export async function ok(
  fixture: SshRouteFixture,
  method: "GET" | "POST" | "DELETE",
  url: string,
  payload?: object,
  identity?: { displayName: string; meta?: Record<string, string> },
  // biome-ignore lint/suspicious/noExplicitAny: test helper returning response data of any shape
): Promise<Record<string, any>> {
  const response = await fixture.request({
    method,
    url,
    ...(payload ? { payload } : {}),
    identity,
  });
  assert.equal(response.statusCode, 200, `${method} ${url}: ${response.body}`);
  return response.json().data;
}

/** A client key pair: the Node keys and the OpenSSH public key line. */
export interface ClientKey {
  publicKey: KeyObject;
  privateKey: KeyObject;
  line: string;
}

export function clientKey(
  type: "ed25519" | "ec" | "rsa" = "ed25519",
  option: string | number = type === "ec" ? "P-256" : 2048,
): ClientKey {
  const pair =
    type === "ed25519"
      ? generateKeyPairSync("ed25519")
      : type === "ec"
        ? generateKeyPairSync("ec", { namedCurve: option as string })
        : generateKeyPairSync("rsa", { modulusLength: option as number });
  const { algorithm, blob } = publicKeyBlob(pair.publicKey);
  return { ...pair, line: formatPublicKeyLine(algorithm, blob, "client@test") };
}

/** Returns an assert.rejects validator expecting a KeywardError with `code` (and `field` when given). */
export function keywardError(code: string, field?: string) {
  return (error: unknown) => {
    if (!(error instanceof KeywardError)) throw error;
    assert.equal(error.code, code, `code (message: ${error.message})`);
    if (field !== undefined) assert.equal(error.field, field, `field (message: ${error.message})`);
    return true;
  };
}

/** Creates a temporary folder for files handed to peer programs; `cleanup` removes it. */
export function tempFiles(prefix = "keyward-ssh-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    /** Writes a file; private keys get mode 0600, which ssh and sshd require. */
    write(name: string, content: string | Uint8Array, mode = 0o644): string {
      const path = join(dir, name);
      writeFileSync(path, content);
      chmodSync(path, mode);
      return path;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a program and returns its exit status and combined output. */
export function run(program: string, args: string[], options: { timeout?: number } = {}) {
  const result = spawnSync(program, args, { encoding: "utf8", timeout: options.timeout ?? 30_000 });
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** A role body that allows user certificates for alice and bob with the usual extensions. */
export const USER_ROLE = {
  key_type: "ca",
  allow_user_certificates: true,
  allowed_users: "alice,bob",
  default_user: "alice",
  allowed_extensions: "permit-pty,permit-port-forwarding,permit-agent-forwarding",
  default_extensions: { "permit-pty": "" },
  allowed_critical_options: "force-command,source-address",
  ttl: "1h",
  max_ttl: "24h",
} as const;

/** A role body that allows host certificates for names under example.com. */
export const HOST_ROLE = {
  key_type: "ca",
  allow_host_certificates: true,
  allowed_domains: "example.com",
  allow_subdomains: true,
  ttl: "24h",
  max_ttl: "72h",
} as const;

/** Converts a role body in Vault's snake_case to the service's camelCase `RoleWrite`. */
export function roleWrite(body: Record<string, unknown>): RoleWrite {
  return Object.fromEntries(
    Object.entries(body).map(([name, value]) => [
      name.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()),
      value,
    ]),
  ) as RoleWrite;
}

/** A DSA public key made with `ssh-keygen -t dsa` (OpenSSH 9.2), for the legacy inventory. */
export const DSA_PUBLIC_KEY =
  "ssh-dss AAAAB3NzaC1kc3MAAACBAJsQ5hD0bRfO9DEyr6/cL6ZQoAl/DfI2RIC4ERchAgSqFbyEkuc6uPxtfz2rRNTnOKcpW7fcO/SBNXg7sSeOHZAXCcm2G/S27HW9HNePnNroEwU9uoYuv7OzbV9t7gZTWav+3odEJGDfcLnyq1L8FWoV+RyVI6xt1/s/RbBfsZN9AAAAFQDOlmp+cGYVPrg6CPX7IInZjcjLmQAAAIEAlBVhN/RPXHXGCWbg+S0/QYruiDWzG00GZfV/1LVi3MnsUAFF25ikDKhR1I64vmVpjYBjmBFBDCC7WAXZpQ1MMwK/N0sdWv6iG8acEYPIKsx1AJJhreQTp+W0/pX3E7X0Kh/xFZAGopdZ2z7vMKeANZaXYXj+kp9qKe7FzWStuSEAAACAHZ47iUUZuW9/CpAj0r7i+spuZCJk7PxxwxWQD4scykKAIkxF8ehuDEHu6a6Rzt1VZYp4I+KNvs5jOR0ZlVF1KTozne9lRKNHfUjqHiLdnNtAzzg+PXMYhiGGYyLX5kGH05QXjm77CRMGfIHa2ha785vZsvmms7+3JEasgoBMSYc= old@legacy";

/** A KRL read back into its parts, for checks on what it revokes. */
export interface DecodedKrl {
  version: bigint;
  generatedAt: bigint;
  /** Per CA key (base64 blob, or "" for every CA): serials as hex and key IDs. */
  certificates: Map<string, { serials: string[]; keyIds: string[] }>;
  sha256Fingerprints: string[];
}

/** Decodes the KRL sections Keyward writes. */
export function decodeKrl(bytes: Uint8Array): DecodedKrl {
  const reader = new SshReader(bytes);
  assert.equal(reader.uint64(), 0x5353484b524c0a00n, "KRL magic");

  assert.equal(reader.uint32(), 1, "KRL format version");
  const version = reader.uint64();
  const generatedAt = reader.uint64();
  reader.uint64();
  reader.string();
  reader.string();

  const certificates = new Map<string, { serials: string[]; keyIds: string[] }>();
  const sha256Fingerprints: string[] = [];
  while (reader.remaining > 0) {
    const type = reader.byte();
    const section = new SshReader(reader.string());
    if (type === 1) {
      const ca = section.string().toString("base64");
      section.string();
      const entry = { serials: [] as string[], keyIds: [] as string[] };
      while (section.remaining > 0) {
        const subtype = section.byte();
        const data = new SshReader(section.string());
        while (data.remaining > 0) {
          if (subtype === 0x20) entry.serials.push(data.uint64().toString(16).padStart(16, "0"));
          else if (subtype === 0x23) entry.keyIds.push(data.text());
          else throw new Error(`unexpected certificate subsection ${subtype}`);
        }
      }
      certificates.set(ca, entry);
    } else if (type === 5) {
      while (section.remaining > 0) {
        const hash = section.string();
        sha256Fingerprints.push(`SHA256:${hash.toString("base64").replace(/=+$/, "")}`);
      }
    } else {
      throw new Error(`unexpected KRL section ${type}`);
    }
  }
  return { version, generatedAt, certificates, sha256Fingerprints };
}
