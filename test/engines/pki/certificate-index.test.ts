import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  CERTIFICATE_INDEX_MARKER,
  certificateIndexPaths,
  encodeIndexName,
  indexTime,
  MAX_INDEX_NAME_LENGTH,
} from "../../../src/engines/pki/certificate-index.ts";
import { certificateWrites } from "../../../src/engines/pki/inventory.ts";
import { PkiService } from "../../../src/engines/pki/service.ts";
import type { CertificateRecord } from "../../../src/engines/pki/types.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok } from "./fixtures.ts";

const MINUTE_MS = 60 * 1000;

/** Returns the stored keys under `prefix` (relative to it), read with paged scans. */
async function storedKeys(t: TestApp, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await t.keyward.seal.barrier.scan(prefix, { after, limit: 1000 });
    keys.push(...page);
    if (page.length < 1000) return keys;
    after = page[page.length - 1];
  }
}

/** Writes records straight through the barrier, with their index entries unless `withIndex` is false. */
async function storeRecords(t: TestApp, records: CertificateRecord[], withIndex = true) {
  for (let first = 0; first < records.length; first += 500) {
    await t.keyward.seal.barrier.transaction(async (tx) => {
      for (const record of records.slice(first, first + 500)) {
        const writes = withIndex
          ? certificateWrites(record)
          : [{ path: `certs/${record.serialHex}`, value: record }];
        for (const write of writes) {
          await tx.put(`pki/${write.path}`, Buffer.from(JSON.stringify(write.value), "utf8"));
        }
      }
    });
  }
}

describe("certificate index keys", () => {
  it("encodes names so prefixes stay prefixes", () => {
    assert.equal(encodeIndexName("Web-1.Example.TEST"), "web-1.example.test");
    assert.equal(encodeIndexName("a/b c%"), "a%2Fb%20c%25");
    assert.equal(encodeIndexName("bücher"), "b%C3%BCcher");
    for (const [name, prefix] of [
      ["bücher.example", "bü"],
      ["a b/c", "a b"],
      ["ops@example.test", "ops@"],
    ] as const) {
      assert.ok(encodeIndexName(name).startsWith(encodeIndexName(prefix)), name);
    }
    assert.ok(!encodeIndexName("a%b").startsWith(encodeIndexName("a%2")));
  });

  it("cuts long names without splitting a byte code", () => {
    const plain = encodeIndexName("x".repeat(1000));
    assert.equal(plain.length, MAX_INDEX_NAME_LENGTH);
    const encoded = encodeIndexName("é".repeat(200));
    assert.ok(encoded.length <= MAX_INDEX_NAME_LENGTH);
    assert.match(encoded, /^(%C3%A9)+$/);
  });

  it("clamps times to four-digit years", () => {
    assert.equal(indexTime("2030-01-02T03:04:05Z"), "2030-01-02T03:04:05.000Z");
    assert.equal(indexTime(Date.parse("+020000-01-01T00:00:00Z")), "9999-12-31T23:59:59.999Z");
    assert.equal(indexTime(Date.parse("-000100-01-01T00:00:00Z")), "0000-01-01T00:00:00.000Z");
  });

  it("lists one expiry entry and one entry per distinct name", () => {
    const paths = certificateIndexPaths({
      serialHex: "0a0b",
      issuerId: "issuer-1",
      certificatePem: "",
      subject: "CN=Web.example.test",
      commonName: "Web.example.test",
      sans: ["dns:web.example.test", "ip:10.0.0.1", "email:ops@example.test", "uri:spiffe://x"],
      notBefore: "2030-01-01T00:00:00.000Z",
      notAfter: "2030-02-01T00:00:00.000Z",
      role: "web",
    });
    const id = "2030-02-01T00:00:00.000Z/issuer-1/0a0b";
    assert.deepEqual(paths, [
      `index/expiry/${id}`,
      `index/name/web.example.test/${id}`,
      `index/name/10.0.0.1/${id}`,
      `index/name/ops@example.test/${id}`,
    ]);
  });
});

