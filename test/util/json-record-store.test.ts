import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StorageWriter } from "../../src/storage/storage.ts";
import { JsonRecordStore } from "../../src/util/json-record-store.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

const OPTIONS = {
  prefix: "things/",
  storageFailureMessage: "failed to store a thing",
  invalidJsonReason: "stored thing is not valid JSON",
};

/** A barrier whose transactions fail with an error that is not a KeywardError. */
class BrokenBarrier extends MemoryBarrier {
  override async transaction<T>(_work: (tx: StorageWriter) => Promise<T>): Promise<T> {
    throw new Error("disk unavailable");
  }
}

/** A store that records the paths passed to its write hook. */
class HookedStore extends JsonRecordStore {
  readonly written: string[] = [];
  protected override beforeWrite(path: string): void {
    this.written.push(path);
  }
}

describe("JSON record store", () => {
  it("writes and reads records under the prefix", async () => {
    const barrier = new MemoryBarrier();
    const store = new JsonRecordStore(barrier, OPTIONS);
    await store.transaction(async (writer) => {
      await writer.put("a/one", { n: 1 });
      await writer.put("a/two", { n: 2 });
      await writer.put("a/deeper/three", { n: 3 });
    });
    assert.deepEqual([...barrier.values.keys()].sort(), [
      "things/a/deeper/three",
      "things/a/one",
      "things/a/two",
    ]);
    assert.deepEqual(await store.get("a/one"), { n: 1 });
    assert.equal(await store.get("a/missing"), undefined);
    assert.deepEqual(await store.list("a"), ["one", "two"]);
  });

  it("deletes inside a transaction", async () => {
    const store = new JsonRecordStore(new MemoryBarrier(), OPTIONS);
    await store.transaction((writer) => writer.put("x", true));
    await store.transaction(async (writer) => {
      assert.equal(await writer.get("x"), true);
      await writer.delete("x");
    });
    assert.equal(await store.get("x"), undefined);
  });

  it("rejects reads while sealed", async () => {
    const barrier = new MemoryBarrier();
    const store = new JsonRecordStore(barrier, OPTIONS);
    barrier.sealed = true;
    await assert.rejects(store.get("x"), { code: "sealed" });
    await assert.rejects(store.list("a"), { code: "sealed" });
  });

  it("raises internal on invalid JSON", async () => {
    const barrier = new MemoryBarrier();
    barrier.values.set("things/bad", Buffer.from("{not json", "utf8"));
    const store = new JsonRecordStore(barrier, OPTIONS);
    await assert.rejects(
      store.get("bad"),
      (error: Error & { code?: string; details?: unknown }) => {
        assert.equal(error.code, "internal");
        assert.equal(error.message, "internal error");
        assert.deepEqual(error.details, { path: "bad", reason: "stored thing is not valid JSON" });
        return true;
      },
    );
  });

  it("maps storage errors to storage_failure", async () => {
    const store = new JsonRecordStore(new BrokenBarrier(), OPTIONS);
    await assert.rejects(
      store.transaction(async () => undefined),
      {
        code: "storage_failure",
        message: "failed to store a thing",
      },
    );
  });

  it("passes a KeywardError through a transaction", async () => {
    const barrier = new MemoryBarrier();
    barrier.failWrites = true;
    const store = new JsonRecordStore(barrier, OPTIONS);
    await assert.rejects(
      store.transaction((writer) => writer.put("x", 1)),
      { code: "storage_failure", message: "storage write failed (test switch)" },
    );
  });

  it("calls the write hook for puts and deletes", async () => {
    const store = new HookedStore(new MemoryBarrier(), OPTIONS);
    await store.transaction(async (writer) => {
      await writer.put("a", 1);
      await writer.delete("b");
    });
    assert.deepEqual(store.written, ["a", "b"]);
  });
});
