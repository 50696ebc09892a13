import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp, ok } from "./fixtures.ts";

// Certificate templates lower-case DNS names, so devices named "GW-1" and
// "gw-1" would both get certificates for gw-1.<domain>.
describe("device names that differ only in case", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp();
  });
  after(() => t.close());

  it("rejects a second device", async () => {
    await ok(t, "POST", "/v1/devices/registry/gw-1", {});
    const response = await t.request({
      method: "POST",
      url: "/v1/devices/registry/GW-1",
      payload: {},
    });
    assert.equal(response.statusCode, 409);
    assert.equal(response.json().code, "already_exists");
    const listed = await ok(t, "GET", "/v1/devices/registry?list=true");
    assert.deepEqual(listed.keys, ["gw-1"]);
  });

  it("rejects one of two concurrent creations", async () => {
    const responses = await Promise.all(
      ["Sensor-7", "sensor-7"].map((name) =>
        t.request({ method: "POST", url: `/v1/devices/registry/${name}`, payload: {} }),
      ),
    );
    const statuses = responses.map((response) => response.statusCode).sort();
    assert.deepEqual(statuses, [200, 409]);
  });

  it("still updates the device itself", async () => {
    await ok(t, "POST", "/v1/devices/registry/gw-1", { tags: { site: "lab" } });
    const device = await ok(t, "GET", "/v1/devices/registry/gw-1");
    assert.deepEqual(device.tags, { site: "lab" });
  });
});
