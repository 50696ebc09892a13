import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HMAC_PREFIX } from "../../src/audit/redact.ts";
import { decodeRootToken } from "../../src/auth/root-generation.ts";
import { createTestApp, type TestApp } from "../helpers/app.ts";

// Secrets that reach a client in a response field, sent through the whole
// API: the audit records of those responses must hold their HMACs only.
describe("audit of secret response fields", () => {
  let app: TestApp;

  before(async () => {
    app = await createTestApp({ shares: 3, threshold: 2 });
  });
  after(async () => {
    await app.close();
  });

  /** Returns the text of every request and response record whose path starts with `prefix`. */
  async function recordsText(prefix: string): Promise<string> {
    const response = await app.request({
      method: "GET",
      url: `/v1/sys/audit/search?path_prefix=${encodeURIComponent(prefix)}&limit=1000`,
    });
    assert.equal(response.statusCode, 200, response.body);
    return JSON.stringify(response.json().data.records);
  }

  it("generate-root OTP is hidden", async () => {
    const started = await app.request({
      method: "PUT",
      url: "/v1/sys/generate-root/attempt",
      token: null,
    });
    assert.equal(started.statusCode, 200, started.body);
    const { nonce, otp } = started.json();
    let done = started;
    for (const key of app.shares.slice(0, 2)) {
      done = await app.request({
        method: "PUT",
        url: "/v1/sys/generate-root/update",
        payload: { key, nonce },
        token: null,
      });
      assert.equal(done.statusCode, 200, done.body);
    }
    assert.equal(done.json().complete, true);
    const rootToken = decodeRootToken(done.json().encoded_token, otp);

    const text = await recordsText("sys/generate-root/");
    assert.equal(text.includes(otp), false, "a record shows the OTP");
    assert.equal(text.includes(rootToken), false, "a record shows the new root token");
    assert.ok(text.includes(`"otp":"${HMAC_PREFIX}`), "no record has the OTP's HMAC");
  });

  it("transit random bytes are hidden", async () => {
    const response = await app.request({ method: "POST", url: "/v1/transit/random/32" });
    assert.equal(response.statusCode, 200, response.body);
    const randomBytes: string = response.json().data.random_bytes;

    const text = await recordsText("transit/random");
    assert.equal(text.includes(randomBytes), false, "a record shows the random bytes");
    assert.ok(text.includes(`"random_bytes":"${HMAC_PREFIX}`), "no record has their HMAC");
  });
});
