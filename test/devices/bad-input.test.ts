import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BAD_BODIES, PARAMETER_VALUES } from "../api/bad-input-probe.ts";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  type EnrolledDevice,
  enrolDevice,
  ok,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

/** Admin routes with `{name}` for a device or secret name. */
const ADMIN_ROUTES: { method: "GET" | "POST" | "DELETE"; path: string }[] = [
  { method: "GET", path: "/v1/devices/config" },
  { method: "POST", path: "/v1/devices/config" },
  { method: "GET", path: "/v1/devices/registry?list=true" },
  { method: "GET", path: "/v1/devices/registry/{name}" },
  { method: "POST", path: "/v1/devices/registry/{name}" },
  { method: "POST", path: "/v1/devices/registry/{name}/bootstrap-token" },
  { method: "GET", path: "/v1/devices/registry/{name}/status" },
  { method: "GET", path: "/v1/devices/rollout" },
  { method: "GET", path: "/v1/devices/secrets?list=true" },
  { method: "GET", path: "/v1/devices/secrets/{name}" },
  { method: "POST", path: "/v1/devices/secrets/{name}" },
  { method: "POST", path: "/v1/devices/secrets/{name}/rotate" },
  { method: "POST", path: "/v1/devices/enroll" },
];

/** Names that reach an existing device and secret, besides the generic probe values. */
const NAMES = ["gw-1", "radius", ...PARAMETER_VALUES];

function describeFailure(where: string, status: number, body: string): string | undefined {
  if (status >= 500) return `${where}: ${status} ${body.slice(0, 200)}`;
  if (status >= 400) {
    const error = JSON.parse(body);
    if (typeof error.code !== "string" || !Array.isArray(error.errors)) {
      return `${where}: no error code in ${body.slice(0, 200)}`;
    }
  }
  return undefined;
}

