import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, runAsync, tempFiles } from "./fixtures.ts";

/** id-pkix-ocsp-nocheck and id-kp-OCSPSigning (RFC 6960 section 4.2.2.2). */
const OCSP_NOCHECK = "1.3.6.1.5.5.7.48.1.5";
const OCSP_SIGNING = "1.3.6.1.5.5.7.3.9";

describe("PKI delegated OCSP responder", () => {
  let t: TestApp;
  let base = "";
  const files = tempFiles();
  let rootId = "";
  let leafSerial = "";
  let responderPem = "";

  before(async () => {
    t = await createPkiApp();
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Delegating Root",
      key_type: "ec",
      ttl: "8760h",
    });
    rootId = root.issuer_id;
    files.write("root.pem", root.certificate);
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      max_ttl: "720h",
    });
    const leaf = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "ocsp.example.test" });
    leafSerial = leaf.serial_number;
    files.write("leaf.pem", leaf.certificate);
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  it("issues a responder certificate", async () => {
    const created = await ok(t, "POST", `/v1/pki/issuer/${rootId}/ocsp-responder`, {
      ttl: "24h",
    });
    assert.equal(created.private_key, undefined);
    responderPem = created.certificate;
    const certificate = new x509.X509Certificate(responderPem);
    assert.ok(certificate.getExtension(OCSP_NOCHECK));
    const usages = certificate.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [];
    assert.deepEqual([...usages], [OCSP_SIGNING]);
    const read = await ok(t, "GET", `/v1/pki/issuer/${rootId}/ocsp-responder`);
    assert.equal(read.serial_number, created.serial_number);
  });

  it("signs OCSP that openssl accepts", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const query = () =>
      runAsync("openssl", [
        "ocsp",
        "-issuer",
        `${files.dir}/root.pem`,
        "-cert",
        `${files.dir}/leaf.pem`,
        "-url",
        `${base}/v1/pki/ocsp`,
        "-CAfile",
        `${files.dir}/root.pem`,
        "-resp_text",
      ]);
    const good = await query();
    assert.equal(good.status, 0, good.output);
    assert.match(good.output, /Response verify OK/);
    assert.match(good.output, /leaf\.pem: good/);
    assert.match(good.output, /Responder Id: CN = Delegating Root OCSP responder/);

    await ok(t, "POST", "/v1/pki/revoke", { serial_number: leafSerial });
    const revoked = await query();
    assert.equal(revoked.status, 0, revoked.output);
    assert.match(revoked.output, /Response verify OK/);
    assert.match(revoked.output, /leaf\.pem: revoked/);
  });

  it("returns signing to the issuer", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const deleted = await t.request({
      method: "DELETE",
      url: `/v1/pki/issuer/${rootId}/ocsp-responder`,
    });
    assert.equal(deleted.statusCode, 204, deleted.body);
    const result = await runAsync("openssl", [
      "ocsp",
      "-issuer",
      `${files.dir}/root.pem`,
      "-cert",
      `${files.dir}/leaf.pem`,
      "-url",
      `${base}/v1/pki/ocsp`,
      "-CAfile",
      `${files.dir}/root.pem`,
      "-resp_text",
    ]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Responder Id: CN = Delegating Root\n/);
  });
});
