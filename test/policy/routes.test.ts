import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance, InjectOptions, RouteOptions } from "fastify";
import { createFastify } from "../../src/api/app.ts";
import {
  type PolicyRouteOptions,
  registerPolicyRoutes,
} from "../../src/api/routes/sys-policies.ts";
import { PolicyStore } from "../../src/policy/store.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

const READER = 'path "secret/*" {\n  capabilities = ["read", "list"]\n}\n';
/** Header the test app reads the caller's policies from, standing in for the token check. */
const POLICIES_HEADER = "x-test-policies";

interface RouteApp {
  app: FastifyInstance;
  store: PolicyStore;
  routes: RouteOptions[];
}

/**
 * Builds a bare Fastify app with the policy routes, set up as the API's app
 * is: unknown fields are rejected, every body is parsed as JSON, and errors
 * go through the API's error handler. The caller's policies come from a
 * test header instead of a token.
 */
async function createRouteApp(options: PolicyRouteOptions = {}): Promise<RouteApp> {
  const store = new PolicyStore(new MemoryBarrier());
  const app = createFastify();
  app.addHook("onRequest", async (request) => {
    const header = request.headers[POLICIES_HEADER];
    if (typeof header === "string") {
      request.identity = { accessor: "test", displayName: "test", policies: header.split(",") };
    }
  });
  const routes: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    routes.push(route);
  });
  await registerPolicyRoutes(app, store, options);
  await app.ready();
  return { app, store, routes };
}

let fixture: RouteApp;

async function call(
  method: InjectOptions["method"],
  url: string,
  payload?: unknown,
  policies?: string,
) {
  const options: InjectOptions = { method, url, headers: {} };
  if (payload !== undefined) {
    options.payload = JSON.stringify(payload);
    options.headers = { "content-type": "application/json" };
  }
  if (policies !== undefined) options.headers = { ...options.headers, [POLICIES_HEADER]: policies };
  const response = await fixture.app.inject(options);
  const body = response.body === "" ? undefined : JSON.parse(response.body);
  return { status: response.statusCode, body };
}

before(async () => {
  fixture = await createRouteApp({
    lookupPolicies: async (token) => (token === "reader-token" ? ["reader"] : undefined),
  });
});

after(async () => {
  await fixture.app.close();
});

describe("sys/policies/acl routes", () => {
  it("writes and reads a policy", async () => {
    const written = await call("PUT", "/v1/sys/policies/acl/reader", { policy: READER });
    assert.equal(written.status, 204);
    const read = await call("GET", "/v1/sys/policies/acl/reader");
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.data, { name: "reader", policy: READER });
  });

  it("accepts POST and JSON policies", async () => {
    const policy = JSON.stringify({ path: { "transit/*": { capabilities: ["read"] } } });
    const written = await call("POST", "/v1/sys/policies/acl/json-form", { policy });
    assert.equal(written.status, 204);
    assert.equal((await fixture.store.get("json-form"))?.rules[0]?.path, "transit/*");
  });

  it("decodes a base64 policy", async () => {
    const policy = Buffer.from(READER).toString("base64");
    assert.equal((await call("PUT", "/v1/sys/policies/acl/encoded", { policy })).status, 204);
    const read = await call("GET", "/v1/sys/policies/acl/encoded");
    assert.equal(read.body.data.policy, READER);
  });

  it("lists with list=true", async () => {
    await call("PUT", "/v1/sys/policies/acl/reader", { policy: READER });
    const listed = await call("GET", "/v1/sys/policies/acl?list=true");
    assert.equal(listed.status, 200);
    assert.ok(listed.body.data.keys.includes("reader"));
    assert.ok(listed.body.data.keys.includes("default"));
    assert.ok(listed.body.data.keys.includes("root"));
    assert.deepEqual(listed.body.data.keys, [...listed.body.data.keys].sort());
  });

  it("rejects GET without list", async () => {
    const response = await call("GET", "/v1/sys/policies/acl");
    assert.equal(response.status, 405);
    assert.equal(response.body.code, "method_not_allowed");
  });

  it("reports a malformed policy's position", async () => {
    const response = await call("PUT", "/v1/sys/policies/acl/bad", {
      policy: 'path "a" {\n  capabilities = ["read"\n}',
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "invalid_policy");
    assert.equal(response.body.field, "policy");
    assert.match(response.body.errors[0], /^invalid policy at line 3, column 1: /);
  });

  it("rejects unknown body fields", async () => {
    const response = await call("PUT", "/v1/sys/policies/acl/x", { policy: READER, extra: 1 });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "unknown_field");
    assert.equal(response.body.field, "extra");
  });

  it("requires the policy field", async () => {
    const response = await call("PUT", "/v1/sys/policies/acl/x", {});
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "missing_field");
  });

  it("rejects an invalid name", async () => {
    const response = await call("PUT", "/v1/sys/policies/acl/bad%20name", { policy: READER });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "invalid_field");
    assert.equal(response.body.field, "name");
  });

  it("deletes and then 404s", async () => {
    await call("PUT", "/v1/sys/policies/acl/short-lived", { policy: READER });
    assert.equal((await call("DELETE", "/v1/sys/policies/acl/short-lived")).status, 204);
    const read = await call("GET", "/v1/sys/policies/acl/short-lived");
    assert.equal(read.status, 404);
    assert.equal(read.body.code, "not_found");
    assert.equal((await call("DELETE", "/v1/sys/policies/acl/short-lived")).status, 204);
  });

  it("protects built-in policies", async () => {
    const writeRoot = await call("PUT", "/v1/sys/policies/acl/root", { policy: READER });
    assert.equal(writeRoot.status, 400);
    assert.equal(writeRoot.body.code, "invalid_request");
    assert.equal((await call("DELETE", "/v1/sys/policies/acl/root")).status, 400);
    assert.equal((await call("DELETE", "/v1/sys/policies/acl/default")).status, 400);
    const readDefault = await call("GET", "/v1/sys/policies/acl/default");
    assert.match(readDefault.body.data.policy, /auth\/token\/lookup-self/);
  });
});

