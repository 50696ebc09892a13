import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeRootToken } from "../../src/auth/root-generation.ts";
import { type AuthRouteFixture, createAuthRouteFixture } from "./route-app.ts";

const STATUS_FIELDS = [
  "complete",
  "encoded_root_token",
  "encoded_token",
  "nonce",
  "otp",
  "otp_length",
  "pgp_fingerprint",
  "progress",
  "required",
  "started",
];

describe("generate-root routes", () => {
  let t: AuthRouteFixture;

  before(async () => {
    t = await createAuthRouteFixture();
  });

  after(async () => {
    await t.close();
  });

  it("generates a root token end to end", async () => {
    const idle = await t.request({
      method: "GET",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(idle.statusCode, 200);
    assert.deepEqual(Object.keys(idle.json()).sort(), STATUS_FIELDS);
    assert.equal(idle.json().started, false);
    assert.equal(idle.json().required, 2);
    assert.equal(idle.json().otp_length, 46);

    const started = await t.request({
      method: "PUT",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(started.statusCode, 200);
    const { nonce, otp } = started.json();
    assert.equal(otp.length, 46);

    const first = await t.request({
      method: "PUT",
      url: "/v1/sys/generate-root/update",
      payload: { key: t.shares.keysHex[0], nonce },
      token: null,
    });
    assert.equal(first.json().progress, 1);
    assert.equal(first.json().otp, "");
    const done = await t.request({
      method: "PUT",
      url: "/v1/sys/generate-root/update",
      payload: { key: t.shares.keysBase64[1], nonce },
      token: null,
    });
    assert.equal(done.statusCode, 200);
    assert.equal(done.json().complete, true);
    assert.equal(done.json().encoded_root_token, done.json().encoded_token);

    const token = decodeRootToken(done.json().encoded_token, otp);
    const self = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self", token });
    assert.equal(self.statusCode, 200);
    assert.deepEqual(self.json().data.policies, ["root"]);
  });

  it("cancels and refuses bad input", async () => {
    const { nonce } = (
      await t.request({ method: "POST", url: "/v1/sys/generate-root/attempt", token: null })
    ).json();
    const again = await t.request({
      method: "POST",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, "invalid_state");

    const wrongNonce = await t.request({
      method: "POST",
      url: "/v1/sys/generate-root/update",
      payload: { key: t.shares.keysHex[0], nonce: "other" },
      token: null,
    });
    assert.equal(wrongNonce.json().field, "nonce");
    const badKey = await t.request({
      method: "POST",
      url: "/v1/sys/generate-root/update",
      payload: { key: "not-a-share", nonce },
      token: null,
    });
    assert.equal(badKey.statusCode, 400);
    assert.equal(badKey.json().field, "key");

    const cancelled = await t.request({
      method: "DELETE",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(cancelled.statusCode, 204);
    const status = await t.request({
      method: "GET",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(status.json().started, false);
  });

  for (const field of ["pgp_key", "otp"]) {
    it(`fail ${field} at start`, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/sys/generate-root/attempt",
        payload: { [field]: "c29tZXRoaW5n" },
        token: null,
      });
      assert.equal(response.statusCode, 400);
      assert.equal(response.json().field, field);
    });
  }
});
