import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import type { KmipItem, StructureItem } from "../../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../../src/kmip/server/dispatcher.ts";
import {
  boolean,
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  text,
} from "../../../../src/kmip/server/items.ts";
import { KmipObjectStore } from "../../../../src/kmip/server/object-store.ts";
import { MemoryBarrier } from "../../../helpers/memory-barrier.ts";
import { requirePeer } from "../../../helpers/peers.ts";
import { requireSoftHsm, softHsmInstalled } from "../../../hsm/softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "../../../hsm/softhsm-token.ts";
import { activeSince, call, payloadOf, resultReason, resultStatus, uidOf } from "../helpers.ts";

const TOKEN = "keyward-races";
const PIN = "races-pin-1618";

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

function name(value: string): KmipItem {
  return struct("Name", [
    text("NameValue", value),
    enumItem("NameType", "UninterpretedTextString"),
  ]);
}

describe("HSM Re-key edge cases", () => {
  let softHsm: SoftHsmToken | undefined;
  let dispatcher: KmipDispatcher;

  before(async () => {
    if (!softHsmInstalled()) return;
    softHsm = await openSoftHsmToken([TOKEN], PIN);
    dispatcher = new KmipDispatcher({
      store: new KmipObjectStore(new MemoryBarrier()),
      hsm: softHsm.token,
    });
  });

  after(async () => {
    await softHsm?.token.close();
    await softHsm?.close();
  });

  /** Counts the token's objects with pkcs11-tool, or returns undefined when it is missing. */
  function tokenObjectCount(t: TestContext): number | undefined {
    if (!requirePeer(t, "pkcs11-tool")) return undefined;
    const listed = softHsm!.hsm.listObjects(TOKEN, PIN);
    assert.equal(listed.status, 0, listed.output);
    return listed.output.split("\n").filter((line) => /Object;/.test(line)).length;
  }

  async function createAes(bits: number, extra: KmipItem[] = []): Promise<string> {
    return uidOf(
      payloadOf(
        await call(dispatcher, "Create", [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", bits),
            integer("CryptographicUsageMask", 4 | 8),
            boolean("Extractable", false),
            activeSince(),
            ...extra,
          ]),
        ]),
      ),
    );
  }

  async function replacementLinks(uid: string): Promise<number> {
    const payload = payloadOf(await call(dispatcher, "GetAttributes", [id(uid)]));
    const attributes = child(payload, "Attributes") as StructureItem;
    return (children(attributes, "Link") as StructureItem[]).filter(
      (link) => enumName(child(link, "LinkType")!) === "ReplacementObjectLink",
    ).length;
  }

  it("Re-key of a 192-bit HSM key", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    const uid = await createAes(192);
    const rekeyed = await call(dispatcher, "ReKey", [id(uid)]);
    assert.equal(resultStatus(rekeyed), "Success", String(child(rekeyed, "ResultMessage")?.value));
  });

  it("second Re-key of one HSM key", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    const uid = await createAes(256);
    payloadOf(await call(dispatcher, "ReKey", [id(uid)]));
    const before = tokenObjectCount(t);
    const again = await call(dispatcher, "ReKey", [id(uid)]);
    assert.equal(resultReason(again), "WrongKeyLifecycleState");
    assert.equal(await replacementLinks(uid), 1);
    if (before !== undefined) assert.equal(tokenObjectCount(t), before);
  });

  it("Re-key of a destroyed HSM key", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    const uid = await createAes(256);
    payloadOf(
      await call(dispatcher, "Revoke", [
        id(uid),
        struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
      ]),
    );
    payloadOf(await call(dispatcher, "Destroy", [id(uid)]));
    const rekeyed = await call(dispatcher, "ReKey", [id(uid)]);
    assert.notEqual(resultStatus(rekeyed), "Success");
    assert.notEqual(resultReason(rekeyed), "GeneralFailure");
  });

  it("Re-key with a taken Name leaves no token object", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    await createAes(256, [name("taken-name")]);
    const uid = await createAes(256);
    const before = tokenObjectCount(t);
    const rekeyed = await call(dispatcher, "ReKey", [
      id(uid),
      struct("Attributes", [name("taken-name")]),
    ]);
    assert.equal(resultReason(rekeyed), "NonUniqueNameAttribute");
    if (before !== undefined) assert.equal(tokenObjectCount(t), before);
  });
});
