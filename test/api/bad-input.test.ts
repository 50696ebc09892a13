import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

/** Bodies that no route accepts as they are; each must get a 4xx, never a 5xx. */
const BAD_BODIES: { name: string; payload: string }[] = [
  { name: "invalid JSON", payload: "{" },
  { name: "JSON array", payload: "[1,2,3]" },
  { name: "JSON string", payload: '"text"' },
  { name: "JSON null", payload: "null" },
  { name: "unknown field", payload: JSON.stringify({ no_such_field: 1 }) },
  {
    name: "wrong types",
    payload: JSON.stringify({
      plaintext: 12,
      input: [],
      ciphertext: {},
      type: 7,
      batch_input: "x",
    }),
  },
  {
    name: "invalid base64",
    payload: JSON.stringify({ plaintext: "@@not base64@@", input: "%%%" }),
  },
  {
    name: "huge number",
    payload: JSON.stringify({ bits: 1e308, key_version: -1, min_decryption_version: 1e20 }),
  },
  {
    name: "malformed batch",
    payload: JSON.stringify({ batch_input: [null, 1, "x", { plaintext: 5 }, {}] }),
  },
  {
    name: "long string",
    payload: JSON.stringify({ ciphertext: `keyward:v1:${"A".repeat(200_000)}` }),
  },
  {
    name: "prototype keys",
    payload: '{"__proto__":{"admin":true},"constructor":{"prototype":{}}}',
  },
];

/** Values substituted for path parameters, to reach real keys of several types. */
const PARAMETER_VALUES = ["aes", "signer", "missing-key", "..", "%00", "a".repeat(300)];

describe("bad input on every route", () => {
  let t: TestApp;
  let routes: { method: string; path: string }[] = [];

  before(async () => {
    t = await createTestApp({ maxRequestBytes: 512 * 1024 });
    await t.request({
      method: "POST",
      url: "/v1/transit/keys/aes",
      payload: { type: "aes256-gcm96" },
    });
    await t.request({
      method: "POST",
      url: "/v1/transit/keys/signer",
      payload: { type: "ed25519" },
    });
    const document = (await t.request({ method: "GET", url: "/v1/sys/openapi" })).json();
    for (const [path, operations] of Object.entries(document.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) {
        if (["get", "post", "put", "delete", "head"].includes(method))
          routes.push({ method: method.toUpperCase(), path });
      }
    }
    // These routes would seal the server, start a rekey or revoke the test's
    // own token mid-test; they have their own tests.
    routes = routes.filter(
      ({ path }) =>
        !/\/sys\/(seal|rekey|init|unseal|mounts|generate-root)/.test(path) &&
        !/\/auth\/token\/revoke/.test(path),
    );
  });
  after(() => t.close());

  it("covers the API's routes", () => {
    assert.ok(routes.length >= 20, `only ${routes.length} routes found in the OpenAPI document`);
  });

  it("never answers 5xx", async () => {
    const failures: string[] = [];
    for (const { method, path } of routes) {
      for (const value of PARAMETER_VALUES) {
        const url = path.replace(/\{[^}]+\}/g, encodeURIComponent(value));
        const bodies =
          method === "GET" || method === "HEAD" || method === "DELETE"
            ? [{ name: "none", payload: "" }]
            : BAD_BODIES;
        for (const body of bodies) {
          const response = await t.request({
            method: method as "GET",
            url,
            payload: body.payload,
            headers: { "content-type": "application/json" },
          });
          const mustFail = body.name === "invalid JSON" || body.name === "unknown field";
          if (mustFail && response.statusCode < 400) {
            failures.push(
              `${method} ${url.slice(0, 80)} accepted ${body.name}: ${response.statusCode}`,
            );
          }
          if (response.statusCode >= 500) {
            failures.push(
              `${method} ${url.slice(0, 80)} with ${body.name}: ${response.statusCode} ${response.body.slice(0, 200)}`,
            );
          } else if (response.statusCode >= 400 && method !== "HEAD") {
            const error = response.json();
            if (typeof error.code !== "string" || !Array.isArray(error.errors)) {
              failures.push(
                `${method} ${url.slice(0, 80)} with ${body.name}: no error code in ${response.body.slice(0, 200)}`,
              );
            }
          }
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  it("keeps serving afterwards", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/aes",
      payload: { plaintext: "aGk=" },
    });
    assert.equal(response.statusCode, 200);
    const health = await t.request({ method: "GET", url: "/v1/sys/health", token: null });
    assert.equal(health.statusCode, 200);
  });
});
