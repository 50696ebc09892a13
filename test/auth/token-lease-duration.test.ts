import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { issuedAuthBlock } from "../../src/api/routes/auth-token-wire.ts";
import { createTestApp, type TestApp } from "../helpers/app.ts";
import { createTokenFixture } from "./fixtures.ts";

describe("token lease_duration", () => {
  it("counts from the issue time", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const issued = await tokens.create(root, { ttl: 3600 });

    // The response is built after the write, when the clock has moved on.
    clock.advanceSeconds(0.005);

    assert.equal(issuedAuthBlock(issued).lease_duration, 3600);
  });

  describe("over HTTP with the real clock", () => {
    let t: TestApp;

    before(async () => {
      t = await createTestApp();
    });

    after(async () => {
      await t.close();
    });

    it("equals the ttl on create", async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/auth/token/create",
        payload: { ttl: "24h" },
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json().auth.lease_duration, 86400);
    });

    it("equals the increment on renew", async () => {
      const created = await t.request({
        method: "POST",
        url: "/v1/auth/token/create",
        payload: { ttl: "1h" },
      });
      assert.equal(created.statusCode, 200, created.body);
      const token = created.json().auth.client_token as string;

      const renewed = await t.request({
        method: "POST",
        url: "/v1/auth/token/renew-self",
        payload: { increment: "2h" },
        token,
      });
      assert.equal(renewed.statusCode, 200, renewed.body);
      assert.equal(renewed.json().auth.lease_duration, 7200);
    });

    it("equals token_ttl on AppRole login", async () => {
      const role = await t.request({
        method: "POST",
        url: "/v1/auth/approle/role/app",
        payload: { token_ttl: "20m" },
      });
      assert.equal(role.statusCode, 204, role.body);
      const roleId = await t.request({ method: "GET", url: "/v1/auth/approle/role/app/role-id" });
      assert.equal(roleId.statusCode, 200, roleId.body);
      const secretId = await t.request({
        method: "POST",
        url: "/v1/auth/approle/role/app/secret-id",
      });
      assert.equal(secretId.statusCode, 200, secretId.body);

      const login = await t.request({
        method: "POST",
        url: "/v1/auth/approle/login",
        payload: {
          role_id: roleId.json().data.role_id,
          secret_id: secretId.json().data.secret_id,
        },
        token: null,
      });
      assert.equal(login.statusCode, 200, login.body);
      assert.equal(login.json().auth.lease_duration, 1200);
    });
  });
});
