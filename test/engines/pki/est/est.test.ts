import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeCertsOnly } from "../../../../src/engines/pki/est/pkcs7.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import { basic, createEstApp, createSecret, makeCsr, PKCS10 } from "./fixtures.ts";

function certificatesOf(body: string): x509.X509Certificate[] {
  return decodeCertsOnly(Buffer.from(body, "base64")).map((der) => new x509.X509Certificate(der));
}

describe("EST configuration", () => {
  let t: TestApp;
  before(async () => {
    t = await createEstApp();
  });
  after(async () => t.close());

  it("reads back the written configuration", async () => {
    const config = await ok(t, "GET", "/v1/pki/config/est");
    assert.equal(config.enabled, true);
    assert.equal(config.default_mount, true);
    assert.equal(config.default_path_policy, "role:devices");
    assert.deepEqual(config.label_to_path_policy, { sensors: "role:sensors" });
    assert.notEqual(config.last_updated, "");
  });

  it("rejects a second default mount", async () => {
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/pki2",
      payload: { type: "pki" },
    });
    assert.equal(mounted.statusCode, 204);
    const response = await t.request({
      method: "POST",
      url: "/v1/pki2/config/est",
      payload: { enabled: true, default_mount: true },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "default_mount");
  });

  const invalid = [
    { name: "fail sign-verbatim policy", payload: { default_path_policy: "sign-verbatim" } },
    { name: "fail malformed role name", payload: { default_path_policy: "role:a/b" } },
    { name: "fail reserved label", payload: { label_to_path_policy: { cacerts: "role:x" } } },
    { name: "fail label with slash", payload: { label_to_path_policy: { "a/b": "role:x" } } },
    { name: "fail unknown field", payload: { enable_sentinel_parsing: true } },
  ];
  for (const testCase of invalid) {
    it(testCase.name, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/pki/config/est",
        payload: testCase.payload,
      });
      assert.equal(response.statusCode, 400, response.body);
      const config = await ok(t, "GET", "/v1/pki/config/est");
      assert.equal(config.default_path_policy, "role:devices");
      assert.deepEqual(config.label_to_path_policy, { sensors: "role:sensors" });
    });
  }

  it("needs a token for configuration", async () => {
    const response = await t.request({ method: "GET", url: "/v1/pki/config/est", token: null });
    assert.equal(response.statusCode, 403);
  });
});

describe("EST enrolment secrets", () => {
  let t: TestApp;
  before(async () => {
    t = await createEstApp();
  });
  after(async () => t.close());

  it("returns the secret only once", async () => {
    const created = await ok(t, "POST", "/v1/pki/est/enrollment-secrets/dev-1", { ttl: "1h" });
    assert.match(created.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(created.used, false);
    const read = await ok(t, "GET", "/v1/pki/est/enrollment-secrets/dev-1");
    assert.equal(read.secret, undefined);
    assert.equal(read.device_id, "dev-1");
    assert.equal(read.expiration_time, created.expiration_time);
  });

  it("stores only a hash", async () => {
    const created = await ok(t, "POST", "/v1/pki/est/enrollment-secrets/dev-hash", {});
    const stored = await t.keyward
      .pki("pki")!
      .context.store.get<object>("est/enrollment-secrets/dev-hash");
    assert.ok(stored);
    assert.ok(!JSON.stringify(stored).includes(created.secret));
  });

  it("lists and deletes secrets", async () => {
    await ok(t, "POST", "/v1/pki/est/enrollment-secrets/dev-2", {});
    const listed = await ok(t, "GET", "/v1/pki/est/enrollment-secrets?list=true");
    assert.ok(listed.keys.includes("dev-2"));
    const deleted = await t.request({
      method: "DELETE",
      url: "/v1/pki/est/enrollment-secrets/dev-2",
    });
    assert.equal(deleted.statusCode, 204);
    const read = await t.request({ method: "GET", url: "/v1/pki/est/enrollment-secrets/dev-2" });
    assert.equal(read.statusCode, 404);
  });

  it("rejects an invalid device id", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/est/enrollment-secrets/a:b",
      payload: {},
    });
    assert.equal(response.statusCode, 400, response.body);
  });
});

