/**
 * Attribute changes that would lift a protection of a key: Extractable,
 * Sensitive and Usage Limits. A client must not get key material or uses
 * that the key's attributes denied, but may tighten them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import type { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  boolean,
  bytes,
  child,
  dateTime,
  enumItem,
  longInteger,
  struct,
} from "../../../src/kmip/server/items.ts";
import {
  attributesOf,
  call,
  createActiveAes,
  newDispatcher,
  resultReason,
  resultStatus,
  uidItem,
} from "./helpers.ts";

function encrypt(dispatcher: KmipDispatcher, uid: string) {
  return call(dispatcher, "Encrypt", [uidItem(uid), bytes("Data", Buffer.alloc(16))]);
}

function usageLimits(total: bigint, unit = "Object"): KmipItem {
  return struct("UsageLimits", [
    longInteger("UsageLimitsTotal", total),
    enumItem("UsageLimitsUnit", unit),
  ]);
}

function setAttribute(dispatcher: KmipDispatcher, uid: string, value: KmipItem) {
  return call(dispatcher, "SetAttribute", [uidItem(uid), struct("NewAttribute", [value])]);
}

describe("Extractable and Sensitive", () => {
  it("Delete keeps Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [boolean("Extractable", false)]);

    const deleted = await call(dispatcher, "DeleteAttribute", [
      uidItem(uid),
      enumItem("AttributeReference", "Extractable"),
    ]);
    const got = await call(dispatcher, "Get", [uidItem(uid)]);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set keeps Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [boolean("Extractable", false)]);

    const set = await setAttribute(dispatcher, uid, boolean("Extractable", true));
    const got = await call(dispatcher, "Get", [uidItem(uid)]);

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set turns Extractable false", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const set = await setAttribute(dispatcher, uid, boolean("Extractable", false));
    const got = await call(dispatcher, "Get", [uidItem(uid)]);

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("Set keeps Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [boolean("Sensitive", true)]);

    const set = await setAttribute(dispatcher, uid, boolean("Sensitive", false));
    const got = await call(dispatcher, "Get", [uidItem(uid)]);

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(got), "OperationFailed");
    assert.equal(resultReason(got), "Sensitive");
  });

  it("Modify keeps Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [boolean("Sensitive", true)]);

    const modified = await call(dispatcher, "ModifyAttribute", [
      uidItem(uid),
      struct("NewAttribute", [boolean("Sensitive", false)]),
    ]);

    assert.equal(resultStatus(modified), "OperationFailed");
    assert.equal(resultReason(modified), "PermissionDenied");
    assert.equal(child(await attributesOf(dispatcher, uid), "Sensitive")?.value, true);
  });

  it("Delete keeps Sensitive", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [boolean("Sensitive", true)]);

    const deleted = await call(dispatcher, "DeleteAttribute", [
      uidItem(uid),
      enumItem("AttributeReference", "Sensitive"),
    ]);

    assert.equal(resultStatus(deleted), "OperationFailed");
    assert.equal(resultReason(deleted), "PermissionDenied");
    assert.equal(child(await attributesOf(dispatcher, uid), "Sensitive")?.value, true);
  });

  it("Set turns Sensitive true", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const set = await setAttribute(dispatcher, uid, boolean("Sensitive", true));
    const got = await call(dispatcher, "Get", [uidItem(uid)]);

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultReason(got), "Sensitive");
  });
});

describe("Usage Limits", () => {
  it("Delete keeps Usage Limits", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [usageLimits(1n)]);
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");

    const deleted = await call(dispatcher, "DeleteAttribute", [
      uidItem(uid),
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
    const uid = await createActiveAes(dispatcher, [usageLimits(2n)]);
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");

    const set = await setAttribute(dispatcher, uid, usageLimits(2n));

    assert.equal(resultStatus(set), "OperationFailed");
    assert.equal(resultReason(set), "PermissionDenied");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");
  });

  it("Modify cannot change the unit", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [usageLimits(2n)]);

    const modified = await call(dispatcher, "ModifyAttribute", [
      uidItem(uid),
      struct("NewAttribute", [usageLimits(1n, "Byte")]),
    ]);

    assert.equal(resultStatus(modified), "OperationFailed");
    assert.equal(resultReason(modified), "PermissionDenied");
  });

  it("Set lowers the count", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher, [usageLimits(5n)]);

    const set = await setAttribute(dispatcher, uid, usageLimits(1n));

    assert.equal(resultStatus(set), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "Success");
    assert.equal(resultStatus(await encrypt(dispatcher, uid)), "OperationFailed");
  });

  it("Add sets a first limit", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);

    const added = await call(dispatcher, "AddAttribute", [
      uidItem(uid),
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
      const uid = await createActiveAes(dispatcher);
      const date = BigInt(Math.floor(Date.now() / 1000) + offsetSeconds);
      const set = await call(dispatcher, "SetAttribute", [
        uidItem(uid),
        struct("NewAttribute", [dateTime("DeactivationDate", date)]),
      ]);
      assert.equal(resultStatus(set), "Success");

      const encrypted = await encrypt(dispatcher, uid);
      assert.equal(resultStatus(encrypted), status);
      if (status !== "Success") assert.equal(resultReason(encrypted), "WrongKeyLifecycleState");
    });
  }
});
