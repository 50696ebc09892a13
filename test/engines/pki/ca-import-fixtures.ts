import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok, run, tempFiles } from "./fixtures.ts";

type Files = ReturnType<typeof tempFiles>;

/** A certificate and its private key as PEM, with the paths openssl reads them from. */
export interface KeyedCertificate {
  certificatePem: string;
  keyPem: string;
  certificatePath: string;
  keyPath: string;
}

/** Runs openssl and fails the test with its output when it exits non-zero. */
export function openssl(args: string[]): void {
  const result = run("openssl", args);
  assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.output}`);
}

/** Reads a file written by openssl. */
export function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * Creates a self-signed certificate with a new P-256 key. `ca` false
 * writes basicConstraints CA:FALSE, so the certificate is not a CA.
 */
export function selfSigned(
  files: Files,
  name: string,
  options: { ca?: boolean; keyArgs?: string[] } = {},
): KeyedCertificate {
  const keyPath = join(files.dir, `${name}.key`);
  const certificatePath = join(files.dir, `${name}.pem`);
  const constraints = options.ca === false ? "critical,CA:FALSE" : "critical,CA:TRUE";
  openssl([
    "req",
    "-x509",
    ...(options.keyArgs ?? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certificatePath,
    "-subj",
    `/CN=${name}`,
    "-days",
    "30",
    "-addext",
    `basicConstraints=${constraints}`,
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return {
    certificatePem: readText(certificatePath),
    keyPem: readText(keyPath),
    certificatePath,
    keyPath,
  };
}

/**
 * Signs a CSR (PEM) with `parent` and returns the certificate PEM. With `ca`
 * false the certificate is a leaf. `extraArgs` go to `openssl x509 -req`.
 */
export function signCsr(
  files: Files,
  name: string,
  csrPem: string,
  parent: KeyedCertificate,
  options: { ca?: boolean; serial?: number; extraArgs?: string[] } = {},
): string {
  const csrPath = files.write(`${name}.csr`, csrPem);
  const extensionsPath = files.write(
    `${name}.ext`,
    options.ca === false
      ? "basicConstraints=critical,CA:FALSE\n"
      : "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  const certificatePath = join(files.dir, `${name}.pem`);
  openssl([
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    parent.certificatePath,
    "-CAkey",
    parent.keyPath,
    ...(options.serial === undefined ? [] : ["-set_serial", String(options.serial)]),
    ...(options.extraArgs ?? []),
    "-days",
    "30",
    "-extfile",
    extensionsPath,
    "-out",
    certificatePath,
  ]);
  return readText(certificatePath);
}

/** Mounts a PKI engine at `mount` with a max TTL that allows ten-year CAs. */
export async function mountPki(t: TestApp, mount: string): Promise<void> {
  const response = await t.request({
    method: "POST",
    url: `/v1/sys/mounts/${mount}`,
    payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
  });
  assert.equal(response.statusCode, 204, response.body);
}

/** Returns the issuer ids of a mount, or an empty list when it has none. */
export async function issuerIds(t: TestApp, mount: string): Promise<string[]> {
  const response = await t.request({ method: "GET", url: `/v1/${mount}/issuers?list=true` });
  if (response.statusCode === 404) return [];
  assert.equal(response.statusCode, 200, response.body);
  return response.json().data.keys;
}

/** Runs `intermediate/generate/internal` with an EC key and returns the CSR PEM. */
export async function pendingIntermediate(t: TestApp, mount: string): Promise<string> {
  const data = await ok(t, "POST", `/v1/${mount}/intermediate/generate/internal`, {
    common_name: `Intermediate of ${mount}`,
    key_type: "ec",
  });
  return data.csr;
}

/**
 * Runs `intermediate/generate/internal` on `mount`, signs the CSR with
 * `parent` through openssl and returns the intermediate certificate PEM,
 * which is not yet imported.
 */
export async function signedIntermediate(
  t: TestApp,
  files: Files,
  mount: string,
  parent: KeyedCertificate,
): Promise<string> {
  const csr = await pendingIntermediate(t, mount);
  return signCsr(files, `${mount}-intermediate`, csr, parent);
}

/** Test app, temporary files and fresh PKI mounts shared by the tests of one describe block. */
export interface CaImportApp {
  /** The app, available once the `before` hook has run. */
  readonly t: TestApp;
  readonly files: Files;
  /** Mounts a PKI engine at the next `<prefix>-<n>` path and returns that path. */
  newMount(): Promise<string>;
  /** Returns the self-signed certificate `name`, created with `options` on the first call. */
  certificate(name: string, options?: { ca?: boolean; keyArgs?: string[] }): KeyedCertificate;
  /** Posts `pemBundle` to `path` of `mount` (`issuers/import/bundle` unless given). */
  importBundle(mount: string, pemBundle: string, path?: string): ReturnType<TestApp["request"]>;
  /** Posts `certificate` to `intermediate/set-signed` of `mount`. */
  setSigned(mount: string, certificate: string): ReturnType<TestApp["request"]>;
}

/**
 * Registers `before` and `after` hooks in the calling describe block that
 * start a PKI test app and then close it and remove its temporary files.
 * `certificate` runs openssl on its first call for a name, so tests call it
 * after `requirePeer`.
 */
export function caImportApp(mountPrefix: string): CaImportApp {
  const files = tempFiles();
  const certificates = new Map<string, KeyedCertificate>();
  let app: TestApp | undefined;
  let mounts = 0;

  before(async () => {
    app = await createPkiApp();
  });
  after(async () => {
    await app?.close();
    files.cleanup();
  });

  const suite: CaImportApp = {
    get t(): TestApp {
      assert.ok(app, "the test app is created in the before hook");
      return app;
    },
    files,
    async newMount() {
      const mount = `${mountPrefix}-${mounts++}`;
      await mountPki(suite.t, mount);
      return mount;
    },
    certificate(name, options = {}) {
      let certificate = certificates.get(name);
      if (!certificate) {
        certificate = selfSigned(files, name, options);
        certificates.set(name, certificate);
      }
      return certificate;
    },
    importBundle(mount, pemBundle, path = "issuers/import/bundle") {
      return suite.t.request({
        method: "POST",
        url: `/v1/${mount}/${path}`,
        payload: { pem_bundle: pemBundle },
      });
    },
    setSigned(mount, certificate) {
      return suite.t.request({
        method: "POST",
        url: `/v1/${mount}/intermediate/set-signed`,
        payload: { certificate },
      });
    },
  };
  return suite;
}

/** Returns the DER bytes of the first PEM block in `pem`. */
export function pemBody(pem: string): Buffer {
  const match = /-----BEGIN [A-Z ]+-----([\s\S]*?)-----END/.exec(pem);
  assert.ok(match, "no PEM block");
  return Buffer.from((match[1] ?? "").replace(/\s+/g, ""), "base64");
}

/** Encodes DER as PEM with `label`. */
export function derToPem(der: Buffer, label: string): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
