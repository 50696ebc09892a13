import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createKey, rotateKey, transitionState } from "../../../src/keys/index.ts";
import { ORPHAN_MIN_AGE_MS } from "../../../src/kmip/server/managed-key-sync.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import {
  createAes,
  keyBytes,
  linksOf,
  locateByName,
  MOUNT,
  openNode,
  rotateThroughTransit,
  stateOf,
  type TestNode,
} from "./transit-rotation-helpers.ts";

/** Returns the transit key store of the KMIP keys' mount. */
function keyStoreOf(node: TestNode) {
  const transit = node.keyward.transit(MOUNT);
  assert.ok(transit !== undefined);
  return transit.keyStore;
}

/**
 * Adds a version to a key without telling the KMIP service, as a rotation
 * on another node, or one right before a crash, leaves it.
 */
async function rotateUnnoticed(node: TestNode, uid: string): Promise<void> {
  await keyStoreOf(node).update(uid, (key) => rotateKey(key, node.keyward.clock()));
}

/** Builds a second object store over the same storage, with its own cache, as another node has. */
function otherNodeStore(node: TestNode): KmipObjectStore {
  const mounts: KmipKeyMounts = {
    mount: MOUNT,
    keyStore: async () => keyStoreOf(node),
  };
  return new KmipObjectStore(node.keyward.seal.barrier, {
    managedKeys: new KmipManagedKeys(mounts),
  });
}

describe("transit rotation reconciled with KMIP", () => {
  it("rotation without KMIP appears at the next start", async () => {
    let node = await openNode({ kmip: true });
    const uid = await createAes(node, "rotated-while-away");
    const reuse = { dataDir: node.dataDir, shares: node.shares, rootToken: node.rootToken };
    await node.close();

    node = await openNode({ kmip: false, reuse });
    await rotateThroughTransit(node, uid);
    const before = (await node.storedObjects()).length;
    await node.close();

    node = await openNode({ kmip: true, reuse });
    try {
      // The start made the object before any KMIP request read the key.
      assert.equal((await node.storedObjects()).length, before + 1);
      // The Name moved to the replacement, as after Re-key.
      const located = await locateByName(node, "rotated-while-away");
      assert.equal(located.length, 1);
      const [newUid] = located;
      assert.deepEqual(await linksOf(node, newUid!), { ReplacedObjectLink: uid });
      assert.equal(await stateOf(node, newUid!), "Active");
    } finally {
      await node.close();
    }
  });

  it("concurrent reconciles make one object", async () => {
    const node = await openNode({ kmip: true });
    try {
      const uid = await createAes(node, "raced");
      await rotateUnnoticed(node, uid);
      const before = (await node.storedObjects()).length;
      const other = otherNodeStore(node);
      const store = otherNodeStore(node);
      const results = await Promise.all([
        other.addVersionObjects(MOUNT, uid),
        store.addVersionObjects(MOUNT, uid),
        other.addVersionObjects(MOUNT, uid),
        keyBytes(node, uid),
        node.kmip!.managedKeySync.reconcileAll(),
      ]);
      assert.equal((await node.storedObjects()).length, before + 1);
      // Every store that made the object derived the same identifier from the key and version.
      const added = new Set([...results[0].added, ...results[1].added, ...results[2].added]);
      assert.equal(added.size, 1);

      const located = await locateByName(node, "raced");
      assert.equal(located.length, 1);
      assert.deepEqual(await linksOf(node, uid), { ReplacementObjectLink: located[0] });
    } finally {
      await node.close();
    }
  });

  it("Get of a stale object makes its replacement", async () => {
    const node = await openNode({ kmip: true });
    try {
      const uid = await createAes(node, "read-first");
      await rotateUnnoticed(node, uid);
      await rotateUnnoticed(node, uid);
      const before = (await node.storedObjects()).length;
      const links = await linksOf(node, uid);
      assert.ok(links.ReplacementObjectLink !== undefined);
      assert.equal((await node.storedObjects()).length, before + 2);
      const second = await linksOf(node, links.ReplacementObjectLink);
      assert.equal(second.ReplacedObjectLink, uid);
      assert.ok(second.ReplacementObjectLink !== undefined);
      assert.equal(await stateOf(node, links.ReplacementObjectLink), "Active");
    } finally {
      await node.close();
    }
  });

  it("scheduled rotation makes the object", async () => {
    const node = await openNode({ kmip: true });
    try {
      const uid = await createAes(node, "auto-rotated");
      const configured = await node.api("POST", `${MOUNT}/keys/${uid}/config`, {
        auto_rotate_period: "1h",
      });
      assert.equal(configured.statusCode, 200, configured.body);
      const before = (await node.storedObjects()).length;
      const transit = node.keyward.transit(MOUNT)!;
      const summary = await transit.rotateDueKeys(new Date(Date.now() + 2 * 3600 * 1000));
      assert.ok(summary.names.includes(uid));
      await node.kmip!.managedKeySync.idle();
      assert.equal((await node.storedObjects()).length, before + 1);
      const [newUid] = await locateByName(node, "auto-rotated");
      assert.deepEqual(await linksOf(node, newUid!), { ReplacedObjectLink: uid });
    } finally {
      await node.close();
    }
  });

  it("orphan removal by age and state", async () => {
    let now = Date.now();
    const node = await openNode({ kmip: true, clock: () => new Date(now) });
    try {
      const keys = keyStoreOf(node);
      const kept = await createAes(node, "has-an-object");
      const preActive = "0190a0b0-0000-7000-8000-00000000a001";
      const young = "0190a0b0-0000-7000-8000-00000000a002";
      const active = "0190a0b0-0000-7000-8000-00000000a003";
      const destroyed = "0190a0b0-0000-7000-8000-00000000a004";
      const options = { exportable: true };
      const created = new Date(now);
      const orphan = (name: string) => createKey(name, "aes256-gcm96", options, created);
      const referenced = { referencedBy: "kmip" };
      // A KMIP Create without an Activation Date leaves its key pre-active.
      await keys.create({ ...orphan(preActive), state: "pre-active" }, referenced);
      await keys.create(orphan(active), referenced);
      await keys.create(
        transitionState(
          transitionState(orphan(destroyed), "deactivated", created),
          "destroyed",
          created,
        ),
        referenced,
      );
      now += ORPHAN_MIN_AGE_MS + 60_000;
      await keys.create(createKey(young, "aes256-gcm96", options, new Date(now)), referenced);

      const summary = await node.kmip!.managedKeySync.reconcileAll();
      assert.equal(summary.orphansRemoved, 2);
      assert.equal(summary.orphansKept, 1);
      assert.equal(summary.orphansUsable, 1);
      for (const removed of [preActive, destroyed]) {
        assert.equal(await keys.find(removed), undefined, removed);
        assert.equal(await keys.referenceOf(removed), undefined, removed);
      }
      for (const left of [young, active]) {
        assert.notEqual(await keys.find(left), undefined, left);
        assert.equal(await keys.referenceOf(left), "kmip", left);
      }
      assert.notEqual(await keys.find(kept), undefined);
      assert.equal(await stateOf(node, kept), "Active");
    } finally {
      await node.close();
    }
  });
});
