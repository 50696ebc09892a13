import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp } from "../devices/fixtures.ts";

// The error message of `from` and `to` requires an ISO 8601 time, but
// Date.parse in V8 also accepts other strings: "1" is 2001-01-01 in the
// server's local time zone, and February 31 rolls over into March.
const NOT_ISO_TIMES: [field: "from" | "to", value: string][] = [
  ["from", "1"],
  ["to", "0"],
  ["from", "Tue, 1 Jan 2030"],
  ["from", "2020-02-31T00:00:00Z"],
];

describe("audit search time range", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp();
  });
  after(async () => {
    await t.close();
  });

  for (const [field, value] of NOT_ISO_TIMES) {
    it(`rejects ${field}=${value}`, async () => {
      const response = await t.request({
        method: "GET",
        url: `/v1/sys/audit/search?${field}=${encodeURIComponent(value)}`,
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, field);
    });
  }

  it("rejects from after to", async () => {
    const response = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "to");
  });

  it("accepts an ISO 8601 range", async () => {
    const response = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?from=2020-01-01T00:00:00Z&to=2099-01-01T00:00:00.000Z",
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.ok(response.json().data.total > 0);
  });
});
