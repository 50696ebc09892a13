import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { KmipItem } from "../../../../src/kmip/item.ts";
import { boolean, enumItem, integer, struct } from "../../../../src/kmip/server/items.ts";
import { resultStatus } from "../helpers.ts";
import {
  createAes,
  DECRYPT,
  ENCRYPT,
  id,
  MOUNT,
  openNode,
  type TestNode,
} from "../transit-rotation-helpers.ts";
import { issueCredential, sendBatch } from "./helpers.ts";

/** Builds a Create of an AES-256 key. Its managed-key write flushes the disk, which yields the event loop. */
function createItem(): readonly [string, readonly KmipItem[]] {
  return [
    "Create",
    [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT | DECRYPT),
      ]),
    ],
  ];
}

describe("batch Undo beside transit rotation", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: true });
  });

  after(async () => {
    await node.close();
  });

  // A batch with Undo changes the managed key (SetAttribute), runs long
  // enough for transit to rotate the key many times, then fails. Undo must
  // put back only what the batch changed, not the rotations transit
  // acknowledged meanwhile.
  it("Undo keeps acknowledged rotations", async () => {
    const uid = await createAes(node, "undo-victim");
    const credential = await issueCredential(node, "undo-races");
    const items: (readonly [string, readonly KmipItem[]])[] = [
      ["SetAttribute", [id(uid), struct("NewAttribute", [boolean("Extractable", false)])]],
    ];
    for (let index = 0; index < 40; index++) items.push(createItem());
    items.push(["Get", [id("no-such-object")]]);

    let done = false;
    const batch = sendBatch(node, credential, items, "Undo").finally(() => {
      done = true;
    });
    const versions: number[] = [];
    const ciphertexts: { ciphertext: string; version: number }[] = [];
    while (!done) {
      const rotated = await node.api("POST", `${MOUNT}/keys/${uid}/rotate`);
      assert.equal(rotated.statusCode, 200, rotated.body);
      const version: number = rotated.json().data.latest_version;
      versions.push(version);
      const encrypted = await node.api("POST", `${MOUNT}/encrypt/${uid}`, {
        plaintext: Buffer.from(`sealed under version ${version}`).toString("base64"),
      });
      assert.equal(encrypted.statusCode, 200, encrypted.body);
      ciphertexts.push({ ciphertext: encrypted.json().data.ciphertext, version });
    }
    const responses = await batch;
    assert.equal(resultStatus(responses[0]!), "OperationUndone");
    await node.kmip!.managedKeySync.idle();

    const reused = versions.filter(
      (version, index) => index > 0 && version <= versions[index - 1]!,
    );
    assert.deepEqual(reused, [], `rotations acknowledged versions ${versions.join(", ")}`);
    const lost: number[] = [];
    for (const { ciphertext, version } of ciphertexts) {
      const decrypted = await node.api("POST", `${MOUNT}/decrypt/${uid}`, { ciphertext });
      if (decrypted.statusCode !== 200) lost.push(version);
    }
    assert.deepEqual(lost, [], `ciphertexts of versions ${lost.join(", ")} no longer decrypt`);
  });
});
