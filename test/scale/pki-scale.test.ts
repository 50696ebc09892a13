import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../src/engines/pki/x509.ts";
import type { AesGcmBarrier } from "../../src/seal/barrier.ts";
import { ms, openPkiScaleApp, type PkiScaleApp } from "./pki-scale-app.ts";
import { copyBarrierKey, seedCertificates, seededName, seededSerial } from "./pki-seed.ts";

/**
 * Paging, searching, reading and signing in a PKI mount of many
 * certificates (1,000,000 unless KEYWARD_SCALE_CERTIFICATES sets another count)
 * must read a number of storage rows bounded by the page, not by the
 * mount. The certificates are seeded straight into the SQLite file, with
 * the index entries the engine writes, and then used through the HTTP API.
 */
const COUNT = certificateCount(1_000_000);

/** Seeded certificates that have expired when the test starts: one in 25. */
const EXPIRED = Math.floor(COUNT / 25);
const MINUTE_MS = 60 * 1000;
/** Rows a request may read under the mount beyond what its page needs: issuer, key, role and settings records. */
const OVERHEAD_ROWS = 8;
/** The largest storage query of an index walk (`WALK_PAGE_SIZE`), which a count or sweep may read past its range. */
const WALK_PAGE_ROWS = 2_000;

/**
 * The maximum number of index keys a search reads to use `used` of them:
 * its storage queries start at 16 keys and double, so it reads at most
 * twice what it uses, plus the first query.
 */
function searchKeys(used: number): number {
  return 2 * used + 16;
}

function certificateCount(fallback: number): number {
  const configured = Number(process.env.KEYWARD_SCALE_CERTIFICATES);
  return Number.isSafeInteger(configured) && configured >= 1_000 ? configured : fallback;
}

function colon(serialHex: string): string {
  return (serialHex.match(/../g) ?? []).join(":");
}

