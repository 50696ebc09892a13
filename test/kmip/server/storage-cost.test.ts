/**
 * The storage reads, writes and syncs of one Create and one Get with
 * managed keys, and the copies and encodings that let them skip work.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KmipItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  boolean,
  bytes,
  child,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import { copyItem, copyObject } from "../../../src/kmip/server/object-cache.ts";
import { KMIP_OBJECTS_PREFIX, KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { tagForAttributeName } from "../../../src/kmip/tags.ts";
import { contextForTag } from "../../../src/kmip/text-values.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import type { StorageWriter, TransactionOptions } from "../../../src/storage/storage.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { call, payloadOf, requestMessage, resultStatus, send } from "./helpers.ts";

const MOUNT = "kmip-keys";
const KEYS_PREFIX = `${MOUNT}/keys/`;

/**
 * A memory barrier that records every read and each transaction's sync
 * option. Its transactions read through `get`, so reads inside them are
 * recorded too.
 */
class RecordingBarrier extends MemoryBarrier {
  /** Storage keys read, in order. */
  reads: string[] = [];
  /** Whether each transaction syncs, in order. */
  syncs: boolean[] = [];

  override async get(key: string): Promise<Uint8Array | undefined> {
    this.reads.push(key);
    return super.get(key);
  }

  override async transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    this.syncs.push(options.syncToDisk !== false);
    return super.transaction(work);
  }

  reset(): void {
    this.reads = [];
    this.syncs = [];
  }
}

function bridged() {
  const barrier = new RecordingBarrier();
  const transit = new TransitService({ barrier, mount: MOUNT });
  const mounts: KmipKeyMounts = { mount: MOUNT, keyStore: async () => transit.keyStore };
  const store = new KmipObjectStore(barrier, { managedKeys: new KmipManagedKeys(mounts) });
  return { barrier, transit, dispatcher: new KmipDispatcher({ store }) };
}

const CREATE_AES: KmipItem[] = [
  enumItem("ObjectType", "SymmetricKey"),
  struct("Attributes", [
    enumItem("CryptographicAlgorithm", "AES"),
    integer("CryptographicLength", 256),
    integer("CryptographicUsageMask", 4 | 8),
  ]),
];

async function createAes(dispatcher: KmipDispatcher): Promise<string> {
  const payload = payloadOf(await call(dispatcher, "Create", CREATE_AES));
  return textOf(child(payload, "UniqueIdentifier")!);
}

describe("KMIP Create and Get storage use", () => {
  it("Create reads no record and syncs once", async () => {
    const { barrier, transit, dispatcher } = bridged();
    await createAes(dispatcher);
    barrier.reset();

    const uid = await createAes(dispatcher);

    assert.deepEqual(
      barrier.reads.filter((key) => key.startsWith(KMIP_OBJECTS_PREFIX)),
      [],
      "the new object's record is not read",
    );
    assert.deepEqual(
      barrier.reads.filter((key) => key.startsWith(KEYS_PREFIX)),
      [KEYS_PREFIX + uid],
      "the managed key is read once, by the create's own existence check",
    );
    assert.deepEqual(barrier.syncs, [false, true], "the key's commit, then the synced record");
    assert.ok(await transit.keyStore.find(uid), "the managed key exists");
  });

  it("Get of a cached object reads only its record", async () => {
    const { barrier, dispatcher } = bridged();
    const uid = await createAes(dispatcher);
    barrier.reset();

    const item = await call(dispatcher, "Get", [text("UniqueIdentifier", uid)]);

    assert.equal(resultStatus(item), "Success");
    assert.deepEqual(
      barrier.reads,
      [KMIP_OBJECTS_PREFIX + uid],
      "the commit reads the stored Names",
    );
    assert.deepEqual(barrier.syncs, [false], "Fresh turning false is not synced");
  });

  it("undone Create removes its managed key", async () => {
    const { transit, dispatcher } = bridged();
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Create", CREATE_AES],
          ["Get", [text("UniqueIdentifier", "no-such-object")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );

    assert.equal(resultStatus(items[0]!), "OperationUndone");
    const uid = textOf(child(child(items[0]!, "ResponsePayload") as never, "UniqueIdentifier")!);
    assert.equal(await transit.keyStore.find(uid), undefined);
  });

  it("Create and Activate in one batch", async () => {
    const { transit, dispatcher } = bridged();
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Create", CREATE_AES],
          ["Activate", []],
        ],
      ),
    );

    assert.equal(resultStatus(items[0]!), "Success");
    assert.equal(resultStatus(items[1]!), "Success");
    const uid = textOf(child(child(items[0]!, "ResponsePayload") as never, "UniqueIdentifier")!);
    assert.equal((await transit.keyStore.find(uid))?.state, "active");
  });
});

describe("KMIP object copies", () => {
  it("copy shares no mutable part", () => {
    const label = text("ObjectGroup", "first");
    const material = bytes("KeyMaterial", Buffer.alloc(32, 1));
    const content = struct("SymmetricKey", [material]);
    const object = {
      uid: "u1",
      objectType: "SymmetricKey",
      attributes: [{ name: "Object Group", value: label }],
      content,
    };

    const copy = copyObject(object);

    assert.equal(copy.attributes[0]!.value, label, "an immutable scalar is shared");
    assert.notEqual(copy.content, content, "a structure is copied");
    const copiedMaterial = (copy.content as typeof content).value[0]!;
    assert.notEqual(copiedMaterial.value, material.value, "a byte string gets its own buffer");
    (copiedMaterial.value as Uint8Array).fill(0);
    assert.equal((material.value as Uint8Array)[0], 1, "zeroing the copy leaves the original");
  });

  it("copyItem keeps every type", () => {
    const item = struct("Attribute", [
      text("AttributeName", "x-a"),
      boolean("Fresh", true),
      integer("CryptographicLength", 7),
      bytes("KeyMaterial", Buffer.from([1, 2, 3])),
    ]);
    assert.deepEqual(decodeTtlv(encodeTtlv(copyItem(item))), decodeTtlv(encodeTtlv(item)));
  });
});

describe("KMIP tag lookups", () => {
  it("maps attribute names the same when repeated", () => {
    for (let i = 0; i < 3; i += 1) {
      assert.equal(tagForAttributeName("Cryptographic Algorithm"), 0x420028);
      assert.equal(tagForAttributeName("x-custom"), undefined);
    }
  });

  it("gives unknown tags an empty context", () => {
    assert.deepEqual(contextForTag(0x540001), {});
    assert.ok(contextForTag(0x420028).enumeration, "Cryptographic Algorithm has an enumeration");
  });
});
