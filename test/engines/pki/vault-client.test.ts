import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import nodeVault from "node-vault";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp } from "./fixtures.ts";

// node-vault, a Vault client no one on this project wrote, drives the PKI
// engine over real HTTP on loopback through Vault's paths.
describe("node-vault PKI client", () => {
  let t: TestApp;
  let vault: nodeVault.client;

  before(async () => {
    t = await createPkiApp();
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    const port = (t.app.server.address() as { port: number }).port;
    vault = nodeVault({
      apiVersion: "v1",
      endpoint: `http://127.0.0.1:${port}`,
      token: t.rootToken,
      noCustomHTTPVerbs: true,
    });
  });
  after(() => t.close());

  it("drives roles, issue, sign and revoke", async () => {
    const root = await vault.write("pki/root/generate/internal", {
      common_name: "Vault Client Root",
      key_type: "ec",
      ttl: "8760h",
    });
    assert.match(root.data.certificate, /BEGIN CERTIFICATE/);

    await vault.write("pki/roles/svc", {
      allowed_domains: "svc.test",
      allow_subdomains: true,
      key_type: "ec",
      max_ttl: "72h",
    });
    const role = await vault.read("pki/roles/svc");
    assert.deepEqual(role.data.allowed_domains, ["svc.test"]);
    const roles = await vault.list("pki/roles");
    assert.deepEqual(roles.data.keys, ["svc"]);

    const issued = await vault.write("pki/issue/svc", { common_name: "api.svc.test", ttl: "1h" });
    assert.match(issued.data.private_key, /PRIVATE KEY/);
    assert.equal(
      new x509.X509Certificate(issued.data.certificate).subjectName.getField("CN")[0],
      "api.svc.test",
    );

    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as {
      privateKey: never;
      publicKey: never;
    };
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=worker.svc.test",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    });
    const signed = await vault.write("pki/sign/svc", { csr: csr.toString("pem"), ttl: "1h" });
    assert.equal(signed.data.private_key, undefined);

    const certs = await vault.list("pki/certs");
    assert.ok(certs.data.keys.includes(signed.data.serial_number));

    const revoked = await vault.write("pki/revoke", { serial_number: signed.data.serial_number });
    assert.equal(typeof revoked.data.revocation_time, "number");
    const read = await vault.read(`pki/cert/${signed.data.serial_number}`);
    assert.equal(read.data.revocation_time, revoked.data.revocation_time);

    await vault.delete("pki/roles/svc");
    await assert.rejects(vault.read("pki/roles/svc"), /404|not found/i);
  });
});
