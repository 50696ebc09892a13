import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { normaliseSerialHex } from "../../src/engines/pki/key-pairs.ts";
import { createDeviceApp, type DeviceApp, enrolDevice } from "./fixtures.ts";

// The PKI record of a device's identity certificate names the registry as
// its owner, which keeps EST from renewing it around the registry.
describe("device certificate owner", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp();
  });
  after(() => t.close());

  it("marks identity certificates", async () => {
    const device = await enrolDevice(t, "owned-1");
    const serialHex = normaliseSerialHex(device.serialNumber.replaceAll(":", ""));
    const record = await t.keyward.pki("pki")!.inventory.find(serialHex);
    assert.ok(record, "the identity certificate is stored");
    assert.equal(record.owner, "devices");
  });
});
