import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok, run, tempFiles } from "./fixtures.ts";

/** Returns the number of certificates stored in the mount. */
async function storedCount(t: TestApp): Promise<number> {
  const response = await t.request({ method: "GET", url: "/v1/pki/certs?list=true" });
  if (response.statusCode === 404) return 0;
  return response.json().data.keys.length;
}

describe("PKI role bypass attempts", () => {
  let t: TestApp;
  let rootPem: string;
  const files = tempFiles();

  before(async () => {
    t = await createPkiApp();
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Bypass Root",
      key_type: "ec",
      ttl: "8760h",
    });
    rootPem = root.certificate;
    await ok(t, "POST", "/v1/pki/roles/any", {
      allow_any_name: true,
      allow_ip_sans: false,
      key_type: "ec",
      allowed_uri_sans: "spiffe://example.test/*",
    });
    await ok(t, "POST", "/v1/pki/roles/sub", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
    });
    await ok(t, "POST", "/v1/pki/roles/nowild", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      allow_wildcard_certificates: false,
      enforce_hostnames: false,
      key_type: "ec",
    });
    await ok(t, "POST", "/v1/pki/roles/certsign", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      key_usage: ["DigitalSignature", "CertSign"],
    });
  });
  after(async () => {
    files.cleanup();
    await t.close();
  });

  const rejected = [
    // The URL parser reads these as IPv4 numbers, so they would become other names.
    [
      "any",
      { common_name: "x.example.test", alt_names: "010.0.0.1" },
      "alt_names",
      "invalid_field",
    ],
    ["any", { common_name: "x.example.test", alt_names: "0x7f.1" }, "alt_names", "invalid_field"],
    [
      "any",
      { common_name: "x.example.test", alt_names: "2130706433" },
      "alt_names",
      "invalid_field",
    ],
    ["any", { common_name: "10.1" }, "common_name", "invalid_field"],
    // The URL parser cuts a host at these, so only a prefix would be checked.
    ["sub", { common_name: "a.example.test/x" }, "common_name", "invalid_field"],
    ["sub", { common_name: "a.example.test?x" }, "common_name", "invalid_field"],
    ["sub", { common_name: "a.example.test#x" }, "common_name", "invalid_field"],
    ["sub", { common_name: "a.example.test\\x" }, "common_name", "invalid_field"],
    ["sub", { common_name: "a\t.example.test" }, "common_name", "invalid_field"],
    [
      "sub",
      { common_name: "a.example.test", alt_names: "b.example.test/.evil.test" },
      "alt_names",
      "invalid_field",
    ],
    // Wildcards outside the leftmost label, or not allowed by the role.
    ["nowild", { common_name: "*a.example.test" }, "common_name", "name_not_allowed"],
    ["nowild", { common_name: "a.*.example.test" }, "common_name", "invalid_field"],
    ["nowild", { common_name: "**.example.test" }, "common_name", "invalid_field"],
    ["nowild", { common_name: "*.*.example.test" }, "common_name", "invalid_field"],
    ["any", { common_name: "a.*.example.test" }, "common_name", "invalid_field"],
    // A URI with a line break, which URL parsing drops.
    [
      "any",
      { common_name: "x.example.test", uri_sans: "spiffe://example.test/a\nb" },
      "uri_sans",
      "invalid_field",
    ],
  ] as const;

  for (const [role, payload, field, code] of rejected) {
    it(`rejects ${role} ${JSON.stringify(payload)}`, async () => {
      const before = await storedCount(t);
      const response = await t.request({ method: "POST", url: `/v1/pki/issue/${role}`, payload });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, code, response.body);
      assert.equal(response.json().field, field, response.body);
      assert.equal(await storedCount(t), before);
    });
  }

  it("keeps IDN and upper case names", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/sub", {
      common_name: "BÜCHER.example.test",
      alt_names: "*.A.Example.Test",
    });
    const certificate = new X509Certificate(issued.certificate);
    assert.equal(
      certificate.subjectAltName,
      "DNS:xn--bcher-kva.example.test, DNS:*.a.example.test",
    );
  });

  it("caps role max_ttl at mount maximum", async () => {
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/short",
      payload: { type: "pki", config: { max_lease_ttl: "100h" } },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    await ok(t, "POST", "/v1/short/root/generate/internal", {
      common_name: "Short Root",
      key_type: "ec",
      ttl: "99h",
    });
    await ok(t, "POST", "/v1/short/issuer/default", { leaf_not_after_behavior: "permit" });
    await ok(t, "POST", "/v1/short/roles/long", {
      allow_any_name: true,
      key_type: "ec",
      max_ttl: "1000h",
    });

    for (const payload of [
      { common_name: "a.example.test", ttl: "500h" },
      {
        common_name: "a.example.test",
        not_after: new Date(Date.now() + 500 * 3600 * 1000).toISOString(),
      },
    ]) {
      const response = await t.request({
        method: "POST",
        url: "/v1/short/issue/long",
        payload,
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "ttl_too_long");
    }
    const issued = await ok(t, "POST", "/v1/short/issue/long", {
      common_name: "a.example.test",
      ttl: "50h",
    });
    assert.ok(issued.expiration - Date.now() / 1000 <= 100 * 3600);
  });

  it("drops keyCertSign from leaves", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/certsign", {
      common_name: "leaf.example.test",
    });
    const certificate = new X509Certificate(issued.certificate);
    assert.equal(certificate.ca, false);
    const text = run("openssl", ["x509", "-noout", "-ext", "keyUsage"], issued.certificate).output;
    assert.match(text, /Digital Signature/);
    assert.doesNotMatch(text, /Certificate Sign/);

    // A certificate signed with the leaf's key must not verify up to the root.
    const leafKey = files.write("leaf.key", issued.private_key);
    const leafPath = files.write("leaf.pem", issued.certificate);
    const rootPath = files.write("root.pem", rootPem);
    const childKey = files.write("child.key", "");
    const childCsr = files.write("child.csr", "");
    const childPath = files.write("child.pem", "");
    const made = run("openssl", [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      childKey,
      "-out",
      childCsr,
      "-subj",
      "/CN=victim.evil.test",
    ]);
    assert.equal(made.status, 0, made.output);
    const signed = run("openssl", [
      "x509",
      "-req",
      "-in",
      childCsr,
      "-CA",
      leafPath,
      "-CAkey",
      leafKey,
      "-set_serial",
      "7",
      "-days",
      "1",
      "-out",
      childPath,
    ]);
    assert.equal(signed.status, 0, signed.output);
    const verified = run("openssl", [
      "verify",
      "-CAfile",
      rootPath,
      "-untrusted",
      leafPath,
      childPath,
    ]);
    assert.notEqual(verified.status, 0, verified.output);
  });

  it("accepts email SANs on CAs", async () => {
    const root = await ok(t, "POST", "/v1/pki/root/rotate/internal", {
      common_name: "Mail Root",
      key_type: "ec",
      alt_names: "pki@example.test,ca.example.test",
      ttl: "48h",
    });
    const certificate = new X509Certificate(root.certificate);
    assert.equal(certificate.subjectAltName, "email:pki@example.test, DNS:ca.example.test");
  });
});
