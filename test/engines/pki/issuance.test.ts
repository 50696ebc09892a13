import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { certificateNames } from "../../../src/engines/pki/der.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, opensslCsr, run, tempFiles } from "./fixtures.ts";

const parse = (pem: string) => new x509.X509Certificate(pem);

function altNames(certificate: x509.X509Certificate): string[] {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  return (extension?.names.items ?? []).map((name) => `${name.type}:${name.value}`);
}

/** Returns the DER tag of the notAfter time in a certificate: 0x17 UTCTime or 0x18 GeneralizedTime. */
function notAfterTag(certificate: x509.X509Certificate): number {
  const der = Buffer.from(certificate.rawData);
  const names = certificateNames(new Uint8Array(certificate.rawData));
  const issuerEnd = der.indexOf(Buffer.from(names.issuer)) + names.issuer.length;
  // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
  const notBeforeLength = der[issuerEnd + 3]!;
  return der[issuerEnd + 4 + notBeforeLength]!;
}

describe("PKI roles and issuance", () => {
  let t: TestApp;
  let rootPem = "";
  const files = tempFiles();

  before(async () => {
    t = await createPkiApp();
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Issuing Root",
      key_type: "ec",
      ttl: "87600h",
    });
    rootPem = root.certificate;
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: ["example.test", "bücher.test"],
      allow_subdomains: true,
      allow_bare_domains: true,
      allow_ip_sans: true,
      allowed_uri_sans: "spiffe://example.test/*",
      key_type: "ec",
      ttl: "24h",
      max_ttl: "720h",
      organization: "Example",
      country: "DE",
      policy_identifiers: "1.3.6.1.4.1.55555.1",
    });
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  it("stores roles with defaults", async () => {
    const role = await ok(t, "GET", "/v1/pki/roles/web");
    assert.deepEqual(role.allowed_domains, ["example.test", "bücher.test"]);
    assert.equal(role.ttl, 86400);
    assert.equal(role.key_bits, 256);
    assert.equal(role.server_flag, true);
    assert.equal(role.enforce_hostnames, true);
    assert.deepEqual(role.key_usage, ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]);
    const listed = await ok(t, "GET", "/v1/pki/roles?list=true");
    assert.deepEqual(listed.keys, ["web"]);
    await ok(t, "POST", "/v1/pki/roles/temp", {});
    const deleted = await t.request({ method: "DELETE", url: "/v1/pki/roles/temp" });
    assert.equal(deleted.statusCode, 204);
    const gone = await t.request({ method: "GET", url: "/v1/pki/roles/temp" });
    assert.equal(gone.statusCode, 404);
  });

  it("issues a certificate and key once", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/web", {
      common_name: "www.example.test",
      alt_names: "api.example.test,10.1.2.3",
      ip_sans: ["192.0.2.7", "2001:db8::1"],
      uri_sans: "spiffe://example.test/web",
    });
    assert.match(issued.private_key, /BEGIN EC PRIVATE KEY/);
    assert.equal(issued.private_key_type, "ec");
    assert.equal(issued.issuing_ca.trim(), rootPem.trim());
    assert.deepEqual(
      issued.ca_chain.map((pem: string) => pem.trim()),
      [rootPem.trim()],
    );
    assert.equal(typeof issued.expiration, "number");
    const certificate = parse(issued.certificate);
    assert.deepEqual(altNames(certificate).sort(), [
      "dns:api.example.test",
      "dns:www.example.test",
      "ip:10.1.2.3",
      "ip:192.0.2.7",
      "ip:2001:db8::1",
      "url:spiffe://example.test/web",
    ]);
    assert.equal(certificate.subjectName.getField("O")[0], "Example");
    assert.ok(certificate.getExtension(x509.CertificatePolicyExtension));
    const stored = await t.request({
      method: "GET",
      url: `/v1/pki/cert/${issued.serial_number}`,
      token: null,
    });
    assert.equal(stored.statusCode, 200);
    assert.doesNotMatch(stored.body, /PRIVATE KEY/);
  });

  it("follows RFC 5280 in issued certificates", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "rfc.example.test" });
    const certificate = parse(issued.certificate);
    const root = parse(rootPem);
    const serial = Buffer.from(certificate.serialNumber, "hex");
    assert.ok(serial.length <= 20 && serial.length >= 9, `serial has ${serial.length} octets`);
    assert.ok(serial[0]! < 0x80 && serial[0]! > 0, "serial is positive and minimal");
    assert.deepEqual(
      Buffer.from(certificateNames(new Uint8Array(certificate.rawData)).issuer),
      Buffer.from(certificateNames(new Uint8Array(root.rawData)).subject),
    );
    const ski = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    assert.equal(certificate.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, ski);
    assert.ok(certificate.getExtension(x509.SubjectKeyIdentifierExtension));
    const usage = certificate.getExtension(x509.KeyUsagesExtension);
    assert.equal(usage?.critical, true);
    assert.equal(
      (usage!.usages & x509.KeyUsageFlags.keyEncipherment) === 0,
      true,
      "no keyEncipherment on an EC key",
    );
    const eku = certificate.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...(eku?.usages ?? [])], ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    assert.equal(certificate.getExtension(x509.SubjectAlternativeNameExtension)?.critical, false);
    assert.equal(notAfterTag(certificate), 0x17);
    assert.ok(await certificate.verify({ publicKey: root.publicKey, signatureOnly: true }));
  });

  it("marks SAN critical for empty subjects", async () => {
    await ok(t, "POST", "/v1/pki/roles/nocn", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      require_cn: false,
      key_type: "ec",
    });
    const issued = await ok(t, "POST", "/v1/pki/issue/nocn", { alt_names: "svc.example.test" });
    const certificate = parse(issued.certificate);
    assert.equal(certificate.subject, "");
    assert.equal(certificate.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true);
    const missing = await t.request({
      method: "POST",
      url: "/v1/pki/issue/web",
      payload: { alt_names: "x.example.test" },
    });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().field, "common_name");
  });

  it("writes GeneralizedTime after 2049", async () => {
    await t.request({
      method: "POST",
      url: "/v1/sys/mounts/long",
      payload: { type: "pki", config: { max_lease_ttl: "300000h" } },
    });
    const root = await ok(t, "POST", "/v1/long/root/generate/internal", {
      common_name: "Long Root",
      key_type: "ec",
      ttl: "262800h",
    });
    assert.equal(notAfterTag(parse(root.certificate)), 0x18);
  });

  it("encodes IDNs as punycode", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "www.bücher.test" });
    assert.deepEqual(altNames(parse(issued.certificate)), ["dns:www.xn--bcher-kva.test"]);
  });

  it("clamps or rejects notAfter past the issuer", async () => {
    await t.request({
      method: "POST",
      url: "/v1/sys/mounts/short",
      payload: { type: "pki", config: { max_lease_ttl: "8760h" } },
    });
    const root = await ok(t, "POST", "/v1/short/root/generate/internal", {
      common_name: "Short Root",
      key_type: "ec",
      ttl: "2h",
      issuer_name: "short",
    });
    await ok(t, "POST", "/v1/short/roles/r", {
      allow_any_name: true,
      key_type: "ec",
      max_ttl: "720h",
    });
    const rejected = await t.request({
      method: "POST",
      url: "/v1/short/issue/r",
      payload: { common_name: "a.test", ttl: "24h" },
    });
    assert.equal(rejected.statusCode, 400);
    assert.equal(rejected.json().code, "ttl_too_long");
    await ok(t, "POST", "/v1/short/issuer/short", { leaf_not_after_behavior: "truncate" });
    const clamped = await ok(t, "POST", "/v1/short/issue/r", { common_name: "a.test", ttl: "24h" });
    assert.equal(
      parse(clamped.certificate).notAfter.getTime(),
      parse(root.certificate).notAfter.getTime(),
    );
  });

  it("sets IPsec and flag usages", async () => {
    await ok(t, "POST", "/v1/pki/roles/vpn", {
      allow_any_name: true,
      key_type: "rsa",
      key_bits: 2048,
      server_flag: false,
      client_flag: false,
      code_signing_flag: true,
      email_protection_flag: true,
      ext_key_usage: "IPSECEndSystem",
      ext_key_usage_oids: "1.3.6.1.5.5.7.3.17",
      key_usage: "DigitalSignature,KeyEncipherment",
    });
    const issued = await ok(t, "POST", "/v1/pki/issue/vpn", {
      common_name: "gw.example.test",
      private_key_format: "pkcs8",
    });
    assert.match(issued.private_key, /BEGIN PRIVATE KEY/);
    assert.equal(issued.private_key_type, "rsa");
    const eku = parse(issued.certificate).getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual(
      [...(eku?.usages ?? [])],
      ["1.3.6.1.5.5.7.3.3", "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.5", "1.3.6.1.5.5.7.3.17"],
    );
  });

  it("signs CSRs and checks their names", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const { csr } = opensslCsr(files, "web", "/CN=signed.example.test", undefined, [
      "-addext",
      "subjectAltName=DNS:alt.example.test",
    ]);
    const signed = await ok(t, "POST", "/v1/pki/sign/web", { csr });
    assert.equal(signed.private_key, undefined);
    assert.deepEqual(altNames(parse(signed.certificate)).sort(), [
      "dns:alt.example.test",
      "dns:signed.example.test",
    ]);
    files.write("signed.pem", signed.certificate);
    files.write("root.pem", rootPem);
    const verified = run("openssl", [
      "verify",
      "-CAfile",
      `${files.dir}/root.pem`,
      `${files.dir}/signed.pem`,
    ]);
    assert.equal(verified.status, 0, verified.output);

    const outside = opensslCsr(files, "evil", "/CN=www.evil.test");
    const rejected = await t.request({
      method: "POST",
      url: "/v1/pki/sign/web",
      payload: { csr: outside.csr },
    });
    assert.equal(rejected.statusCode, 400);
    assert.equal(rejected.json().code, "name_not_allowed");
    assert.equal(rejected.json().field, "common_name");

    const rsa = opensslCsr(files, "rsa", "/CN=rsa.example.test", ["-newkey", "rsa:2048"]);
    const wrongType = await t.request({
      method: "POST",
      url: "/v1/pki/sign/web",
      payload: { csr: rsa.csr },
    });
    assert.equal(wrongType.statusCode, 400);
    assert.equal(wrongType.json().code, "unsupported_key_type");
  });

  it("requires sudo for sign-verbatim", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const { csr } = opensslCsr(files, "verbatim", "/O=Anything/CN=anything.else", undefined, [
      "-addext",
      "subjectAltName=DNS:anything.else",
    ]);
    for (const [name, capabilities] of [
      ["no-sudo", '["update"]'],
      ["with-sudo", '["update", "sudo"]'],
    ]) {
      const policy = `path "pki/sign-verbatim" { capabilities = ${capabilities} }`;
      const written = await t.request({
        method: "PUT",
        url: `/v1/sys/policies/acl/${name}`,
        payload: { policy },
      });
      assert.equal(written.statusCode, 204, written.body);
    }
    const token = async (policy: string) =>
      (
        await t.request({
          method: "POST",
          url: "/v1/auth/token/create",
          payload: { policies: [policy] },
        })
      ).json().auth.client_token as string;
    const denied = await t.request({
      method: "POST",
      url: "/v1/pki/sign-verbatim",
      payload: { csr },
      token: await token("no-sudo"),
    });
    assert.equal(denied.statusCode, 403);
    const allowed = await t.request({
      method: "POST",
      url: "/v1/pki/sign-verbatim",
      payload: { csr, ttl: "1h" },
      token: await token("with-sudo"),
    });
    assert.equal(allowed.statusCode, 200, allowed.body);
    const certificate = parse(allowed.json().data.certificate);
    assert.equal(certificate.subjectName.getField("O")[0], "Anything");
    assert.deepEqual(altNames(certificate), ["dns:anything.else"]);
  });
});
