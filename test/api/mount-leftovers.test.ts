import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MOUNT_TABLE_KEY, MountTable } from "../../src/core/mounts.ts";
import { createTestApp, type TestApp } from "../helpers/app.ts";

const KEY_COUNT = 5000;
/** Entries left under a mount: more than the 500 that one deletion transaction removes. */
const LEFTOVER_ENTRIES = 600;

async function mountTransit(t: TestApp, path: string) {
  return t.request({ method: "POST", url: `/v1/sys/mounts/${path}`, payload: { type: "transit" } });
}

async function createKeys(t: TestApp, path: string, count: number) {
  for (let i = 0; i < count; i++) {
    const created = await t.request({
      method: "POST",
      url: `/v1/${path}/keys/old-${i}`,
      payload: {},
    });
    assert.equal(created.statusCode, 200, created.body);
  }
}

async function listKeys(t: TestApp, path: string) {
  return t.request({ method: "GET", url: `/v1/${path}/keys?list=true` });
}

describe("mount paths and unmount leftovers", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("rejects the seal's prefix as a mount path", async () => {
    const response = await mountTransit(t, "core");
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "path");

    const mounts = await t.request({ method: "GET", url: "/v1/sys/mounts" });
    assert.equal(mounts.json().data["core/"], undefined);
  });

  it("remount during unmount gets no old keys", async () => {
    assert.equal((await mountTransit(t, "racing")).statusCode, 204);
    await createKeys(t, "racing", 1);
    // Copies of the key's record make the unmount's deletion long enough to race.
    const barrier = t.keyward.seal.barrier;
    const record = await barrier.get("racing/keys/old-0");
    assert.ok(record);
    await barrier.transaction(async (tx) => {
      for (let i = 1; i < KEY_COUNT; i++) await tx.put(`racing/keys/old-${i}`, record);
    });

    // Mount again as soon as the unmount has removed the mount from the
    // table, while it is still deleting the mount's keys.
    const unmounting = t.request({ method: "DELETE", url: "/v1/sys/mounts/racing" });
    while (t.keyward.mounts().some((entry) => entry.path === "racing")) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const remounted = await mountTransit(t, "racing");
    assert.equal(remounted.statusCode, 204, remounted.body);
    const listed = await listKeys(t, "racing");
    const old = await t.request({ method: "GET", url: "/v1/racing/keys/old-0" });
    const unmounted = await unmounting;
    assert.equal(unmounted.statusCode, 204, unmounted.body);

    assert.equal(listed.statusCode, 404, `old keys visible in the new mount: ${listed.statusCode}`);
    assert.equal(old.statusCode, 404, "an old key is readable in the new mount");
  });

  it("new mount drops an interrupted unmount's entries", async () => {
    assert.equal((await mountTransit(t, "ghost")).statusCode, 204);
    await createKeys(t, "ghost", 3);
    const barrier = t.keyward.seal.barrier;
    const stored = await barrier.get("ghost/keys/old-0");
    assert.ok(stored, "the key's entry should be stored");

    // A crash after the mount table write and before the deletion leaves
    // the mount's entries in storage without the mount.
    assert.equal(
      (await t.request({ method: "DELETE", url: "/v1/sys/mounts/ghost" })).statusCode,
      204,
    );
    await barrier.put("ghost/keys/old-0", stored);

    assert.equal((await mountTransit(t, "ghost")).statusCode, 204);
    const old = await t.request({ method: "GET", url: "/v1/ghost/keys/old-0" });
    assert.equal(old.statusCode, 404, `an unmounted key came back: ${old.body}`);
    assert.equal(await barrier.get("ghost/keys/old-0"), undefined);
  });

  it("unmount of a gone mount deletes its leftovers", async () => {
    assert.equal((await mountTransit(t, "halfway")).statusCode, 204);
    await createKeys(t, "halfway", 2);
    const barrier = t.keyward.seal.barrier;
    const stored = await barrier.get("halfway/keys/old-1");
    assert.ok(stored);
    assert.equal(
      (await t.request({ method: "DELETE", url: "/v1/sys/mounts/halfway" })).statusCode,
      204,
    );
    await barrier.put("halfway/keys/old-1", stored);

    const again = await t.request({ method: "DELETE", url: "/v1/sys/mounts/halfway" });
    assert.equal(again.statusCode, 204, again.body);
    assert.deepEqual(await barrier.scan("halfway/", { limit: 10 }), []);

    const missing = await t.request({ method: "DELETE", url: "/v1/sys/mounts/halfway" });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, "not_found");
  });

  it("unmount stops when another node mounts the path again", async () => {
    assert.equal((await mountTransit(t, "shared")).statusCode, 204);
    const barrier = t.keyward.seal.barrier;
    // More entries than one deletion page holds, so the unmount deletes in several transactions.
    await barrier.transaction(async (tx) => {
      for (let i = 0; i < LEFTOVER_ENTRIES; i++) {
        await tx.put(`shared/leftover-${i}`, Buffer.from("{}"));
      }
    });

    // Before the second page, another node mounts "shared" and writes a key.
    const scan = barrier.scan.bind(barrier);
    let scans = 0;
    barrier.scan = async (prefix, options) => {
      if (prefix === "shared/" && ++scans === 2) {
        const table = (await MountTable.loadIn(barrier)) ?? [];
        const entry = MountTable.entry("shared", "transit", "", new Date());
        await barrier.put(MOUNT_TABLE_KEY, Buffer.from(JSON.stringify([...table, entry])));
        await barrier.put("shared/keys/new-key", Buffer.from("{}"));
      }
      return scan(prefix, options);
    };
    try {
      const unmounted = await t.request({ method: "DELETE", url: "/v1/sys/mounts/shared" });
      assert.equal(unmounted.statusCode, 204, unmounted.body);
    } finally {
      barrier.scan = scan;
    }
    assert.ok(scans >= 2);
    assert.notEqual(await barrier.get("shared/keys/new-key"), undefined);
  });
});
