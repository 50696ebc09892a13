import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { StructureItem } from "../../../../src/kmip/item.ts";
import { child, textOf } from "../../../../src/kmip/server/items.ts";
import { resultReason, resultStatus } from "../helpers.ts";
import {
  createAes,
  id,
  keyBytes,
  linksOf,
  locateByName,
  MOUNT,
  openNode,
  stateOf,
  type TestNode,
} from "../transit-rotation-helpers.ts";

/** Returns the newest object that Locate by Name returns. */
async function newestOf(node: TestNode, name: string): Promise<string> {
  const located = await locateByName(node, name);
  assert.ok(located.length > 0, `no object is named ${name}`);
  return located[0]!;
}

describe("transit rotation beside KMIP Re-key", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: true });
  });

  after(async () => {
    await node.close();
  });

  // Transit rotates while KMIP re-keys and activates the newest object.
  // Afterwards every version of the managed key should be shown by exactly
  // one object, and the Links should form one chain.
  it("every version gets one object", async () => {
    const name = "stress-chain";
    const uid = await createAes(node, name);
    const failures: string[] = [];

    const rotations = (async () => {
      for (let round = 0; round < 25; round++) {
        const rotated = await node.api("POST", `${MOUNT}/keys/${uid}/rotate`);
        if (
          rotated.statusCode !== 200 &&
          rotated.statusCode !== 409 &&
          rotated.statusCode !== 400
        ) {
          failures.push(`rotate: ${rotated.statusCode} ${rotated.body}`);
        }
      }
    })();
    const rekeys = (async () => {
      for (let round = 0; round < 25; round++) {
        const tail = await newestOf(node, name);
        const rekeyed = await node.call("ReKey", [id(tail)]);
        if (resultStatus(rekeyed) !== "Success") {
          const reason = resultReason(rekeyed);
          if (reason !== "WrongKeyLifecycleState") {
            failures.push(`ReKey: ${reason} ${child(rekeyed, "ResultMessage")?.value}`);
          }
          continue;
        }
        const newUid = textOf(
          child(child(rekeyed, "ResponsePayload") as StructureItem, "UniqueIdentifier")!,
        );
        const activated = await node.call("Activate", [id(newUid)]);
        const reason = resultReason(activated);
        if (resultStatus(activated) !== "Success" && reason !== "WrongKeyLifecycleState") {
          failures.push(`Activate: ${reason} ${child(activated, "ResultMessage")?.value}`);
        }
      }
    })();
    await Promise.all([rotations, rekeys]);
    await node.kmip!.managedKeySync.idle();
    assert.deepEqual(failures, []);

    const transitKey = await node.api("GET", `${MOUNT}/keys/${uid}`);
    const versions = Object.keys(transitKey.json().data.keys).length;
    // Walk the chain from the first object.
    const chain = [uid];
    for (;;) {
      const links = await linksOf(node, chain.at(-1)!);
      const next = links.ReplacementObjectLink;
      if (next === undefined) break;
      assert.equal((await linksOf(node, next)).ReplacedObjectLink, chain.at(-1));
      chain.push(next);
    }
    assert.equal(chain.length, versions, `${versions} transit versions, ${chain.length} objects`);
    // The Name moved along the chain to its newest object.
    assert.deepEqual(await locateByName(node, name), [chain.at(-1)]);

    const materials = new Set<string>();
    let active = 0;
    for (const each of chain) {
      if ((await stateOf(node, each)) !== "Active") continue;
      active += 1;
      materials.add((await keyBytes(node, each)).toString("hex"));
    }
    assert.equal(materials.size, active, "two objects show the same key material");
  });
});
