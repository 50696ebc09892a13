import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

// A path sent percent-encoded (`transit/encrypt/%61pp`) names the same key
// as its plain form, so its records must carry the decoded path, or a
// search by path prefix would miss them.
describe("audit path of percent-encoded requests", () => {
  let app: TestApp;

  before(async () => {
    app = await createTestApp();
    const created = await app.request({ method: "POST", url: "/v1/transit/keys/app", payload: {} });
    assert.equal(created.statusCode, 200);
  });
  after(async () => {
    await app.close();
  });

  it("records the decoded path", async () => {
    const response = await app.request({
      method: "POST",
      url: "/v1/transit/encrypt/%61pp",
      payload: { plaintext: "aGVsbG8=" },
    });
    assert.equal(response.statusCode, 200);
    const found = await app.keyward.audit.search({ path_prefix: "transit/encrypt/app" });
    assert.equal(found.total, 2);
    const encoded = await app.keyward.audit.search({ path_prefix: "transit/encrypt/%61" });
    assert.equal(encoded.total, 0);
  });

  it("records list=T as a list", async () => {
    const response = await app.request({ method: "GET", url: "/v1/transit/keys?list=T" });
    assert.equal(response.statusCode, 200);
    const found = await app.keyward.audit.search({ path_prefix: "transit/keys", type: "request" });
    const last = found.records.at(-1) as { request?: { operation?: string } } | undefined;
    assert.equal(last?.request?.operation, "list");
  });
});
