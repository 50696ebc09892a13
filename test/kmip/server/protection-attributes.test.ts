/**
 * Attribute changes that would lift a protection of a key: Extractable,
 * Sensitive and Usage Limits. A client must not get key material or uses
 * that the key's attributes denied, but may tighten them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import type { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  boolean,
  bytes,
  child,
  dateTime,
  enumItem,
  integer,
  longInteger,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import {
  activeSince,
  call,
  newDispatcher,
  payloadOf,
  resultReason,
  resultStatus,
} from "./helpers.ts";

const ENCRYPT_DECRYPT = 4 | 8;

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

async function createAes(dispatcher: KmipDispatcher, extra: KmipItem[]): Promise<string> {
  const created = payloadOf(
    await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT_DECRYPT),
        activeSince(),
        ...extra,
      ]),
    ]),
  );
  return textOf(child(created, "UniqueIdentifier")!);
}

async function attributesOf(dispatcher: KmipDispatcher, uid: string): Promise<StructureItem> {
  const payload = payloadOf(await call(dispatcher, "GetAttributes", [id(uid)]));
  return child(payload, "Attributes") as StructureItem;
}

function encrypt(dispatcher: KmipDispatcher, uid: string) {
  return call(dispatcher, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]);
}

function usageLimits(total: bigint, unit = "Object"): KmipItem {
  return struct("UsageLimits", [
    longInteger("UsageLimitsTotal", total),
    enumItem("UsageLimitsUnit", unit),
  ]);
}

function setAttribute(dispatcher: KmipDispatcher, uid: string, value: KmipItem) {
  return call(dispatcher, "SetAttribute", [id(uid), struct("NewAttribute", [value])]);
}

describe("Extractable and Sensitive", () => {
  it("Delete keeps Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [boolean("Extractable", false)]);

    const deleted = await call(dispatcher, "DeleteAttribute", [
      id(uid),
      enumItem("AttributeReference", "Extractable"),
    ]);
    const got = await call(dispatcher, "Get", [id(uid)]);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set keeps Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [boolean("Extractable", false)]);

    const set = await setAttribute(dispatcher, uid, boolean("Extractable", true));
    const got = await call(dispatcher, "Get", [id(uid)]);

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set turns Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, []);

    const set = await setAttribute(dispatcher, uid, boolean("Extractable", false));
    const got = await call(dispatcher, "Get", [id(uid)]);

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set keeps Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [boolean("Sensitive", true)]);

    const set = await setAttribute(dispatcher, uid, boolean("Sensitive", false));
    const got = await call(dispatcher, "Get", [id(uid)]);

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "Sensitive");
  });

  it("Modify keeps Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [boolean("Sensitive", true)]);

    const modified = await call(dispatcher, "ModifyAttribute", [
      id(uid),
      struct("NewAttribute", [boolean("Sensitive", false)]),
    ]);

    assert.equal(resultStatus(modified), "OperationFailed");
    assert.equal(resultReason(modified), "PermissionDenied");
    assert.equal(child(await attributesOf(dispatcher, uid), "Sensitive")?.value, true);
  });

  it("Delete keeps Sensitive", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [boolean("Sensitive", true)]);

    const deleted = await call(dispatcher, "DeleteAttribute", [
      id(uid),
      enumItem("AttributeReference", "Sensitive"),
    ]);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "PermissionDenied");
    assert.equal(child(await attributesOf(dispatcher, uid), "Sensitive")?.value, true);
  });

  it("Set turns Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, []);

    const set = await setAttribute(dispatcher, uid, boolean("Sensitive", true));
    const got = await call(dispatcher, "Get", [id(uid)]);

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultReason(got), "Sensitive");
  });
});

describe("Usage Limits", () => {
  it("Delete keeps Usage Limits", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [usageLimits(1n)]);
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");

    const deleted = await call(dispatcher, "DeleteAttribute", [
      id(uid),
      enumItem("AttributeReference", "UsageLimits"),
    ]);
    const third = await encrypt(dispatcher, uid);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "PermissionDenied");
    assert.equal(resultStatus(third), "OperationFailed");
    assert.equal(resultReason(third), "PermissionDenied");
  });

  it("Set cannot raise the count", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [usageLimits(2n)]);
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");

    const set = await setAttribute(dispatcher, uid, usageLimits(2n));

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");
  });

  it("Modify cannot change the unit", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [usageLimits(2n)]);

    const modified = await call(dispatcher, "ModifyAttribute", [
      id(uid),
      struct("NewAttribute", [usageLimits(1n, "Byte")]),
    ]);

    assert.equal(resultStatus(modified), "OperationFailed");
    assert.equal(resultReason(modified), "PermissionDenied");
  });

  it("Set lowers the count", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [usageLimits(5n)]);

    const set = await setAttribute(dispatcher, uid, usageLimits(1n));

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");
  });

  it("Add sets a first limit", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, []);

    const added = await call(dispatcher, "AddAttribute", [
      id(uid),
      struct("NewAttribute", [usageLimits(1n)]),
    ]);

    assert.equal(resultStatus(added), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");
  });
});

// KMIP makes an object Deactivated once its Deactivation Date passes, so it
// protects no new data although its stored State is still Active.
describe("KMIP Deactivation Date", () => {
  const cases: [string, number, string][] = [
    ["passed date stops Encrypt", -10, "OperationFailed"],
    ["future date allows Encrypt", 3600, "Success"],
  ];
  for (const [name, offsetSeconds, status] of cases) {
    it(name, async () => {
      const dispatcher = newDispatcher();
      const uid = await createAes(dispatcher, []);
      const date = BigInt(Math.floor(Date.now() / 1000) + offsetSeconds);
      const set = await call(dispatcher, "SetAttribute", [
        id(uid),
        struct("NewAttribute", [dateTime("DeactivationDate", date)]),
      ]);
      assert.equal(resultStatus(set), "Success");

      const encrypted = await encrypt(dispatcher, uid);
      assert.equal(resultStatus(encrypted), status);
      if (status !== "Success") assert.equal(resultReason(encrypted), "WrongKeyLifecycleState");
    });
  }
});
