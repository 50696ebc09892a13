/**
 * CPU cost of the PKI engine's `sign` alone, in process: no HTTP, no
 * policy check and no audit record.
 *
 * Opens a SQLite storage file in a temporary folder (the dev server's
 * backend, `synchronous=FULL`), initialises and unseals the barrier, and
 * creates a `PkiService` with an ECDSA P-256 root and a role for P-256
 * leaves. It then calls `PkiService.sign` with one fixed P-256 CSR, first
 * one request at a time and then with `--concurrency` requests in flight,
 * and prints signs per second and the process CPU time per certificate
 * (user + system, from `process.cpuUsage`). Every certificate is stored.
 *
 * Usage: npx tsx bench/pki-engine.ts [--count N] [--concurrency N]
 * Profile: node --cpu-prof --cpu-prof-dir DIR --import tsx bench/pki-engine.ts
 */
import { generateKeyPairSync, webcrypto } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PkiService } from "../src/engines/pki/service.ts";
import * as x509 from "../src/engines/pki/x509.ts";
import { createSealManager } from "../src/seal/seal-manager.ts";
import { openSqliteStorage } from "../src/storage/sqlite/index.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);

const COMMON_NAME = "bench.example.com";
const TEN_YEARS_SECONDS = 87_600 * 3600;

/** Returns a PEM CSR for `COMMON_NAME` with a new P-256 key. */
async function makeCsr(): Promise<string> {
  const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = {
    privateKey: await webcrypto.subtle.importKey(
      "pkcs8",
      pair.privateKey.export({ format: "der", type: "pkcs8" }),
      algorithm,
      false,
      ["sign"],
    ),
    publicKey: await webcrypto.subtle.importKey(
      "spki",
      pair.publicKey.export({ format: "der", type: "spki" }),
      algorithm,
      true,
      ["verify"],
    ),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${COMMON_NAME}`,
    keys,
    signingAlgorithm: algorithm,
  });
  return csr.toString("pem");
}

/** Runs `total` calls of `work`, `parallel` at a time, and returns requests per second and CPU ms per request. */
async function measure(total: number, parallel: number, work: () => Promise<unknown>) {
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next += 1;
      await work();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  return { perSecond: total / seconds, cpuMs: (cpu.user + cpu.system) / 1000 / total };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "keyward-bench-pki-engine-"));
  const storage = await openSqliteStorage({ path: join(dir, "keyward.db") });
  try {
    const seal = createSealManager(storage);
    const shares = await seal.init({ shares: 1, threshold: 1 });
    await seal.submitUnsealShare(shares.keysHex[0]!);
    const service = new PkiService({
      barrier: seal.barrier,
      mount: "pki",
      mountTtls: () => ({ defaultSeconds: 3600, maxSeconds: TEN_YEARS_SECONDS }),
    });
    await service.generateRoot("internal", {
      common_name: "Keyward bench root",
      key_type: "ec",
      key_bits: 256,
      ttl: "720h",
    });
    await service.writeRole("bench", {
      allowed_domains: ["example.com"],
      allow_subdomains: true,
      key_type: "ec",
      key_bits: 256,
      ttl: "168h",
    });
    const csr = await makeCsr();
    const sign = () => service.sign("bench", { csr, common_name: COMMON_NAME });

    // Warm-up: JIT, caches and SQLite statements.
    await measure(Math.min(200, count), 1, sign);

    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    );
    console.log(`PkiService.sign, ${count} stored P-256 certificates per row\n`);
    console.log("| in flight | signs/s | CPU ms per certificate |");
    console.log("| ---: | ---: | ---: |");
    for (const parallel of [1, concurrency]) {
      const result = await measure(count, parallel, sign);
      console.log(`| ${parallel} | ${result.perSecond.toFixed(0)} | ${result.cpuMs.toFixed(3)} |`);
    }
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
