import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type AuthRouteFixture, createAuthRouteFixture } from "./route-app.ts";

const AUTH_FIELDS = [
  "accessor",
  "client_token",
  "entity_id",
  "lease_duration",
  "metadata",
  "num_uses",
  "orphan",
  "policies",
  "renewable",
  "token_policies",
  "token_type",
];

const LOOKUP_FIELDS = [
  "accessor",
  "creation_time",
  "creation_ttl",
  "display_name",
  "entity_id",
  "expire_time",
  "explicit_max_ttl",
  "id",
  "issue_time",
  "meta",
  "num_uses",
  "orphan",
  "path",
  "policies",
  "renewable",
  "ttl",
  "type",
];

describe("token routes", () => {
  let t: AuthRouteFixture;

  before(async () => {
    t = await createAuthRouteFixture();
  });

  after(async () => {
    await t.close();
  });

  async function create(body: object, token?: string) {
    const response = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: body,
      token,
    });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().auth as Record<string, unknown> & {
      client_token: string;
      accessor: string;
    };
  }

  it("creates with Vault's auth block", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: {
        policies: ["web", "stage"],
        meta: { user: "armon" },
        ttl: "1h",
        display_name: "ci",
      },
    });
    assert.equal(response.statusCode, 200);
    const body = response.json();
    assert.equal(body.data, null);
    assert.deepEqual(Object.keys(body.auth).sort(), AUTH_FIELDS);
    assert.match(body.auth.client_token, /^kw\./);
    assert.deepEqual(body.auth.policies, ["default", "stage", "web"]);
    assert.deepEqual(body.auth.token_policies, ["default", "stage", "web"]);
    assert.deepEqual(body.auth.metadata, { user: "armon" });
    assert.equal(body.auth.lease_duration, 3600);
    assert.equal(body.auth.renewable, true);
    assert.equal(body.auth.token_type, "service");
    assert.equal(body.auth.orphan, false);
    assert.equal(body.auth.num_uses, 0);
    assert.equal(body.auth.entity_id, "");
  });

  it("looks up self with the token", async () => {
    const auth = await create({ policies: ["a"], ttl: 600, num_uses: 5 });
    for (const method of ["GET", "POST"] as const) {
      const response = await t.request({
        method,
        url: "/v1/auth/token/lookup-self",
        token: auth.client_token,
      });
      assert.equal(response.statusCode, 200, response.body);
      const data = response.json().data;
      assert.deepEqual(Object.keys(data).sort(), LOOKUP_FIELDS);
      assert.equal(data.id, auth.client_token);
      assert.equal(data.accessor, auth.accessor);
      assert.equal(data.creation_ttl, 600);
      assert.equal(data.ttl, 600);
      assert.equal(data.display_name, "token");
      assert.equal(data.path, "auth/token/create");
      assert.equal(data.meta, null);
      assert.equal(data.type, "service");
      assert.equal(data.expire_time, new Date(t.clock.millis() + 600_000).toISOString());
      assert.equal(data.creation_time, Math.floor(t.clock.millis() / 1000));
    }
    const afterTwo = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: auth.client_token,
    });
    assert.equal(afterTwo.json().data.num_uses, 2);
  });

  it("looks up other tokens", async () => {
    const auth = await create({ policies: ["a"] });
    const byToken = await t.request({
      method: "POST",
      url: "/v1/auth/token/lookup",
      payload: { token: auth.client_token },
    });
    assert.equal(byToken.statusCode, 200);
    assert.equal(byToken.json().data.id, auth.client_token);

    const byAccessor = await t.request({
      method: "POST",
      url: "/v1/auth/token/lookup-accessor",
      payload: { accessor: auth.accessor },
    });
    assert.equal(byAccessor.statusCode, 200);
    assert.equal(byAccessor.json().data.id, "");
    assert.equal(byAccessor.json().data.accessor, auth.accessor);

    const root = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self" });
    assert.equal(root.json().data.expire_time, null);
    assert.equal(root.json().data.ttl, 0);
    assert.deepEqual(root.json().data.policies, ["root"]);
  });

  it("renews by token, self and accessor", async () => {
    const auth = await create({ policies: ["a"], ttl: 600 });
    t.clock.advanceSeconds(100);
    const self = await t.request({
      method: "POST",
      url: "/v1/auth/token/renew-self",
      payload: { increment: "5m" },
      token: auth.client_token,
    });
    assert.equal(self.statusCode, 200, self.body);
    assert.equal(self.json().auth.lease_duration, 300);
    assert.equal(self.json().auth.client_token, auth.client_token);

    const other = await t.request({
      method: "POST",
      url: "/v1/auth/token/renew",
      payload: { token: auth.client_token },
    });
    assert.equal(other.json().auth.lease_duration, 600);
    const byAccessor = await t.request({
      method: "POST",
      url: "/v1/auth/token/renew-accessor",
      payload: { accessor: auth.accessor, increment: 60 },
    });
    assert.equal(byAccessor.json().auth.client_token, "");
    assert.equal(byAccessor.json().auth.lease_duration, 60);

    const lookup = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: auth.client_token,
    });
    assert.equal(typeof lookup.json().data.last_renewal_time, "number");

    const root = await t.request({ method: "POST", url: "/v1/auth/token/renew-self" });
    assert.equal(root.statusCode, 400);
    assert.equal(root.json().code, "invalid_request");
  });

  it("revokes trees and orphans", async () => {
    const parent = await create({ policies: ["a"] });
    const child = await create({}, parent.client_token);
    const grandchild = await create({}, child.client_token);

    const orphaned = await t.request({
      method: "POST",
      url: "/v1/auth/token/revoke-orphan",
      payload: { token: parent.client_token },
    });
    assert.equal(orphaned.statusCode, 204);
    const childLookup = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: child.client_token,
    });
    assert.equal(childLookup.json().data.orphan, true);

    const revoked = await t.request({
      method: "POST",
      url: "/v1/auth/token/revoke-accessor",
      payload: { accessor: child.accessor },
    });
    assert.equal(revoked.statusCode, 204);
    for (const token of [parent.client_token, child.client_token, grandchild.client_token]) {
      const response = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self", token });
      assert.equal(response.statusCode, 403);
      assert.equal(response.json().code, "permission_denied");
    }

    const self = await create({ policies: ["a"] });
    const revokeSelf = await t.request({
      method: "POST",
      url: "/v1/auth/token/revoke-self",
      token: self.client_token,
    });
    assert.equal(revokeSelf.statusCode, 204);
    const byBody = await create({ policies: ["a"] });
    const revoke = await t.request({
      method: "POST",
      url: "/v1/auth/token/revoke",
      payload: { token: byBody.client_token },
    });
    assert.equal(revoke.statusCode, 204);
    const gone = await t.request({
      method: "POST",
      url: "/v1/auth/token/lookup",
      payload: { token: byBody.client_token },
    });
    assert.equal(gone.statusCode, 403);
  });

  it("lists accessors", async () => {
    const auth = await create({ policies: ["a"] });
    const listed = await t.request({ method: "GET", url: "/v1/auth/token/accessors?list=true" });
    assert.equal(listed.statusCode, 200);
    assert.ok(listed.json().data.keys.includes(auth.accessor));
    const read = await t.request({ method: "GET", url: "/v1/auth/token/accessors" });
    assert.equal(read.statusCode, 405);
    assert.equal(read.json().code, "method_not_allowed");
  });

  it("hides why a token failed", async () => {
    const expiring = await create({ policies: ["a"], ttl: 60 });
    const revoked = await create({ policies: ["a"] });
    await t.request({
      method: "POST",
      url: "/v1/auth/token/revoke-self",
      token: revoked.client_token,
    });
    t.clock.advanceSeconds(61);
    const bodies = new Set<string>();
    for (const token of [expiring.client_token, revoked.client_token, "kw.never-issued", "x"]) {
      const response = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self", token });
      assert.equal(response.statusCode, 403);
      const { request_id: _id, ...body } = response.json();
      bodies.add(JSON.stringify(body));
    }
    assert.equal(bodies.size, 1);

    const missing = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: null,
    });
    assert.equal(missing.statusCode, 403);
    assert.equal(missing.json().code, "missing_token");
  });

  it("serves the last use, then refuses", async () => {
    const auth = await create({ policies: ["a"], num_uses: 1 });
    const last = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: auth.client_token,
    });
    assert.equal(last.statusCode, 200);
    assert.equal(last.json().data.num_uses, 0);
    const next = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      token: auth.client_token,
    });
    assert.equal(next.statusCode, 403);
  });

  it("keeps children within the parent's policies", async () => {
    const parent = await create({ policies: ["a"] });
    const denied = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["b"] },
      token: parent.client_token,
    });
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().code, "permission_denied");
    assert.equal(denied.json().field, "policies");

    const orphan = await t.request({
      method: "POST",
      url: "/v1/auth/token/create-orphan",
      token: parent.client_token,
    });
    assert.equal(orphan.statusCode, 200);
    assert.equal(orphan.json().auth.orphan, true);
    assert.deepEqual(orphan.json().auth.policies, ["a", "default"]);
  });

  async function writeTokenRole(name: string, payload: object) {
    const response = await t.request({
      method: "POST",
      url: `/v1/auth/token/roles/${name}`,
      payload,
    });
    assert.equal(response.statusCode, 204, response.body);
  }

  async function createWithRole(role: string, payload: object, token?: string) {
    return t.request({
      method: "POST",
      url: `/v1/auth/token/create/${role}`,
      payload,
      token,
    });
  }

  it("manages token roles", async () => {
    await writeTokenRole("ci", {
      allowed_policies: "deploy,read",
      token_period: "1h",
      path_suffix: "builds",
    });
    const read = await t.request({ method: "GET", url: "/v1/auth/token/roles/ci" });
    assert.equal(read.statusCode, 200, read.body);
    const data = read.json().data;
    assert.deepEqual(data.allowed_policies, ["deploy", "read"]);
    assert.equal(data.token_period, 3600);
    assert.equal(data.period, 3600);
    assert.equal(data.renewable, true);
    assert.equal(data.path_suffix, "builds");

    await writeTokenRole("ci", { renewable: false });
    const updated = await t.request({ method: "GET", url: "/v1/auth/token/roles/ci" });
    assert.equal(updated.json().data.renewable, false);
    assert.deepEqual(updated.json().data.allowed_policies, ["deploy", "read"]);

    const list = await t.request({ method: "GET", url: "/v1/auth/token/roles?list=true" });
    assert.ok(list.json().data.keys.includes("ci"));

    const removed = await t.request({ method: "DELETE", url: "/v1/auth/token/roles/ci" });
    assert.equal(removed.statusCode, 204);
    const gone = await t.request({ method: "GET", url: "/v1/auth/token/roles/ci" });
    assert.equal(gone.statusCode, 404);
  });

  it("creates tokens with role settings", async () => {
    await writeTokenRole("agents", {
      allowed_policies: ["agent"],
      orphan: true,
      token_period: 1800,
      token_num_uses: 5,
      path_suffix: "site1",
    });
    // A caller whose own policies do not include "agent" may still create through the role.
    const caller = await create({ policies: ["other"] });
    const response = await createWithRole("agents", {}, caller.client_token);
    assert.equal(response.statusCode, 200, response.body);
    const auth = response.json().auth;
    assert.deepEqual(auth.policies, ["agent", "default"]);
    assert.equal(auth.orphan, true);
    assert.equal(auth.lease_duration, 1800);
    assert.equal(auth.num_uses, 5);

    const lookup = await t.request({
      method: "POST",
      url: "/v1/auth/token/lookup",
      payload: { token: auth.client_token },
    });
    assert.equal(lookup.json().data.path, "auth/token/create/agents/site1");
    assert.equal(lookup.json().data.period, 1800);
    assert.equal(lookup.json().data.role, "agents");
  });

  it("role limits the policies", async () => {
    await writeTokenRole("limited", {
      allowed_policies: ["app"],
      disallowed_policies: ["admin"],
    });
    const outside = await createWithRole("limited", { policies: ["ops"] });
    assert.equal(outside.statusCode, 403);
    assert.equal(outside.json().field, "policies");

    await writeTokenRole("open", { disallowed_policies: ["admin"] });
    const parent = await create({ policies: ["admin", "app"] });
    const inherited = await createWithRole("open", {}, parent.client_token);
    assert.equal(inherited.statusCode, 200, inherited.body);
    assert.deepEqual(inherited.json().auth.policies, ["app", "default"]);
    assert.equal(inherited.json().auth.orphan, false);

    const disallowed = await createWithRole("open", { policies: ["admin"] }, parent.client_token);
    assert.equal(disallowed.statusCode, 403);
    assert.match(disallowed.json().errors[0], /disallows the policies "admin"/);
  });

  const badRoles: [string, string, object, number, string, string][] = [
    ["fail unknown role", "missing", {}, 404, "not_found", ""],
    [
      "fail root allowed",
      "r1",
      { allowed_policies: ["root"] },
      400,
      "invalid_field",
      "allowed_policies",
    ],
    ["fail bad suffix", "r2", { path_suffix: "../x" }, 400, "invalid_field", "path_suffix"],
    ["fail bad period", "r3", { token_period: "often" }, 400, "invalid_field", "token_period"],
    [
      "fail bad cidr",
      "r4",
      { token_bound_cidrs: ["10.0.0.0/33"] },
      400,
      "invalid_field",
      "token_bound_cidrs",
    ],
    ["fail unknown role field", "r5", { colour: "red" }, 400, "unknown_field", "colour"],
  ];
  for (const [name, role, payload, status, code, field] of badRoles) {
    it(name, async () => {
      const response =
        status === 404
          ? await createWithRole(role, payload)
          : await t.request({ method: "POST", url: `/v1/auth/token/roles/${role}`, payload });
      assert.equal(response.statusCode, status, response.body);
      assert.equal(response.json().code, code);
      if (field !== "") assert.equal(response.json().field, field);
      const stored = await t.request({ method: "GET", url: `/v1/auth/token/roles/${role}` });
      assert.equal(stored.statusCode, 404);
    });
  }

  const badInput: [string, object, number, string, string | undefined][] = [
    ["fail bad ttl", { ttl: "soon" }, 400, "invalid_field", "ttl"],
    ["fail negative uses", { num_uses: -1 }, 400, "invalid_field", "num_uses"],
    ["fail unknown field", { role_name: "x" }, 400, "unknown_field", "role_name"],
    ["fail batch type", { type: "batch" }, 400, "invalid_field", "type"],
    ["fail bad policy", { policies: ["a b"] }, 400, "invalid_field", "policies"],
    ["fail empty id", { id: "" }, 400, "invalid_field", "id"],
  ];
  for (const [name, payload, status, code, field] of badInput) {
    it(name, async () => {
      const response = await t.request({ method: "POST", url: "/v1/auth/token/create", payload });
      assert.equal(response.statusCode, status, response.body);
      assert.equal(response.json().code, code);
      assert.equal(response.json().field, field);
    });
  }

  it("rate limits failed token checks", async () => {
    const address = "198.51.100.77";
    for (let i = 0; i < 10; i++) {
      const response = await t.request({
        method: "GET",
        url: "/v1/auth/token/lookup-self",
        token: `kw.guess-${i}`,
        remoteAddress: address,
      });
      assert.equal(response.statusCode, 403);
    }
    const limited = await t.request({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      remoteAddress: address,
    });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().code, "rate_limited");
    const elsewhere = await t.request({ method: "GET", url: "/v1/auth/token/lookup-self" });
    assert.equal(elsewhere.statusCode, 200);
  });
});
