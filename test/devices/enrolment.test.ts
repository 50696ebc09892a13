import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../src/engines/pki/x509.ts";
import {
  createDeviceApp,
  type DeviceApp,
  enrolDevice,
  errorCode,
  makeDeviceKeys,
  ok,
  registerDevice,
  TestClock,
} from "./fixtures.ts";

/** Sends an enrolment and returns the response. */
function enrol(t: DeviceApp, payload: object) {
  return t.request({ method: "POST", url: "/v1/devices/enroll", token: null, payload });
}

async function enrolPayload(name: string, token: string, type?: "ec" | "ed25519") {
  const keys = await makeDeviceKeys(name, type);
  return { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey };
}

describe("device enrolment", () => {
  let t: DeviceApp;
  const clock = new TestClock();

  before(async () => {
    t = await createDeviceApp({ clock, enrolmentRateLimit: { capacity: 1000 } });
  });
  after(() => t.close());

  it("enrols with a single-use token once", async () => {
    const token = await registerDevice(t, "single", { groups: ["lab"] });
    assert.match(token, /^kwb\.[A-Za-z0-9_-]{43}$/);
    const first = await enrol(t, await enrolPayload("single", token));
    assert.equal(first.statusCode, 200, first.body);
    const data = first.json().data;
    assert.equal(data.device, "single");
    assert.match(data.certificate, /^-----BEGIN CERTIFICATE-----/);
    assert.ok(Array.isArray(data.ca_chain));
    assert.ok(data.ca_chain.length >= 1);
    assert.ok(data.renew_after > Math.floor(clock.now().getTime() / 1000));
    assert.ok(data.renew_after < data.expiration);

    const again = await errorCode(
      t,
      {
        method: "POST",
        url: "/v1/devices/enroll",
        token: null,
        payload: await enrolPayload("single", token),
      },
      403,
    );
    assert.equal(again.code, "bootstrap_token_used");
  });

  it("allows as many enrolments as num_uses", async () => {
    const token = await registerDevice(t, "multi", {}, { num_uses: 2 });
    for (let use = 0; use < 2; use++) {
      const response = await enrol(t, await enrolPayload("multi", token));
      assert.equal(response.statusCode, 200, response.body);
    }
    const third = await enrol(t, await enrolPayload("multi", token));
    assert.equal(third.statusCode, 403);
    assert.equal(third.json().code, "bootstrap_token_used");
  });

  it("rejects an expired token", async () => {
    const token = await registerDevice(t, "late", {}, { ttl: "1h" });
    clock.advance(2 * 3600 * 1000);
    try {
      const response = await enrol(t, await enrolPayload("late", token));
      assert.equal(response.statusCode, 403, response.body);
      assert.equal(response.json().code, "bootstrap_token_expired");
    } finally {
      clock.advance(-2 * 3600 * 1000);
    }
  });

  it("rejects unknown and malformed tokens", async () => {
    for (const token of [`kwb.${"A".repeat(43)}`, "kwb.short", "not a token"]) {
      const response = await enrol(t, await enrolPayload("nobody", token));
      assert.equal(response.statusCode, 403, response.body);
      assert.equal(response.json().code, "bootstrap_token_invalid");
    }
  });

  it("rejects a CSR with another common name", async () => {
    const token = await registerDevice(t, "named");
    const failure = await errorCode(
      t,
      {
        method: "POST",
        url: "/v1/devices/enroll",
        token: null,
        payload: await enrolPayload("someone-else", token),
      },
      400,
    );
    assert.equal(failure.code, "invalid_field");
    assert.equal(failure.field, "csr");
    assert.match(failure.message, /common name/);
    // The rejected request used up nothing: the token still enrols.
    const response = await enrol(t, await enrolPayload("named", token));
    assert.equal(response.statusCode, 200, response.body);
  });

  it("rejects a CSR requesting alternative names", async () => {
    const token = await registerDevice(t, "plain-name");
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=plain-name",
      keys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: "elsewhere.example" },
          { type: "ip", value: "127.0.0.1" },
        ]),
      ],
    });
    const payload = await enrolPayload("plain-name", token);
    const failure = await errorCode(
      t,
      {
        method: "POST",
        url: "/v1/devices/enroll",
        token: null,
        payload: { ...payload, csr: csr.toString("pem") },
      },
      400,
    );
    assert.equal(failure.code, "invalid_field");
    assert.equal(failure.field, "csr");
    assert.match(failure.message, /alternative names/);
  });

  it("rejects CSR keys other than P-256 and Ed25519", async () => {
    const token = await registerDevice(t, "keytypes", {}, { num_uses: 5 });
    for (const type of ["rsa", "ec384"] as const) {
      const keys = await makeDeviceKeys("keytypes", type);
      const response = await enrol(t, {
        bootstrap_token: token,
        csr: keys.csr,
        encryption_key: keys.encryptionKey,
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().field, "csr");
    }
    const ed25519 = await enrol(t, await enrolPayload("keytypes", token, "ed25519"));
    assert.equal(ed25519.statusCode, 200, ed25519.body);
  });

  it("rejects a CSR that is not PEM", async () => {
    const token = await registerDevice(t, "garbled");
    const keys = await makeDeviceKeys("garbled");
    const response = await enrol(t, {
      bootstrap_token: token,
      csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
      encryption_key: keys.encryptionKey,
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "csr");
  });

  it("rejects bad encryption keys", async () => {
    const token = await registerDevice(t, "jwk");
    const keys = await makeDeviceKeys("jwk");
    const good = keys.encryptionKey;
    const flipped = Buffer.from(good.y, "base64url");
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    const cases: { key: unknown; field: string }[] = [
      { key: { ...good, d: good.x }, field: "encryption_key.d" },
      { key: { ...good, crv: "P-384" }, field: "encryption_key.crv" },
      { key: { ...good, kty: "OKP" }, field: "encryption_key.kty" },
      { key: { ...good, x: "short" }, field: "encryption_key.x" },
      { key: { ...good, y: `${good.y.slice(0, 42)}=` }, field: "encryption_key.y" },
      { key: { ...good, y: flipped.toString("base64url") }, field: "encryption_key" },
      { key: "a string", field: "encryption_key" },
    ];
    for (const { key, field } of cases) {
      const response = await enrol(t, {
        bootstrap_token: token,
        csr: keys.csr,
        encryption_key: key,
      });
      assert.equal(response.statusCode, 400, `${JSON.stringify(key)}: ${response.body}`);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, field);
    }
  });

  it("re-enrolment keeps device_id, supersedes certificate", async () => {
    const first = await enrolDevice(t, "again");
    const token = (await ok(t, "POST", "/v1/devices/registry/again/bootstrap-token", {}))
      .bootstrap_token;
    const keys = await makeDeviceKeys("again");
    const response = await enrol(t, {
      bootstrap_token: token,
      csr: keys.csr,
      encryption_key: keys.encryptionKey,
    });
    assert.equal(response.statusCode, 200, response.body);
    const second = response.json().data;
    assert.equal(second.device_id, first.deviceId);
    assert.notEqual(second.serial_number, first.serialNumber);

    const old = await ok(t, "GET", `/v1/pki/cert/${first.serialNumber}`);
    assert.ok(old.revocation_time > 0, "the superseded certificate is revoked");
    const device = await ok(t, "GET", "/v1/devices/registry/again");
    assert.equal(device.certificate_serial, second.serial_number);
    assert.equal(device.state, "enrolled");
  });

  it("refuses a revoked device", async () => {
    const enrolled = await enrolDevice(t, "stolen");
    const revoked = await ok(t, "POST", "/v1/devices/registry/stolen/revoke", {});
    assert.equal(revoked.state, "revoked");
    const certificate = await ok(t, "GET", `/v1/pki/cert/${enrolled.serialNumber}`);
    assert.ok(certificate.revocation_time > 0, "the identity certificate is revoked in the PKI");

    const token = await errorCode(
      t,
      { method: "POST", url: "/v1/devices/registry/stolen/bootstrap-token", payload: {} },
      409,
    );
    assert.equal(token.code, "device_revoked");
  });

  it("rejects enrolment after device revocation", async () => {
    const token = await registerDevice(t, "pending", {}, { num_uses: 2 });
    await ok(t, "POST", "/v1/devices/registry/pending/revoke", {});
    const response = await enrol(t, await enrolPayload("pending", token));
    assert.equal(response.statusCode, 403, response.body);
    assert.equal(response.json().code, "bootstrap_token_invalid");
  });

  it("deletes a device with its tokens", async () => {
    const token = await registerDevice(t, "gone");
    await ok(t, "DELETE", "/v1/devices/registry/gone", undefined, 204);
    const missing = await errorCode(t, { method: "GET", url: "/v1/devices/registry/gone" }, 404);
    assert.equal(missing.code, "not_found");
    await ok(t, "POST", "/v1/devices/registry/gone", {});
    const response = await enrol(t, await enrolPayload("gone", token));
    assert.equal(response.statusCode, 403);
    assert.equal(response.json().code, "bootstrap_token_invalid");
  });

  it("shows a device without secrets", async () => {
    await enrolDevice(t, "shown", { tags: { site: "berlin" }, groups: ["edge", "lab"] });
    const device = await ok(t, "GET", "/v1/devices/registry/shown");
    assert.deepEqual(device.tags, { site: "berlin" });
    assert.deepEqual(device.groups, ["edge", "lab"]);
    assert.equal(device.state, "enrolled");
    assert.match(device.encryption_key_id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(typeof device.enrolled_at, "string");
    assert.equal(device.bootstrapTokens, undefined);
    assert.equal(device.encryptionKey, undefined);
    const list = await ok(t, "GET", "/v1/devices/registry?list=true");
    assert.ok(list.keys.includes("shown"));
  });

  it("keeps tags and groups that an update omits", async () => {
    await ok(t, "POST", "/v1/devices/registry/kept", { tags: { a: "1" }, groups: ["g"] });
    const updated = await ok(t, "POST", "/v1/devices/registry/kept", { groups: ["h"] });
    assert.deepEqual(updated.tags, { a: "1" });
    assert.deepEqual(updated.groups, ["h"]);
    assert.equal(updated.state, "registered");
  });
});