describe("sys/policy routes", () => {
  it("writes with rules and reads", async () => {
    assert.equal((await call("PUT", "/v1/sys/policy/legacy", { rules: READER })).status, 204);
    const read = await call("GET", "/v1/sys/policy/legacy");
    assert.equal(read.status, 200);
    assert.equal(read.body.name, "legacy");
    assert.equal(read.body.rules, READER);
    assert.deepEqual(read.body.data, { name: "legacy", rules: READER });
  });

  it("writes with policy", async () => {
    assert.equal((await call("POST", "/v1/sys/policy/legacy2", { policy: READER })).status, 204);
    assert.equal((await fixture.store.get("legacy2"))?.raw, READER);
  });

  it("requires policy or rules", async () => {
    const response = await call("PUT", "/v1/sys/policy/legacy3", {});
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "missing_field");
    assert.equal(response.body.field, "policy");
  });

  it("lists at the top level", async () => {
    await call("PUT", "/v1/sys/policy/legacy", { rules: READER });
    const listed = await call("GET", "/v1/sys/policy");
    assert.equal(listed.status, 200);
    assert.ok(listed.body.policies.includes("legacy"));
    assert.deepEqual(listed.body.keys, listed.body.policies);
    assert.deepEqual(listed.body.data.policies, listed.body.policies);
  });

  it("deletes", async () => {
    await call("PUT", "/v1/sys/policy/legacy4", { rules: READER });
    assert.equal((await call("DELETE", "/v1/sys/policy/legacy4")).status, 204);
    assert.equal((await call("GET", "/v1/sys/policy/legacy4")).status, 404);
  });
});

describe("capabilities routes", () => {
  it("answers for the caller's policies", async () => {
    await call("PUT", "/v1/sys/policies/acl/reader", { policy: READER });
    const response = await call(
      "POST",
      "/v1/sys/capabilities-self",
      { paths: ["secret/a", "transit/keys/k"] },
      "reader,default",
    );
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.data, {
      "secret/a": ["list", "read"],
      "transit/keys/k": ["deny"],
    });
    assert.deepEqual(response.body["secret/a"], ["list", "read"]);
    assert.equal(response.body.data.capabilities, undefined);
  });

  it("adds capabilities for one path", async () => {
    await call("PUT", "/v1/sys/policies/acl/reader", { policy: READER });
    const response = await call("PUT", "/v1/sys/capabilities-self", { path: "secret/a" }, "reader");
    assert.deepEqual(response.body.data.capabilities, ["list", "read"]);
    assert.deepEqual(response.body.capabilities, ["list", "read"]);
  });

  it("splits comma-separated paths", async () => {
    const response = await call("POST", "/v1/sys/capabilities-self", { paths: "a, b" }, "default");
    assert.deepEqual(Object.keys(response.body.data).sort(), ["a", "b"]);
  });

  it("keeps a __proto__ path", async () => {
    const response = await call(
      "POST",
      "/v1/sys/capabilities-self",
      { paths: ["__proto__"] },
      "default",
    );
    assert.deepEqual(Object.keys(response.body.data), ["__proto__", "capabilities"]);
    assert.deepEqual(response.body.data.capabilities, ["deny"]);
  });

  it("returns root for root tokens", async () => {
    const response = await call(
      "POST",
      "/v1/sys/capabilities-self",
      { paths: ["any/path"] },
      "root",
    );
    assert.deepEqual(response.body.data["any/path"], ["root"]);
  });

  it("requires paths", async () => {
    const response = await call("POST", "/v1/sys/capabilities-self", {}, "default");
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "missing_field");
    assert.equal(response.body.field, "paths");
  });

  it("denies a caller without identity", async () => {
    const response = await call("POST", "/v1/sys/capabilities-self", { paths: ["a"] });
    assert.equal(response.status, 403);
  });

  it("answers for another token", async () => {
    await call("PUT", "/v1/sys/policies/acl/reader", { policy: READER });
    const response = await call("POST", "/v1/sys/capabilities", {
      token: "reader-token",
      paths: ["secret/x"],
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.capabilities, ["list", "read"]);
  });

  it("rejects an unknown token", async () => {
    const response = await call("POST", "/v1/sys/capabilities", { token: "nope", paths: ["a"] });
    assert.equal(response.status, 400);
    assert.equal(response.body.field, "token");
    assert.doesNotMatch(response.body.errors[0], /nope/);
  });

  it("omits sys/capabilities without lookup", async () => {
    const bare = await createRouteApp();
    const response = await bare.app.inject({
      method: "POST",
      url: "/v1/sys/capabilities",
      payload: { token: "t", paths: ["a"] },
    });
    assert.equal(response.statusCode, 404);
    await bare.app.close();
  });
});

describe("policy route schemas", () => {
  it("tag every route sys", () => {
    assert.ok(fixture.routes.length >= 10);
    for (const route of fixture.routes) {
      assert.deepEqual(route.schema?.tags, ["sys"], `${route.method} ${route.url}`);
    }
  });

  it("close every object schema", () => {
    for (const route of fixture.routes) {
      const schema = route.schema as Record<string, { additionalProperties?: boolean } | undefined>;
      for (const part of ["body", "params", "querystring"]) {
        const partSchema = schema[part];
        if (partSchema === undefined) continue;
        assert.equal(
          partSchema.additionalProperties,
          false,
          `${route.method} ${route.url} ${part}`,
        );
      }
    }
  });
});
