import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

/** Paths the built-in `default` policy grants every token: its own lookup, renewal and revocation. */
const DEFAULT_POLICY_PATHS =
  /^\/v1\/(auth\/token\/(lookup-self|renew-self|revoke-self)|sys\/capabilities-self)$/;

/**
 * Routes that need no token, as in Vault, and the protocol routes that
 * authenticate devices themselves: EST, device enrolment and the device API.
 */
const PUBLIC_PATHS =
  /^(\/v1\/(sys\/(init|seal-status|unseal|health|leader|rekey\/.*|generate-root\/.*)|auth\/approle\/login|devices\/enroll|devices\/self\/.*)|\/\.well-known\/est\/.*)$/;

/** Capabilities granted on every path, and the methods they must leave denied. */
const MATRIX = [
  { name: "nothing", capabilities: [] as string[], denied: ["GET", "POST", "PUT", "DELETE"] },
  { name: "read-list", capabilities: ["read", "list"], denied: ["POST", "PUT", "DELETE"] },
  { name: "create-update", capabilities: ["create", "update"], denied: ["GET", "DELETE"] },
  { name: "delete", capabilities: ["delete"], denied: ["GET", "POST", "PUT"] },
];

interface Route {
  method: string;
  path: string;
}

// Every route in the OpenAPI document, called with tokens whose policies
// grant one set of capabilities on every path: each method the set does not
// cover must be denied with 403, whatever the path.
describe("policy matrix over every route", () => {
  let t: TestApp;
  let routes: Route[] = [];
  const tokens = new Map<string, string>();

  before(async () => {
    t = await createTestApp();
    await t.request({
      method: "POST",
      url: "/v1/transit/keys/matrix",
      payload: { type: "aes256-gcm96" },
    });
    const document = (await t.request({ method: "GET", url: "/v1/sys/openapi" })).json();
    for (const [path, operations] of Object.entries(
      document.paths as Record<string, Record<string, unknown>>,
    )) {
      for (const method of Object.keys(operations)) {
        if (!["get", "post", "put", "delete"].includes(method)) continue;
        routes.push({ method: method.toUpperCase(), path });
      }
    }
    routes = routes.filter(
      (route) => !DEFAULT_POLICY_PATHS.test(route.path) && !PUBLIC_PATHS.test(route.path),
    );

    for (const entry of MATRIX) {
      if (entry.capabilities.length > 0) {
        const policy = `path "*" { capabilities = ${JSON.stringify(entry.capabilities)} }\npath "+/*" { capabilities = ${JSON.stringify(entry.capabilities)} }`;
        const written = await t.request({
          method: "PUT",
          url: `/v1/sys/policies/acl/${entry.name}`,
          payload: { policy },
        });
        assert.equal(written.statusCode, 204, written.body);
      }
      const created = await t.request({
        method: "POST",
        url: "/v1/auth/token/create",
        payload: {
          policies: entry.capabilities.length > 0 ? [entry.name] : ["default"],
          ttl: "1h",
          num_uses: 0,
        },
      });
      assert.equal(created.statusCode, 200, created.body);
      tokens.set(entry.name, created.json().auth.client_token);
    }
  });
  after(() => t.close());

  it("finds the routes", () => {
    assert.ok(routes.length >= 40, `only ${routes.length} routes`);
  });

  for (const entry of MATRIX) {
    it(`denies what ${entry.name} does not grant`, async () => {
      const token = tokens.get(entry.name) ?? "";
      const granted: string[] = [];
      for (const route of routes) {
        if (!entry.denied.includes(route.method)) continue;
        const url = route.path.replace(/\{mount\}/g, "transit").replace(/\{[^}]+\}/g, "matrix");
        const response = await t.request({
          method: route.method as "GET",
          url,
          payload: route.method === "GET" || route.method === "DELETE" ? undefined : {},
          token,
        });
        if (response.statusCode !== 403) {
          granted.push(
            `${route.method} ${url}: ${response.statusCode} ${response.body.slice(0, 120)}`,
          );
        }
      }
      assert.deepEqual(granted, []);
    });
  }
});
