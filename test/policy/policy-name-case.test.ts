import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

// Policy names are lowercased before they are stored, so a rule that
// denies one policy's path must also deny every other spelling of it.
const MANAGER = `path "sys/policies/acl/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "sys/policies/acl/default" {
  capabilities = ["deny"]
}
path "sys/policies/acl/admin" {
  capabilities = ["deny"]
}
path "sys/policy/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "sys/policy/admin" {
  capabilities = ["deny"]
}
`;
const ADMIN =
  'path "*" {\n  capabilities = ["create", "read", "update", "delete", "list", "sudo"]\n}\n';
const SMALL = 'path "x" {\n  capabilities = ["read"]\n}\n';

describe("policy names in other cases", () => {
  let app: TestApp;
  let manager: string;

  before(async () => {
    app = await createTestApp();
    for (const [name, policy] of [
      ["manager", MANAGER],
      ["admin", ADMIN],
    ]) {
      const written = await app.request({
        method: "PUT",
        url: `/v1/sys/policies/acl/${name}`,
        payload: { policy },
      });
      assert.equal(written.statusCode, 204);
    }
    const created = await app.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["manager"] },
    });
    manager = created.json().auth.client_token;
  });
  after(async () => {
    await app.close();
  });

  async function adminPolicy(): Promise<string> {
    const read = await app.request({ method: "GET", url: "/v1/sys/policies/acl/admin" });
    return read.json().data.policy;
  }

  for (const name of ["ADMIN", "Admin", "%41dmin"]) {
    it(`denies writing ${name}`, async () => {
      const response = await app.request({
        method: "PUT",
        url: `/v1/sys/policies/acl/${name}`,
        payload: { policy: SMALL },
        token: manager,
      });
      assert.equal(response.statusCode, 403);
      assert.equal(await adminPolicy(), ADMIN);
    });
  }

  it("denies replacing default through its upper-case name", async () => {
    const response = await app.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/DEFAULT",
      payload: { policy: ADMIN },
      token: manager,
    });
    assert.equal(response.statusCode, 403);
  });

  it("denies reading and deleting in other cases", async () => {
    const read = await app.request({
      method: "GET",
      url: "/v1/sys/policies/acl/Admin",
      token: manager,
    });
    assert.equal(read.statusCode, 403);
    const deleted = await app.request({
      method: "DELETE",
      url: "/v1/sys/policies/acl/ADMIN",
      token: manager,
    });
    assert.equal(deleted.statusCode, 403);
    assert.equal(await adminPolicy(), ADMIN);
  });

  it("denies the older sys/policy path in other cases", async () => {
    const response = await app.request({
      method: "PUT",
      url: "/v1/sys/policy/ADMIN",
      payload: { policy: SMALL },
      token: manager,
    });
    assert.equal(response.statusCode, 403);
    assert.equal(await adminPolicy(), ADMIN);
  });

  it("still allows upper-case names of permitted policies", async () => {
    const response = await app.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/Team-A",
      payload: { policy: SMALL },
      token: manager,
    });
    assert.equal(response.statusCode, 204);
    const read = await app.request({ method: "GET", url: "/v1/sys/policies/acl/team-a" });
    assert.equal(read.json().data.policy, SMALL);
  });

  it("reports the capabilities the check applies", async () => {
    const response = await app.request({
      method: "POST",
      url: "/v1/sys/capabilities-self",
      payload: { paths: ["sys/policies/acl/ADMIN", "sys/policy/Admin", "sys/policies/acl/Team-B"] },
      token: manager,
    });
    assert.equal(response.statusCode, 200);
    const data = response.json().data;
    assert.deepEqual(data["sys/policies/acl/ADMIN"], ["deny"]);
    assert.deepEqual(data["sys/policy/Admin"], ["deny"]);
    assert.deepEqual(data["sys/policies/acl/Team-B"], ["create", "delete", "read", "update"]);
  });
});
