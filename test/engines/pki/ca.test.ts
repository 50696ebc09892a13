import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { certificateNames } from "../../../src/engines/pki/der.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, opensslCsr, run, tempFiles } from "./fixtures.ts";

const parse = (pem: string) => new x509.X509Certificate(pem);

describe("PKI certificate authorities", () => {
  let t: TestApp;
  const files = tempFiles();

  before(async () => {
    t = await createPkiApp();
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  const keyTypes = [
    { name: "ok ec p-256", key_type: "ec", key_bits: 256, algorithm: "ECDSA" },
    { name: "ok ec p-384", key_type: "ec", key_bits: 384, algorithm: "ECDSA" },
    { name: "ok ed25519", key_type: "ed25519", key_bits: 0, algorithm: "Ed25519" },
    { name: "ok rsa 2048", key_type: "rsa", key_bits: 2048, algorithm: "RSASSA-PKCS1-v1_5" },
    { name: "ok rsa 3072", key_type: "rsa", key_bits: 3072, algorithm: "RSASSA-PKCS1-v1_5" },
  ];
  for (const keyType of keyTypes) {
    it(`generates root ${keyType.name}`, async () => {
      const mount = `root-${keyType.key_type}-${keyType.key_bits}`;
      await t.request({
        method: "POST",
        url: `/v1/sys/mounts/${mount}`,
        payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
      });
      const root = await ok(t, "POST", `/v1/${mount}/root/generate/internal`, {
        common_name: `Root ${keyType.name}`,
        key_type: keyType.key_type,
        key_bits: keyType.key_bits,
        ttl: "87600h",
      });
      assert.equal(root.private_key, undefined);
      const certificate = parse(root.certificate);
      assert.equal(certificate.publicKey.algorithm.name, keyType.algorithm);
      assert.equal(certificate.getExtension(x509.BasicConstraintsExtension)?.ca, true);
      assert.equal(certificate.getExtension(x509.BasicConstraintsExtension)?.critical, true);
      assert.ok(await certificate.verify({ signatureOnly: true }));
      assert.match(root.serial_number, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    });
  }

  it("rejects unsupported key sizes", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/root/generate/internal",
      payload: { common_name: "x", key_type: "rsa", key_bits: 1024 },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().field, "key_bits");
  });

  it("returns the key only when exported", async () => {
    await t.request({ method: "POST", url: "/v1/sys/mounts/exported", payload: { type: "pki" } });
    const root = await ok(t, "POST", "/v1/exported/root/generate/exported", {
      common_name: "Exported Root",
      key_type: "ec",
      ttl: "720h",
    });
    assert.match(root.private_key, /BEGIN EC PRIVATE KEY/);
    assert.equal(root.private_key_type, "ec");
    const issuer = await ok(t, "GET", "/v1/exported/issuer/default");
    assert.equal(issuer.private_key, undefined);
    assert.doesNotMatch(JSON.stringify(issuer), /PRIVATE KEY/);
  });

  it("builds an intermediate with constraints", async () => {
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Main Root",
      key_type: "ec",
      ttl: "87600h",
      issuer_name: "main-root",
    });
    await t.request({
      method: "POST",
      url: "/v1/sys/mounts/int",
      payload: { type: "pki", config: { max_lease_ttl: "43800h" } },
    });
    const generated = await ok(t, "POST", "/v1/int/intermediate/generate/internal", {
      common_name: "Int CA",
      key_type: "ec",
    });
    assert.match(generated.csr, /BEGIN CERTIFICATE REQUEST/);
    const signed = await ok(t, "POST", "/v1/pki/root/sign-intermediate", {
      csr: generated.csr,
      common_name: "Int CA",
      ttl: "8760h",
      max_path_length: 1,
      permitted_dns_domains: "example.test",
      excluded_dns_domains: ["bad.example.test"],
    });
    const certificate = parse(signed.certificate);
    assert.equal(certificate.getExtension(x509.BasicConstraintsExtension)?.pathLength, 1);
    const constraints = certificate.getExtension("2.5.29.30");
    assert.ok(constraints);
    assert.equal(constraints.critical, true);
    const root = parse((await ok(t, "GET", "/v1/pki/cert/ca")).certificate);
    // RFC 5280 4.1.2.4: issuer name equals the CA's subject byte for byte.
    assert.deepEqual(
      Buffer.from(certificateNames(new Uint8Array(certificate.rawData)).issuer),
      Buffer.from(certificateNames(new Uint8Array(root.rawData)).subject),
    );
    const imported = await ok(t, "POST", "/v1/int/intermediate/set-signed", {
      certificate: signed.certificate,
    });
    assert.equal(imported.imported_issuers.length, 1);
    const issuer = await ok(t, "GET", "/v1/int/issuer/default");
    assert.equal(issuer.ca_chain.length, 1);
  });

  it("rejects set-signed without its key", async () => {
    const other = await ok(t, "GET", "/v1/exported/cert/ca");
    const response = await t.request({
      method: "POST",
      url: "/v1/int/intermediate/set-signed",
      payload: { certificate: other.certificate },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().field, "certificate");
  });

  it("imports an external CA bundle", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const key = `${files.dir}/ext.key`;
    const cert = `${files.dir}/ext.pem`;
    const made = run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "30",
      "-subj",
      "/C=DE/O=Extern \u00c4G/CN=External Root",
      "-utf8",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert.equal(made.status, 0, made.output);
    const pem = run("cat", [cert]).output;
    await t.request({ method: "POST", url: "/v1/sys/mounts/ext", payload: { type: "pki" } });
    const certOnly = await ok(t, "POST", "/v1/ext/issuers/import/cert", { pem_bundle: pem });
    assert.equal(certOnly.imported_issuers.length, 1);
    assert.equal(certOnly.mapping[certOnly.imported_issuers[0]], "");
    const withKey = await ok(t, "POST", "/v1/ext/config/ca", {
      pem_bundle: `${run("cat", [key]).output}\n${pem}`,
    });
    assert.equal(withKey.imported_keys.length, 1);
    assert.deepEqual(withKey.existing_issuers, certOnly.imported_issuers);

    // The imported issuer signs once its key is present, with its subject copied byte for byte.
    const issuer = await ok(t, "GET", "/v1/ext/issuer/default");
    assert.notEqual(issuer.key_id, "");
    await ok(t, "POST", "/v1/ext/roles/any", { allow_any_name: true, key_type: "ec", ttl: "24h" });
    const leaf = await ok(t, "POST", "/v1/ext/issue/any", { common_name: "host.example.net" });
    const leafNames = certificateNames(new Uint8Array(parse(leaf.certificate).rawData));
    const caNames = certificateNames(new Uint8Array(parse(pem).rawData));
    assert.deepEqual(Buffer.from(leafNames.issuer), Buffer.from(caNames.subject));
    files.write("ext-leaf.pem", leaf.certificate);
    const verified = run("openssl", ["verify", "-CAfile", cert, `${files.dir}/ext-leaf.pem`]);
    assert.equal(verified.status, 0, verified.output);
  });

  it("rotates roots before switching default", async () => {
    await t.request({
      method: "POST",
      url: "/v1/sys/mounts/rot",
      payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
    });
    const first = await ok(t, "POST", "/v1/rot/root/generate/internal", {
      common_name: "Root G1",
      key_type: "ec",
      ttl: "8760h",
      issuer_name: "g1",
    });
    const second = await ok(t, "POST", "/v1/rot/root/rotate/internal", {
      common_name: "Root G2",
      key_type: "ec",
      ttl: "17520h",
      issuer_name: "g2",
    });
    assert.equal((await ok(t, "GET", "/v1/rot/config/issuers")).default, first.issuer_id);
    const published = await t.request({ method: "GET", url: "/v1/rot/ca_chain", token: null });
    assert.equal(published.statusCode, 200);
    assert.ok(published.body.includes(first.certificate.trim()));
    assert.ok(published.body.includes(second.certificate.trim()));

    await ok(t, "POST", "/v1/rot/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "1h",
    });
    const old = await ok(t, "POST", "/v1/rot/issue/web", { common_name: "a.example.test" });
    assert.equal(old.issuing_ca.trim(), first.certificate.trim());

    await ok(t, "POST", "/v1/rot/root/replace", { default: "g2" });
    const fresh = await ok(t, "POST", "/v1/rot/issue/web", { common_name: "b.example.test" });
    assert.equal(fresh.issuing_ca.trim(), second.certificate.trim());
    const viaOld = await ok(t, "POST", "/v1/rot/issuer/g1/issue/web", {
      common_name: "c.example.test",
    });
    assert.equal(viaOld.issuing_ca.trim(), first.certificate.trim());
    // The old issuer keeps serving its CRL.
    const crl = await t.request({ method: "GET", url: "/v1/rot/issuer/g1/crl/der", token: null });
    assert.equal(crl.statusCode, 200);
    assert.equal(crl.headers["content-type"], "application/pkix-crl");
  });

  it("cross-signs with sign-intermediate", async () => {
    const g2 = await ok(t, "GET", "/v1/rot/issuer/g2/json");
    const newRoot = parse(g2.certificate);
    // A CSR for the new root's key is not available, so cross-signing uses
    // another mount's key; the chain must then lead to the signing issuer.
    await t.request({ method: "POST", url: "/v1/sys/mounts/cross", payload: { type: "pki" } });
    const csr = await ok(t, "POST", "/v1/cross/intermediate/generate/internal", {
      common_name: newRoot.subjectName.getField("CN")[0],
      key_type: "ec",
    });
    const crossed = await ok(t, "POST", "/v1/rot/issuer/g1/sign-intermediate", {
      csr: csr.csr,
      common_name: "Root G2",
      ttl: "720h",
    });
    assert.equal(
      crossed.issuing_ca.trim(),
      (await ok(t, "GET", "/v1/rot/issuer/g1/json")).certificate.trim(),
    );
    assert.equal(crossed.ca_chain.length, 1);
  });

  it("lists, renames and reads issuers", async () => {
    const listed = await t.request({
      method: "GET",
      url: "/v1/rot/issuers?list=true",
      token: null,
    });
    assert.equal(listed.statusCode, 200);
    const data = listed.json().data;
    assert.equal(data.keys.length, 2);
    const defaults = Object.values(data.key_info as Record<string, { is_default: boolean }>).filter(
      (info) => info.is_default,
    );
    assert.equal(defaults.length, 1);

    const renamed = await ok(t, "POST", "/v1/rot/issuer/g1", {
      issuer_name: "first",
      leaf_not_after_behavior: "truncate",
    });
    assert.equal(renamed.issuer_name, "first");
    assert.equal(renamed.leaf_not_after_behavior, "truncate");
    const pem = await t.request({ method: "GET", url: "/v1/rot/issuer/first/pem", token: null });
    assert.match(pem.body, /BEGIN CERTIFICATE/);
    const der = await t.request({ method: "GET", url: "/v1/rot/issuer/first/der", token: null });
    assert.equal(der.headers["content-type"], "application/pkix-cert");
    const taken = await t.request({
      method: "POST",
      url: "/v1/rot/issuer/first",
      payload: { issuer_name: "g2" },
    });
    assert.equal(taken.statusCode, 409);
  });

  it("serves CA downloads without a token", async () => {
    for (const path of [
      "ca",
      "ca/pem",
      "ca_chain",
      "cert/ca",
      "cert/ca_chain",
      "issuer/default/json",
    ]) {
      const response = await t.request({ method: "GET", url: `/v1/pki/${path}`, token: null });
      assert.equal(response.statusCode, 200, `${path}: ${response.body}`);
    }
    const roles = await t.request({ method: "GET", url: "/v1/pki/roles?list=true", token: null });
    assert.equal(roles.statusCode, 403);
  });

  it("signs intermediate CSRs from openssl", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const { csr } = opensslCsr(files, "sub", "/CN=Sub CA");
    const signed = await ok(t, "POST", "/v1/pki/root/sign-intermediate", {
      csr,
      use_csr_values: true,
      ttl: "720h",
    });
    assert.equal(parse(signed.certificate).subjectName.getField("CN")[0], "Sub CA");
  });
});
