import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { children, enumItem, integer, struct, textOf } from "../../../src/kmip/server/items.ts";
import { call, newDispatcher, payloadOf, resultStatus, uidOf } from "./helpers.ts";

// Keyward keeps every object on-line, so a Storage Status Mask without the
// on-line bit (1) locates nothing, and one with it locates as no mask does.
describe("KMIP Locate Storage Status Mask", () => {
  const masks: [string, number, boolean][] = [
    ["on-line", 1, true],
    ["on-line and archival", 3, true],
    ["archival only", 2, false],
  ];
  for (const [name, mask, found] of masks) {
    it(`${name} mask`, async () => {
      const dispatcher = newDispatcher();
      const uid = uidOf(
        payloadOf(
          await call(dispatcher, "Create", [
            enumItem("ObjectType", "SymmetricKey"),
            struct("Attributes", [
              enumItem("CryptographicAlgorithm", "AES"),
              integer("CryptographicLength", 128),
              integer("CryptographicUsageMask", 4),
            ]),
          ]),
        ),
      );
      const located = await call(dispatcher, "Locate", [integer("StorageStatusMask", mask)]);
      assert.equal(resultStatus(located), "Success");
      const uids = children(payloadOf(located), "UniqueIdentifier").map(textOf);
      assert.deepEqual(uids, found ? [uid] : []);
    });
  }
});
