import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

describe("sys seal routes", () => {
  let t: TestApp;
  let shares: string[] = [];
  let rootToken = "";

  before(async () => {
    t = await createTestApp({ uninitialised: true });
  });
  after(() => t.close());

  it("reports an uninitialised server", async () => {
    const init = await t.request({ method: "GET", url: "/v1/sys/init", token: null });
    assert.equal(init.statusCode, 200);
    assert.deepEqual(init.json(), { initialized: false });

    const health = await t.request({ method: "GET", url: "/v1/sys/health", token: null });
    assert.equal(health.statusCode, 501);
    assert.equal(health.json().initialized, false);

    const status = await t.request({ method: "GET", url: "/v1/sys/seal-status", token: null });
    assert.equal(status.json().initialized, false);
    assert.equal(status.json().sealed, true);

    const transit = await t.request({ method: "GET", url: "/v1/transit/keys/x", token: "kw.any" });
    assert.equal(transit.statusCode, 503);
    assert.equal(transit.json().code, "not_initialized");
  });

  it("rejects an invalid init request", async () => {
    const cases = [
      { body: {}, code: "missing_field" },
      { body: { secret_shares: 0, secret_threshold: 1 }, code: "invalid_field" },
      { body: { secret_shares: 3, secret_threshold: 4 }, code: "invalid_field" },
      { body: { secret_shares: 3, secret_threshold: 2, extra: 1 }, code: "unknown_field" },
      { body: { secret_shares: "three", secret_threshold: 2 }, code: "invalid_field" },
    ];
    for (const { body, code } of cases) {
      const response = await t.request({
        method: "PUT",
        url: "/v1/sys/init",
        payload: body,
        token: null,
      });
      assert.equal(response.statusCode, 400, JSON.stringify(body));
      assert.equal(response.json().code, code, JSON.stringify(body));
    }
  });

  it("initialises with shares and a root token", async () => {
    const response = await t.request({
      method: "PUT",
      url: "/v1/sys/init",
      payload: { secret_shares: 5, secret_threshold: 3 },
      token: null,
    });
    assert.equal(response.statusCode, 200);
    const body = response.json();
    assert.equal(body.keys.length, 5);
    assert.equal(body.keys_base64.length, 5);
    assert.match(body.root_token, /^kw\./);
    shares = body.keys;
    rootToken = body.root_token;

    const again = await t.request({
      method: "PUT",
      url: "/v1/sys/init",
      payload: { secret_shares: 1, secret_threshold: 1 },
      token: null,
    });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, "already_initialized");
  });

  it("answers 503 while sealed", async () => {
    const response = await t.request({
      method: "GET",
      url: "/v1/transit/keys?list=true",
      token: rootToken,
    });
    assert.equal(response.statusCode, 503);
    assert.equal(response.json().code, "sealed");
    const health = await t.request({ method: "GET", url: "/v1/sys/health", token: null });
    assert.equal(health.statusCode, 503);
    const custom = await t.request({
      method: "GET",
      url: "/v1/sys/health?sealedcode=200",
      token: null,
    });
    assert.equal(custom.statusCode, 200);
  });

  it("rejects a malformed unseal share", async () => {
    const response = await t.request({
      method: "PUT",
      url: "/v1/sys/unseal",
      payload: { key: "zz-not-a-share" },
      token: null,
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().field, "key");
  });

  it("unseals with the threshold of shares", async () => {
    for (const [index, share] of shares.slice(0, 3).entries()) {
      const response = await t.request({
        method: "PUT",
        url: "/v1/sys/unseal",
        payload: { key: share },
        token: null,
      });
      assert.equal(response.statusCode, 200);
      const status = response.json();
      assert.equal(status.sealed, index < 2);
      assert.equal(status.t, 3);
      assert.equal(status.n, 5);
    }
    const health = await t.request({ method: "GET", url: "/v1/sys/health", token: null });
    assert.equal(health.statusCode, 200);
    const list = await t.request({
      method: "GET",
      url: "/v1/transit/keys?list=true",
      token: rootToken,
    });
    assert.notEqual(list.statusCode, 503);
  });

  it("requires a token for protected routes", async () => {
    const missing = await t.request({ method: "PUT", url: "/v1/sys/seal", token: null });
    assert.equal(missing.statusCode, 403);
    assert.equal(missing.json().code, "missing_token");
    const wrong = await t.request({ method: "PUT", url: "/v1/sys/seal", token: "kw.wrong" });
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.json().code, "permission_denied");
    const bearer = await t.request({
      method: "GET",
      url: "/v1/sys/key-status",
      token: null,
      headers: { authorization: `Bearer ${rootToken}` },
    });
    assert.equal(bearer.statusCode, 200);
  });

  it("rotates the barrier key", async () => {
    const before = await t.request({ method: "GET", url: "/v1/sys/key-status", token: rootToken });
    const rotated = await t.request({ method: "PUT", url: "/v1/sys/rotate", token: rootToken });
    assert.equal(rotated.statusCode, 204);
    const after = await t.request({ method: "GET", url: "/v1/sys/key-status", token: rootToken });
    assert.equal(after.json().data.term, before.json().data.term + 1);
  });

  it("rekeys to new shares", async () => {
    const started = await t.request({
      method: "PUT",
      url: "/v1/sys/rekey/init",
      payload: { secret_shares: 3, secret_threshold: 2 },
      token: null,
    });
    assert.equal(started.statusCode, 200);
    const nonce = started.json().nonce as string;
    assert.ok(nonce.length > 0);
    let last: Record<string, unknown> = {};
    for (const share of shares.slice(0, 3)) {
      const response = await t.request({
        method: "PUT",
        url: "/v1/sys/rekey/update",
        payload: { key: share, nonce },
        token: null,
      });
      assert.equal(response.statusCode, 200);
      last = response.json();
    }
    assert.equal(last.complete, true);
    const newShares = last.keys as string[];
    assert.equal(newShares.length, 3);

    const sealed = await t.request({ method: "PUT", url: "/v1/sys/seal", token: rootToken });
    assert.equal(sealed.statusCode, 204);
    for (const share of newShares.slice(0, 2)) {
      await t.request({
        method: "PUT",
        url: "/v1/sys/unseal",
        payload: { key: share },
        token: null,
      });
    }
    const status = await t.request({ method: "GET", url: "/v1/sys/seal-status", token: null });
    assert.equal(status.json().sealed, false);
    assert.equal(status.json().t, 2);
  });
});