describe("bad input on device routes", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let device: EnrolledDevice;

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    await ok(t, "POST", "/v1/devices/secrets/radius", { devices: ["gw-1"] });
    device = await enrolDevice(t, "gw-1");
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  it("returns no 5xx on admin routes", async () => {
    const failures: string[] = [];
    for (const { method, path } of ADMIN_ROUTES) {
      for (const name of path.includes("{") ? NAMES : NAMES.slice(0, 1)) {
        const url = path.replace("{name}", encodeURIComponent(name));
        const bodies = method === "POST" ? BAD_BODIES : [{ name: "none", payload: "" }];
        for (const body of bodies) {
          const response = await t.request({
            method,
            url,
            payload: body.payload,
            headers: { "content-type": "application/json" },
          });
          const where = `${method} ${url.slice(0, 80)} with ${body.name}`;
          const failure = describeFailure(where, response.statusCode, response.body);
          if (failure) failures.push(failure);
          const mustFail = body.name === "invalid JSON" || body.name === "unknown field";
          if (mustFail && response.statusCode < 400) failures.push(`${where} was accepted`);
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  it("returns no 5xx on device API", async () => {
    const failures: string[] = [];
    for (const path of ["/v1/devices/self/renew", "/v1/devices/self/applied"]) {
      for (const body of BAD_BODIES) {
        const response = await deviceRequest(server, {
          method: "POST",
          path,
          rawBody: body.payload,
          device,
        });
        const where = `POST ${path} with ${body.name}`;
        const failure = describeFailure(where, response.status, response.body);
        if (failure) failures.push(failure);
        if (response.status < 400) failures.push(`${where} was accepted`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("names each bad admin field", async () => {
    const cases: { url: string; payload: object; field: string }[] = [
      { url: "/v1/devices/registry/-bad", payload: {}, field: "name" },
      { url: `/v1/devices/registry/${"a".repeat(64)}`, payload: {}, field: "name" },
      { url: "/v1/devices/registry/ok-1", payload: { tags: { "-x": "1" } }, field: "tags.-x" },
      { url: "/v1/devices/registry/ok-1", payload: { tags: { x: { y: "1" } } }, field: "tags.x" },
      { url: "/v1/devices/registry/ok-1", payload: { groups: ["a b"] }, field: "groups[0]" },
      { url: "/v1/devices/registry/ok-1", payload: { groups: { edge: true } }, field: "groups" },
      { url: "/v1/devices/registry/gw-1/bootstrap-token", payload: { ttl: "soon" }, field: "ttl" },
      { url: "/v1/devices/registry/gw-1/bootstrap-token", payload: { ttl: "400d" }, field: "ttl" },
      { url: "/v1/devices/registry/gw-1/bootstrap-token", payload: { ttl: 0 }, field: "ttl" },
      {
        url: "/v1/devices/registry/gw-1/bootstrap-token",
        payload: { num_uses: 0 },
        field: "num_uses",
      },
      {
        url: "/v1/devices/registry/gw-1/bootstrap-token",
        payload: { num_uses: 1001 },
        field: "num_uses",
      },
      { url: "/v1/devices/secrets/new-1", payload: { length: 8 }, field: "length" },
      { url: "/v1/devices/secrets/new-1", payload: { length: 129 }, field: "length" },
      { url: "/v1/devices/secrets/new-1", payload: { encoding: "raw" }, field: "encoding" },
      { url: "/v1/devices/secrets/radius", payload: { length: 64 }, field: "length" },
      { url: "/v1/devices/secrets/radius", payload: { encoding: "hex" }, field: "encoding" },
      { url: "/v1/devices/secrets/radius", payload: { devices: ["."] }, field: "devices[0]" },
      { url: "/v1/devices/secrets/.hidden", payload: {}, field: "name" },
      { url: "/v1/devices/config", payload: { pki_mount: "pki" }, field: "pki_role" },
      // JSON values of the wrong type, which type coercion would otherwise change.
      { url: "/v1/devices/registry/gw-1/bootstrap-token", payload: { ttl: true }, field: "ttl" },
      {
        url: "/v1/devices/registry/gw-1/bootstrap-token",
        payload: { num_uses: [2] },
        field: "num_uses",
      },
      {
        url: "/v1/devices/config",
        payload: { pki_mount: true, pki_role: "devices" },
        field: "pki_mount",
      },
      {
        url: "/v1/devices/config",
        payload: { pki_mount: "pki", pki_role: ["devices"] },
        field: "pki_role",
      },
      { url: "/v1/devices/registry/ok-1", payload: { groups: [true] }, field: "groups[0]" },
      { url: "/v1/devices/registry/ok-1", payload: { tags: { a: 1 } }, field: "tags.a" },
      { url: "/v1/devices/secrets/new-1", payload: { encoding: ["hex"] }, field: "encoding" },
    ];
    for (const { url, payload, field } of cases) {
      const response = await t.request({ method: "POST", url, payload });
      assert.equal(response.statusCode, 400, `${url} ${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(response.json().field, field, `${url} ${JSON.stringify(payload)}`);
      assert.ok(
        ["invalid_field", "missing_field", "invalid_request"].includes(response.json().code),
        response.body,
      );
    }
  });

  it("answers 404 for missing objects", async () => {
    for (const url of [
      "/v1/devices/registry/missing",
      "/v1/devices/registry/missing/status",
      "/v1/devices/secrets/missing",
    ]) {
      const response = await t.request({ method: "GET", url });
      assert.equal(response.statusCode, 404, url);
      assert.equal(response.json().code, "not_found");
    }
    for (const url of [
      "/v1/devices/registry/missing/bootstrap-token",
      "/v1/devices/registry/missing/revoke",
      "/v1/devices/secrets/missing/rotate",
    ]) {
      const response = await t.request({ method: "POST", url, payload: {} });
      assert.equal(response.statusCode, 404, url);
      assert.equal(response.json().code, "not_found");
    }
    const deleted = await t.request({ method: "DELETE", url: "/v1/devices/registry/missing" });
    assert.equal(deleted.statusCode, 404);
  });

  it("names each bad device API field", async () => {
    const cases: { method: "GET" | "POST"; path: string; body?: object; field: string }[] = [
      { method: "GET", path: "/v1/devices/self/state?wait=61", field: "wait" },
      { method: "GET", path: "/v1/devices/self/state?wait=-1", field: "wait" },
      { method: "GET", path: "/v1/devices/self/state?wait=soon", field: "wait" },
      { method: "GET", path: `/v1/devices/self/state?since=${"a".repeat(200)}`, field: "since" },
      { method: "GET", path: "/v1/devices/self/state?other=1", field: "other" },
      { method: "POST", path: "/v1/devices/self/renew", body: {}, field: "csr" },
      { method: "POST", path: "/v1/devices/self/renew", body: { csr: "x" }, field: "csr" },
      {
        method: "POST",
        path: "/v1/devices/self/renew",
        body: { csr: device.keys.csr, encryption_key: { kty: "RSA" } },
        field: "encryption_key.kty",
      },
      { method: "POST", path: "/v1/devices/self/applied", body: {}, field: "artifacts" },
      {
        method: "POST",
        path: "/v1/devices/self/applied",
        body: { artifacts: [{ id: "secret:radius", version: -1 }] },
        field: "artifacts[0].version",
      },
      {
        method: "POST",
        path: "/v1/devices/self/applied",
        body: { artifacts: [{ id: "secret:radius" }] },
        field: "artifacts[0].version",
      },
    ];
    for (const { method, path, body, field } of cases) {
      const response = await deviceRequest(server, {
        method,
        path,
        device,
        ...(body ? { body } : {}),
      });
      assert.equal(response.status, 400, `${path} ${JSON.stringify(body)}: ${response.body}`);
      assert.equal(response.json().field, field, `${path} ${JSON.stringify(body)}`);
    }
  });

  it("authenticates before validating the body", async () => {
    const response = await deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/applied",
      body: { unknown_field: 1 },
    });
    assert.equal(response.status, 401);
    assert.equal(response.json().code, "device_authentication_failed");
  });
});
