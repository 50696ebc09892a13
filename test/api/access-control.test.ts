import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

const ENCRYPT_ONLY = `
path "transit/encrypt/orders" {
  capabilities = ["update"]
}
path "transit/keys/orders" {
  capabilities = ["read"]
}
`;

const KEY_CREATOR = `
path "transit/keys/*" {
  capabilities = ["create"]
}
`;

describe("access control", () => {
  let t: TestApp;
  let encryptToken = "";
  let creatorToken = "";

  async function tokenWith(policy: string): Promise<string> {
    const response = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: [policy], ttl: "1h" },
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().auth.client_token;
  }

  before(async () => {
    t = await createTestApp();
    await t.request({
      method: "POST",
      url: "/v1/transit/keys/orders",
      payload: { type: "aes256-gcm96" },
    });
    for (const [name, policy] of [
      ["encrypt-only", ENCRYPT_ONLY],
      ["key-creator", KEY_CREATOR],
    ] as const) {
      const written = await t.request({
        method: "PUT",
        url: `/v1/sys/policies/acl/${name}`,
        payload: { policy },
      });
      assert.equal(written.statusCode, 204, written.body);
    }
    encryptToken = await tokenWith("encrypt-only");
    creatorToken = await tokenWith("key-creator");
  });
  after(() => t.close());

  it("allows what a policy grants", async () => {
    const encrypted = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/orders",
      payload: { plaintext: "aGVsbG8=" },
      token: encryptToken,
    });
    assert.equal(encrypted.statusCode, 200, encrypted.body);
    const read = await t.request({
      method: "GET",
      url: "/v1/transit/keys/orders",
      token: encryptToken,
    });
    assert.equal(read.statusCode, 200);
  });

  it("denies everything else with 403", async () => {
    const denied = [
      {
        method: "POST",
        url: "/v1/transit/decrypt/orders",
        payload: { ciphertext: "keyward:v1:AAAA" },
      },
      { method: "POST", url: "/v1/transit/encrypt/other", payload: { plaintext: "aGVsbG8=" } },
      { method: "POST", url: "/v1/transit/keys/orders/rotate" },
      { method: "GET", url: "/v1/sys/mounts" },
      { method: "GET", url: "/v1/sys/policies/acl?list=true" },
      { method: "PUT", url: "/v1/sys/rotate" },
    ] as const;
    for (const request of denied) {
      const response = await t.request({ ...request, token: encryptToken });
      assert.equal(response.statusCode, 403, `${request.method} ${request.url}`);
      assert.equal(response.json().code, "permission_denied", `${request.method} ${request.url}`);
    }
  });

  it("hides whether a path exists", async () => {
    const unknown = await t.request({
      method: "GET",
      url: "/v1/nowhere/at/all",
      token: encryptToken,
    });
    assert.equal(unknown.statusCode, 403);
    const missingKey = await t.request({
      method: "GET",
      url: "/v1/transit/keys/missing",
      token: encryptToken,
    });
    assert.equal(missingKey.statusCode, 403);
    const rootUnknown = await t.request({ method: "GET", url: "/v1/nowhere/at/all" });
    assert.equal(rootUnknown.statusCode, 404);
  });

  it("distinguishes create from update", async () => {
    const created = await t.request({
      method: "POST",
      url: "/v1/transit/keys/new-key",
      payload: { type: "ed25519" },
      token: creatorToken,
    });
    assert.equal(created.statusCode, 200, created.body);
    const again = await t.request({
      method: "POST",
      url: "/v1/transit/keys/new-key",
      payload: { type: "ed25519" },
      token: creatorToken,
    });
    assert.equal(again.statusCode, 403);
  });

  it("logs in with AppRole", async () => {
    const role = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/encryptor",
      payload: { token_policies: ["encrypt-only"], token_ttl: "10m" },
    });
    assert.equal(role.statusCode, 204, role.body);
    const roleId = (
      await t.request({ method: "GET", url: "/v1/auth/approle/role/encryptor/role-id" })
    ).json().data.role_id;
    const secretId = (
      await t.request({ method: "POST", url: "/v1/auth/approle/role/encryptor/secret-id" })
    ).json().data.secret_id;
    const login = await t.request({
      method: "POST",
      url: "/v1/auth/approle/login",
      payload: { role_id: roleId, secret_id: secretId },
      token: null,
    });
    assert.equal(login.statusCode, 200, login.body);
    const token = login.json().auth.client_token;
    const encrypted = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/orders",
      payload: { plaintext: "aGVsbG8=" },
      token,
    });
    assert.equal(encrypted.statusCode, 200);
    const wrong = await t.request({
      method: "POST",
      url: "/v1/auth/approle/login",
      payload: { role_id: roleId, secret_id: "wrong" },
      token: null,
    });
    assert.ok(wrong.statusCode >= 400, wrong.body);
    assert.ok(wrong.statusCode < 500, wrong.body);
  });

  it("audits requests without plaintext", async () => {
    const devices = await t.request({ method: "GET", url: "/v1/sys/audit" });
    assert.equal(devices.statusCode, 200, devices.body);
    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=transit/encrypt",
    });
    assert.equal(search.statusCode, 200, search.body);
    const text = search.body;
    assert.ok(text.includes("transit/encrypt/orders"));
    assert.ok(!text.includes("aGVsbG8="), "the plaintext appears in the audit trail");
    assert.ok(!text.includes(encryptToken), "a token appears in the audit trail");
  });
});

describe("token rate limiting", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("limits failures but not valid tokens", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 12; attempt++) {
      const response = await t.request({
        method: "GET",
        url: "/v1/transit/keys/a",
        token: "kw.bogus",
      });
      statuses.push(response.statusCode);
    }
    assert.equal(statuses[0], 403);
    assert.equal(statuses.at(-1), 429);
    const valid = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self" });
    assert.equal(valid.statusCode, 200, valid.body);
  });
});

describe("unmatched routes and odd bodies", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("audits a 404 once", async () => {
    const missing = await t.request({ method: "GET", url: "/v1/nowhere/once" });
    assert.equal(missing.statusCode, 404);
    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=nowhere/once",
    });
    assert.equal(search.statusCode, 200, search.body);
    const records = (search.json().data?.records ?? []) as { type: string }[];
    assert.equal(records.filter((record) => record.type === "response").length, 1, search.body);
  });

  it("rejects deeply nested bodies", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/a",
      payload: `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, "invalid_json");
  });
});
