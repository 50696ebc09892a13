/**
 * PKI certificate throughput beside `cfssl serve`, in one run.
 *
 * Starts a Keyward dev server (from dist/, so run `npm run build` first)
 * and mounts the PKI engine at `pki` with an ECDSA P-256 root and a role
 * for EC P-256 leaves. autocannon loads `sign/:role` with one fixed P-256
 * CSR and `issue/:role` on loopback. Beside it, `cfssl serve`
 * runs with its own P-256 root and autocannon loads its
 * `/api/v1/cfssl/sign` endpoint with the same CSR and
 * `/api/v1/cfssl/newcert` with a P-256 key request, for the same duration
 * and connection count. The table shows certificates per second and the
 * ratio Keyward / cfssl.
 *
 * Keyward runs as an operator would run it: requests carry a non-root
 * token whose policy grants only `pki/sign/bench` and `pki/issue/bench`,
 * the built-in `store` audit device records every request and response,
 * and every certificate is stored in the inventory. cfssl runs without a
 * certificate database or authentication, so it stores and audits nothing.
 *
 * Needs `openssl` and `cfssl` (Debian: `apt-get install golang-cfssl`) on
 * PATH; exits with status 1 when either is missing.
 *
 * Usage: npx tsx bench/pki.ts [--duration SECONDS] [--connections N] [--cpu-prof DIR]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  createScopedToken,
  exited,
  freePort,
  load,
  mountPkiWithRoot,
  post,
  ROOT_TOKEN,
  startDevServer,
} from "./dev-server.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "16" },
    "cpu-prof": { type: "string" },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

const COMMON_NAME = "bench.example.com";

/** Returns whether `command` runs; `args` should make it print a version and exit 0. */
function available(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Writes an ECDSA P-256 root for cfssl and a P-256 CSR for `COMMON_NAME` into `dir`. */
function makeKeys(dir: string): { caPem: string; caKeyPem: string; csrPem: string } {
  const caPem = join(dir, "ca.pem");
  const caKeyPem = join(dir, "ca-key.pem");
  const csrPem = join(dir, "csr.pem");
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      ...ecKey,
      "-subj",
      "/CN=cfssl bench root",
      "-days",
      "30",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      caKeyPem,
      "-out",
      caPem,
    ],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      ...ecKey,
      "-subj",
      `/CN=${COMMON_NAME}`,
      "-keyout",
      join(dir, "csr-key.pem"),
      "-out",
      csrPem,
    ],
    { stdio: "ignore" },
  );
  return { caPem, caKeyPem, csrPem: readFileSync(csrPem, "utf8") };
}

/** Starts `cfssl serve` on `port` and resolves once its info endpoint responds. */
async function startCfssl(port: number, caPem: string, caKeyPem: string) {
  const child = spawn(
    "cfssl",
    [
      "serve",
      "-address",
      "127.0.0.1",
      "-port",
      String(port),
      "-ca",
      caPem,
      "-ca-key",
      caKeyPem,
      // Warnings only: cfssl logs every request at the info level.
      "-loglevel",
      "2",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const url = `http://127.0.0.1:${port}/api/v1/cfssl`;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`cfssl serve exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/info`, { method: "POST", body: "{}" });
      if (response.ok) return { child, url };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGTERM");
  throw new Error(`cfssl serve did not respond on ${url} within 10 s; run it by hand to see why`);
}

async function main(): Promise<void> {
  for (const [command, args] of [
    ["openssl", ["version"]],
    ["cfssl", ["version"]],
  ] as const) {
    if (!available(command, [...args])) {
      console.error(
        `${command} is not on PATH; install it (Debian: apt-get install ${command === "cfssl" ? "golang-cfssl" : "openssl"}) and run again`,
      );
      process.exit(1);
    }
  }

  const dir = mkdtempSync(join(tmpdir(), "keyward-bench-pki-"));
  const keys = makeKeys(dir);
  const server = await startDevServer(values["cpu-prof"]);
  const cfssl = await startCfssl(await freePort(), keys.caPem, keys.caKeyPem);
  try {
    const pki = await mountPkiWithRoot(server);
    await post(
      `${pki}/roles/bench`,
      {
        allowed_domains: ["example.com"],
        allow_subdomains: true,
        key_type: "ec",
        key_bits: 256,
        ttl: "168h",
      },
      ROOT_TOKEN,
    );
    const token = await createScopedToken(server.url, "bench-pki", [
      "pki/sign/bench",
      "pki/issue/bench",
    ]);

    const cases = [
      {
        name: "sign CSR",
        keyward: ["sign/bench", { csr: keys.csrPem, common_name: COMMON_NAME }],
        cfssl: ["sign", { certificate_request: keys.csrPem, hosts: [COMMON_NAME] }],
      },
      {
        name: "issue (new P-256 key)",
        keyward: ["issue/bench", { common_name: COMMON_NAME }],
        cfssl: [
          "newcert",
          {
            request: {
              CN: COMMON_NAME,
              hosts: [COMMON_NAME],
              key: { algo: "ecdsa", size: 256 },
            },
          },
        ],
      },
    ] as const;

    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    );
    console.log(
      `load: autocannon, ${connections} connections, ${duration} s per case; CA and leaf keys ECDSA P-256\n`,
    );
    console.log(
      "| operation | Keyward certs/s | cfssl certs/s | ratio | Keyward p99 ms | cfssl p99 ms | errors (Keyward / cfssl) |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const testCase of cases) {
      const ours = await load(`${pki}/${testCase.keyward[0]}`, testCase.keyward[1], {
        duration,
        connections,
        token,
      });
      const theirs = await load(`${cfssl.url}/${testCase.cfssl[0]}`, testCase.cfssl[1], {
        duration,
        connections,
      });
      console.log(
        `| ${testCase.name} | ${ours.rps.toFixed(0)} | ${theirs.rps.toFixed(0)} | ${(ours.rps / theirs.rps).toFixed(2)} | ${ours.p99} | ${theirs.p99} | ${ours.errors} / ${theirs.errors} |`,
      );
    }
  } finally {
    cfssl.child.kill("SIGTERM");
    await exited(cfssl.child);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
