import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

describe("API basics", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp({ maxRequestBytes: 4096 });
  });
  after(() => t.close());

  it("rejects an unknown route with 404", async () => {
    const response = await t.request({ method: "GET", url: "/v1/nowhere/at/all" });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().code, "route_not_found");
    assert.ok(response.json().request_id);
  });

  it("rejects a wrong method with 405", async () => {
    const response = await t.request({ method: "GET", url: "/v1/transit/encrypt/some-key" });
    assert.equal(response.statusCode, 405);
    assert.equal(response.json().code, "method_not_allowed");
    assert.match(String(response.headers.allow), /POST/);
    const seal = await t.request({ method: "GET", url: "/v1/sys/seal" });
    assert.equal(seal.statusCode, 405);
  });

  it("rejects undecodable paths in the error shape", async () => {
    for (const url of [
      "/v1/transit/keys/%FF",
      "/v1/transit/keys/%zz",
      `/v1/transit/keys/${"a".repeat(600)}`,
    ]) {
      const response = await t.request({ method: "GET", url });
      assert.equal(response.statusCode, 400, url);
      assert.equal(response.json().code, "invalid_request", url);
      assert.ok(Array.isArray(response.json().errors), url);
    }
  });

  it("rejects informational health codes", async () => {
    const response = await t.request({
      method: "GET",
      url: "/v1/sys/health?activecode=100",
      token: null,
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().field, "activecode");
  });

  it("rejects a body that is not JSON", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/other",
      payload: "{not json",
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, "invalid_json");
  });

  it("rejects a body over the limit with 413", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/anything",
      payload: { plaintext: "A".repeat(8192) },
    });
    assert.equal(response.statusCode, 413);
    assert.equal(response.json().code, "body_too_large");
  });

  it("parses JSON sent without a content type", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/v1/sys/mounts/no-content-type",
      payload: Buffer.from(JSON.stringify({ type: "transit" })),
      headers: { "x-vault-token": t.rootToken },
    });
    assert.equal(response.statusCode, 204);
  });

  it("serves an OpenAPI document", async () => {
    const response = await t.request({ method: "GET", url: "/v1/sys/openapi" });
    assert.equal(response.statusCode, 200);
    const document = response.json();
    assert.match(document.openapi, /^3\./);
    assert.ok(document.paths["/v1/sys/init"]);
    assert.ok(Object.keys(document.paths).some((path) => path.includes("encrypt")));
  });

  it("lists, adds and removes mounts", async () => {
    const list = await t.request({ method: "GET", url: "/v1/sys/mounts" });
    assert.equal(list.statusCode, 200);
    assert.equal(list.json().data["transit/"].type, "transit");

    const added = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/payments",
      payload: { type: "transit" },
    });
    assert.equal(added.statusCode, 204);
    const duplicate = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/payments",
      payload: { type: "transit" },
    });
    assert.equal(duplicate.statusCode, 409);
    const reserved = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/sys",
      payload: { type: "transit" },
    });
    assert.equal(reserved.statusCode, 400);
    const badType = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/x",
      payload: { type: "kv" },
    });
    assert.equal(badType.statusCode, 400);
    assert.equal(badType.json().field, "type");

    const created = await t.request({
      method: "POST",
      url: "/v1/payments/keys/k1",
      payload: { type: "aes256-gcm96" },
    });
    assert.ok(created.statusCode < 300, created.body);
    const removed = await t.request({ method: "DELETE", url: "/v1/sys/mounts/payments" });
    assert.equal(removed.statusCode, 204);
    const gone = await t.request({ method: "GET", url: "/v1/payments/keys/k1" });
    assert.equal(gone.statusCode, 404);
  });
});

describe("metrics", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("exports requests, seal state and keys", async () => {
    await t.request({
      method: "POST",
      url: "/v1/transit/keys/metered",
      payload: { type: "ed25519" },
    });
    await t.request({ method: "GET", url: "/v1/transit/keys/metered" });
    const response = await t.request({ method: "GET", url: "/v1/sys/metrics" });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers["content-type"]), /text\/plain/);
    const text = response.body;
    assert.match(
      text,
      /keyward_http_requests_total\{method="GET",route="\/v1\/:mount\/keys\/:name",status="200"\} 1/,
    );
    assert.match(text, /keyward_http_request_duration_seconds_bucket/);
    assert.match(text, /keyward_sealed 0/);
    assert.match(text, /keyward_keys\{mount="transit",type="ed25519",state="active"\} 1/);
    assert.match(text, /keyward_audit_writes_total\{device="store"\} \d+/);
    assert.match(text, /keyward_audit_failures_total\{device="store"\} 0/);
    assert.match(text, /keyward_key_rotations\{mount="transit"\} 0/);
    assert.doesNotMatch(text, /metered/);
  });

  it("requires a token", async () => {
    const response = await t.request({ method: "GET", url: "/v1/sys/metrics", token: null });
    assert.equal(response.statusCode, 403);
  });
});
