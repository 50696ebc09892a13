import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import {
  basic,
  createEstApp,
  createSecret,
  type EstTlsServer,
  makeCsr,
  PKCS10,
  startTlsServer,
  tlsRequest,
} from "./fixtures.ts";

describe("EST over plain HTTP in dev mode", () => {
  let t: TestApp;

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false, devMode: true });
  });

  after(async () => {
    await t?.close();
  });

  it("enrols without allow_insecure_http", async () => {
    const secret = await createSecret(t, "dev-1");
    const response = await t.request({
      method: "POST",
      url: "/.well-known/est/simpleenroll",
      token: null,
      headers: { ...PKCS10, authorization: basic("dev-1", secret) },
      payload: (await makeCsr("CN=dev-1.devices.example.com")).base64,
    });
    assert.equal(response.statusCode, 200, response.body);
  });
});

describe("EST over plain HTTP", () => {
  let t: TestApp;
  let server: EstTlsServer;

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false });
    server = await startTlsServer(t);
  });

  after(async () => {
    await server?.close();
    await t?.close();
  });

  const enrolOverHttp = async (deviceId: string, secret: string) =>
    t.request({
      method: "POST",
      url: "/.well-known/est/simpleenroll",
      token: null,
      headers: { ...PKCS10, authorization: basic(deviceId, secret) },
      payload: (await makeCsr(`CN=${deviceId}.devices.example.com`)).base64,
    });

  it("rejects enrolment with 403 text", async () => {
    const secret = await createSecret(t, "plain-1");
    const response = await enrolOverHttp("plain-1", secret);
    assert.equal(response.statusCode, 403, response.body);
    assert.match(String(response.headers["content-type"]), /^text\/plain/);
    assert.match(response.body, /needs HTTPS/);
    assert.match(response.body, /allow_insecure_http/);
  });

  it("leaves the secret unused", async () => {
    const secret = await createSecret(t, "plain-2");
    await enrolOverHttp("plain-2", secret);
    const record = await ok(t, "GET", "/v1/pki/est/enrollment-secrets/plain-2");
    assert.equal(record.used, false);
  });

  for (const path of ["cacerts", "csrattrs", "sensors/cacerts"]) {
    it(`rejects ${path} over HTTP`, async () => {
      const response = await t.request({
        method: "GET",
        url: `/.well-known/est/${path}`,
        token: null,
      });
      assert.equal(response.statusCode, 403, response.body);
    });
  }

  it("rejects mount path over HTTP", async () => {
    const response = await t.request({ method: "GET", url: "/v1/pki/est/cacerts", token: null });
    assert.equal(response.statusCode, 403, response.body);
  });

  it("enrols over TLS without the flag", async () => {
    const secret = await createSecret(t, "tls-1");
    const response = await tlsRequest(server, {
      method: "POST",
      path: "/.well-known/est/simpleenroll",
      headers: { ...PKCS10, authorization: basic("tls-1", secret) },
      body: (await makeCsr("CN=tls-1.devices.example.com")).base64,
    });
    assert.equal(response.status, 200, response.body);
  });

  it("allows HTTP once flag set", async () => {
    await ok(t, "POST", "/v1/pki/config/est", { allow_insecure_http: true });
    try {
      const secret = await createSecret(t, "plain-3");
      const response = await enrolOverHttp("plain-3", secret);
      assert.equal(response.statusCode, 200, response.body);
    } finally {
      await ok(t, "POST", "/v1/pki/config/est", { allow_insecure_http: false });
    }
  });

  it("defaults the flag to false", async () => {
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/fresh",
      payload: { type: "pki" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const config = await ok(t, "GET", "/v1/fresh/config/est");
    assert.equal(config.allow_insecure_http, false);
  });
});

describe("EST secrets bound to a label", () => {
  let t: TestApp;

  before(async () => {
    t = await createEstApp();
    await ok(t, "POST", "/v1/pki/config/est", {
      label_to_path_policy: { sensors: "role:sensors", fleet: "role:devices" },
    });
  });

  after(async () => t?.close());

  const labelledSecret = async (deviceId: string, label: string) => {
    const data = await ok(t, "POST", `/v1/pki/est/enrollment-secrets/${deviceId}`, { label });
    assert.equal(data.label, label);
    return data.secret as string;
  };

  const enrol = async (path: string, deviceId: string, secret: string) =>
    t.request({
      method: "POST",
      url: `/.well-known/est/${path}`,
      token: null,
      headers: { ...PKCS10, authorization: basic(deviceId, secret) },
      payload: (await makeCsr(`CN=${deviceId}.devices.example.com`)).base64,
    });

  it("enrols at its own label", async () => {
    const secret = await labelledSecret("fleet-1", "fleet");
    const response = await enrol("fleet/simpleenroll", "fleet-1", secret);
    assert.equal(response.statusCode, 200, response.body);
  });

  for (const path of ["simpleenroll", "sensors/simpleenroll", "sensors/serverkeygen"]) {
    it(`fail at ${path}`, async () => {
      const deviceId = `fleet-${path.replaceAll("/", "-")}`;
      const secret = await labelledSecret(deviceId, "fleet");
      const response = await enrol(path, deviceId, secret);
      assert.equal(response.statusCode, 401, response.body);
      const record = await ok(t, "GET", `/v1/pki/est/enrollment-secrets/${deviceId}`);
      assert.equal(record.used, false);
      assert.equal(record.label, "fleet");
    });
  }

  it("keeps new secret out of audit", async () => {
    const secret = await createSecret(t, "audited-1");
    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=pki/est/enrollment-secrets/&type=response",
    });
    assert.equal(search.statusCode, 200, search.body);
    assert.ok(!search.body.includes(secret), "the enrolment secret reached the audit log");
  });

  it("unlabelled secret works at any label", async () => {
    const secret = await createSecret(t, "anywhere-1");
    assert.equal((await enrol("fleet/simpleenroll", "anywhere-1", secret)).statusCode, 200);
  });

  for (const [name, label] of [
    ["fail unconfigured label", "nowhere"],
    ["fail malformed label", "a/b"],
    ["fail reserved label", "cacerts"],
  ] as const) {
    it(name, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/pki/est/enrollment-secrets/label-case",
        payload: { label },
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().field, "label");
      const read = await t.request({
        method: "GET",
        url: "/v1/pki/est/enrollment-secrets/label-case",
      });
      assert.equal(read.statusCode, 404);
    });
  }
});
