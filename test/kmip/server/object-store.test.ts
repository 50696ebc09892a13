import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeywardError } from "../../../src/errors.ts";
import { bytes, struct } from "../../../src/kmip/server/items.ts";
import { type KmipObject, KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { scalarAttribute } from "../../../src/kmip/server/objects.ts";
import type { StorageWriter, TransactionOptions } from "../../../src/storage/storage.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";

/** A memory barrier that counts reads and transactions, and can hold a transaction open. */
class CountingBarrier extends MemoryBarrier {
  reads = 0;
  transactions = 0;
  /** The `syncToDisk` option of each transaction, in order. */
  syncs: (boolean | undefined)[] = [];
  /** When set, each transaction waits for this promise before it commits. */
  gate: Promise<void> | undefined;

  override async get(key: string): Promise<Uint8Array | undefined> {
    this.reads += 1;
    return super.get(key);
  }

  override async transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    this.transactions += 1;
    this.syncs.push(options.syncToDisk);
    const gate = this.gate;
    return super.transaction(async (tx) => {
      const result = await work(tx);
      await gate;
      return result;
    });
  }
}

function keyObject(uid: string, keyByte = 1, label = "first"): KmipObject {
  return {
    uid,
    objectType: "SymmetricKey",
    attributes: [scalarAttribute("x-Label", "TextString", label)],
    content: struct("SymmetricKey", [bytes("KeyMaterial", Buffer.alloc(32, keyByte))]),
  };
}

function keyBytesOf(object: KmipObject | undefined): Uint8Array {
  const content = object?.content;
  assert.ok(content?.type === "Structure", "expected the object's content");
  const material = content.value[0];
  assert.ok(material?.type === "ByteString", "expected key material");
  return material.value;
}

function labelOf(object: KmipObject | undefined): unknown {
  return object?.attributes.find((attribute) => attribute.name === "x-Label")?.value.value;
}

