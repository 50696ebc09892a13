/**
 * Transit throughput beside a bare baseline, in one run.
 *
 * Starts a Keyward dev server (from dist/, so run `npm run build` first) and
 * bench/baseline-server.mjs, loads each with autocannon on loopback for the
 * same duration and connection count, and prints requests per second and
 * the ratio Keyward / baseline for encrypt, decrypt and sign.
 *
 * Usage: npx tsx bench/transit.ts [--duration SECONDS] [--connections N]
 *   [--cpu-prof DIR]
 *
 * With --cpu-prof, Keyward runs under `node --cpu-prof` and writes its CPU
 * profile to DIR when it stops.
 *
 * Keyward runs as an operator would run it: requests carry a non-root
 * token whose policy grants only the benchmarked paths, so every request
 * goes through the policy check, and the built-in audit device records
 * every request and response.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const ROOT = new URL("../", import.meta.url).pathname;
const TOKEN = "bench-root-token";
const PLAINTEXT = Buffer.alloc(64, 7).toString("base64");
const BENCH_POLICY = `
path "transit/encrypt/bench-aes" { capabilities = ["update"] }
path "transit/decrypt/bench-aes" { capabilities = ["update"] }
path "transit/sign/bench-ed25519" { capabilities = ["update"] }
`;

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    "cpu-prof": { type: "string" },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

/** Starts a child process and resolves with the first stdout text that matches `pattern`. */
function startProcess(
  command: string,
  args: string[],
  pattern: RegExp,
): Promise<{ child: ChildProcess; match: string }> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
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

async function post(url: string, body: unknown, token?: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { "x-vault-token": token } : {}) },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return response.status === 204
    ? undefined
    : ((await response.json()) as { data: Record<string, string> });
}

async function load(
  url: string,
  body: unknown,
  token?: string,
): Promise<{ rps: number; p99: number; errors: number }> {
  const result = await autocannon({
    url,
    method: "POST",
    connections,
    duration,
    headers: { "content-type": "application/json", ...(token ? { "x-vault-token": token } : {}) },
    body: JSON.stringify(body),
  });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-bench-"));
  const keyward = await startProcess(
    process.execPath,
    [
      ...(values["cpu-prof"] === undefined
        ? []
        : ["--cpu-prof", "--cpu-prof-dir", values["cpu-prof"]]),
      "bin/keyward.js",
      "server",
      "--dev",
      "--dev-root-token",
      TOKEN,
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
    ],
    /Address:\s+(\S+)/,
  );
  const baseline = await startProcess(process.execPath, ["bench/baseline-server.mjs"], /^(\d+)\n/);
  const keywardUrl = `${keyward.match}/v1/transit`;
  const baselineUrl = `http://127.0.0.1:${baseline.match}`;

  try {
    await post(`${keywardUrl}/keys/bench-aes`, { type: "aes256-gcm96" }, TOKEN);
    await post(`${keywardUrl}/keys/bench-ed25519`, { type: "ed25519" }, TOKEN);
    await post(`${keyward.match}/v1/sys/policies/acl/bench`, { policy: BENCH_POLICY }, TOKEN);
    const created = (await post(
      `${keyward.match}/v1/auth/token/create`,
      { policies: ["bench"], ttl: "1h" },
      TOKEN,
    )) as unknown as { auth: { client_token: string } };
    const token = created.auth.client_token;
    const keywardCiphertext = (
      await post(`${keywardUrl}/encrypt/bench-aes`, { plaintext: PLAINTEXT }, token)
    )?.data.ciphertext;
    const baselineCiphertext = (await post(`${baselineUrl}/encrypt`, { plaintext: PLAINTEXT }))
      ?.data.ciphertext;

    const cases = [
      {
        name: "encrypt",
        keyward: ["encrypt/bench-aes", { plaintext: PLAINTEXT }],
        baseline: ["encrypt", { plaintext: PLAINTEXT }],
      },
      {
        name: "decrypt",
        keyward: ["decrypt/bench-aes", { ciphertext: keywardCiphertext }],
        baseline: ["decrypt", { ciphertext: baselineCiphertext }],
      },
      {
        name: "sign",
        keyward: ["sign/bench-ed25519", { input: PLAINTEXT }],
        baseline: ["sign", { input: PLAINTEXT }],
      },
    ] as const;

    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    );
    console.log(
      `load: autocannon, ${connections} connections, ${duration} s per case, 64-byte plaintext\n`,
    );
    console.log(
      "| operation | Keyward req/s | baseline req/s | ratio | Keyward p99 ms | baseline p99 ms |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const testCase of cases) {
      const ours = await load(`${keywardUrl}/${testCase.keyward[0]}`, testCase.keyward[1], token);
      const theirs = await load(`${baselineUrl}/${testCase.baseline[0]}`, testCase.baseline[1]);
      if (ours.errors > 0 || theirs.errors > 0) {
        console.log(
          `(${testCase.name}: ${ours.errors} Keyward errors, ${theirs.errors} baseline errors)`,
        );
      }
      console.log(
        `| ${testCase.name} | ${ours.rps.toFixed(0)} | ${theirs.rps.toFixed(0)} | ${(ours.rps / theirs.rps).toFixed(2)} | ${ours.p99} | ${theirs.p99} |`,
      );
    }
  } finally {
    keyward.child.kill("SIGTERM");
    baseline.child.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
