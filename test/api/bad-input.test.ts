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

/** The mount path the PKI routes are exercised at; its CA and role share the name. */
const PKI_MOUNT = "pki";
/** The mount path the SSH routes are exercised at; its role shares the name. */
const SSH_MOUNT = "ssh";

/** EST protocol operations, which answer errors as text/plain rather than Keyward's JSON error body. */
const EST_PROTOCOL = /\/est\/(.+\/)?(cacerts|csrattrs|simpleenroll|simplereenroll|serverkeygen)$/;

/** ACME protocol routes, which answer errors as RFC 8555 problem documents. */
const ACME_PROTOCOL = /\/acme\/(?!new-eab$|mgmt\/)/;

describe("bad input on every route", () => {
  let t: TestApp;
  let routes: { method: string; path: string; engine: "pki" | "ssh" | undefined }[] = [];

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
    await t.request({
      method: "POST",
      url: `/v1/sys/mounts/${PKI_MOUNT}`,
      payload: { type: "pki" },
    });
    await t.request({
      method: "POST",
      url: `/v1/${PKI_MOUNT}/root/generate/internal`,
      payload: { common_name: "Bad Input Root", key_type: "ec" },
    });
    await t.request({
      method: "POST",
      url: `/v1/${PKI_MOUNT}/roles/${PKI_MOUNT}`,
      payload: { allow_any_name: true, key_type: "ec" },
    });
    await t.request({
      method: "POST",
      url: `/v1/sys/mounts/${SSH_MOUNT}`,
      payload: { type: "ssh" },
    });
    await t.request({
      method: "POST",
      url: `/v1/${SSH_MOUNT}/config/ca`,
      payload: { key_type: "ssh-ed25519" },
    });
    await t.request({
      method: "POST",
      url: `/v1/${SSH_MOUNT}/roles/${SSH_MOUNT}`,
      payload: { key_type: "ca", allow_user_certificates: true, allowed_users: "*" },
    });
    const document = (await t.request({ method: "GET", url: "/v1/sys/openapi" })).json();
    for (const [path, operations] of Object.entries(
      document.paths as Record<string, Record<string, { tags?: string[] }>>,
    )) {
      for (const [method, operation] of Object.entries(operations)) {
        if (["get", "post", "put", "delete", "head"].includes(method))
          routes.push({
            method: method.toUpperCase(),
            path,
            engine: operation.tags?.includes("pki")
              ? "pki"
              : operation.tags?.includes("ssh")
                ? "ssh"
                : undefined,
          });
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

  /** Sends every bad body to each route with each parameter value and returns what went wrong. */
  async function probe(
    selected: { method: string; path: string }[],
    values: string[],
    urlFor: (path: string, value: string) => string,
  ): Promise<string[]> {
    const failures: string[] = [];
    for (const { method, path } of selected) {
      for (const value of values) {
        const url = urlFor(path, value);
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
          } else if (EST_PROTOCOL.test(path) && response.statusCode >= 400) {
            // EST clients expect a plain status with a text message (RFC 7030 section 4.2.3).
            // A URL that `..` turned into another path gets Keyward's own error instead.
            const isText = String(response.headers["content-type"]).startsWith("text/plain");
            if (!isText && typeof response.json().code !== "string") {
              failures.push(
                `${method} ${url.slice(0, 80)} with ${body.name}: EST error not text/plain`,
              );
            }
          } else if (ACME_PROTOCOL.test(path) && response.statusCode >= 400 && method !== "HEAD") {
            // ACME clients read problem documents (RFC 8555 section 6.7). A body
            // that is not JSON at all, or a URL that `..` turned into another
            // path, is refused before the ACME routes, with Keyward's own error.
            const error = response.json();
            const isProblem =
              String(response.headers["content-type"]).startsWith("application/problem+json") &&
              typeof error.type === "string" &&
              error.type.startsWith("urn:ietf:params:acme:error:");
            if (!isProblem && (typeof error.code !== "string" || !Array.isArray(error.errors))) {
              failures.push(
                `${method} ${url.slice(0, 80)} with ${body.name}: no ACME problem in ${response.body.slice(0, 200)}`,
              );
            }
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
    return failures;
  }

  it("never answers 5xx", async () => {
    const failures = await probe(
      routes.filter((route) => route.engine === undefined),
      PARAMETER_VALUES,
      (path, value) => path.replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });

  // PKI routes only serve PKI mounts, so the mount stays fixed while the
  // other parameters take each value. A separate test keeps each within
  // the runner's per-test timeout.
  it("never answers 5xx on PKI routes", async () => {
    const failures = await probe(
      engineRoutes("pki"),
      // The mount's CA and role are both named after it; transit's key names mean nothing here.
      [PKI_MOUNT, ...PARAMETER_VALUES.filter((value) => value !== "aes" && value !== "signer")],
      (path, value) =>
        path.replace("{mount}", PKI_MOUNT).replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });

  it("never answers 5xx on SSH routes", async () => {
    const failures = await probe(
      engineRoutes("ssh"),
      // The mount's role is named after it.
      [SSH_MOUNT, ...PARAMETER_VALUES.filter((value) => value !== "aes" && value !== "signer")],
      (path, value) =>
        path.replace("{mount}", SSH_MOUNT).replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });

  /** Returns an engine's routes. PUT and POST share each write handler, so only POST is kept. */
  function engineRoutes(engine: "pki" | "ssh") {
    return routes.filter(
      (route) =>
        route.engine === engine &&
        !(
          route.method === "PUT" &&
          routes.some((other) => other.path === route.path && other.method === "POST")
        ),
    );
  }

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