describe("PKI certificate index", () => {
  let t: TestApp;
  let issuerId = "";
  let template: CertificateRecord;
  const serials: string[] = [];

  before(async () => {
    t = await createPkiApp();
    issuerId = (
      await ok(t, "POST", "/v1/pki/root/generate/internal", {
        common_name: "Index Root",
        key_type: "ec",
        ttl: "8760h",
      })
    ).issuer_id;
    await ok(t, "POST", "/v1/pki/roles/web", {
      allow_any_name: true,
      allow_ip_sans: true,
      key_type: "ec",
      max_ttl: "720h",
    });
    for (const [commonName, altNames, ttl] of [
      ["alpha.example.test", "alpha-api.example.test,10.9.8.7", "10h"],
      ["beta.example.test", "", "20h"],
      ["Gamma.Example.TEST", "ops@example.test", "30h"],
      ["delta.other.test", "", "40h"],
    ] as const) {
      const issued = await ok(t, "POST", "/v1/pki/issue/web", {
        common_name: commonName,
        alt_names: altNames,
        ttl,
      });
      serials.push(issued.serial_number);
    }
    template = await t.keyward.pki("pki")!.inventory.get(serials[0]!.replaceAll(":", ""));
  });
  after(async () => {
    await t.close();
  });

  const names = (certificates: { common_name: string }[]) =>
    certificates.map((certificate) => certificate.common_name);

  it("writes index entries with each certificate", async () => {
    const entries = await storedKeys(t, "pki/index/name/");
    for (const name of ["alpha.example.test", "alpha-api.example.test", "10.9.8.7"]) {
      assert.ok(
        entries.some((entry) => entry.startsWith(`${name}/`)),
        `no name entry for ${name}`,
      );
    }
    assert.ok(entries.some((entry) => entry.startsWith("ops@example.test/")));
    assert.ok(entries.some((entry) => entry.startsWith("gamma.example.test/")));
    // The root and four leaves, each with one expiry entry.
    assert.equal((await storedKeys(t, "pki/index/expiry/")).length, 5);
  });

  it("pages the certificate list", async () => {
    const all = await ok(t, "GET", "/v1/pki/certs?list=true");
    assert.equal(all.keys.length, 5);
    assert.equal(all.next_after, undefined);

    const first = await ok(t, "GET", "/v1/pki/certs?list=true&limit=2");
    assert.deepEqual(first.keys, all.keys.slice(0, 2));
    assert.equal(first.next_after, all.keys[1]);
    const second = await ok(
      t,
      "GET",
      `/v1/pki/certs?list=true&limit=2&after=${first.next_after.replaceAll(":", "-")}`,
    );
    assert.deepEqual(second.keys, all.keys.slice(2, 4));
    const rest = await ok(t, "GET", `/v1/pki/certs?list=true&after=${second.next_after}`);
    assert.deepEqual(rest.keys, all.keys.slice(4));
    assert.equal(rest.next_after, undefined);

    const past = await t.request({
      method: "GET",
      url: `/v1/pki/certs?list=true&after=${all.keys[4]}`,
    });
    assert.equal(past.statusCode, 404);
  });

  it("rejects bad paging parameters", async () => {
    for (const [query, field] of [
      ["limit=0", "limit"],
      ["limit=10001", "limit"],
      ["limit=ten", "limit"],
      ["after=not-a-serial", "after"],
      ["after=", "after"],
      ["offset=3", "offset"],
    ] as const) {
      const response = await t.request({ method: "GET", url: `/v1/pki/certs?list=true&${query}` });
      assert.equal(response.statusCode, 400, `${query}: ${response.body}`);
      assert.equal(response.json().field, field, query);
    }
    for (const [query, field] of [
      ["limit=1001", "limit"],
      ["after=nonsense", "after"],
      ["name_prefix=web&after=2030-01-01T00:00:00.000Z%2Fissuer%2F0a", "after"],
      ["name_prefix=", "name_prefix"],
    ] as const) {
      const response = await t.request({ method: "GET", url: `/v1/pki/certs/search?${query}` });
      assert.equal(response.statusCode, 400, `${query}: ${response.body}`);
      assert.equal(response.json().field, field, query);
    }
    const report = await t.request({ method: "GET", url: "/v1/pki/certs/expiring?limit=-1" });
    assert.equal(report.statusCode, 400);
    assert.equal(report.json().field, "limit");
  });

  it("searches by name prefix", async () => {
    const found = async (prefix: string) =>
      names((await ok(t, "GET", `/v1/pki/certs/search?name_prefix=${prefix}`)).certificates);
    // One result, though both the CN and a DNS SAN start with the prefix.
    assert.deepEqual(await found("ALPHA"), ["alpha.example.test"]);
    assert.deepEqual(await found("10.9."), ["alpha.example.test"]);
    assert.deepEqual(await found("ops@"), ["Gamma.Example.TEST"]);
    assert.deepEqual(await found("gamma.example"), ["Gamma.Example.TEST"]);
    assert.deepEqual(await found("zeta"), []);
  });

  it("pages search results with a cursor", async () => {
    const soon = new Date(Date.now() + 48 * 3600 * 1000).toISOString();
    const all = await ok(t, "GET", `/v1/pki/certs/search?expires_before=${soon}`);
    assert.deepEqual(names(all.certificates), [
      "alpha.example.test",
      "beta.example.test",
      "Gamma.Example.TEST",
      "delta.other.test",
    ]);

    const seen: string[] = [];
    let after = "";
    for (let page = 0; page < 10; page += 1) {
      const query = `expires_before=${soon}&limit=1${after ? `&after=${encodeURIComponent(after)}` : ""}`;
      const data = await ok(t, "GET", `/v1/pki/certs/search?${query}`);
      seen.push(...names(data.certificates));
      if (data.next_after === undefined) break;
      after = data.next_after;
    }
    assert.deepEqual(seen, names(all.certificates));

    const byName = await ok(t, "GET", "/v1/pki/certs/search?name_prefix=a&limit=1");
    assert.equal(byName.certificates.length, 1);
    const next = await ok(
      t,
      "GET",
      `/v1/pki/certs/search?name_prefix=a&limit=1&after=${encodeURIComponent(byName.next_after)}`,
    );
    assert.deepEqual(names(next.certificates), []);
    assert.equal(next.next_after, undefined);
  });

  it("lists revoked serials and leaves revoked certificates out", async () => {
    await ok(t, "POST", "/v1/pki/revoke", { serial_number: serials[1] });
    const revoked = await ok(t, "GET", "/v1/pki/certs/revoked?list=true");
    assert.deepEqual(revoked.keys, [serials[1]]);
    assert.equal((await storedKeys(t, "pki/index/revoked/")).length, 1);

    const soon = new Date(Date.now() + 48 * 3600 * 1000).toISOString();
    const unrevoked = await ok(t, "GET", `/v1/pki/certs/search?expires_before=${soon}`);
    assert.ok(!names(unrevoked.certificates).includes("beta.example.test"));
    const withRevoked = await ok(
      t,
      "GET",
      `/v1/pki/certs/search?expires_before=${soon}&include_revoked=true`,
    );
    assert.ok(names(withRevoked.certificates).includes("beta.example.test"));
    const report = await ok(t, "GET", "/v1/pki/certs/expiring?within=48h&limit=1");
    assert.equal(report.expiring_count, 3);
    assert.deepEqual(names(report.expiring), ["alpha.example.test"]);
    assert.ok(report.expiring_next_after);
    const rest = await ok(
      t,
      "GET",
      `/v1/pki/certs/search?expires_after=${report.generated_at}&expires_before=${report.window_end}&after=${encodeURIComponent(report.expiring_next_after)}`,
    );
    assert.deepEqual(names(rest.certificates), ["Gamma.Example.TEST", "delta.other.test"]);
  });

  it("rebuilds the index of certificates stored without it", async () => {
    const base = Date.now() + 3600 * 1000;
    const records = Array.from({ length: 450 }, (_, index): CertificateRecord => {
      const name = `legacy-${String(index).padStart(3, "0")}.example.test`;
      return {
        ...template,
        serialHex: `7e${index.toString(16).padStart(6, "0")}`,
        subject: `CN=${name}`,
        commonName: name,
        sans: [`dns:${name}`],
        notAfter: new Date(base + index * MINUTE_MS).toISOString(),
      };
    });
    await storeRecords(t, records, false);
    await t.keyward.seal.barrier.delete(`pki/${CERTIFICATE_INDEX_MARKER}`);

    // A service built now, as at the next unseal, finds no marker and indexes every record.
    const service = new PkiService({ barrier: t.keyward.seal.barrier, mount: "pki" });
    const found = await service.inventory.search({ namePrefix: "legacy-4" }, { limit: 100 });
    assert.equal(found.certificates.length, 50);
    assert.equal(found.nextAfter, undefined);
    const marker = await t.keyward.seal.barrier.get(`pki/${CERTIFICATE_INDEX_MARKER}`);
    assert.equal(JSON.parse(Buffer.from(marker!).toString("utf8")).version, 1);
    assert.equal((await storedKeys(t, "pki/index/revoked/")).length, 1);
  });

  it("tidies many expired certificates while serving requests", async () => {
    const base = Date.now() - 10 * 24 * 3600 * 1000;
    const expired = Array.from({ length: 5_000 }, (_, index): CertificateRecord => {
      const name = `old-${String(index).padStart(5, "0")}.example.test`;
      return {
        ...template,
        issuerId,
        serialHex: `5e${index.toString(16).padStart(6, "0")}`,
        subject: `CN=${name}`,
        commonName: name,
        sans: [`dns:${name}`],
        notAfter: new Date(base + index * 10).toISOString(),
      };
    });
    await storeRecords(t, expired);
    const before = (await storedKeys(t, "pki/index/")).length;

    let tidyDone = false;
    const tidy = t
      .request({
        method: "POST",
        url: "/v1/pki/tidy",
        payload: { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: "72h" },
      })
      .finally(() => {
        tidyDone = true;
      });
    let servedDuringTidy = 0;
    while (!tidyDone) {
      const response = await t.request({ method: "GET", url: `/v1/pki/cert/${serials[3]}` });
      assert.equal(response.statusCode, 200);
      if (!tidyDone) servedDuringTidy += 1;
    }
    const result = await tidy;
    assert.equal(result.statusCode, 202, result.body);
    assert.equal(result.json().data.cert_store_deleted_count, 5_000);
    assert.ok(servedDuringTidy > 0, "no request was served while tidy ran");

    // Each record went with its expiry entry and its name entry.
    assert.equal((await storedKeys(t, "pki/index/")).length, before - 2 * 5_000);
    const gone = await t.request({ method: "GET", url: "/v1/pki/cert/5e:00:00:07", token: null });
    assert.equal(gone.statusCode, 404);
    const search = await ok(t, "GET", "/v1/pki/certs/search?name_prefix=old-");
    assert.deepEqual(search.certificates, []);
  });
});
