import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../../helpers/app.ts";

/** The SSH engine as the server mounts it: tokens, policies and audit in front. */
describe("ssh engine mounted in the server", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/ssh",
      payload: { type: "ssh" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const ca = await t.request({
      method: "POST",
      url: "/v1/ssh/config/ca",
      payload: { generate_signing_key: true, key_type: "ssh-ed25519" },
    });
    assert.equal(ca.statusCode, 200, ca.body);
    const role = await t.request({
      method: "POST",
      url: "/v1/ssh/roles/ops",
      payload: {
        key_type: "ca",
        allow_user_certificates: true,
        allowed_users: "deploy",
        default_user: "deploy",
        ttl: "30m",
      },
    });
    assert.ok(role.statusCode < 300, role.body);
  });

  after(async () => {
    await t.close();
  });

  it("serves the CA key without a token", async () => {
    const response = await t.request({ method: "GET", url: "/v1/ssh/public_key", token: null });
    assert.equal(response.statusCode, 200, response.body);
    assert.match(response.body, /^ssh-ed25519 AAAA/);
  });

  it("serves the KRL without a token", async () => {
    const response = await t.request({ method: "GET", url: "/v1/ssh/krl", token: null });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers["content-type"], "application/octet-stream");
    assert.equal(response.rawPayload.subarray(0, 8).toString("latin1"), "SSHKRL\n\0");
  });

  it("issues and keeps the key out of the audit log", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/ssh/issue/ops",
      payload: { key_type: "ed25519" },
    });
    assert.equal(response.statusCode, 200, response.body);
    const { private_key: privateKey, signed_key: signedKey } = response.json().data;
    assert.match(privateKey, /BEGIN OPENSSH PRIVATE KEY/);
    assert.match(signedKey, /^ssh-ed25519-cert-v01@openssh\.com /);

    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=ssh/issue/&type=response",
    });
    assert.equal(search.statusCode, 200, search.body);
    const records = JSON.stringify(search.json().data.records);
    assert.ok(records.includes("hmac-sha256:"));
    assert.ok(!records.includes("OPENSSH PRIVATE KEY"));
  });

  it("denies signing without a policy", async () => {
    const created = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["default"] },
    });
    const token = created.json().auth.client_token as string;
    const response = await t.request({
      method: "POST",
      url: "/v1/ssh/issue/ops",
      payload: { key_type: "ed25519" },
      token,
    });
    assert.equal(response.statusCode, 403);
  });

  it("keeps transit routes apart", async () => {
    const transit = await t.request({
      method: "POST",
      url: "/v1/transit/keys/next-to-ssh",
      payload: { type: "aes256-gcm96" },
    });
    assert.equal(transit.statusCode, 200, transit.body);
    const sshRoles = await t.request({ method: "GET", url: "/v1/ssh/roles?list=true" });
    assert.equal(sshRoles.statusCode, 200, sshRoles.body);
    assert.deepEqual(sshRoles.json().data.keys, ["ops"]);
  });
});
