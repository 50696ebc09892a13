import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp, makeDeviceKeys, ok, registerDevice } from "./fixtures.ts";

/** May update existing devices and read them, but create none and touch no secret. */
const DEVICE_OPERATOR = `
path "devices/registry/*" {
  capabilities = ["read", "update"]
}
`;

describe("device routes and policies", () => {
  let t: DeviceApp;
  let operatorToken = "";

  before(async () => {
    t = await createDeviceApp();
    const written = await t.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/device-operator",
      payload: { policy: DEVICE_OPERATOR },
    });
    assert.equal(written.statusCode, 204, written.body);
    const created = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["device-operator"], ttl: "1h" },
    });
    assert.equal(created.statusCode, 200, created.body);
    operatorToken = created.json().auth.client_token;
    await ok(t, "POST", "/v1/devices/registry/existing", {});
  });
  after(() => t.close());

  it("requires a token on admin routes", async () => {
    for (const url of [
      "/v1/devices/registry/existing",
      "/v1/devices/rollout",
      "/v1/devices/config",
    ]) {
      const response = await t.request({ method: "GET", url, token: null });
      assert.equal(response.statusCode, 403, url);
      assert.equal(response.json().code, "missing_token");
    }
  });

  it("applies the policy's operations", async () => {
    const read = await t.request({
      method: "GET",
      url: "/v1/devices/registry/existing",
      token: operatorToken,
    });
    assert.equal(read.statusCode, 200, read.body);
    const update = await t.request({
      method: "POST",
      url: "/v1/devices/registry/existing",
      token: operatorToken,
      payload: { groups: ["edge"] },
    });
    assert.equal(update.statusCode, 200, update.body);
    const create = await t.request({
      method: "POST",
      url: "/v1/devices/registry/new-one",
      token: operatorToken,
      payload: {},
    });
    assert.equal(create.statusCode, 403, "update does not allow creating a device");
    const secret = await t.request({
      method: "POST",
      url: "/v1/devices/secrets/radius",
      token: operatorToken,
      payload: {},
    });
    assert.equal(secret.statusCode, 403);
    assert.equal(secret.json().code, "permission_denied");
  });

  it("serves enrolment without a token", async () => {
    const token = await registerDevice(t, "public-1");
    const keys = await makeDeviceKeys("public-1");
    const response = await t.request({
      method: "POST",
      url: "/v1/devices/enroll",
      token: null,
      payload: { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey },
    });
    assert.equal(response.statusCode, 200, response.body);
  });
});
