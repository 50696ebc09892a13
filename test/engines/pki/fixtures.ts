import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestApp, type TestApp } from "../../helpers/app.ts";

/** Creates a test app with a PKI engine mounted at `pki`, whose max TTL allows ten-year roots. */
export async function createPkiApp(options: { devMode?: boolean } = {}): Promise<TestApp> {
  const t = await createTestApp(options);
  const mounted = await t.request({
    method: "POST",
    url: "/v1/sys/mounts/pki",
    payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
  });
  assert.equal(mounted.statusCode, 204, mounted.body);
  return t;
}

/** Sends a request and returns `data` of a 200 response, failing with the body otherwise. */
export async function ok(
  t: TestApp,
  method: "GET" | "POST" | "DELETE",
  url: string,
  payload?: object,
  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
): Promise<Record<string, any>> {
  const response = await t.request({ method, url, ...(payload ? { payload } : {}) });
  assert.equal(response.statusCode, 200, `${method} ${url}: ${response.body}`);
  return response.json().data;
}

/** Creates a temporary folder for files handed to peer programs; `cleanup` removes it. */
export function tempFiles() {
  const dir = mkdtempSync(join(tmpdir(), "keyward-pki-"));
  return {
    dir,
    write(name: string, content: string | Uint8Array): string {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs a program without blocking the event loop, for programs that talk
 * to a server in this process (spawnSync would deadlock them).
 */
export function runAsync(
  program: string,
  args: string[],
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("close", (status) => resolve({ status, output }));
  });
}

/** Runs a program and returns its status and combined output. */
export function run(program: string, args: string[], input?: string) {
  const result = spawnSync(program, args, { encoding: "utf8", input });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Generates a key and CSR with openssl and returns the CSR PEM and key PEM. */
export function opensslCsr(
  files: ReturnType<typeof tempFiles>,
  name: string,
  subject: string,
  keyArgs: string[] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  extra: string[] = [],
): { csr: string; keyPath: string; csrPath: string } {
  const keyPath = join(files.dir, `${name}.key`);
  const csrPath = join(files.dir, `${name}.csr`);
  const result = run("openssl", [
    "req",
    "-new",
    ...keyArgs,
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    csrPath,
    "-subj",
    subject,
    ...extra,
  ]);
  assert.equal(result.status, 0, result.output);
  return { csr: spawnSync("cat", [csrPath], { encoding: "utf8" }).stdout, keyPath, csrPath };
}
