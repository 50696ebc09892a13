import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, run, tempFiles } from "./fixtures.ts";

describe("PKI issuer revocation", () => {
  let t: TestApp;
  const files = tempFiles();
  let rootId = "";
  let intermediateId = "";
  let intermediateSerial = "";
  let leafPem = "";

  const fetchText = async (url: string) => {
    const response = await t.request({ method: "GET", url, token: null });
    assert.equal(response.statusCode, 200, response.body);
    return response.body;
  };

  before(async () => {
    t = await createPkiApp();
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Revoking Root",
      key_type: "ec",
      ttl: "8760h",
    });
    rootId = root.issuer_id;
    files.write("root.pem", root.certificate);

    // An intermediate in the same mount: its CSR, signed by the root, imported back.
    const csr = await ok(t, "POST", "/v1/pki/intermediate/generate/internal", {
      common_name: "Revoked Intermediate",
      key_type: "ec",
    });
    const signed = await ok(t, "POST", "/v1/pki/root/sign-intermediate", {
      csr: csr.csr,
      common_name: "Revoked Intermediate",
      ttl: "4380h",
    });
    intermediateSerial = signed.serial_number;
    files.write("int.pem", signed.certificate);
    const imported = await ok(t, "POST", "/v1/pki/intermediate/set-signed", {
      certificate: signed.certificate,
    });
    intermediateId = imported.imported_issuers[0];

    await ok(t, "POST", "/v1/pki/roles/leaf", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      max_ttl: "720h",
      issuer_ref: intermediateId,
    });
    leafPem = (await ok(t, "POST", "/v1/pki/issue/leaf", { common_name: "a.example.test" }))
      .certificate;
    files.write("leaf.pem", leafPem);
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  it("revokes an issuer once", async () => {
    const revoked = await ok(t, "POST", `/v1/pki/issuer/${intermediateId}/revoke`);
    assert.equal(revoked.revoked, true);
    assert.equal(typeof revoked.revocation_time, "number");
    const again = await ok(t, "POST", `/v1/pki/issuer/${intermediateId}/revoke`);
    assert.equal(again.revocation_time_rfc3339, revoked.revocation_time_rfc3339);
    const read = await ok(t, "GET", `/v1/pki/issuer/${intermediateId}`);
    assert.equal(read.revoked, true);
  });

  it("lists the issuer on its parent's CRL", async () => {
    const response = await t.request({
      method: "GET",
      url: `/v1/pki/issuer/${rootId}/crl/der`,
      token: null,
    });
    assert.equal(response.statusCode, 200, response.body);
    const crl = new x509.X509Crl(response.rawPayload);
    const serials = crl.entries.map((entry) => entry.serialNumber.toLowerCase());
    assert.ok(serials.includes(intermediateSerial.replaceAll(":", "")), serials.join(","));
    const stored = await ok(t, "GET", `/v1/pki/cert/${intermediateSerial}`);
    assert.notEqual(stored.revocation_time, 0);
  });

  it("stops the revoked issuer issuing", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/issue/leaf",
      payload: { common_name: "b.example.test" },
    });
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(response.json().code, "invalid_state");
  });

  it("keeps the revoked issuer's CRL", async () => {
    const pem = await fetchText(`/v1/pki/issuer/${intermediateId}/crl/pem`);
    assert.match(pem, /BEGIN X509 CRL/);
  });

  it("fails openssl crl_check_all below it", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    files.write("root-crl.pem", await fetchText(`/v1/pki/issuer/${rootId}/crl/pem`));
    files.write("int-crl.pem", await fetchText(`/v1/pki/issuer/${intermediateId}/crl/pem`));
    const result = run("openssl", [
      "verify",
      "-crl_check_all",
      "-CAfile",
      `${files.dir}/root.pem`,
      "-untrusted",
      `${files.dir}/int.pem`,
      "-CRLfile",
      `${files.dir}/root-crl.pem`,
      "-CRLfile",
      `${files.dir}/int-crl.pem`,
      `${files.dir}/leaf.pem`,
    ]);
    assert.notEqual(result.status, 0, result.output);
    assert.match(result.output, /certificate revoked/);
  });
});
