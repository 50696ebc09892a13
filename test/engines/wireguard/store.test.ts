import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WireguardStore } from "../../../src/engines/wireguard/store.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";

describe("WireGuard store getShared", () => {
  it("shares one frozen value until changed", async () => {
    const barrier = new MemoryBarrier();
    const store = new WireguardStore(barrier, "wg");
    await store.transaction((writer) => writer.put("networks/n", { peers: ["a"] }));

    const first = await store.getShared<{ peers: string[] }>("networks/n");
    assert.deepEqual(first, { peers: ["a"] });
    assert.ok(Object.isFrozen(first));
    assert.ok(Object.isFrozen(first?.peers));
    assert.equal(await store.getShared("networks/n"), first);

    await store.transaction((writer) => writer.put("networks/n", { peers: ["b"] }));
    const second = await store.getShared<{ peers: string[] }>("networks/n");
    assert.notEqual(second, first);
    assert.deepEqual(second, { peers: ["b"] });
  });

  it("decodes again after external writes", async () => {
    const barrier = new MemoryBarrier();
    const store = new WireguardStore(barrier, "wg");
    await store.transaction((writer) => writer.put("networks/n", 1));
    assert.equal(await store.getShared("networks/n"), 1);
    barrier.values.set("wg/networks/n", Buffer.from("2", "utf8"));
    assert.equal(await store.getShared("networks/n"), 2);
  });

  it("returns undefined after a delete", async () => {
    const store = new WireguardStore(new MemoryBarrier(), "wg");
    await store.transaction((writer) => writer.put("networks/n", { name: "n" }));
    assert.ok(await store.getShared("networks/n"));
    await store.transaction((writer) => writer.delete("networks/n"));
    assert.equal(await store.getShared("networks/n"), undefined);
  });

  it("rejects reads while sealed", async () => {
    const barrier = new MemoryBarrier();
    const store = new WireguardStore(barrier, "wg");
    barrier.sealed = true;
    await assert.rejects(store.getShared("networks/n"), { code: "sealed" });
  });
});
