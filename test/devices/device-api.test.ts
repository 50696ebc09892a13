import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type {
  DeviceArtifact,
  DeviceArtifactSource,
  DeviceRef,
} from "../../src/devices/artifacts.ts";
import { openSealed } from "../../src/devices/sealed.ts";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  type EnrolledDevice,
  enrolDevice,
  eventually,
  makeDeviceKeys,
  ok,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

/** A source with one artifact per device in group `staged`, with content announced ahead. */
class StagedSource implements DeviceArtifactSource {
  readonly kind = "staged";
  version = 1;
  revoked: string[] = [];

  async artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]> {
    if (!device.groups.includes("staged")) return [];
    return [
      {
        id: `staged:${device.name}`,
        kind: this.kind,
        version: this.version,
        fields: { device: device.name },
        secrets: { text: `current ${this.version}` },
        next: {
          version: this.version + 1,
          activateAt: "2030-01-01T00:00:00.000Z",
          fields: { device: device.name },
          secrets: { text: `next ${this.version + 1}` },
        },
      },
    ];
  }

  async deviceRevoked(device: DeviceRef): Promise<void> {
    this.revoked.push(device.name);
  }
}

describe("device API over mutual TLS", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let gateway: EnrolledDevice;
  const staged = new StagedSource();

  before(async () => {
    t = await createDeviceApp({ deviceSources: [staged] });
    server = await startTlsServer(t);
    await ok(t, "POST", "/v1/devices/secrets/radius", { groups: ["edge"] });
    gateway = await enrolDevice(t, "gw-1", { groups: ["edge", "staged"] });
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  const state = (device: EnrolledDevice, query = "") =>
    deviceRequest(server, { method: "GET", path: `/v1/devices/self/state${query}`, device });

  it("serves the state with sealed secrets", async () => {
    const response = await state(gateway);
    assert.equal(response.status, 200, response.body);
    const data = response.json().data;
    assert.equal(data.device, "gw-1");
    assert.equal(data.device_id, gateway.deviceId);
    assert.match(data.etag, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      data.artifacts.map((artifact: { id: string }) => artifact.id),
      ["secret:radius", "staged:gw-1"],
    );

    const [secret, stagedArtifact] = data.artifacts;
    assert.equal(secret.kind, "secret");
    assert.equal(secret.version, 1);
    const { created_at: createdAt, ...fields } = secret.fields;
    assert.ok(!Number.isNaN(Date.parse(String(createdAt))));
    assert.deepEqual(fields, { name: "radius", encoding: "base64" });
    assert.equal(secret.next, null);
    const value = await openSealed(gateway.keys.encryptionPrivateKey, secret.secrets.value, {
      artifact: "secret:radius",
      version: 1,
      field: "value",
    });
    assert.equal(Buffer.from(value, "base64").length, 32);

    assert.equal(stagedArtifact.next.activate_at, "2030-01-01T00:00:00.000Z");
    const nextText = await openSealed(
      gateway.keys.encryptionPrivateKey,
      stagedArtifact.next.secrets.text,
      { artifact: "staged:gw-1", version: stagedArtifact.next.version, field: "text" },
    );
    assert.equal(nextText, `next ${stagedArtifact.next.version}`);
    await assert.rejects(
      openSealed(gateway.keys.encryptionPrivateKey, stagedArtifact.next.secrets.text, {
        artifact: "staged:gw-1",
        version: stagedArtifact.version,
        field: "text",
      }),
    );
  });

  it("keeps the etag while nothing changes", async () => {
    const first = (await state(gateway)).json().data.etag;
    const second = (await state(gateway)).json().data.etag;
    assert.equal(first, second);
  });

  it("rejects plain HTTP", async () => {
    const response = await t.request({ method: "GET", url: "/v1/devices/self/state", token: null });
    assert.equal(response.statusCode, 401);
    assert.equal(response.json().code, "device_authentication_failed");
    assert.match(response.json().errors[0], /mutual TLS/);
  });

  it("rejects TLS without a client certificate", async () => {
    const response = await deviceRequest(server, { method: "GET", path: "/v1/devices/self/state" });
    assert.equal(response.status, 401);
    assert.equal(response.json().code, "device_authentication_failed");
  });

  it("rejects non-identity PKI certificates", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/devices", {
      common_name: "gw-1",
      private_key_format: "pkcs8",
    });
    const response = await state({
      ...gateway,
      certificatePem: issued.certificate,
      keys: { ...gateway.keys, keyPem: issued.private_key },
    });
    assert.equal(response.status, 401);
    assert.equal(response.json().code, "device_authentication_failed");
    assert.match(
      response.json().errors[0],
      /not a current identity certificate of a registered device/,
    );
  });

  it("returns 304 when nothing changes", async () => {
    const etag = (await state(gateway)).json().data.etag;
    const response = await state(gateway, `?since=${etag}&wait=1`);
    assert.equal(response.status, 304);
    assert.equal(response.body, "");
  });

  it("returns 200 at once on new etag", async () => {
    const response = await state(gateway, "?since=stale&wait=60");
    assert.equal(response.status, 200);
  });

  it("wakes a long poll on change", async () => {
    const etag = (await state(gateway)).json().data.etag;
    const polled = state(gateway, `?since=${etag}&wait=60`);
    await eventually(() => t.keyward.devices.waiters.size > 0, "the long poll to wait");
    await ok(t, "POST", "/v1/devices/secrets/radius/rotate", {});
    const response = await polled;
    assert.equal(response.status, 200, response.body);
    const data = response.json().data;
    assert.notEqual(data.etag, etag);
    assert.equal(data.artifacts[0].version, 2);
  });

  it("cleans up the waits of clients that disconnect", async () => {
    const etag = (await state(gateway)).json().data.etag;
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const polls = controllers.map((controller) =>
      deviceRequest(server, {
        method: "GET",
        path: `/v1/devices/self/state?since=${etag}&wait=60`,
        device: gateway,
        signal: controller.signal,
      }).catch(() => undefined),
    );
    await eventually(() => t.keyward.devices.waiters.size === 20, "20 long polls to wait");
    for (const controller of controllers) controller.abort();
    await Promise.all(polls);
    await eventually(() => t.keyward.devices.waiters.size === 0, "the waits to end");
  });

  it("records applied versions for status and rollout", async () => {
    const current = (await state(gateway)).json().data;
    const versions = current.artifacts.map((artifact: { id: string; version: number }) => ({
      id: artifact.id,
      version: artifact.version,
    }));
    const response = await deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/applied",
      device: gateway,
      body: { artifacts: versions },
    });
    assert.equal(response.status, 204, response.body);

    const status = await ok(t, "GET", "/v1/devices/registry/gw-1/status");
    assert.equal(status.device.name, "gw-1");
    assert.equal(typeof status.device.last_seen_at, "string");
    for (const artifact of status.artifacts) {
      assert.equal(artifact.in_sync, true, artifact.id);
      assert.equal(artifact.applied_version, artifact.version);
    }
    const stagedStatus = status.artifacts.find(
      (artifact: { id: string }) => artifact.id === "staged:gw-1",
    );
    assert.equal(stagedStatus.next_version, staged.version + 1);
    assert.equal(stagedStatus.activate_at, "2030-01-01T00:00:00.000Z");
    assert.equal(JSON.stringify(status).includes("secrets"), false);

    const rollout = await ok(t, "GET", "/v1/devices/rollout");
    const radius = rollout.artifacts.find(
      (artifact: { id: string }) => artifact.id === "secret:radius",
    );
    assert.equal(radius.complete, true);
    assert.deepEqual(
      radius.devices.map((device: { device: string }) => device.device),
      ["gw-1"],
    );

    await ok(t, "POST", "/v1/devices/secrets/radius/rotate", {});
    const after = await ok(t, "GET", "/v1/devices/rollout");
    const rotated = after.artifacts.find(
      (artifact: { id: string }) => artifact.id === "secret:radius",
    );
    assert.equal(rotated.complete, false);
    assert.equal(rotated.devices[0].in_sync, false);
  });

  it("accepts next version, rejects higher ones", async () => {
    const applied = (artifacts: object[]) =>
      deviceRequest(server, {
        method: "POST",
        path: "/v1/devices/self/applied",
        device: gateway,
        body: { artifacts },
      });
    const next = await applied([{ id: "staged:gw-1", version: staged.version + 1 }]);
    assert.equal(next.status, 204, next.body);

    const cases = [
      {
        artifacts: [{ id: "staged:gw-1", version: staged.version + 2 }],
        field: "artifacts[0].version",
      },
      { artifacts: [{ id: "secret:nothing", version: 1 }], field: "artifacts[0].id" },
      {
        artifacts: [
          { id: "staged:gw-1", version: 1 },
          { id: "staged:gw-1", version: 1 },
        ],
        field: "artifacts[1].id",
      },
    ];
    for (const { artifacts, field } of cases) {
      const response = await applied(artifacts);
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, field);
    }
  });

  it("renews the identity certificate", async () => {
    const keys = await makeDeviceKeys("gw-1");
    const response = await deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/renew",
      device: gateway,
      body: { csr: keys.csr },
    });
    assert.equal(response.status, 200, response.body);
    const renewed = response.json().data;
    assert.equal(renewed.device_id, gateway.deviceId);
    assert.notEqual(renewed.serial_number, gateway.serialNumber);

    const withNew = await state({
      ...gateway,
      certificatePem: renewed.certificate,
      keys: { ...gateway.keys, keyPem: keys.keyPem },
    });
    assert.equal(withNew.status, 200, withNew.body);
    const withOld = await state(gateway);
    assert.equal(withOld.status, 200, "the earlier certificate stays valid until it expires");

    const wrongName = await makeDeviceKeys("gw-2");
    const rejected = await deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/renew",
      device: gateway,
      body: { csr: wrongName.csr },
    });
    assert.equal(rejected.status, 400);
    assert.equal(rejected.json().field, "csr");
  });

  it("revocation rotates secrets and rejects device", async () => {
    const other = await enrolDevice(t, "gw-3", { groups: ["edge"] });
    const before = (await ok(t, "GET", "/v1/devices/secrets/radius")).version;
    const etag = (await state(other)).json().data.etag;
    const polled = state(other, `?since=${etag}&wait=60`);
    await eventually(() => t.keyward.devices.waiters.size > 0, "the long poll to wait");

    const revoked = await ok(t, "POST", "/v1/devices/registry/gw-3/revoke", {});
    assert.equal(revoked.state, "revoked");
    const woken = await polled;
    assert.equal(woken.status, 401, "the waiting poll of a revoked device gets no rotated secret");

    const after = (await ok(t, "GET", "/v1/devices/secrets/radius")).version;
    assert.equal(after, before + 1);
    assert.ok(staged.revoked.includes("gw-3"));
    const rejected = await state(other);
    assert.equal(rejected.status, 401);
    assert.equal(rejected.json().code, "device_authentication_failed");
    const certificate = await ok(t, "GET", `/v1/pki/cert/${other.serialNumber}`);
    assert.ok(certificate.revocation_time > 0);

    const crl = await t.request({ method: "GET", url: "/v1/pki/crl/pem", token: null });
    assert.equal(crl.statusCode, 200);
  });

  it("never shows a secret value to admins", async () => {
    const current = (await state(gateway)).json().data;
    const value = await openSealed(
      gateway.keys.encryptionPrivateKey,
      current.artifacts[0].secrets.value,
      { artifact: "secret:radius", version: current.artifacts[0].version, field: "value" },
    );
    for (const url of [
      "/v1/devices/secrets/radius",
      "/v1/devices/registry/gw-1",
      "/v1/devices/registry/gw-1/status",
      "/v1/devices/rollout",
    ]) {
      const response = await t.request({ method: "GET", url });
      assert.equal(response.statusCode, 200, url);
      assert.equal(response.body.includes(value), false, url);
      assert.equal(
        response.body.includes(Buffer.from(value, "base64").toString("hex")),
        false,
        url,
      );
    }
  });
});
