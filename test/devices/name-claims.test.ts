import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { devicePath } from "../../src/devices/context.ts";
import { nameClaimPath, releaseDeviceName } from "../../src/devices/name-claims.ts";
import { DeviceStore } from "../../src/devices/store.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

// Devices stored before name claims existed may differ only in case. The
// claim of their lower-case name lists the owner and the others, and
// deleting any of them keeps the name claimed while one spelling exists.

/** Creates a store with devices `names` (only their existence matters) and one claim for all of them. */
async function storeWith(names: string[], claim: { id: string; others?: string[] }) {
  const store = new DeviceStore(new MemoryBarrier());
  for (const name of names) await store.put(devicePath(name), { name });
  await store.put(nameClaimPath(names[0]!), claim);
  return store;
}

async function release(store: DeviceStore, name: string) {
  await store.transaction(async (writer) => {
    await writer.delete(devicePath(name));
    await releaseDeviceName(writer, name);
  });
}

describe("releaseDeviceName", () => {
  it("passes the claim to the next spelling", async () => {
    const store = await storeWith(["Edge", "edge", "EDGE"], {
      id: "Edge",
      others: ["edge", "EDGE"],
    });
    await release(store, "Edge");
    assert.deepEqual(await store.get(nameClaimPath("edge")), { id: "edge", others: ["EDGE"] });
    await release(store, "edge");
    assert.deepEqual(await store.get(nameClaimPath("edge")), { id: "EDGE" });
    await release(store, "EDGE");
    assert.equal(await store.get(nameClaimPath("edge")), undefined);
  });

  it("drops a deleted spelling from the list", async () => {
    const store = await storeWith(["Edge", "edge", "EDGE"], {
      id: "Edge",
      others: ["edge", "EDGE"],
    });
    await release(store, "EDGE");
    assert.deepEqual(await store.get(nameClaimPath("edge")), { id: "Edge", others: ["edge"] });
  });

  it("skips listed spellings that no longer exist", async () => {
    const store = await storeWith(["Edge", "EDGE"], { id: "Edge", others: ["edge", "EDGE"] });
    await release(store, "Edge");
    assert.deepEqual(await store.get(nameClaimPath("edge")), { id: "EDGE" });
  });

  it("leaves another device's claim alone", async () => {
    const store = await storeWith(["Edge", "edge"], { id: "Edge" });
    await release(store, "edge");
    assert.deepEqual(await store.get(nameClaimPath("edge")), { id: "Edge" });
  });
});
