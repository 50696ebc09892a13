import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { decryptKeyring, KEYRING_KEY } from "../../src/seal/keyring.ts";
import { ENCRYPTION_RESERVATION } from "../../src/seal/keyring-store.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { InitResult, SealManager } from "../../src/seal/types.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { decode, initAndUnseal, SealFixture, unsealWith } from "./fixtures.ts";

// Two seal managers on one storage stand for two nodes sharing a database.
let fixture: SealFixture;
let storage: Storage;
let first: SealManager;
let second: SealManager;
let init: InitResult;

beforeEach(async () => {
  fixture = await SealFixture.create();
  storage = await fixture.openStorage();
  first = createSealManager(storage);
  second = createSealManager(storage);
  init = await initAndUnseal(first, 3, 2);
  await unsealWith(second, init.keysHex, 2);
});
afterEach(async () => {
  await first.seal();
  await second.seal();
  await fixture.remove();
});

describe("seal on shared storage", () => {
  it("reads values under another node's new term", async () => {
    await first.rotate();
    await first.barrier.put("app/after-rotation", Buffer.from("new term"));
    assert.equal(decode(await second.barrier.get("app/after-rotation")), "new term");
    assert.equal((await second.keyStatus()).term, 2);
  });

  it("keeps another node's term on write", async () => {
    await first.rotate();
    // The second node reserves encryptions without having seen the rotation.
    await second.barrier.transaction(async (tx) => {
      await tx.put("app/from-second", Buffer.from("second"));
    });
    await first.barrier.put("app/from-first", Buffer.from("first"));
    await second.seal();
    await unsealWith(second, init.keysHex, 2);
    assert.equal(decode(await second.barrier.get("app/from-first")), "first");
    assert.equal(decode(await first.barrier.get("app/from-second")), "second");
    assert.equal((await second.keyStatus()).term, 2);
  });

  it("reserves disjoint encryption blocks", async () => {
    await first.barrier.put("app/a", Buffer.from("a"));
    await second.barrier.put("app/b", Buffer.from("b"));
    await first.barrier.put("app/c", Buffer.from("c"));
    const rootKeyShares = init.keysHex.slice(0, 2);
    const reader = createSealManager(storage);
    await unsealWith(reader, rootKeyShares);
    const status = await reader.keyStatus();
    await reader.seal();
    // Each node holds one block of the stored count.
    assert.ok(status.encryptions >= 2 * ENCRYPTION_RESERVATION, `count ${status.encryptions}`);
  });

  it("stored count covers both nodes after seal", async () => {
    for (let i = 0; i < 5; i++) await first.barrier.put(`app/first-${i}`, Buffer.from("x"));
    for (let i = 0; i < 7; i++) await second.barrier.put(`app/second-${i}`, Buffer.from("x"));
    await first.seal();
    await second.seal();
    const record = await storage.get(KEYRING_KEY);
    assert.ok(record);
    await unsealWith(first, init.keysHex, 2);
    const status = await first.keyStatus();
    assert.ok(status.encryptions >= 12, `count ${status.encryptions}`);
    await first.seal();
  });

  it("seals a node after a rekey elsewhere", async () => {
    const started = await first.rekeyInit({ shares: 1, threshold: 1 });
    let status = started;
    for (const share of init.keysHex.slice(0, 2)) {
      status = await first.rekeyUpdate(share, started.nonce);
    }
    const newShares = status.complete?.keysHex;
    assert.ok(newShares);
    await second.refresh();
    await waitFor(async () => (await second.status()).sealed);
    assert.equal((await second.status()).threshold, 1);
    await unsealWith(second, newShares);
    assert.equal((await second.status()).sealed, false);
    const record = await storage.get(KEYRING_KEY);
    assert.ok(record);
    assert.throws(() => decryptKeyring(record, Buffer.alloc(32)));
  });
});

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail("condition not reached");
}
