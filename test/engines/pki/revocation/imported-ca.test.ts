import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requirePeer } from "../../../helpers/peers.ts";
import { caImportApp, type KeyedCertificate, mountPki } from "../ca-import-fixtures.ts";
import { ok } from "../fixtures.ts";

// Revocation, CRLs and tidy on a mount whose issuer came from config/ca,
// with serial numbers in several spellings.

describe("revocation on an imported CA", () => {
  const pki = caImportApp("revoke");
  let root: KeyedCertificate;
  let ready = false;

  async function setUp(): Promise<void> {
    if (ready) return;
    ready = true;
    root = pki.certificate("revoke-root");
    await mountPki(pki.t, "imported");
    await ok(pki.t, "POST", "/v1/imported/config/ca", {
      pem_bundle: root.certificatePem + root.keyPem,
    });
    await ok(pki.t, "POST", "/v1/imported/config/crl", { enable_delta: true });
    await ok(pki.t, "POST", "/v1/imported/roles/web", {
      allow_any_name: true,
      ttl: "1h",
      key_type: "ec",
    });
  }

  async function issueSerial(): Promise<string> {
    const issued = await ok(pki.t, "POST", "/v1/imported/issue/web", {
      common_name: "www.example.test",
    });
    return issued.serial_number;
  }

  async function revoke(serialNumber: string) {
    return pki.t.request({
      method: "POST",
      url: "/v1/imported/revoke",
      payload: { serial_number: serialNumber },
    });
  }

  it("accepts every serial spelling", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    const spellings: [string, (colon: string) => string][] = [
      ["upper case", (colon) => colon.toUpperCase()],
      ["leading zero octets", (colon) => `00:00:${colon}`],
      ["plain hex", (colon) => colon.replaceAll(":", "")],
      ["dashes", (colon) => colon.replaceAll(":", "-")],
      ["padded", (colon) => `  ${colon}  `],
    ];
    for (const [name, spell] of spellings) {
      const serial = await issueSerial();

      const response = await revoke(spell(serial));

      assert.equal(response.statusCode, 200, `${name}: ${response.body}`);
      const entry = await ok(pki.t, "GET", `/v1/imported/cert/${serial}`);
      assert.ok(entry.revocation_time > 0, name);
    }
  });

  it("second revocation keeps the first time", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    const serial = await issueSerial();

    const first = await revoke(serial);
    const second = await revoke(serial.toUpperCase());

    assert.equal(first.statusCode, 200, first.body);
    assert.equal(second.statusCode, 200, second.body);
    assert.equal(second.json().data.revocation_time, first.json().data.revocation_time);
  });

  it("rejects a 21-octet serial", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    // RFC 5280 section 4.1.2.2 allows at most 20 octets, and the error message states that limit.
    for (const serial of [Array(21).fill("ff").join(":"), `01${"ff".repeat(20)}`]) {
      const response = await revoke(serial);

      assert.equal(response.statusCode, 400, `${serial}: ${response.body}`);
      assert.equal(response.json().code, "invalid_field", serial);
      assert.equal(response.json().field, "serial_number", serial);
      assert.match(response.json().errors[0], /at most 20 octets/, serial);
    }
  });

  it("counts serial octets after leading zeros", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    // 00 before 20 octets whose first bit is set is how DER writes a positive 20-octet serial.
    const signOctet = await revoke(`00:${Array(20).fill("ff").join(":")}`);
    const manyZeros = await revoke(`${"00:".repeat(30)}${Array(20).fill("ff").join(":")}`);

    // The serial is valid but was never issued here.
    assert.equal(signOctet.statusCode, 404, signOctet.body);
    assert.equal(manyZeros.statusCode, 404, manyZeros.body);
  });

  it("rejects malformed serials", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    for (const serial of ["", ":", "0x1a", "1a::2b", "zz", "1a:2b3"]) {
      const response = await revoke(serial);

      assert.equal(response.statusCode, 400, `${JSON.stringify(serial)}: ${response.body}`);
      assert.equal(response.json().field, "serial_number");
    }
  });

  it("does not revoke the CA certificate", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    const issuer = await ok(pki.t, "GET", "/v1/imported/issuer/default");

    const bySerial = await revoke(issuer.serial_number);
    const byCertificate = await pki.t.request({
      method: "POST",
      url: "/v1/imported/revoke",
      payload: { certificate: root.certificatePem },
    });

    assert.equal(bySerial.statusCode, 404, bySerial.body);
    assert.equal(byCertificate.statusCode, 404, byCertificate.body);
    const after = await ok(pki.t, "GET", "/v1/imported/issuer/default");
    assert.equal(after.revoked, false);
  });

  it("does not revoke an intermediate issuer", async () => {
    await mountPki(pki.t, "chained");
    await ok(pki.t, "POST", "/v1/chained/root/generate/internal", {
      common_name: "Chained Root",
      key_type: "ec",
      ttl: "720h",
    });
    const pending = await ok(pki.t, "POST", "/v1/chained/intermediate/generate/internal", {
      common_name: "Chained Intermediate",
      key_type: "ec",
    });
    const signed = await ok(pki.t, "POST", "/v1/chained/root/sign-intermediate", {
      csr: pending.csr,
      common_name: "Chained Intermediate",
      ttl: "240h",
    });
    await ok(pki.t, "POST", "/v1/chained/intermediate/set-signed", {
      certificate: signed.certificate,
    });

    const response = await pki.t.request({
      method: "POST",
      url: "/v1/chained/revoke",
      payload: { serial_number: signed.serial_number.toUpperCase() },
    });

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "serial_number");
  });

  it("rotates CRLs and tidies", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await setUp();
    const serial = await issueSerial();
    assert.equal((await revoke(serial)).statusCode, 200);

    const rotated = await ok(pki.t, "GET", "/v1/imported/crl/rotate");
    const rotatedDelta = await ok(pki.t, "GET", "/v1/imported/crl/rotate-delta");
    const crl = await pki.t.request({ method: "GET", url: "/v1/imported/crl/pem" });
    const delta = await pki.t.request({ method: "GET", url: "/v1/imported/crl/delta/pem" });
    const tidy = await pki.t.request({
      method: "POST",
      url: "/v1/imported/tidy",
      payload: { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: "1s" },
    });

    assert.equal(rotated.success, true);
    assert.equal(rotatedDelta.success, true);
    assert.equal(crl.statusCode, 200, crl.body);
    assert.match(crl.body, /BEGIN X509 CRL/);
    assert.equal(delta.statusCode, 200, delta.body);
    assert.equal(tidy.statusCode, 202, tidy.body);
  });
});
