import type { TestApp } from "../helpers/app.ts";
import { createTestApp } from "../helpers/app.ts";

/** Bodies that no route accepts as they are; each must get a 4xx, never a 5xx. */
export const BAD_BODIES: { name: string; payload: string }[] = [
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
export const PARAMETER_VALUES = ["aes", "signer", "missing-key", "..", "%00", "a".repeat(300)];

/** The mount path the PKI routes are exercised at; its CA and role share the name. */
export const PKI_MOUNT = "pki";
/** The mount path the SSH routes are exercised at; its role shares the name. */
export const SSH_MOUNT = "ssh";
/** The mount paths the transit and WireGuard routes are exercised at. */
export const TRANSIT_MOUNT = "transit";
export const WIREGUARD_MOUNT = "wireguard";

/** EST protocol operations, which return errors as text/plain rather than Keyward's JSON error body. */
const EST_PROTOCOL = /\/est\/(.+\/)?(cacerts|csrattrs|simpleenroll|simplereenroll|serverkeygen)$/;

/** ACME protocol routes, which return errors as RFC 8555 problem documents. */
const ACME_PROTOCOL = /\/acme\/(?!new-eab$|mgmt\/)/;

export interface ProbedRoute {
  method: string;
  path: string;
  engine: "pki" | "ssh" | undefined;
}

/**
 * Starts an app with transit keys, a PKI mount (root and role) and an SSH
 * mount (CA and role), and returns it with every route of its OpenAPI
 * document except those that would seal it or revoke the test's token.
 */
export async function openBadInputApp(): Promise<{ t: TestApp; routes: ProbedRoute[] }> {
  const t = await createTestApp({ maxRequestBytes: 512 * 1024 });
  let routes: ProbedRoute[] = [];
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
  // A WireGuard network and peer named like the transit keys, so that the
  // parameter values reach existing objects on both engines.
  await t.request({
    method: "POST",
    url: `/v1/sys/mounts/${WIREGUARD_MOUNT}`,
    payload: { type: "wireguard" },
  });
  await t.request({
    method: "POST",
    url: `/v1/${WIREGUARD_MOUNT}/networks/aes`,
    payload: { address_ranges: ["10.99.0.0/24"] },
  });
  await t.request({
    method: "POST",
    url: `/v1/${WIREGUARD_MOUNT}/networks/aes/peers/signer`,
    payload: { generate_key: true },
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
  return { t, routes };
}

/** Sends every bad body to each route with each parameter value and returns what went wrong. */
export async function probe(
  t: TestApp,
  selected: { method: string; path: string }[],
  values: string[],
  urlFor: (path: string, value: string) => string,
): Promise<string[]> {
  const failures: string[] = [];
  for (const { method, path } of selected) {
    // A path without parameters is the same URL for every value: probe it once.
    for (const value of path.includes("{") ? values : values.slice(0, 1)) {
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

/** Returns an engine's routes. PUT and POST share each write handler, so only POST is kept. */
export function engineRoutes(routes: ProbedRoute[], engine: "pki" | "ssh") {
  return routes.filter(
    (route) =>
      route.engine === engine &&
      !(
        route.method === "PUT" &&
        routes.some((other) => other.path === route.path && other.method === "POST")
      ),
  );
}
