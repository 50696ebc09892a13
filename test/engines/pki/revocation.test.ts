import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, run, tempFiles } from "./fixtures.ts";

describe("PKI inventory and revocation", () => {
  let t: TestApp;
  let rootPem = "";
  const files = tempFiles();
  const issued: { serial_number: string; certificate: string; private_key: string }[] = [];

  const crl = async (path = "/v1/pki/crl") => {
    const response = await t.request({ method: "GET", url: path, token: null });
    assert.equal(response.statusCode, 200, response.body);
    return new x509.X509Crl(response.rawPayload);
  };

  before(async () => {
    t = await createPkiApp();
    rootPem = (
      await ok(t, "POST", "/v1/pki/root/generate/internal", {
        common_name: "Revocation Root",
        key_type: "ec",
        ttl: "8760h",
      })
    ).certificate;
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      max_ttl: "720h",
    });
    for (const [name, ttl] of [
      ["a", "1h"],
      ["b", "48h"],
      ["c", "600h"],
    ] as const) {
      const certificate = await ok(t, "POST", "/v1/pki/issue/web", {
        common_name: `${name}.example.test`,
        ttl,
      });
      issued.push({
        serial_number: certificate.serial_number,
        certificate: certificate.certificate,
        private_key: certificate.private_key,
      });
    }
    files.write("root.pem", rootPem);
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  it("reads certificates by any serial form", async () => {
    const serial = issued[0]!.serial_number;
    for (const form of [
      serial,
      serial.replaceAll(":", "-"),
      serial.replaceAll(":", ""),
      serial.toUpperCase(),
    ]) {
      const response = await t.request({ method: "GET", url: `/v1/pki/cert/${form}`, token: null });
      assert.equal(response.statusCode, 200, form);
      assert.equal(response.json().data.certificate.trim(), issued[0]!.certificate.trim());
      assert.equal(response.json().data.revocation_time, 0);
    }
    const listed = await ok(t, "GET", "/v1/pki/certs?list=true");
    for (const certificate of issued) assert.ok(listed.keys.includes(certificate.serial_number));
  });

  it("searches and reports expiry", async () => {
    const bySubject = await ok(t, "GET", "/v1/pki/certs/search?subject=b.example");
    assert.deepEqual(
      bySubject.certificates.map((c: { common_name: string }) => c.common_name),
      ["b.example.test"],
    );
    const bySan = await ok(t, "GET", "/v1/pki/certs/search?san=dns:c.example.test");
    assert.equal(bySan.certificates.length, 1);
    const soon = new Date(Date.now() + 72 * 3600 * 1000).toISOString();
    const window = await ok(
      t,
      "GET",
      `/v1/pki/certs/search?expires_before=${encodeURIComponent(soon)}&issuer_ref=default`,
    );
    assert.deepEqual(
      window.certificates.map((c: { common_name: string }) => c.common_name),
      ["a.example.test", "b.example.test"],
    );
    const report = await ok(t, "GET", "/v1/pki/certs/expiring?within=24h");
    assert.equal(report.expiring_count, 1);
    assert.equal(report.expiring[0].common_name, "a.example.test");
    const bad = await t.request({
      method: "GET",
      url: "/v1/pki/certs/search?expires_before=tomorrow",
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, "expires_before");
  });

  it("revokes and rebuilds the CRL", async () => {
    const before = await crl();
    const serial = issued[1]!.serial_number;
    const revoked = await ok(t, "POST", "/v1/pki/revoke", {
      serial_number: serial.replaceAll(":", "-"),
      reason: "keyCompromise",
    });
    assert.equal(typeof revoked.revocation_time, "number");
    const again = await ok(t, "POST", "/v1/pki/revoke", { serial_number: serial });
    assert.equal(again.revocation_time, revoked.revocation_time);

    const after = await crl();
    const number = (list: x509.X509Crl) => list.getExtension("2.5.29.20");
    assert.ok(number(after));
    assert.notDeepEqual(Buffer.from(number(after)!.value), Buffer.from(number(before)!.value));
    assert.deepEqual(
      after.entries.map((entry) => entry.serialNumber),
      [serial.replaceAll(":", "")],
    );
    assert.equal(after.entries[0]!.reason, 1);
    assert.ok(after.nextUpdate);
    assert.ok(after.nextUpdate > after.thisUpdate);
    assert.ok(await after.verify({ publicKey: new x509.X509Certificate(rootPem).publicKey }));
    const pem = await t.request({ method: "GET", url: "/v1/pki/crl/pem", token: null });
    assert.match(pem.body, /BEGIN X509 CRL/);
    const envelope = await ok(t, "GET", "/v1/pki/cert/crl");
    assert.match(envelope.certificate, /BEGIN X509 CRL/);
    const read = await ok(t, "GET", `/v1/pki/cert/${serial}`);
    assert.equal(read.revocation_time, revoked.revocation_time);
  });

  it("rebuilds the CRL on a retry after a failed rebuild", async () => {
    const service = t.keyward.pki("pki");
    assert.ok(service);
    const crls = service.revocation.crls;
    const rebuild = crls.rebuild.bind(crls);
    crls.rebuild = async () => {
      throw new Error("CRL rebuild failed (test)");
    };
    const serial = issued[2]!.serial_number;
    try {
      const failed = await t.request({
        method: "POST",
        url: "/v1/pki/revoke",
        payload: { serial_number: serial },
      });
      assert.equal(failed.statusCode, 500, failed.body);
    } finally {
      crls.rebuild = rebuild;
    }
    const plain = serial.replaceAll(":", "");
    assert.ok(!(await crl()).entries.some((entry) => entry.serialNumber === plain));

    await ok(t, "POST", "/v1/pki/revoke", { serial_number: serial });
    assert.ok((await crl()).entries.some((entry) => entry.serialNumber === plain));
  });

  it("revokes with the private key", async () => {
    const target = issued[2]!;
    const wrongKey = await t.request({
      method: "POST",
      url: "/v1/pki/revoke-with-key",
      payload: { certificate: target.certificate, private_key: issued[0]!.private_key },
    });
    assert.equal(wrongKey.statusCode, 400);
    assert.equal(wrongKey.json().field, "private_key");
    await ok(t, "POST", "/v1/pki/revoke-with-key", {
      certificate: target.certificate,
      private_key: target.private_key,
    });
    assert.equal((await crl()).entries.length, 2);
  });

  it("builds delta CRLs when enabled", async () => {
    await ok(t, "POST", "/v1/pki/config/crl", {
      enable_delta: true,
      auto_rebuild: true,
      expiry: "48h",
    });
    const config = await ok(t, "GET", "/v1/pki/config/crl");
    assert.equal(config.enable_delta, true);
    assert.equal(config.expiry, "172800s");
    await ok(t, "GET", "/v1/pki/crl/rotate");
    const fresh = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "d.example.test" });
    await ok(t, "POST", "/v1/pki/revoke", { serial_number: fresh.serial_number });
    const delta = await crl("/v1/pki/crl/delta");
    assert.ok(delta.getExtension("2.5.29.27"), "delta CRL indicator");
    assert.deepEqual(
      delta.entries.map((entry) => entry.serialNumber),
      [fresh.serial_number.replaceAll(":", "")],
    );
    assert.equal((await crl()).entries.length, 2);
  });

  it("answers OCSP over POST and GET", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    files.write("a.pem", issued[0]!.certificate);
    files.write("b.pem", issued[1]!.certificate);
    const status = async (leaf: string, method: "POST" | "GET") => {
      const requestPath = `${files.dir}/${leaf}.req`;
      const made = run("openssl", [
        "ocsp",
        "-issuer",
        `${files.dir}/root.pem`,
        "-cert",
        `${files.dir}/${leaf}.pem`,
        "-reqout",
        requestPath,
      ]);
      assert.equal(made.status, 0, made.output);
      const der = readFileSync(requestPath);
      const response =
        method === "POST"
          ? await t.request({
              method: "POST",
              url: "/v1/pki/ocsp",
              payload: der,
              headers: { "content-type": "application/ocsp-request" },
              token: null,
            })
          : await t.request({
              method: "GET",
              url: `/v1/pki/ocsp/${encodeURIComponent(der.toString("base64"))}`,
              token: null,
            });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers["content-type"], "application/ocsp-response");
      const responsePath = files.write(`${leaf}-${method}.resp`, response.rawPayload);
      const checked = run("openssl", [
        "ocsp",
        "-respin",
        responsePath,
        "-issuer",
        `${files.dir}/root.pem`,
        "-cert",
        `${files.dir}/${leaf}.pem`,
        "-CAfile",
        `${files.dir}/root.pem`,
        "-no_nonce",
      ]);
      assert.equal(checked.status, 0, checked.output);
      return checked.output;
    };
    assert.match(await status("a", "POST"), /a\.pem: good/);
    assert.match(await status("a", "GET"), /a\.pem: good/);
    assert.match(await status("b", "POST"), /b\.pem: revoked/);
    const malformed = await t.request({
      method: "POST",
      url: "/v1/pki/ocsp",
      payload: Buffer.from("not der"),
      headers: { "content-type": "application/ocsp-request" },
      token: null,
    });
    assert.equal(malformed.statusCode, 200);
    // OCSPResponse with responseStatus malformedRequest (1).
    assert.deepEqual([...malformed.rawPayload], [0x30, 0x03, 0x0a, 0x01, 0x01]);
  });

  it("tidies expired certificates", async () => {
    const unchanged = await t.request({
      method: "POST",
      url: "/v1/pki/tidy",
      payload: { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: "0s" },
    });
    assert.equal(unchanged.statusCode, 202, unchanged.body);
    assert.equal(unchanged.json().data.cert_store_deleted_count, 0);

    const brief = await ok(t, "POST", "/v1/pki/issue/web", {
      common_name: "brief.example.test",
      ttl: "1s",
    });
    const briefRevoked = await ok(t, "POST", "/v1/pki/issue/web", {
      common_name: "gone.example.test",
      ttl: "1s",
    });
    await ok(t, "POST", "/v1/pki/revoke", { serial_number: briefRevoked.serial_number });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const tidied = await t.request({
      method: "POST",
      url: "/v1/pki/tidy",
      payload: { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: "0s" },
    });
    assert.equal(tidied.json().data.cert_store_deleted_count, 1);
    assert.equal(tidied.json().data.revoked_cert_deleted_count, 1);
    for (const serial of [brief.serial_number, briefRevoked.serial_number]) {
      const gone = await t.request({ method: "GET", url: `/v1/pki/cert/${serial}`, token: null });
      assert.equal(gone.statusCode, 404);
    }
    // The base CRL is rebuilt without the expired entry; earlier revocations stay.
    const serials = (await crl()).entries.map((entry) => entry.serialNumber);
    assert.ok(!serials.includes(briefRevoked.serial_number.replaceAll(":", "")));
    assert.ok(serials.includes(issued[1]!.serial_number.replaceAll(":", "")));
    const status = await ok(t, "GET", "/v1/pki/tidy-status");
    assert.equal(status.state, "Finished");

    const autoTidy = await ok(t, "POST", "/v1/pki/config/auto-tidy", {
      enabled: true,
      interval_duration: "1h",
      tidy_cert_store: true,
    });
    assert.equal(autoTidy.interval_duration, 3600);
    assert.equal(autoTidy.enabled, true);
  });
  it("revokes a compressed-point key", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const plainKey = files.write("compressed-plain.key", "");
    assert.equal(
      run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", plainKey])
        .status,
      0,
    );
    const keyPath = files.write("compressed.key", "");
    const converted = run("openssl", [
      ...["ec", "-in", plainKey, "-conv_form", "compressed", "-out", keyPath],
    ]);
    assert.equal(converted.status, 0, converted.output);
    const csrPath = files.write("compressed.csr", "");
    const request = run("openssl", [
      ...["req", "-new", "-key", keyPath, "-subj", "/CN=z.example.test", "-out", csrPath],
    ]);
    assert.equal(request.status, 0, request.output);
    const signed = await ok(t, "POST", "/v1/pki/sign/web", {
      csr: readFileSync(csrPath, "utf8"),
      common_name: "z.example.test",
    });
    await ok(t, "POST", "/v1/pki/revoke-with-key", {
      certificate: signed.certificate,
      private_key: readFileSync(keyPath, "utf8"),
    });
    const stored = await ok(t, "GET", `/v1/pki/cert/${signed.serial_number}`);
    assert.ok(stored.revocation_time > 0);
  });
});