describe("device enrolment rate limit", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp({ enrolmentRateLimit: { capacity: 3 } });
  });
  after(() => t.close());

  it("limits failed token checks per address", async () => {
    const payload = await enrolPayload("nobody", `kwb.${"B".repeat(43)}`);
    const codes: string[] = [];
    for (let attempt = 0; attempt < 4; attempt++) codes.push((await enrol(t, payload)).json().code);
    assert.deepEqual(codes.slice(0, 3), [
      "bootstrap_token_invalid",
      "bootstrap_token_invalid",
      "bootstrap_token_invalid",
    ]);
    assert.equal(codes[3], "rate_limited");
  });
});

describe("device registry configuration", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp({ unconfigured: true });
  });
  after(() => t.close());

  it("refuses enrolment before configuration", async () => {
    const token = await registerDevice(t, "early");
    const response = await enrol(t, await enrolPayload("early", token));
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(response.json().code, "invalid_state");
    const config = await errorCode(t, { method: "GET", url: "/v1/devices/config" }, 404);
    assert.equal(config.code, "not_found");
  });

  it("checks the mount and role", async () => {
    const cases = [
      { body: { pki_mount: "nothing", pki_role: "devices" }, field: "pki_mount" },
      { body: { pki_mount: "transit", pki_role: "devices" }, field: "pki_mount" },
      { body: { pki_mount: "pki", pki_role: "missing" }, field: "pki_role" },
      { body: { pki_mount: "pki", pki_role: "../x" }, field: "pki_role" },
      {
        body: { pki_mount: "pki", pki_role: "devices", identity_ttl: "soon" },
        field: "identity_ttl",
      },
    ];
    for (const { body, field } of cases) {
      const failure = await errorCode(
        t,
        { method: "POST", url: "/v1/devices/config", payload: body },
        400,
      );
      assert.equal(failure.code, "invalid_field", JSON.stringify(body));
      assert.equal(failure.field, field, JSON.stringify(body));
    }
    await ok(t, "POST", "/v1/pki/roles/unstored", { allow_any_name: true, no_store: true });
    const unstored = await errorCode(
      t,
      {
        method: "POST",
        url: "/v1/devices/config",
        payload: { pki_mount: "pki", pki_role: "unstored" },
      },
      400,
    );
    assert.equal(unstored.field, "pki_role");
  });

  it("stores and shows the settings", async () => {
    const written = await ok(t, "POST", "/v1/devices/config", {
      pki_mount: "pki",
      pki_role: "devices",
      identity_ttl: "48h",
    });
    assert.deepEqual(written, { pki_mount: "pki", pki_role: "devices", identity_ttl: 172_800 });
    assert.deepEqual(await ok(t, "GET", "/v1/devices/config"), written);
  });

  it("issues identity certificates with identity_ttl", async () => {
    const enrolled = await enrolDevice(t, "short-lived");
    const lifetime = enrolled.response.expiration - Math.floor(Date.now() / 1000);
    assert.ok(lifetime <= 172_800, `lifetime ${lifetime}`);
    assert.ok(lifetime > 172_000, `lifetime ${lifetime}`);
  });
});