describe(`PKI with ${COUNT} certificates on SQLite`, () => {
  let scale: PkiScaleApp;
  let dataDir = "";
  /** The notAfter of seeded certificate 0; certificate i expires `i` minutes later. */
  let base = 0;

  /** Returns how many seeded certificates expire before `time`. */
  const seededBefore = (time: number) =>
    Math.min(COUNT, Math.max(0, Math.ceil((time - base) / MINUTE_MS)));

  /** Sends a request and returns the response data with the rows read and written under pki/, printing them. */
  async function measured(method: "GET" | "POST", url: string, payload?: object) {
    scale.storage.reset();
    const started = performance.now();
    const response = await scale.request({ method, url, ...(payload ? { payload } : {}) });
    const elapsed = performance.now() - started;
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
    const rows = scale.storage.counts("pki");
    console.log(
      `# ${method} ${url}: ${ms(elapsed)}, ${rows.read} rows read and ${rows.written} written under pki/`,
    );
    return { data: JSON.parse(response.body).data, rows };
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "keyward-pki-scale-"));
    const path = join(dataDir, "keyward.db");
    const setup = await openPkiScaleApp(path);
    const call = async (url: string, payload: object) => {
      const response = await setup.request({ method: "POST", url, payload });
      assert.ok(response.statusCode < 300, `${url}: ${response.body}`);
      return response.body === "" ? undefined : JSON.parse(response.body).data;
    };
    await call("/v1/sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "876000h" } });
    // Ed25519 keeps each record under the size that SQLite stores in the row's own page,
    // about 1,000 bytes with 4 KiB pages. A larger record also takes an overflow page, and
    // that triples the file and the seeding time.
    await call("/v1/pki/root/generate/internal", {
      common_name: "Scale Root",
      key_type: "ed25519",
      ttl: "87600h",
    });
    for (const [role, keyType] of [
      ["template", "ed25519"],
      ["web", "any"],
    ]) {
      await call(`/v1/pki/roles/${role}`, {
        allowed_domains: "scale.example",
        allow_subdomains: true,
        key_type: keyType,
        max_ttl: "87600h",
      });
    }
    const issued = await call("/v1/pki/issue/template", {
      common_name: "template.scale.example",
      ttl: "87000h",
    });
    const pki = setup.keyward.pki("pki")!;
    const template = await pki.inventory.get(issued.serial_number.replaceAll(":", ""));
    // The mount's index is complete before seeding, so the seeded entries need no rebuild.
    await pki.inventory.index.ready();
    const key = copyBarrierKey(setup.keyward.seal.barrier as AesGcmBarrier);
    const unseal = { share: setup.share, rootToken: setup.rootToken };
    await setup.close();

    base = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - EXPIRED * MINUTE_MS;
    const plan = { mount: "pki", template, base };
    const cpuBefore = process.cpuUsage();
    const seeding = await seedCertificates({ path, plan, key, count: COUNT });
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const size = statSync(path).size;
    // The CPU time covers every thread of the process, the workers' included.
    console.log(
      `# seeded ${COUNT} certificates with their index entries in ${ms(seeding)} (${ms(cpuMs)} of CPU time); the database is ${Math.round(size / 1024 / 1024)} MiB`,
    );

    scale = await openPkiScaleApp(path, unseal);
    // Let the jobs that run at unseal finish before rows are counted.
    await scale.keyward.pki("pki")!.inventory.index.ready();
    await new Promise((resolve) => setTimeout(resolve, 200));
  });

  after(async () => {
    await scale?.close();
    if (dataDir !== "") rmSync(dataDir, { recursive: true, force: true });
  });

  it("pages through serials", async () => {
    const first = await measured("GET", "/v1/pki/certs?list=true&limit=1000");
    assert.equal(first.data.keys.length, 1000);
    assert.equal(first.data.next_after, first.data.keys[999]);
    assert.ok(first.rows.read <= 1000 + OVERHEAD_ROWS, `read ${first.rows.read} rows`);

    let cursor = first.data.next_after as string;
    const started = performance.now();
    const pages = Math.min(20, Math.floor(COUNT / 1000) - 1);
    for (let page = 0; page < pages; page += 1) {
      scale.storage.reset();
      const response = await scale.request({
        method: "GET",
        url: `/v1/pki/certs?list=true&limit=1000&after=${cursor}`,
      });
      const keys = JSON.parse(response.body).data.keys as string[];
      assert.equal(keys.length, 1000);
      assert.ok(keys[0]!.replaceAll(":", "") > cursor.replaceAll(":", ""));
      assert.ok(scale.storage.counts("pki").read <= 1000 + OVERHEAD_ROWS);
      cursor = keys[999]!;
    }
    console.log(`# ${pages} more pages of 1000 serials in ${ms(performance.now() - started)}`);
  });

  it("searches by name prefix", async () => {
    const middle = Math.floor(COUNT / 200) * 100;
    // Seven-digit numbers: the first five digits name 100 certificates.
    const prefix = `host-${String(middle).padStart(7, "0").slice(0, 5)}`;
    const found = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const after = cursor === undefined ? "" : `&after=${encodeURIComponent(cursor)}`;
      const page = await measured(
        "GET",
        `/v1/pki/certs/search?name_prefix=${prefix}&limit=30${after}`,
      );
      for (const certificate of page.data.certificates) {
        assert.ok(certificate.common_name.startsWith(prefix), certificate.common_name);
        found.add(certificate.serial_number);
      }
      assert.ok(
        page.rows.read <= searchKeys(31) + 30 + OVERHEAD_ROWS,
        `read ${page.rows.read} rows`,
      );
      cursor = page.data.next_after;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    assert.equal(found.size, 100);
    assert.ok(found.has(colon(seededSerial(middle))));

    const one = await measured("GET", `/v1/pki/certs/search?name_prefix=${seededName(middle + 7)}`);
    assert.deepEqual(
      one.data.certificates.map(
        (certificate: { serial_number: string }) => certificate.serial_number,
      ),
      [colon(seededSerial(middle + 7))],
    );
  });

  it("searches by expiry window", async () => {
    const first = Math.floor(COUNT / 2);
    const from = new Date(base + first * MINUTE_MS).toISOString();
    const to = new Date(base + (first + 10) * MINUTE_MS).toISOString();
    const found = await measured(
      "GET",
      `/v1/pki/certs/search?expires_after=${from}&expires_before=${to}`,
    );
    assert.deepEqual(
      found.data.certificates.map(
        (certificate: { serial_number: string }) => certificate.serial_number,
      ),
      Array.from({ length: 10 }, (_, offset) => colon(seededSerial(first + offset))),
    );
    assert.equal(found.data.next_after, undefined);
    assert.ok(
      found.rows.read <= searchKeys(11) + 10 + OVERHEAD_ROWS,
      `read ${found.rows.read} rows`,
    );

    const week = new Date(base + (first + 7 * 24 * 60) * MINUTE_MS).toISOString();
    const paged = await measured(
      "GET",
      `/v1/pki/certs/search?expires_after=${from}&expires_before=${week}&limit=50`,
    );
    assert.equal(paged.data.certificates.length, 50);
    assert.ok(paged.data.next_after);
    assert.ok(
      paged.rows.read <= searchKeys(51) + 50 + OVERHEAD_ROWS,
      `read ${paged.rows.read} rows`,
    );
  });

  it("reads one certificate", async () => {
    const serial = colon(seededSerial(Math.floor(COUNT / 3)));
    const read = await measured("GET", `/v1/pki/cert/${serial}`);
    assert.match(read.data.certificate, /BEGIN CERTIFICATE/);
    assert.equal(read.rows.read, 1);
    assert.equal(read.rows.written, 0);
  });

  it("signs a CSR", async () => {
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=signed.scale.example",
      keys,
      signingAlgorithm: algorithm,
    });
    for (const attempt of ["first", "second"]) {
      const signed = await measured("POST", "/v1/pki/sign/web", {
        csr: csr.toString("pem"),
        ttl: "8000h",
      });
      assert.match(signed.data.certificate, /BEGIN CERTIFICATE/, attempt);
      // The record, its expiry entry and one name entry (the CN is also the DNS SAN).
      assert.equal(signed.rows.written, 3, attempt);
      assert.ok(signed.rows.read <= OVERHEAD_ROWS, `${attempt}: read ${signed.rows.read} rows`);
    }
  });

  it("reports expiry from the index", async () => {
    const report = await measured("GET", "/v1/pki/certs/expiring?within=168h&limit=20");
    const now = Date.parse(report.data.generated_at);
    const until = Date.parse(report.data.window_end);
    assert.equal(report.data.expired_count, seededBefore(now));
    assert.equal(report.data.expiring_count, seededBefore(until) - seededBefore(now));
    assert.equal(report.data.expired.length, 20);
    assert.equal(report.data.expiring.length, 20);
    assert.ok(report.data.expiring_next_after);
    // Counting reads the index keys of the two ranges (and one query past each), and records only for the lists.
    const inRanges = report.data.expired_count + report.data.expiring_count;
    const bound = inRanges + 2 * WALK_PAGE_ROWS + 40 + OVERHEAD_ROWS;
    assert.ok(report.rows.read <= bound, `read ${report.rows.read} rows`);
  });

  it("tidies expired certificates while serving requests", async () => {
    const live = `/v1/pki/cert/${colon(seededSerial(COUNT - 1))}`;
    scale.storage.reset();
    const started = performance.now();
    let tidyDone = false;
    const tidy = scale
      .request({
        method: "POST",
        url: "/v1/pki/tidy",
        payload: { tidy_cert_store: true, safety_buffer: "0s" },
      })
      .finally(() => {
        tidyDone = true;
      });
    let servedDuringTidy = 0;
    const latencies: number[] = [];
    while (!tidyDone) {
      const requestStarted = performance.now();
      const response = await scale.request({ method: "GET", url: live });
      assert.equal(response.statusCode, 200);
      latencies.push(performance.now() - requestStarted);
      if (!tidyDone) servedDuringTidy += 1;
    }
    const result = await tidy;
    const elapsed = performance.now() - started;
    assert.equal(result.statusCode, 202, result.body);
    const data = JSON.parse(result.body).data;
    const rows = scale.storage.counts("pki");
    const slowest = Math.max(...latencies);
    console.log(
      `# tidy deleted ${data.cert_store_deleted_count} certificates in ${ms(elapsed)}, ${rows.read} rows read and ${rows.written} written under pki/; ${servedDuringTidy} reads served meanwhile, slowest ${ms(slowest)}`,
    );
    assert.equal(data.cert_store_deleted_count, seededBefore(Date.parse(data.time_started)));
    assert.ok(servedDuringTidy > 0, "no request was served while tidy ran");
    // Per deleted certificate its expiry entry and its record, one query past the range, and one row per read request.
    const bound =
      2 * data.cert_store_deleted_count + WALK_PAGE_ROWS + latencies.length + OVERHEAD_ROWS;
    assert.ok(rows.read <= bound, `read ${rows.read} rows`);

    const gone = await scale.request({
      method: "GET",
      url: `/v1/pki/cert/${colon(seededSerial(0))}`,
    });
    assert.equal(gone.statusCode, 404);
    const heap = process.memoryUsage().heapUsed;
    console.log(`# heap after the run: ${Math.round(heap / 1024 / 1024)} MiB`);
  });
});
