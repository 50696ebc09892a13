import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import { basic, createEstApp, createSecret, makeCsr, PKCS10 } from "./fixtures.ts";

interface Request {
  url: string;
  headers: Record<string, string>;
  body: string;
}

interface Case {
  name: string;
  /** Builds the request; `secret` is a fresh enrolment secret of device `deviceId`. */
  build(deviceId: string, secret: string): Promise<Request>;
  status: number;
  /** A fragment of the text error message. */
  message: RegExp;
}

const enrol = "/.well-known/est/simpleenroll";

/** Builds a simpleenroll request for a valid CSR, with overrides. */
async function enrolRequest(
  deviceId: string,
  secret: string,
  overrides: Partial<Request> = {},
): Promise<Request> {
  const csr = await makeCsr("CN=ok.devices.example.com");
  return {
    url: enrol,
    headers: { ...PKCS10, authorization: basic(deviceId, secret) },
    body: csr.base64,
    ...overrides,
  };
}

const cases: Case[] = [
  {
    name: "fail malformed base64",
    build: async (id, secret) => enrolRequest(id, secret, { body: "not*base64!" }),
    status: 400,
    message: /not base64/,
  },
  {
    name: "fail base64 of wrong length",
    build: async (id, secret) => enrolRequest(id, secret, { body: "QUJD" + "QQ" }),
    status: 400,
    message: /not base64/,
  },
  {
    name: "fail body that is not a CSR",
    build: async (id, secret) =>
      enrolRequest(id, secret, { body: Buffer.from("hello, EST").toString("base64") }),
    status: 400,
    message: /not a valid certificate signing request/,
  },
  {
    name: "fail PEM instead of base64 DER",
    build: async (id, secret) =>
      enrolRequest(id, secret, { body: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n" }),
    status: 400,
    message: /not base64/,
  },
  {
    name: "fail bad CSR signature",
    build: async (id, secret) => {
      const der = Buffer.from((await makeCsr("CN=ok.devices.example.com")).base64, "base64");
      der[der.length - 1] = der[der.length - 1]! ^ 0x01;
      return enrolRequest(id, secret, { body: der.toString("base64") });
    },
    status: 400,
    message: /does not verify/,
  },
  {
    name: "fail name outside the role",
    build: async (id, secret) =>
      enrolRequest(id, secret, { body: (await makeCsr("CN=www.example.org")).base64 }),
    status: 400,
    message: /does not allow/,
  },
  {
    name: "fail SAN outside the role",
    build: async (id, secret) =>
      enrolRequest(id, secret, {
        body: (await makeCsr("CN=ok.devices.example.com", ["other.example.org"])).base64,
      }),
    status: 400,
    message: /does not allow/,
  },
  {
    name: "fail wrong content type",
    build: async (id, secret) =>
      enrolRequest(id, secret, {
        headers: { "content-type": "application/json", authorization: basic(id, secret) },
      }),
    status: 415,
    message: /application\/pkcs10/,
  },
  {
    name: "fail missing credentials",
    build: async (id, secret) => enrolRequest(id, secret, { headers: PKCS10 }),
    status: 401,
    message: /credentials are missing or invalid/,
  },
  {
    name: "fail wrong Basic password",
    build: async (id, secret) =>
      enrolRequest(id, secret, {
        headers: { ...PKCS10, authorization: basic(id, `${secret}x`) },
      }),
    status: 401,
    message: /credentials are missing or invalid/,
  },
  {
    name: "fail unknown device id",
    build: async (id, secret) =>
      enrolRequest(id, secret, { headers: { ...PKCS10, authorization: basic("nobody", secret) } }),
    status: 401,
    message: /credentials are missing or invalid/,
  },
  {
    name: "fail malformed Basic header",
    build: async (id, secret) =>
      enrolRequest(id, secret, { headers: { ...PKCS10, authorization: "Basic ???" } }),
    status: 401,
    message: /not valid HTTP Basic/,
  },
  {
    name: "fail unknown label",
    build: async (id, secret) =>
      enrolRequest(id, secret, { url: "/.well-known/est/nosuchlabel/simpleenroll" }),
    status: 404,
    message: /label "nosuchlabel" is not configured/,
  },
  {
    name: "fail unknown label with a control character",
    build: async (id, secret) =>
      enrolRequest(id, secret, { url: "/.well-known/est/bad%00label/simpleenroll" }),
    status: 404,
    // The character is escaped, not echoed.
    message: /label "bad\\u0000label" is not configured/,
  },
  {
    name: "fail mount without EST",
    build: async (id, secret) => enrolRequest(id, secret, { url: "/v1/plain/est/simpleenroll" }),
    status: 404,
    message: /not enabled on mount "plain"/,
  },
  {
    name: "fail reenroll without client certificate",
    build: async (id, secret) =>
      enrolRequest(id, secret, { url: "/.well-known/est/simplereenroll" }),
    status: 403,
    message: /needs a TLS client certificate/,
  },
  {
    name: "fail serverkeygen name outside the role",
    build: async (id, secret) =>
      enrolRequest(id, secret, {
        url: "/.well-known/est/serverkeygen",
        body: (await makeCsr("CN=www.example.org")).base64,
      }),
    status: 400,
    message: /does not allow/,
  },
];

describe("EST bad input", () => {
  let t: TestApp;
  before(async () => {
    t = await createEstApp();
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/plain",
      payload: { type: "pki" },
    });
    assert.equal(mounted.statusCode, 204);
  });
  after(async () => t.close());

  const issuedCount = async () => (await t.keyward.pki("pki")!.inventory.serials()).length;

  cases.forEach((testCase, index) => {
    it(testCase.name, async () => {
      const deviceId = `bad-${index}`;
      const secret = await createSecret(t, deviceId);
      const before = await issuedCount();
      const request = await testCase.build(deviceId, secret);
      const response = await t.request({
        method: "POST",
        url: request.url,
        token: null,
        headers: request.headers,
        payload: request.body,
      });

      assert.equal(response.statusCode, testCase.status, response.body);
      assert.match(String(response.headers["content-type"]), /^text\/plain/);
      assert.match(response.body, testCase.message);
      if (testCase.status === 401) {
        assert.match(String(response.headers["www-authenticate"]), /^Basic realm=/);
      }
      assert.equal(await issuedCount(), before, "no certificate was issued");
      const record = await ok(t, "GET", `/v1/pki/est/enrollment-secrets/${deviceId}`);
      assert.equal(record.used, false, "the enrolment secret is still unused");
    });
  });

  it("fail reused enrolment secret", async () => {
    const secret = await createSecret(t, "reuse");
    const first = await t.request({
      method: "POST",
      url: enrol,
      token: null,
      headers: { ...PKCS10, authorization: basic("reuse", secret) },
      payload: (await makeCsr("CN=first.devices.example.com")).base64,
    });
    assert.equal(first.statusCode, 200, first.body);
    const before = await issuedCount();

    const second = await t.request({
      method: "POST",
      url: enrol,
      token: null,
      headers: { ...PKCS10, authorization: basic("reuse", secret) },
      payload: (await makeCsr("CN=second.devices.example.com")).base64,
    });
    assert.equal(second.statusCode, 401, second.body);
    assert.equal(await issuedCount(), before);
  });

  it("fail expired enrolment secret", async () => {
    const secret = await createSecret(t, "expired");
    const store = t.keyward.pki("pki")!.context.store;
    const record = await store.get<{ expiresAt: string }>("est/enrollment-secrets/expired");
    await store.put("est/enrollment-secrets/expired", {
      ...record,
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    const before = await issuedCount();

    const response = await t.request({
      method: "POST",
      url: enrol,
      token: null,
      headers: { ...PKCS10, authorization: basic("expired", secret) },
      payload: (await makeCsr("CN=late.devices.example.com")).base64,
    });
    assert.equal(response.statusCode, 401, response.body);
    assert.equal(await issuedCount(), before);
  });

  it("fail concurrent use of one secret", async () => {
    const secret = await createSecret(t, "race");
    const send = async (name: string) =>
      t.request({
        method: "POST",
        url: enrol,
        token: null,
        headers: { ...PKCS10, authorization: basic("race", secret) },
        payload: (await makeCsr(`CN=${name}.devices.example.com`)).base64,
      });
    const responses = await Promise.all([send("r1"), send("r2"), send("r3")]);
    const statuses = responses.map((response) => response.statusCode).sort();
    assert.deepEqual(statuses, [200, 401, 401]);
  });
});

describe("EST failed-attempt limit", () => {
  let t: TestApp;
  before(async () => {
    t = await createEstApp();
  });
  after(async () => t.close());

  it("limits failed Basic attempts", async () => {
    const secret = await createSecret(t, "limited");
    const csr = (await makeCsr("CN=l.devices.example.com")).base64;
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 12; attempt++) {
      const response = await t.request({
        method: "POST",
        url: enrol,
        token: null,
        headers: { ...PKCS10, authorization: basic("limited", "wrong") },
        payload: csr,
      });
      statuses.push(response.statusCode);
    }
    assert.ok(statuses.slice(0, 10).every((status) => status === 401));
    assert.equal(statuses[11], 429);

    // The right secret from the same address is limited too, until the allowance refills.
    const response = await t.request({
      method: "POST",
      url: enrol,
      token: null,
      headers: { ...PKCS10, authorization: basic("limited", secret) },
      payload: csr,
    });
    assert.equal(response.statusCode, 429);
    assert.ok(response.headers["retry-after"]);
  });
});
