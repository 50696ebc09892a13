import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyedLock } from "../../src/util/keyed-lock.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe("KeyedLock", () => {
  it("runs same-name work in order", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const gate = deferred();
    const first = lock.run("k", async () => {
      order.push("first start");
      await gate.promise;
      order.push("first end");
    });
    const second = lock.run("k", async () => {
      order.push("second");
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ["first start"]);
    gate.resolve();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first start", "first end", "second"]);
  });

  it("runs other names concurrently", async () => {
    const lock = new KeyedLock();
    const gate = deferred();
    const blocked = lock.run("a", () => gate.promise);
    let otherDone = false;
    await lock.run("b", async () => {
      otherDone = true;
    });
    assert.equal(otherDone, true);
    gate.resolve();
    await blocked;
  });

  it("continues after failed work", async () => {
    const lock = new KeyedLock();
    const failed = lock.run("k", async () => {
      throw new Error("write failed");
    });
    await assert.rejects(failed, /write failed/);
    assert.equal(await lock.run("k", async () => "next"), "next");
  });
});
