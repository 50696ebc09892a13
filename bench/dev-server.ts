/**
 * Shared pieces of the engine benchmarks: a Keyward dev server child
 * started from dist/ (run `npm run build` first), JSON requests against it,
 * a PKI mount with an ECDSA root, a non-root token bound to one policy, a
 * free loopback port, and an autocannon run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";

const ROOT = new URL("../", import.meta.url).pathname;

/** Root token of the dev server, used only to set up mounts, policies and the benchmark token. */
export const ROOT_TOKEN = "bench-root-token";

export interface RunningServer {
  child: ChildProcess;
  /** Base URL, such as `http://127.0.0.1:41234`. */
  url: string;
  stop: () => Promise<void>;
}

/** Starts a child process and resolves with the first stdout text that matches `pattern`. */
export function startProcess(
  command: string,
  args: string[],
  pattern: RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; match: string }> {
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  let output = "";
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output)?.[1];
      if (match) resolve({ child, match });
    });
    child.on("exit", (code) => reject(new Error(`${command} exited with ${code}: ${output}`)));
  });
}

/** Resolves when `child` has exited, or at once when it already has. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Starts `keyward server --dev` on a free loopback port with a fresh data
 * directory. With `profileDir`, the child runs under `node --cpu-prof` and
 * writes its profile there when it stops. `env` adds environment variables,
 * such as `KEYWARD_TLS_CERT_FILE` and `KEYWARD_TLS_KEY_FILE` for HTTPS.
 */
export async function startDevServer(
  profileDir?: string,
  env: NodeJS.ProcessEnv = {},
): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-bench-"));
  const nodeFlags = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
  const started = await startProcess(
    process.execPath,
    [
      ...nodeFlags,
      "bin/keyward.js",
      "server",
      "--dev",
      "--dev-root-token",
      ROOT_TOKEN,
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
    ],
    /Address:\s+(\S+)/,
    env,
  );
  return {
    child: started.child,
    url: started.match,
    stop: async () => {
      started.child.kill("SIGTERM");
      await exited(started.child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** POSTs a JSON body and returns the parsed response, or undefined for 204. Throws on any other status outside 2xx. */
export async function post(
  url: string,
  body: unknown,
  token?: string,
): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { "x-vault-token": token } : {}) },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : ((await response.json()) as Record<string, unknown>);
}

/**
 * Writes ACL policy `name` granting `update` on exactly `paths` and returns
 * a new non-root token that carries only that policy.
 */
export async function createScopedToken(
  serverUrl: string,
  name: string,
  paths: string[],
): Promise<string> {
  const policy = paths.map((path) => `path "${path}" { capabilities = ["update"] }`).join("\n");
  await post(`${serverUrl}/v1/sys/policies/acl/${name}`, { policy }, ROOT_TOKEN);
  const created = (await post(
    `${serverUrl}/v1/auth/token/create`,
    { policies: [name], ttl: "1h" },
    ROOT_TOKEN,
  )) as { auth: { client_token: string } };
  return created.auth.client_token;
}

export interface LoadResult {
  rps: number;
  p99: number;
  errors: number;
}

/** POSTs `body` to `url` with autocannon for `duration` seconds over `connections` connections. */
export async function load(
  url: string,
  body: unknown,
  options: { duration: number; connections: number; token?: string },
): Promise<LoadResult> {
  const token = options.token;
  const result = await autocannon({
    url,
    method: "POST",
    connections: options.connections,
    duration: options.duration,
    headers: { "content-type": "application/json", ...(token ? { "x-vault-token": token } : {}) },
    body: JSON.stringify(body),
  });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

/** Returns a loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
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

/** Mounts the PKI engine at `pki` with an ECDSA P-256 root and returns the mount's URL. */
export async function mountPkiWithRoot(server: RunningServer): Promise<string> {
  const pki = `${server.url}/v1/pki`;
  await post(`${server.url}/v1/sys/mounts/pki`, { type: "pki" }, ROOT_TOKEN);
  await post(
    `${pki}/root/generate/internal`,
    { common_name: "Keyward bench root", key_type: "ec", key_bits: 256, ttl: "720h" },
    ROOT_TOKEN,
  );
  return pki;
}
