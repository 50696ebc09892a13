/**
 * Attribute values of the wrong type or shape in Add, Modify, Set and
 * Delete Attribute and in Create templates. Each gets Invalid Field and
 * leaves the object unchanged.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import {
  child,
  children,
  enumItem,
  integer,
  longInteger,
  struct,
  tag,
  text,
} from "../../../src/kmip/server/items.ts";
import {
  attributesOf,
  call,
  createActiveAes,
  ENCRYPT_DECRYPT,
  newDispatcher,
  resultReason,
  resultStatus,
  uidItem,
} from "./helpers.ts";

/** Builds an item with an attribute's tag and a value of any type. */
function tagged(name: string, type: "TextString" | "Integer", value: string | number): KmipItem {
  return { tag: tag(name), type, value } as KmipItem;
}

function usageLimits(total: bigint): KmipItem {
  return struct("UsageLimits", [
    longInteger("UsageLimitsTotal", total),
    enumItem("UsageLimitsUnit", "Object"),
  ]);
}

describe("attribute value checks", () => {
  it("Set rejects text usage mask", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const set = await call(dispatcher, "SetAttribute", [
      uidItem(uid),
      struct("NewAttribute", [tagged("CryptographicUsageMask", "TextString", "all")]),
    ]);

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "InvalidField");
    const mask = child(await attributesOf(dispatcher, uid), "CryptographicUsageMask");
    assert.equal(mask?.type, "Integer");
    assert.equal(mask?.value, ENCRYPT_DECRYPT);
  });

  it("Add rejects text Name", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(dispatcher, "AddAttribute", [
      uidItem(uid),
      struct("NewAttribute", [tagged("Name", "TextString", "plain-text-name")]),
    ]);

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "InvalidField");
    assert.equal(children(await attributesOf(dispatcher, uid), "Name").length, 0);
  });

  it("Add rejects empty Name", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(dispatcher, "AddAttribute", [
      uidItem(uid),
      struct("NewAttribute", [struct("Name", [])]),
    ]);

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "InvalidField");
    assert.equal(children(await attributesOf(dispatcher, uid), "Name").length, 0);
  });

  it("Add rejects empty Link", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(dispatcher, "AddAttribute", [
      uidItem(uid),
      struct("NewAttribute", [struct("Link", [])]),
    ]);

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "InvalidField");
    assert.equal(children(await attributesOf(dispatcher, uid), "Link").length, 0);
  });

  it("1.4 Add rejects text Usage Limits", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(
      dispatcher,
      "AddAttribute",
      [
        uidItem(uid),
        struct("Attribute", [
          text("AttributeName", "Usage Limits"),
          text("AttributeValue", "unlimited"),
        ]),
      ],
      [1, 4],
    );

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "InvalidField");
    assert.equal(children(await attributesOf(dispatcher, uid), "UsageLimits").length, 0);
  });

  it("1.4 Add rejects missing value", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(
      dispatcher,
      "AddAttribute",
      [uidItem(uid), struct("Attribute", [text("AttributeName", "Object Group")])],
      [1, 4],
    );

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "InvalidField");
    assert.equal(children(await attributesOf(dispatcher, uid), "ObjectGroup").length, 0);
  });

  it("Create rejects text usage mask", async () => {
    const dispatcher = newDispatcher();

    const created = await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        tagged("CryptographicUsageMask", "TextString", "all"),
      ]),
    ]);

    assert.equal(resultStatus(created), "OperationFailed");
    assert.equal(resultReason(created), "InvalidField");
  });

  it("Create rejects Usage Limits without unit", async () => {
    const dispatcher = newDispatcher();

    const created = await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT_DECRYPT),
        struct("UsageLimits", [longInteger("UsageLimitsTotal", 5n)]),
      ]),
    ]);

    assert.equal(resultStatus(created), "OperationFailed");
    assert.equal(resultReason(created), "InvalidField");
  });

  it("Add rejects second Usage Limits", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [usageLimits(5n)]);

    const added = await call(dispatcher, "AddAttribute", [
      uidItem(uid),
      struct("NewAttribute", [usageLimits(3n)]),
    ]);

    assert.equal(resultStatus(added), "OperationFailed");
    assert.equal(resultReason(added), "AttributeSingleValued");
    assert.equal(children(await attributesOf(dispatcher, uid), "UsageLimits").length, 1);
  });
});

describe("empty Current Attribute", () => {
  it("Modify gets Invalid Field", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const modified = await call(dispatcher, "ModifyAttribute", [
      uidItem(uid),
      struct("CurrentAttribute", []),
      struct("NewAttribute", [integer("CryptographicUsageMask", 4)]),
    ]);

    assert.equal(resultStatus(modified), "OperationFailed");
    assert.equal(resultReason(modified), "InvalidField");
  });

  it("Delete gets Invalid Field", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const deleted = await call(dispatcher, "DeleteAttribute", [
      uidItem(uid),
      struct("CurrentAttribute", []),
    ]);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "InvalidField");
  });
});
