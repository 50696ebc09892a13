import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DeviceRef } from "../../src/devices/artifacts.ts";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  enrolDevice,
  errorCode,
  eventually,
  ok,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

function ref(name: string, groups: string[] = []): DeviceRef {
  return { name, id: "00000000-0000-4000-8000-000000000000", groups, tags: {} };
}

describe("shared secrets", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp();
  });
  after(() => t.close());

  it("creates version 1 and shows metadata only", async () => {
    const created = await ok(t, "POST", "/v1/devices/secrets/radius", {
      groups: ["edge", "edge"],
      devices: ["gw-9"],
      length: 48,
      encoding: "hex",
    });
    assert.deepEqual(Object.keys(created).sort(), [
      "artifact_id",
      "created_at",
      "devices",
      "encoding",
      "groups",
      "length",
      "name",
      "rotated_at",
      "updated_at",
      "version",
    ]);
    assert.equal(created.artifact_id, "secret:radius");
    assert.equal(created.version, 1);
    assert.deepEqual(created.groups, ["edge"]);
    assert.equal(created.length, 48);
    const list = await ok(t, "GET", "/v1/devices/secrets?list=true");
    assert.deepEqual(list.keys, ["radius"]);
  });

  it("delivers the encoded value to its audience", async () => {
    const secrets = t.keyward.devices.secrets;
    const [byName] = await secrets.artifactsFor(ref("gw-9"));
    assert.ok(byName);
    assert.equal(byName.id, "secret:radius");
    const { created_at: createdAt, ...fields } = byName.fields;
    assert.ok(!Number.isNaN(Date.parse(String(createdAt))));
    assert.deepEqual(fields, { name: "radius", encoding: "hex" });
    assert.match(byName.secrets.value!, /^[0-9a-f]{96}$/);
    const [byGroup] = await secrets.artifactsFor(ref("other", ["edge"]));
    assert.equal(byGroup?.secrets.value, byName.secrets.value);
    assert.deepEqual(await secrets.artifactsFor(ref("outsider", ["core"])), []);
  });

  it("updates the audience and keeps the value", async () => {
    const secrets = t.keyward.devices.secrets;
    const before = (await secrets.artifactsFor(ref("gw-9")))[0]?.secrets.value;
    const updated = await ok(t, "POST", "/v1/devices/secrets/radius", { devices: [] });
    assert.deepEqual(updated.devices, []);
    assert.deepEqual(updated.groups, ["edge"]);
    assert.equal(updated.version, 1);
    assert.deepEqual(await secrets.artifactsFor(ref("gw-9")), []);
    assert.equal((await secrets.artifactsFor(ref("x", ["edge"])))[0]?.secrets.value, before);
  });

  it("rotates to a new value and version", async () => {
    const secrets = t.keyward.devices.secrets;
    const before = (await secrets.artifactsFor(ref("x", ["edge"])))[0]!;
    const rotated = await ok(t, "POST", "/v1/devices/secrets/radius/rotate", {});
    assert.equal(rotated.version, 2);
    const after = (await secrets.artifactsFor(ref("x", ["edge"])))[0]!;
    assert.equal(after.version, 2);
    assert.notEqual(after.secrets.value, before.secrets.value);
  });

  it("wakes the devices of the audience", async () => {
    await ok(t, "POST", "/v1/devices/registry/listener", { groups: ["edge"] });
    const subscription = t.keyward.devices.waiters.subscribe("listener");
    const outcome = subscription.wait(60_000);
    await ok(t, "POST", "/v1/devices/secrets/radius/rotate", {});
    assert.equal(await outcome, "changed");
  });

  it("deletes a secret", async () => {
    await ok(t, "POST", "/v1/devices/secrets/temporary", { groups: ["edge"] });
    await ok(t, "DELETE", "/v1/devices/secrets/temporary", undefined, 204);
    const missing = await errorCode(
      t,
      { method: "GET", url: "/v1/devices/secrets/temporary" },
      404,
    );
    assert.equal(missing.code, "not_found");
    const artifacts = await t.keyward.devices.secrets.artifactsFor(ref("x", ["edge"]));
    assert.deepEqual(
      artifacts.map((artifact) => artifact.id),
      ["secret:radius"],
    );
    await ok(t, "DELETE", "/v1/devices/secrets/temporary", undefined, 204);
  });
});

describe("device registry across seal and unseal", () => {
  let t: DeviceApp;
  let server: TlsServer;

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  it("ends waits at seal, serves after unseal", async () => {
    const device = await enrolDevice(t, "sealed-1");
    const etag = (
      await deviceRequest(server, { method: "GET", path: "/v1/devices/self/state", device })
    ).json().data.etag;
    const polled = deviceRequest(server, {
      method: "GET",
      path: `/v1/devices/self/state?since=${etag}&wait=60`,
      device,
    });
    const waiters = t.keyward.devices.waiters;
    await eventually(() => waiters.size > 0, "the long poll to wait");

    await t.keyward.seal.seal();
    const response = await polled;
    assert.equal(response.status, 503, response.body);
    assert.equal(response.json().code, "sealed");
    assert.equal(waiters.size, 0);

    await t.keyward.seal.submitUnsealShare(t.unsealShare);
    const after = await deviceRequest(server, {
      method: "GET",
      path: `/v1/devices/self/state?since=${etag}`,
      device,
    });
    assert.equal(after.status, 304);
  });
});
