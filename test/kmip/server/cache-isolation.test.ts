/**
 * Changes to objects read from the object cache, and batches whose items
 * are undone, with managed keys: no change reaches another object, the
 * cache matches the stored records, and transit matches KMIP.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import { KMIP_OBJECTS_PREFIX, KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import {
  activeSince,
  call,
  payloadOf,
  requestMessage,
  resultStatus,
  send,
  uidOf,
} from "./helpers.ts";

const MOUNT = "kmip-keys";

/** Builds a dispatcher with managed keys over `barrier`. Each call makes its own object cache. */
function bridged(barrier = new MemoryBarrier()) {
  const transit = new TransitService({ barrier, mount: MOUNT });
  const mounts: KmipKeyMounts = { mount: MOUNT, keyStore: async () => transit.keyStore };
  const store = new KmipObjectStore(barrier, { managedKeys: new KmipManagedKeys(mounts) });
  return { barrier, transit, dispatcher: new KmipDispatcher({ store }) };
}

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

function createPayload(extra: KmipItem[] = []): KmipItem[] {
  return [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [
      enumItem("CryptographicAlgorithm", "AES"),
      integer("CryptographicLength", 256),
      integer("CryptographicUsageMask", 12),
      ...extra,
    ]),
  ];
}

async function create(dispatcher: KmipDispatcher, extra: KmipItem[] = []): Promise<string> {
  return uidOf(payloadOf(await call(dispatcher, "Create", createPayload(extra))));
}

/** Returns the object's attributes as sorted JSON strings, so two reads compare value for value. */
async function attributesOf(dispatcher: KmipDispatcher, uid: string): Promise<string[]> {
  const item = await call(dispatcher, "GetAttributes", [id(uid)]);
  assert.equal(resultStatus(item), "Success", `GetAttributes ${uid}`);
  const attributes = child(payloadOf(item), "Attributes") as StructureItem;
  return attributes.value
    .filter((attribute) => attribute.type !== "Structure" || attribute.value.length > 0)
    .map((attribute) => JSON.stringify(attribute, (_key, value) => jsonValue(value)))
    .sort();
}

function jsonValue(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return value;
}

async function contact(dispatcher: KmipDispatcher, uid: string): Promise<string | undefined> {
  const item = await call(dispatcher, "GetAttributes", [id(uid)]);
  const attributes = child(payloadOf(item), "Attributes") as StructureItem;
  const found = child(attributes, "ContactInformation");
  return found === undefined ? undefined : textOf(found);
}

async function state(dispatcher: KmipDispatcher, uid: string): Promise<string> {
  const item = await call(dispatcher, "GetAttributes", [id(uid)]);
  const attributes = child(payloadOf(item), "Attributes") as StructureItem;
  return enumName(child(attributes, "State")!);
}

