/**
 * SSH certificate signing throughput beside Node's bare signing rate, in one run.
 *
 * A child process serves the SSH engine's routes over HTTP on loopback: a
 * bare Fastify app from createFastify() with the routes under one mount
 * per case, on a SQLite barrier with `synchronous=FULL`. This process loads
 * `sign/:role` with autocannon for each CA key type. It then measures how
 * many signatures per second Node's crypto makes on this thread over a
 * certificate-sized input with the same key type, and prints both rates and
 * their ratio.
 *
 * Every signed certificate is stored in the inventory, as a role without
 * `no_store` does, except in the last case, which shows what storing costs.
 * NOTE: the app has no token check, policy check or audit device, because
 * the engine is not mounted in the server yet; those add cost per request
 * (bench/transit.ts measures them for transit).
 *
 * Usage: npx tsx bench/ssh.ts [--duration SECONDS] [--connections N]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    serve: { type: "boolean", default: false },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

/** Bytes a CA signs for an Ed25519 user key with two principals, one extension and the default key ID: about 330. */
const TO_BE_SIGNED_BYTES = 330;

const ed25519 = () => generateKeyPairSync("ed25519");
const p256 = () => generateKeyPairSync("ec", { namedCurve: "P-256" });

/** One mount per case; the last case skips the inventory write, to show what storing costs. */
const CASES = [
  {
    name: "Ed25519 CA",
    mount: "ssh-ed25519",
    keyType: "ssh-ed25519",
    node: ed25519,
    hash: null,
    noStore: false,
  },
  {
    name: "ECDSA P-256 CA",
    mount: "ssh-p256",
    keyType: "ecdsa-sha2-nistp256",
    node: p256,
    hash: "sha256",
    noStore: false,
  },
  {
    name: "Ed25519 CA, no_store",
    mount: "ssh-nostore",
    keyType: "ssh-ed25519",
    node: ed25519,
    hash: null,
    noStore: true,
  },
] as const;

/** Runs in the child: serves the SSH routes and prints the address on stdout. */
async function serve(): Promise<void> {
  const { createFastify } = await import("../src/api/app.ts");
  const { registerSshRoutes, SshService } = await import("../src/engines/ssh/index.ts");
  const { createSealManager } = await import("../src/seal/seal-manager.ts");
  const { openSqliteStorage } = await import("../src/storage/index.ts");

  const dir = mkdtempSync(join(tmpdir(), "keyward-bench-ssh-"));
  const storage = await openSqliteStorage({ path: join(dir, "keyward.db") });
  const seal = createSealManager(storage);
  const init = await seal.init({ shares: 1, threshold: 1 });
  await seal.submitUnsealShare(init.keysHex[0] as string);
  const services = new Map<string, InstanceType<typeof SshService>>();
  const logger = { info() {}, warn() {}, error() {} };
  for (const { mount } of CASES) {
    services.set(
      mount,
      new SshService({ barrier: seal.barrier, mount, clock: () => new Date(), logger }),
    );
  }
  const app = createFastify();
  for (const [mount, service] of services) {
    await app.register(async (scope) => registerSshRoutes(scope, () => service), {
      prefix: `/v1/${mount}`,
    });
  }
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  process.on("SIGTERM", async () => {
    await app.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  console.log(`listening ${address}`);
}

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", new URL(import.meta.url).pathname, "--serve"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (\S+)/.exec(output);
      if (match) resolve({ child, url: match[1] as string });
    });
    child.on("exit", (code) => reject(new Error(`bench server exited with ${code}: ${output}`)));
  });
}

async function post(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
}

/** Signs for `seconds` in a loop on this thread and returns signatures per second. */
function bareSignRate(testCase: (typeof CASES)[number], seconds: number): number {
  const { privateKey } = testCase.node();
  const data = randomBytes(TO_BE_SIGNED_BYTES);
  const end = performance.now() + seconds * 1000;
  let count = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i += 1) sign(testCase.hash, data, privateKey);
    count += 100;
  }
  return count / seconds;
}

async function main(): Promise<void> {
  const server = await startServer();
  const userKey = generateKeyPairSync("ed25519").publicKey;
  const blob = userKey.export({ format: "jwk" }).x as string;
  const raw = Buffer.from(blob, "base64url");
  const line = `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), raw]).toString("base64")}`;
  try {
    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    );
    console.log(
      `load: autocannon, ${connections} connections, ${duration} s per case; user key Ed25519\n`,
    );
    console.log(
      "| CA key | Keyward signs/s | bare Node signs/s | ratio | Keyward p99 ms | errors |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const testCase of CASES) {
      const base = `${server.url}/v1/${testCase.mount}`;
      await post(`${base}/config/ca`, { key_type: testCase.keyType });
      await post(`${base}/roles/bench`, {
        key_type: "ca",
        allow_user_certificates: true,
        allowed_users: "alice,bob",
        default_extensions: { "permit-pty": "" },
        no_store: testCase.noStore,
      });
      const result = await autocannon({
        url: `${base}/sign/bench`,
        method: "POST",
        connections,
        duration,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ public_key: line, valid_principals: "alice,bob" }),
      });
      const bare = bareSignRate(testCase, duration);
      const rate = result.requests.average;
      console.log(
        `| ${testCase.name} | ${rate.toFixed(0)} | ${bare.toFixed(0)} | ${(rate / bare).toFixed(3)} | ${result.latency.p99} | ${result.errors + result.non2xx} |`,
      );
    }
  } finally {
    server.child.kill("SIGTERM");
  }
}

if (values.serve) await serve();
else await main();
