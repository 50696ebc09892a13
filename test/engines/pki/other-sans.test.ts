import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok } from "./fixtures.ts";

/** Microsoft's user principal name otherName (szOID_NT_PRINCIPAL_NAME). */
const UPN = "1.3.6.1.4.1.311.20.2.3";

describe("PKI other SANs", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Other SAN Root",
      key_type: "ec",
      ttl: "8760h",
    });
    await ok(t, "POST", "/v1/pki/roles/users", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      max_ttl: "720h",
      allowed_other_sans: `${UPN};UTF8:*@example.test`,
    });
  });
  after(async () => {
    await t.close();
  });

  it("writes an allowed otherName", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/users", {
      common_name: "alice.example.test",
      other_sans: `${UPN};UTF8:alice@example.test`,
    });
    const certificate = new X509Certificate(issued.certificate);
    assert.match(certificate.subjectAltName ?? "", /othername:UPN:alice@example\.test/i);
    const stored = await ok(t, "GET", `/v1/pki/cert/${issued.serial_number}`);
    assert.match(stored.certificate, /BEGIN CERTIFICATE/);
  });

  for (const [name, value, status, code] of [
    ["fail value outside the role", `${UPN};UTF8:mallory@evil.test`, 400, "name_not_allowed"],
    ["fail OID outside the role", "1.2.3.4;UTF8:alice@example.test", 400, "name_not_allowed"],
    ["fail malformed", `${UPN}:alice@example.test`, 400, "invalid_field"],
    ["fail non-UTF8 type", `${UPN};IA5:alice@example.test`, 400, "invalid_field"],
    ["fail line break", `${UPN};UTF8:alice@evil.test\n@example.test`, 400, "invalid_field"],
  ] as const) {
    it(`rejects other SANs: ${name}`, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/pki/issue/users",
        payload: { common_name: "bob.example.test", other_sans: value },
      });
      assert.equal(response.statusCode, status, response.body);
      assert.equal(response.json().code, code);
      assert.equal(response.json().field, "other_sans");
    });
  }
});
