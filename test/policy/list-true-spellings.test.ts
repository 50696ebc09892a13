import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

// The list handlers accept every spelling of true that Go's
// strconv.ParseBool reads (`t`, `T`, `TRUE`, `True`, `1`, `true`), so the
// policy check must see each of them as a list, not a read.
const SPELLINGS = ["1", "t", "T", "TRUE", "true", "True"];

describe("list with other spellings of true", () => {
  let app: TestApp;
  let reader: string;

  before(async () => {
    app = await createTestApp();
    const policy =
      'path "sys/policies/acl" {\n  capabilities = ["read"]\n}\npath "transit/keys" {\n  capabilities = ["read"]\n}\n';
    const written = await app.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/reader",
      payload: { policy },
    });
    assert.equal(written.statusCode, 204);
    await app.request({ method: "POST", url: "/v1/transit/keys/k1", payload: {} });
    const created = await app.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["reader"] },
    });
    reader = created.json().auth.client_token;
  });
  after(async () => {
    await app.close();
  });

  for (const spelling of SPELLINGS) {
    it(`denies list=${spelling} without list on policies`, async () => {
      const response = await app.request({
        method: "GET",
        url: `/v1/sys/policies/acl?list=${spelling}`,
        token: reader,
      });
      assert.equal(response.statusCode, 403);
    });

    it(`denies list=${spelling} without list on transit keys`, async () => {
      const response = await app.request({
        method: "GET",
        url: `/v1/transit/keys?list=${spelling}`,
        token: reader,
      });
      assert.equal(response.statusCode, 403);
    });
  }

  it("still lists for a token that has list", async () => {
    const response = await app.request({ method: "GET", url: "/v1/transit/keys?list=T" });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json().data.keys, ["k1"]);
  });
});