async function keyBytes(dispatcher: KmipDispatcher, uid: string): Promise<string> {
  const payload = payloadOf(await call(dispatcher, "Get", [id(uid)]));
  const block = child(child(payload, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
  const value = child(block, "KeyValue") as StructureItem;
  const material = child(value, "KeyMaterial");
  assert.ok(material !== undefined);
  assert.equal(material.type, "ByteString");
  return Buffer.from(material.value as Uint8Array).toString("hex");
}

/** Asserts that a dispatcher without a cache reads what the cached one returns. */
async function assertCacheMatchesStorage(
  cached: KmipDispatcher,
  barrier: MemoryBarrier,
  uids: string[],
): Promise<void> {
  const { dispatcher: fresh } = bridged(barrier);
  for (const uid of uids) {
    assert.deepEqual(await attributesOf(cached, uid), await attributesOf(fresh, uid), uid);
    assert.equal(await keyBytes(cached, uid), await keyBytes(fresh, uid), uid);
  }
}

describe("KMIP object cache isolation", () => {
  it("attribute changes stay on their object", async () => {
    const { barrier, dispatcher } = bridged();
    const first = await create(dispatcher, [text("ContactInformation", "same")]);
    const second = await create(dispatcher, [text("ContactInformation", "same")]);
    await keyBytes(dispatcher, first);
    await keyBytes(dispatcher, second);

    const modified = await call(dispatcher, "ModifyAttribute", [
      id(first),
      struct("NewAttribute", [text("ContactInformation", "changed")]),
    ]);
    assert.equal(resultStatus(modified), "Success");
    assert.equal(await contact(dispatcher, first), "changed");
    assert.equal(await contact(dispatcher, second), "same");

    const deleted = await call(dispatcher, "DeleteAttribute", [
      id(second),
      struct("CurrentAttribute", [text("ContactInformation", "same")]),
    ]);
    assert.equal(resultStatus(deleted), "Success");
    assert.equal(await contact(dispatcher, first), "changed");
    assert.equal(await contact(dispatcher, second), undefined);
    await assertCacheMatchesStorage(dispatcher, barrier, [first, second]);
  });

  it("Create, Modify and Get in one batch", async () => {
    const { barrier, dispatcher } = bridged();
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Create", createPayload([text("ContactInformation", "created")])],
          ["ModifyAttribute", [struct("NewAttribute", [text("ContactInformation", "modified")])]],
          ["Get", []],
          ["Activate", []],
          ["Get", []],
        ],
      ),
    );
    for (const item of items) assert.equal(resultStatus(item), "Success");
    const uid = uidOf(payloadOf(items[0]!));
    assert.equal(await contact(dispatcher, uid), "modified");
    assert.equal(await state(dispatcher, uid), "Active");
    await assertCacheMatchesStorage(dispatcher, barrier, [uid]);
  });

  it("Re-key copies keep their own attributes", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const original = await create(dispatcher, [
      text("ContactInformation", "original"),
      activeSince(),
    ]);
    const before = await keyBytes(dispatcher, original);
    const replacement = uidOf(payloadOf(await call(dispatcher, "ReKey", [id(original)])));
    assert.equal(await contact(dispatcher, replacement), "original");

    const modified = await call(dispatcher, "ModifyAttribute", [
      id(replacement),
      struct("NewAttribute", [text("ContactInformation", "replacement")]),
    ]);
    assert.equal(resultStatus(modified), "Success");
    assert.equal(await contact(dispatcher, original), "original");
    assert.equal(await contact(dispatcher, replacement), "replacement");
    assert.equal(await keyBytes(dispatcher, original), before);
    assert.notEqual(await keyBytes(dispatcher, replacement), before);
    await assertCacheMatchesStorage(dispatcher, barrier, [original, replacement]);
    assert.equal((await transit.readKey(original)).latestVersion, 2);
  });

  it("undone batch leaves no object or transit key", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const existing = await create(dispatcher);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Create", createPayload([activeSince()])],
          ["Get", []],
          [
            "Revoke",
            [struct("RevocationReason", [enumItem("RevocationReasonCode", "KeyCompromise")])],
          ],
          ["Destroy", []],
          ["Activate", [id(existing)]],
          ["Get", [id("no-such-object")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.equal(resultStatus(items[0]!), "OperationUndone");
    assert.equal(resultStatus(items.at(-1)!), "OperationFailed");
    assert.deepEqual(await transit.keyStore.list(), [existing]);
    const records = (await barrier.list(KMIP_OBJECTS_PREFIX)).filter((name) => !name.endsWith("/"));
    assert.deepEqual(records, [existing]);
    assert.equal(await state(dispatcher, existing), "PreActive");
    assert.equal((await transit.readKey(existing)).state, "pre-active");
    await assertCacheMatchesStorage(dispatcher, barrier, [existing]);
  });

  it("Locate results do not share cached items", async () => {
    const { barrier, dispatcher } = bridged();
    const name = struct("Name", [
      text("NameValue", "shared-name"),
      enumItem("NameType", "UninterpretedTextString"),
    ]);
    const uid = await create(dispatcher, [name, text("ContactInformation", "before")]);
    const located = payloadOf(await call(dispatcher, "Locate", [struct("Attributes", [name])]));
    assert.deepEqual(children(located, "UniqueIdentifier").map(textOf), [uid]);
    await call(dispatcher, "ModifyAttribute", [
      id(uid),
      struct("NewAttribute", [text("ContactInformation", "after")]),
    ]);
    const again = payloadOf(await call(dispatcher, "Locate", [struct("Attributes", [name])]));
    assert.deepEqual(children(again, "UniqueIdentifier").map(textOf), [uid]);
    assert.equal(await contact(dispatcher, uid), "after");
    await assertCacheMatchesStorage(dispatcher, barrier, [uid]);
  });
});
