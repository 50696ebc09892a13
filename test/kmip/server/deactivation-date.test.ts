import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import type { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  bytes,
  child,
  dateTime,
  enumItem,
  integer,
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

async function createActiveAes(dispatcher: KmipDispatcher): Promise<string> {
  const created = payloadOf(
    await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT_DECRYPT),
        activeSince(),
      ]),
    ]),
  );
  return textOf(child(created, "UniqueIdentifier")!);
}

// KMIP makes an object Deactivated once its Deactivation Date passes, so it
// protects no new data although its stored State is still Active.
describe("KMIP Deactivation Date", () => {
  it("passed date stops Encrypt", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);
    const set = await call(dispatcher, "SetAttribute", [
      id(uid),
      struct("NewAttribute", [
        dateTime("DeactivationDate", BigInt(Math.floor(Date.now() / 1000) - 10)),
      ]),
    ]);
    assert.equal(resultStatus(set), "Success");

    const encrypted = await call(dispatcher, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]);
    assert.equal(resultStatus(encrypted), "OperationFailed");
    assert.equal(resultReason(encrypted), "WrongKeyLifecycleState");
  });

  it("future date allows Encrypt", async () => {
    const dispatcher = newDispatcher();
    const uid = await createActiveAes(dispatcher);
    const set = await call(dispatcher, "SetAttribute", [
      id(uid),
      struct("NewAttribute", [
        dateTime("DeactivationDate", BigInt(Math.floor(Date.now() / 1000) + 3600)),
      ]),
    ]);
    assert.equal(resultStatus(set), "Success");

    const encrypted = await call(dispatcher, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]);
    assert.equal(resultStatus(encrypted), "Success");
  });
});
