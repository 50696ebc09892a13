import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

/**
 * In Vault's policy syntax, a rule's `min_wrapping_ttl` makes response
 * wrapping mandatory on its path, so an unwrapped request is denied.
 * Keyward has no response wrapping, so such a rule allows nothing, and a
 * request for a wrapped response gets 400 instead of the secret in clear.
 */

const WRAPPED_ONLY = `
path "auth/approle/role/+/secret-id" {
  capabilities = ["update"]
  min_wrapping_ttl = "1m"
}
`;

describe("min_wrapping_ttl on a policy rule", () => {
  let t: TestApp;
  let policyWrite = { status: 0, body: "" };
  let token = "";

  before(async () => {
    t = await createTestApp();
    const role = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/builder",
      payload: { token_policies: ["default"] },
    });
    assert.equal(role.statusCode, 204, role.body);
    const written = await t.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/wrapped-only",
      payload: { policy: WRAPPED_ONLY },
    });
    policyWrite = { status: written.statusCode, body: written.body };
    if (written.statusCode !== 204) return;
    const issued = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["wrapped-only"] },
    });
    assert.equal(issued.statusCode, 200, issued.body);
    token = issued.json().auth.client_token;
  });
  after(() => t.close());

  it("unwrapped secret ID is not issued", async (context) => {
    if (policyWrite.status === 400) {
      assert.match(policyWrite.body, /"code":"invalid_policy"/);
      context.diagnostic("the policy was rejected at write time");
      return;
    }
    assert.equal(policyWrite.status, 204, policyWrite.body);
    const response = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/builder/secret-id",
      payload: {},
      token,
    });
    assert.equal(response.statusCode, 403, response.body);
    assert.equal(response.json().code, "permission_denied");
  });

  it("wrap request is not answered in clear", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/builder/secret-id",
      payload: {},
      headers: { "x-vault-wrap-ttl": "60s" },
    });
    const body = response.json();
    const inClear = response.statusCode === 200 && typeof body.data?.secret_id === "string";
    assert.equal(
      inClear,
      false,
      `a request for a wrapped response returned the secret ID in clear (status ${response.statusCode})`,
    );
  });
});
