import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp, ok } from "./fixtures.ts";

// Attempts to create two devices whose names differ only in case.

async function deviceNames(t: DeviceApp): Promise<string[]> {
  const listed = await ok(t, "GET", "/v1/devices/registry?list=true");
  return listed.keys as string[];
}

function sameLowerCase(names: string[], name: string): string[] {
  return names.filter((candidate) => candidate.toLowerCase() === name.toLowerCase());
}

describe("device names differing in case", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp();
  });
  after(() => t.close());

  it("concurrent variants create one device", async () => {
    const variants = ["Gamma", "gamma", "GAMMA", "gAmma", "gaMma", "gamMa", "gammA", "GaMmA"];
    const responses = await Promise.all(
      variants.map((name) =>
        t.request({ method: "POST", url: `/v1/devices/registry/${name}`, payload: {} }),
      ),
    );
    const created = responses.filter((response) => response.statusCode < 300);
    assert.equal(created.length, 1, responses.map((response) => response.body).join("\n"));
    assert.equal(sameLowerCase(await deviceNames(t), "gamma").length, 1);
  });

  it("claim survives delete and recreate", async () => {
    await ok(t, "POST", "/v1/devices/registry/Delta", {});
    const deleted = await t.request({ method: "DELETE", url: "/v1/devices/registry/Delta" });
    assert.equal(deleted.statusCode < 300, true, deleted.body);
    await ok(t, "POST", "/v1/devices/registry/DELTA", {});
    const clash = await t.request({
      method: "POST",
      url: "/v1/devices/registry/delta",
      payload: {},
    });
    assert.equal(clash.statusCode, 409, clash.body);
    assert.equal(clash.json().code, "already_exists");
    assert.equal(sameLowerCase(await deviceNames(t), "delta").length, 1);
  });

  it("delete of a variant keeps the owner's claim", async () => {
    await ok(t, "POST", "/v1/devices/registry/Epsilon", {});
    const missing = await t.request({ method: "DELETE", url: "/v1/devices/registry/epsilon" });
    assert.equal(missing.statusCode, 404, missing.body);
    const clash = await t.request({
      method: "POST",
      url: "/v1/devices/registry/EPSILON",
      payload: {},
    });
    assert.equal(clash.statusCode, 409, clash.body);
  });
});