describe("EST protocol", () => {
  let t: TestApp;
  before(async () => {
    t = await createEstApp();
  });
  after(async () => t.close());

  it("serves cacerts without a token", async () => {
    const response = await t.request({
      method: "GET",
      url: "/.well-known/est/cacerts",
      token: null,
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.match(String(response.headers["content-type"]), /^application\/pkcs7-mime/);
    const [root] = certificatesOf(response.body);
    assert.equal(root?.subject, "CN=EST Test Root");
  });

  it("serves the mount path too", async () => {
    const response = await t.request({ method: "GET", url: "/v1/pki/est/cacerts", token: null });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(certificatesOf(response.body).length, 1);
  });

  it("enrols with an enrolment secret", async () => {
    const secret = await createSecret(t, "dev-a");
    const csr = await makeCsr("CN=a.devices.example.com");
    const response = await t.request({
      method: "POST",
      url: "/.well-known/est/simpleenroll",
      token: null,
      headers: { ...PKCS10, authorization: basic("dev-a", secret) },
      payload: csr.base64,
    });
    assert.equal(response.statusCode, 200, response.body);
    const [certificate] = certificatesOf(response.body);
    assert.equal(certificate?.subject, "CN=a.devices.example.com");
    const record = await ok(t, "GET", "/v1/pki/est/enrollment-secrets/dev-a");
    assert.equal(record.used, true);
    assert.match(record.issued_serial_number, /^[0-9a-f:]+$/);
  });

  it("applies the label's role", async () => {
    const secret = await createSecret(t, "sensor-1");
    const csr = await makeCsr("CN=s1.sensors.example.com");
    const response = await t.request({
      method: "POST",
      url: "/.well-known/est/sensors/simpleenroll",
      token: null,
      headers: { ...PKCS10, authorization: basic("sensor-1", secret) },
      payload: csr.base64,
    });
    // The sensors role needs RSA keys, so the EC CSR is rejected and the secret stays unused.
    assert.equal(response.statusCode, 400, response.body);
    const record = await ok(t, "GET", "/v1/pki/est/enrollment-secrets/sensor-1");
    assert.equal(record.used, false);
  });

  it("returns CSR attributes for the role", async () => {
    const response = await t.request({
      method: "GET",
      url: "/.well-known/est/csrattrs",
      token: null,
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers["content-type"], "application/csrattrs");
    const der = Buffer.from(response.body, "base64");
    // SEQUENCE { SEQUENCE { id-ecPublicKey, SET { prime256v1 } }, ecdsa-with-SHA256 }
    assert.ok(der.includes(Buffer.from("2a8648ce3d0201", "hex")), "id-ecPublicKey");
    assert.ok(der.includes(Buffer.from("2a8648ce3d030107", "hex")), "prime256v1");
  });

  it("generates keys on the server", async () => {
    const secret = await createSecret(t, "dev-keygen");
    const csr = await makeCsr("CN=k.devices.example.com");
    const response = await t.request({
      method: "POST",
      url: "/.well-known/est/serverkeygen",
      token: null,
      headers: { ...PKCS10, authorization: basic("dev-keygen", secret) },
      payload: csr.base64,
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers["cache-control"], "no-store");
    const boundary = /boundary=([^;]+)/.exec(String(response.headers["content-type"]))?.[1];
    assert.ok(boundary);
    const parts = response.body.split(`--${boundary}`).slice(1, -1);
    assert.equal(parts.length, 2);
    assert.match(parts[0]!, /Content-Type: application\/pkcs8/);
    assert.match(parts[1]!, /Content-Type: application\/pkcs7-mime/);
    const [, keyBody] = parts[0]!.split("\r\n\r\n");
    const [, certificateBody] = parts[1]!.split("\r\n\r\n");
    const key = await webcryptoImport(Buffer.from(keyBody!, "base64"));
    const [certificate] = certificatesOf(certificateBody!);
    assert.equal(certificate?.subject, "CN=k.devices.example.com");
    const publicKey = await certificate!.publicKey.export();
    assert.equal(publicKey.algorithm.name, key.algorithm.name);
  });
});

async function webcryptoImport(pkcs8: Buffer) {
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
  ]);
}
