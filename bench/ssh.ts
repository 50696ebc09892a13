/**
 * SSH certificate signing throughput beside Node's bare signing rate, in one run.
 *
 * Starts a Keyward dev server (from dist/, so run `npm run build` first)
 * and mounts the SSH engine twice: at `ssh` with an Ed25519 CA and at
 * `ssh-p256` with an ECDSA P-256 CA. autocannon loads `sign/:role` with an
 * Ed25519 user key on loopback. It then measures how many
 * signatures per second Node's crypto makes on this thread over a
 * certificate-sized input with the same key type, and prints both rates and
 * their ratio.
 *
 * Keyward runs as an operator would run it: requests carry a non-root
 * token whose policy grants only `<mount>/sign/<role>`, and the built-in
 * `store` audit device records every request and response. Every signed
 * certificate is stored in the inventory, as a role without `no_store`
 * does, except in the last case, which shows what storing costs.
 *
 * Usage: npx tsx bench/ssh.ts [--duration SECONDS] [--connections N] [--cpu-prof DIR]
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { createScopedToken, load, post, ROOT_TOKEN, startDevServer } from "./dev-server.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    "cpu-prof": { type: "string" },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

/** Bytes a CA signs for an Ed25519 user key with two principals, one extension and the default key ID: about 330. */
const TO_BE_SIGNED_BYTES = 330;

const ed25519 = () => generateKeyPairSync("ed25519");
const p256 = () => generateKeyPairSync("ec", { namedCurve: "P-256" });

/** One role per case. The last case skips the inventory write, to show what storing costs. */
const CASES = [
  {
    name: "Ed25519 CA",
    mount: "ssh",
    role: "bench",
    keyType: "ssh-ed25519",
    node: ed25519,
    hash: null,
    noStore: false,
  },
  {
    name: "ECDSA P-256 CA",
    mount: "ssh-p256",
    role: "bench",
    keyType: "ecdsa-sha2-nistp256",
    node: p256,
    hash: "sha256",
    noStore: false,
  },
  {
    name: "Ed25519 CA, no_store",
    mount: "ssh",
    role: "bench-nostore",
    keyType: "ssh-ed25519",
    node: ed25519,
    hash: null,
    noStore: true,
  },
] as const;

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

/** Returns an OpenSSH public key line for a new Ed25519 key. */
function ed25519PublicKeyLine(): string {
  const raw = Buffer.from(ed25519().publicKey.export({ format: "jwk" }).x as string, "base64url");
  const type = Buffer.from("ssh-ed25519");
  const blob = Buffer.concat([
    Buffer.from([0, 0, 0, type.length]),
    type,
    Buffer.from([0, 0, 0, raw.length]),
    raw,
  ]);
  return `ssh-ed25519 ${blob.toString("base64")}`;
}

async function main(): Promise<void> {
  const server = await startDevServer(values["cpu-prof"]);
  const line = ed25519PublicKeyLine();
  try {
    const configured = new Set<string>();
    for (const testCase of CASES) {
      const base = `${server.url}/v1/${testCase.mount}`;
      if (!configured.has(testCase.mount)) {
        await post(`${server.url}/v1/sys/mounts/${testCase.mount}`, { type: "ssh" }, ROOT_TOKEN);
        await post(`${base}/config/ca`, { key_type: testCase.keyType }, ROOT_TOKEN);
        configured.add(testCase.mount);
      }
      await post(
        `${base}/roles/${testCase.role}`,
        {
          key_type: "ca",
          allow_user_certificates: true,
          allowed_users: "alice,bob",
          default_extensions: { "permit-pty": "" },
          no_store: testCase.noStore,
        },
        ROOT_TOKEN,
      );
    }
    const token = await createScopedToken(
      server.url,
      "bench-ssh",
      CASES.map((testCase) => `${testCase.mount}/sign/${testCase.role}`),
    );

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
      const result = await load(
        `${server.url}/v1/${testCase.mount}/sign/${testCase.role}`,
        { public_key: line, valid_principals: "alice,bob" },
        { duration, connections, token },
      );
      const bare = bareSignRate(testCase, duration);
      console.log(
        `| ${testCase.name} | ${result.rps.toFixed(0)} | ${bare.toFixed(0)} | ${(result.rps / bare).toFixed(3)} | ${result.p99} | ${result.errors} |`,
      );
    }
  } finally {
    await server.stop();
  }
}

await main();
