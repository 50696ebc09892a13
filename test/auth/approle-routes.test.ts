import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type AuthRouteFixture, createAuthRouteFixture } from "./route-app.ts";

const ROLE_FIELDS = [
  "bind_secret_id",
  "local_secret_ids",
  "period",
  "policies",
  "secret_id_bound_cidrs",
  "secret_id_num_uses",
  "secret_id_ttl",
  "token_bound_cidrs",
  "token_explicit_max_ttl",
  "token_max_ttl",
  "token_no_default_policy",
  "token_num_uses",
  "token_period",
  "token_policies",
  "token_ttl",
  "token_type",
];

const SECRET_ID_FIELDS = [
  "cidr_list",
  "creation_time",
  "expiration_time",
  "last_updated_time",
  "metadata",
  "secret_id_accessor",
  "secret_id_num_uses",
  "secret_id_ttl",
  "token_bound_cidrs",
];

describe("AppRole routes", () => {
  let t: AuthRouteFixture;

  before(async () => {
    t = await createAuthRouteFixture();
  });

  after(async () => {
    await t.close();
  });

  async function writeRole(name: string, payload: object) {
    const response = await t.request({
      method: "POST",
      url: `/v1/auth/approle/role/${name}`,
      payload,
    });
    assert.equal(response.statusCode, 204, response.body);
  }

  async function roleId(name: string): Promise<string> {
    const response = await t.request({
      method: "GET",
      url: `/v1/auth/approle/role/${name}/role-id`,
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().data.role_id;
  }

  async function secretId(name: string, payload: object = {}) {
    const response = await t.request({
      method: "POST",
      url: `/v1/auth/approle/role/${name}/secret-id`,
      payload,
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().data as { secret_id: string; secret_id_accessor: string };
  }

  function login(payload: object, remoteAddress = "127.0.0.1") {
    return t.request({
      method: "POST",
      url: "/v1/auth/approle/login",
      payload,
      token: null,
      remoteAddress,
    });
  }

  it("manages roles with Vault's shapes", async () => {
    await writeRole("web", {
      token_policies: "deploy,read",
      token_ttl: "20m",
      token_max_ttl: 1800,
      secret_id_ttl: "10m",
      secret_id_num_uses: 40,
      secret_id_bound_cidrs: "127.0.0.0/8, ::1",
      local_secret_ids: false,
      token_type: "default",
    });
    const read = await t.request({ method: "GET", url: "/v1/auth/approle/role/web" });
    assert.equal(read.statusCode, 200);
    const data = read.json().data;
    assert.deepEqual(Object.keys(data).sort(), ROLE_FIELDS);
    assert.deepEqual(data.token_policies, ["deploy", "read"]);
    assert.deepEqual(data.policies, ["deploy", "read"]);
    assert.equal(data.token_ttl, 1200);
    assert.equal(data.token_max_ttl, 1800);
    assert.equal(data.secret_id_ttl, 600);
    assert.deepEqual(data.secret_id_bound_cidrs, ["127.0.0.0/8", "::1"]);
    assert.equal(data.bind_secret_id, true);

    const listed = await t.request({ method: "GET", url: "/v1/auth/approle/role?list=true" });
    assert.deepEqual(listed.json().data.keys, ["web"]);

    await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/web/role-id",
      payload: { role_id: "web-id" },
    });
    assert.equal(await roleId("web"), "web-id");

    const deleted = await t.request({ method: "DELETE", url: "/v1/auth/approle/role/web" });
    assert.equal(deleted.statusCode, 204);
    const missing = await t.request({ method: "GET", url: "/v1/auth/approle/role/web" });
    assert.equal(missing.statusCode, 404);
    const empty = await t.request({ method: "GET", url: "/v1/auth/approle/role?list=true" });
    assert.equal(empty.statusCode, 404);
  });

  it("issues and manages secret IDs", async () => {
    await writeRole("app", { token_policies: ["app"] });
    const issued = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id",
      payload: { metadata: '{ "tag1": "production" }', ttl: 600, num_uses: 50 },
    });
    assert.equal(issued.statusCode, 200);
    const data = issued.json().data;
    assert.deepEqual(Object.keys(data).sort(), [
      "secret_id",
      "secret_id_accessor",
      "secret_id_num_uses",
      "secret_id_ttl",
    ]);
    assert.equal(data.secret_id_ttl, 600);
    assert.equal(data.secret_id_num_uses, 50);

    const listed = await t.request({
      method: "GET",
      url: "/v1/auth/approle/role/app/secret-id?list=true",
    });
    assert.deepEqual(listed.json().data.keys, [data.secret_id_accessor]);

    const lookup = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id/lookup",
      payload: { secret_id: data.secret_id },
    });
    assert.equal(lookup.statusCode, 200);
    const entry = lookup.json().data;
    assert.deepEqual(Object.keys(entry).sort(), SECRET_ID_FIELDS);
    assert.deepEqual(entry.metadata, { tag1: "production" });
    assert.equal(entry.expiration_time, new Date(t.clock.millis() + 600_000).toISOString());

    const byAccessor = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id-accessor/lookup",
      payload: { secret_id_accessor: data.secret_id_accessor },
    });
    assert.equal(byAccessor.json().data.secret_id_accessor, data.secret_id_accessor);

    const destroyed = await t.request({
      method: "DELETE",
      url: "/v1/auth/approle/role/app/secret-id-accessor/destroy",
      payload: { secret_id_accessor: data.secret_id_accessor },
    });
    assert.equal(destroyed.statusCode, 204);
    const gone = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id/lookup",
      payload: { secret_id: data.secret_id },
    });
    assert.equal(gone.statusCode, 404);

    const unlimited = await secretId("app");
    const noExpiry = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id/lookup",
      payload: { secret_id: unlimited.secret_id },
    });
    assert.equal(noExpiry.json().data.expiration_time, "0001-01-01T00:00:00Z");
    const destroy = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/app/secret-id/destroy",
      payload: { secret_id: unlimited.secret_id },
    });
    assert.equal(destroy.statusCode, 204);
  });

  it("logs in without a token", async () => {
    await writeRole("login", { token_policies: ["svc"], token_ttl: 1200 });
    const secret = await secretId("login", { metadata: { team: "ops" } });
    const response = await login({ role_id: await roleId("login"), secret_id: secret.secret_id });
    assert.equal(response.statusCode, 200, response.body);
    const auth = response.json().auth;
    assert.deepEqual(auth.policies, ["default", "svc"]);
    assert.deepEqual(auth.metadata, { role_name: "login", team: "ops" });
    assert.equal(auth.lease_duration, 1200);
    assert.equal(auth.orphan, true);
    assert.equal(auth.renewable, true);

    const self = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: auth.client_token,
    });
    assert.equal(self.statusCode, 200);
    assert.equal(self.json().data.path, "auth/approle/login");
    assert.equal(self.json().data.display_name, "approle");
  });

  it("issues a custom secret ID", async () => {
    await writeRole("custom", { token_policies: ["svc"] });
    const url = "/v1/auth/approle/role/custom/custom-secret-id";
    const chosen = "chosen-secret-0123456789";

    const issued = await t.request({ method: "POST", url, payload: { secret_id: chosen } });
    assert.equal(issued.statusCode, 200, issued.body);
    assert.equal(issued.json().data.secret_id, chosen);
    assert.match(issued.json().data.secret_id_accessor, /^[0-9a-f-]{36}$/);

    const again = await t.request({ method: "POST", url, payload: { secret_id: chosen } });
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(again.json().code, "already_exists");

    const missing = await t.request({ method: "POST", url, payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.body, /secret_id/);

    const response = await login({ role_id: await roleId("custom"), secret_id: chosen });
    assert.equal(response.statusCode, 200, response.body);
  });

  it("binds logins and tokens to CIDRs", async () => {
    await writeRole("bound", { token_bound_cidrs: ["192.0.2.0/24"], bind_secret_id: false });
    const id = await roleId("bound");
    const outside = await login({ role_id: id }, "198.51.100.5");
    assert.equal(outside.statusCode, 403);
    const inside = await login({ role_id: id }, "192.0.2.5");
    assert.equal(inside.statusCode, 200);
    const token = inside.json().auth.client_token;

    const fromInside = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token,
      remoteAddress: "192.0.2.5",
    });
    assert.equal(fromInside.statusCode, 200);
    assert.deepEqual(fromInside.json().data.bound_cidrs, ["192.0.2.0/24"]);
    const fromOutside = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token,
      remoteAddress: "203.0.113.9",
    });
    assert.equal(fromOutside.statusCode, 403);
  });

  it("rate limits failed logins", async () => {
    await writeRole("guarded", { token_policies: ["x"] });
    const id = await roleId("guarded");
    const secret = await secretId("guarded", { num_uses: 5 });
    for (let i = 0; i < 10; i++) {
      const failed = await login({ role_id: id, secret_id: `wrong-${i}` }, "198.51.100.20");
      assert.equal(failed.statusCode, 403);
      assert.equal(failed.json().code, "permission_denied");
      assert.equal(failed.json().errors[0], "invalid role_id or secret_id");
    }
    const limited = await login({ role_id: id, secret_id: secret.secret_id }, "198.51.100.20");
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().code, "rate_limited");

    const lookup = await t.request({
      method: "POST",
      url: "/v1/auth/approle/role/guarded/secret-id/lookup",
      payload: { secret_id: secret.secret_id },
    });
    assert.equal(lookup.json().data.secret_id_num_uses, 5);

    // The role ID is limited from every address until its allowance refills.
    const elsewhere = await login({ role_id: id, secret_id: secret.secret_id }, "203.0.113.50");
    assert.equal(elsewhere.statusCode, 429);
    t.clock.advanceSeconds(6);
    const later = await login({ role_id: id, secret_id: secret.secret_id }, "203.0.113.50");
    assert.equal(later.statusCode, 200);
  });

  const badInput: [string, string, object, string, string | undefined][] = [
    [
      "fail both policy fields",
      "role/r",
      { token_policies: ["a"], policies: ["b"] },
      "invalid_field",
      "policies",
    ],
    [
      "fail bad cidr",
      "role/r",
      { token_bound_cidrs: "10.0.0.0/40" },
      "invalid_field",
      "token_bound_cidrs",
    ],
    ["fail bad duration", "role/r", { token_ttl: "forever" }, "invalid_field", "token_ttl"],
    ["fail batch tokens", "role/r", { token_type: "batch" }, "invalid_field", "token_type"],
    [
      "fail unknown field",
      "role/r",
      { bound_cidr_list: "10.0.0.0/8" },
      "unknown_field",
      "bound_cidr_list",
    ],
    ["fail bad role name", "role/a%2Fb", {}, "invalid_field", "role_name"],
    ["fail login without role_id", "login", { secret_id: "x" }, "missing_field", "role_id"],
  ];
  for (const [name, path, payload, code, field] of badInput) {
    it(name, async () => {
      const response = await t.request({
        method: "POST",
        url: `/v1/auth/approle/${path}`,
        payload,
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, code);
      assert.equal(response.json().field, field);
    });
  }

  it("fail bad metadata", async () => {
    await writeRole("meta", {});
    for (const metadata of ["not json", "[1]", '{"a": 1}']) {
      const response = await t.request({
        method: "POST",
        url: "/v1/auth/approle/role/meta/secret-id",
        payload: { metadata },
      });
      assert.equal(response.statusCode, 400);
      assert.equal(response.json().field, "metadata");
    }
  });
});
