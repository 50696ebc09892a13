import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  type EnrolledDevice,
  enrolDevice,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

// `wait` is an integer of 0-60 seconds, but query string coercion turns a
// blank value into 0, "0x10" into 16 and "1e1" into 10. Each must be 400
// `invalid_field` naming `wait`, as "1.5" and "abc" are.
const NOT_DECIMAL = [" ", "0x10", "1e1", "+5", "0b11"];

describe("device state wait query", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let device: EnrolledDevice;

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    device = await enrolDevice(t, "gw-wait");
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  for (const value of NOT_DECIMAL) {
    it(`rejects wait=${JSON.stringify(value)}`, async () => {
      const response = await deviceRequest(server, {
        method: "GET",
        path: `/v1/devices/self/state?wait=${encodeURIComponent(value)}`,
        device,
      });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, "wait");
    });
  }

  it("accepts wait=0", async () => {
    const response = await deviceRequest(server, {
      method: "GET",
      path: "/v1/devices/self/state?wait=0",
      device,
    });
    assert.equal(response.status, 200, response.body);
  });
});