/** Resolves after the current event-loop turn, so queued groups get to run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe("KMIP object store lookups", () => {
  it("finds nothing for identifiers storage cannot hold", async () => {
    const store = new KmipObjectStore(new MemoryBarrier());
    for (const uid of ["x".repeat(100_000), "a\u0000b", "", "a/b"]) {
      assert.equal(await store.find(uid), undefined, JSON.stringify(uid.slice(0, 10)));
    }
  });
});

describe("KMIP object store durability", () => {
  it("syncs unless every write may be lost", async () => {
    const barrier = new CountingBarrier();
    const store = new KmipObjectStore(barrier);
    await store.put(keyObject("k1"));
    await store.exclusive((tx) => tx.put(keyObject("k1", 2), { durable: false }));
    await store.exclusive(async (tx) => {
      await tx.put(keyObject("k1", 3), { durable: false });
      await tx.put(keyObject("k2"));
    });
    assert.deepEqual(barrier.syncs, [true, false, true]);
  });
});

describe("KMIP object store cache", () => {
  it("serves repeated reads from memory", async () => {
    const barrier = new CountingBarrier();
    const store = new KmipObjectStore(barrier);
    await store.put(keyObject("a"));
    const readsBefore = barrier.reads;
    for (let i = 0; i < 3; i += 1) assert.equal(labelOf(await store.find("a")), "first");
    assert.equal(barrier.reads, readsBefore);
  });

  it("returns copies callers cannot change", async () => {
    const store = new KmipObjectStore(new MemoryBarrier());
    const written = keyObject("a");
    await store.put(written);
    keyBytesOf(written).fill(9);
    const first = await store.find("a");
    keyBytesOf(first).fill(7);
    (first!.attributes as unknown[]).length = 0;
    const second = await store.find("a");
    assert.deepEqual(Buffer.from(keyBytesOf(second)), Buffer.alloc(32, 1));
    assert.equal(labelOf(second), "first");
  });

  it("reads a changed object after forget", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    const other = new KmipObjectStore(barrier);
    await store.put(keyObject("a", 1, "first"));
    await store.find("a");
    // Another store on the same storage stands for another node.
    await other.put(keyObject("a", 2, "second"));
    assert.equal(labelOf(await store.find("a")), "first");
    store.forget("a");
    assert.equal(labelOf(await store.find("a")), "second");
  });

  it("reads every object again after clear", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    const other = new KmipObjectStore(barrier);
    await store.put(keyObject("a", 1, "first"));
    await store.put(keyObject("b", 1, "first"));
    await other.put(keyObject("a", 2, "second"));
    await other.delete("b");
    store.clear();
    assert.equal(labelOf(await store.find("a")), "second");
    assert.equal(await store.find("b"), undefined);
  });

  it("evicts the least recently used object", async () => {
    const barrier = new CountingBarrier();
    const store = new KmipObjectStore(barrier, { cacheEntries: 2 });
    await store.put(keyObject("a"));
    await store.put(keyObject("b"));
    await store.find("a");
    await store.put(keyObject("c"));
    const readsBefore = barrier.reads;
    await store.find("a");
    await store.find("c");
    assert.equal(barrier.reads, readsBefore, "a and c are cached");
    await store.find("b");
    assert.equal(barrier.reads, readsBefore + 1, "b was evicted");
  });

  it("rejects reads while sealed", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    await store.put(keyObject("a"));
    barrier.sealed = true;
    await assert.rejects(store.find("a"), (error: unknown) => {
      return error instanceof KeywardError && error.code === "sealed";
    });
  });
});

describe("KMIP object store group commit", () => {
  it("commits one turn's works together", async () => {
    const barrier = new CountingBarrier();
    const store = new KmipObjectStore(barrier);
    await Promise.all(["a", "b", "c", "d"].map((uid) => store.put(keyObject(uid))));
    assert.equal(barrier.transactions, 1);
    for (const uid of ["a", "b", "c", "d"]) assert.ok(barrier.values.has(`kmip/objects/${uid}`));
  });

  it("resolves only after the commit", async () => {
    const barrier = new CountingBarrier();
    let open: () => void = () => undefined;
    barrier.gate = new Promise((resolve) => {
      open = resolve;
    });
    const store = new KmipObjectStore(barrier);
    let resolved = false;
    const write = store.put(keyObject("a")).then(() => {
      resolved = true;
    });
    for (let i = 0; i < 5; i += 1) await nextTurn();
    assert.equal(resolved, false);
    assert.equal(barrier.values.has("kmip/objects/a"), false);
    open();
    await write;
    assert.ok(barrier.values.has("kmip/objects/a"));
  });

  it("lets later works read earlier staged writes", async () => {
    const store = new KmipObjectStore(new MemoryBarrier());
    const [, seen, listed] = await Promise.all([
      store.exclusive((tx) => tx.put(keyObject("a"))),
      store.exclusive(async (tx) => labelOf(await tx.find("a"))),
      store.exclusive((tx) => tx.list()),
    ]);
    assert.equal(seen, "first");
    assert.deepEqual(listed, ["a"]);
  });

  it("fails every work when the commit fails", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    barrier.failWrites = true;
    const outcomes = await Promise.allSettled([
      store.put(keyObject("a")),
      store.exclusive(async (tx) => labelOf(await tx.find("a"))),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ["rejected", "rejected"],
    );
    barrier.failWrites = false;
    assert.equal(await store.find("a"), undefined);
    assert.equal(barrier.values.size, 0);
  });

  it("drops the writes of a failed work", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    const failed = store.exclusive(async (tx) => {
      await tx.put(keyObject("a"));
      throw new Error("operation failed");
    });
    const kept = store.put(keyObject("b"));
    await assert.rejects(failed, /operation failed/);
    await kept;
    assert.equal(await store.find("a"), undefined);
    assert.equal(labelOf(await store.find("b")), "first");
  });

  it("rolls back to the journal start", async () => {
    const barrier = new MemoryBarrier();
    const store = new KmipObjectStore(barrier);
    await store.put(keyObject("a", 1, "stored"));
    const earlier = store.exclusive((tx) => tx.put(keyObject("b", 1, "earlier work")));
    const undone = store.exclusive(async (tx) => {
      tx.startJournal();
      await tx.put(keyObject("a", 2, "changed"));
      await tx.put(keyObject("b", 2, "changed"));
      await tx.put(keyObject("c", 2, "created"));
      await tx.delete("a");
      await tx.rollBack();
      tx.endJournal();
      return [labelOf(await tx.find("a")), labelOf(await tx.find("b")), await tx.find("c")];
    });
    await earlier;
    assert.deepEqual(await undone, ["stored", "earlier work", undefined]);
    assert.equal(labelOf(await store.find("a")), "stored");
    assert.equal(labelOf(await store.find("b")), "earlier work");
    assert.equal(barrier.values.has("kmip/objects/c"), false);
  });

  it("splits a large group into transactions", async () => {
    const barrier = new CountingBarrier();
    const store = new KmipObjectStore(barrier);
    const uids = Array.from({ length: 950 }, (_, index) => `k${String(index).padStart(4, "0")}`);
    await store.exclusive(async (tx) => {
      for (const uid of uids) await tx.put(keyObject(uid));
    });
    assert.equal(barrier.transactions, 2);
    assert.equal((await store.list()).length, 950);
  });

  it("rejects staged writes outside exclusive work", async () => {
    const store = new KmipObjectStore(new MemoryBarrier());
    let leaked: Parameters<Parameters<KmipObjectStore["exclusive"]>[0]>[0] | undefined;
    await store.exclusive(async (tx) => {
      leaked = tx;
    });
    await assert.rejects(leaked!.put(keyObject("a")), (error: unknown) => {
      return error instanceof KeywardError && error.code === "internal";
    });
  });
});
