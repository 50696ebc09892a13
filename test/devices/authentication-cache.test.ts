import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
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

describe("device authentication with cached certificates", () => {
  let t: DeviceApp;
  let server: TlsServer;

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    await ok(t, "POST", "/v1/devices/secrets/radius", { groups: ["edge"] });
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  const state = (device: EnrolledDevice) =>
    deviceRequest(server, { method: "GET", path: "/v1/devices/self/state", device });

  const applied = (device: EnrolledDevice, artifacts: { id: string; version: number }[]) =>
    deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/applied",
      device,
      body: { artifacts },
    });

  it("rejects a PKI-revoked certificate at once", async () => {
    const device = await enrolDevice(t, "cache-1", { groups: ["edge"] });
    assert.equal((await state(device)).status, 200);
    assert.equal((await state(device)).status, 200);

    await ok(t, "POST", "/v1/pki/revoke", { serial_number: device.serialNumber });
    const rejected = await state(device);
    assert.equal(rejected.status, 401);
    assert.equal(rejected.json().code, "device_authentication_failed");
    assert.match(rejected.json().errors[0], /revoked/);
  });

  it("rejects a revoked device at once", async () => {
    const device = await enrolDevice(t, "cache-2", { groups: ["edge"] });
    assert.equal((await state(device)).status, 200);

    await ok(t, "POST", "/v1/devices/registry/cache-2/revoke", {});
    const rejected = await state(device);
    assert.equal(rejected.status, 401);
    assert.equal(rejected.json().code, "device_authentication_failed");
  });

  it("stores concurrent applied reports", async () => {
    const devices = await Promise.all(
      ["cache-3", "cache-4", "cache-5", "cache-6"].map((name) =>
        enrolDevice(t, name, { groups: ["edge"] }),
      ),
    );
    const versions = (await state(devices[0] as EnrolledDevice)).json().data.artifacts;
    const reports = versions.map((artifact: { id: string; version: number }) => ({
      id: artifact.id,
      version: artifact.version,
    }));

    const responses = await Promise.all(devices.map((device) => applied(device, reports)));
    for (const response of responses) assert.equal(response.status, 204, response.body);

    for (const device of devices) {
      const status = await ok(t, "GET", `/v1/devices/registry/${device.name}/status`);
      for (const artifact of status.artifacts) {
        assert.equal(artifact.applied_version, artifact.version, `${device.name} ${artifact.id}`);
      }
      assert.equal(typeof status.device.last_seen_at, "string", device.name);
    }
  });
});
