import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createAes,
  locateByName,
  MOUNT,
  openNode,
  rotateThroughTransit,
  stateOf,
} from "../transit-rotation-helpers.ts";

describe("transit trim after rotations KMIP has not seen", () => {
  // Two rotations on a node without the KMIP service (as on another node,
  // or right before a crash), then a trim of the versions below the
  // newest. The newest version is the key's only usable one, so KMIP
  // should show it as an object.
  it("newest version still gets an object", async () => {
    let node = await openNode({ kmip: true });
    const uid = await createAes(node, "trimmed-away");
    const reuse = { dataDir: node.dataDir, shares: node.shares, rootToken: node.rootToken };
    await node.close();

    node = await openNode({ kmip: false, reuse });
    assert.equal(await rotateThroughTransit(node, uid), 2);
    assert.equal(await rotateThroughTransit(node, uid), 3);
    const configured = await node.api("POST", `${MOUNT}/keys/${uid}/config`, {
      min_decryption_version: 3,
    });
    assert.equal(configured.statusCode, 200, configured.body);
    const trimmed = await node.api("POST", `${MOUNT}/keys/${uid}/trim`, {
      min_available_version: 3,
    });
    assert.ok(trimmed.statusCode < 300, trimmed.body);
    await node.close();

    node = await openNode({ kmip: true, reuse });
    try {
      assert.equal(await stateOf(node, uid), "Destroyed");
      const located = await locateByName(node, "trimmed-away");
      assert.equal(located.length, 1, `Locate by Name returned ${JSON.stringify(located)}`);
      assert.equal(await stateOf(node, located[0]!), "Active");
    } finally {
      await node.close();
    }
  });
});
