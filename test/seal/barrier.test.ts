import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { SealManager } from "../../src/seal/types.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { decode, initAndUnseal, keywardError, SealFixture, text } from "./fixtures.ts";

let fixture: SealFixture;
let storage: Storage;
let seal: SealManager;

beforeEach(async () => {
  fixture = await SealFixture.create();
  ({ storage, seal } = await fixture.openManager());
  await initAndUnseal(seal);
});
afterEach(async () => {
  await fixture.remove();
});

/** Returns the term number in a stored barrier value's header. */
function termOf(stored: Uint8Array): number {
  return Buffer.from(stored).readUInt32BE(1);
}

describe("barrier", () => {
  it("round trips values", async () => {
    const values: Array<[string, Uint8Array]> = [
      ["app/text", text("hello")],
      ["app/empty", new Uint8Array(0)],
      ["app/binary", Uint8Array.from({ length: 256 }, (_, i) => i)],
      ["app/large", randomBytes(1024 * 1024)],
    ];
    for (const [key, value] of values) await seal.barrier.put(key, value);
    for (const [key, value] of values) {
      assert.ok(Buffer.from((await seal.barrier.get(key))!).equals(Buffer.from(value)), key);
    }
    assert.deepEqual(await seal.barrier.list("app/"), ["binary", "empty", "large", "text"]);
    await seal.barrier.delete("app/text");
    assert.equal(await seal.barrier.get("app/text"), undefined);
    assert.equal(await seal.barrier.get("app/missing"), undefined);
  });

  it("stores no plaintext", async () => {
    const marker = `plaintext-marker-${randomBytes(16).toString("hex")}`;
    await seal.barrier.put("app/plain", text(marker));
    await seal.barrier.transaction(async (tx) => {
      await tx.put("app/plain-tx", text(`${marker}-tx`));
    });
    await seal.rotate();
    await seal.barrier.put("app/plain-rotated", text(`${marker}-rotated`));

    const raw = await fixture.rawBytes();
    assert.ok(raw.includes(Buffer.from("app/plain")), "the key itself is stored in the clear");
    assert.equal(raw.includes(Buffer.from(marker)), false);

    const stored = Buffer.from((await storage.get("app/plain"))!);
    assert.equal(stored[0], 1);
    assert.equal(stored.length, 5 + 12 + marker.length + 16);
  });

  it("value moved to another key fails", async () => {
    await seal.barrier.put("app/source", text("moved"));
    await storage.put("app/target", (await storage.get("app/source"))!);
    await assert.rejects(seal.barrier.get("app/target"), (error: Error) => {
      keywardError("storage_failure")(error);
      assert.match(error.message, /"app\/target" failed its integrity check/);
      return true;
    });
    assert.equal(decode(await seal.barrier.get("app/source")), "moved");
  });

  const tamperings: Array<[string, (stored: Buffer) => Buffer]> = [
    ["fail flipped ciphertext byte", (stored) => flip(stored, 20)],
    ["fail flipped tag byte", (stored) => flip(stored, stored.length - 1)],
    ["fail flipped nonce byte", (stored) => flip(stored, 6)],
    ["fail changed term", (stored) => withTerm(stored, 7)],
    ["fail unknown version", (stored) => flip(stored, 0)],
    ["fail truncated value", (stored) => stored.subarray(0, 20)],
    ["fail empty value", () => Buffer.alloc(0)],
  ];
  for (const [title, tamper] of tamperings) {
    it(title, async () => {
      await seal.barrier.put("app/tampered", text("original value"));
      const stored = Buffer.from((await storage.get("app/tampered"))!);
      await storage.put("app/tampered", tamper(stored));
      await assert.rejects(seal.barrier.get("app/tampered"), keywardError("storage_failure"));
    });
  }

  it("sealed barrier rejects every call", async () => {
    await seal.barrier.put("app/k", text("v"));
    await seal.seal();
    await assert.rejects(seal.barrier.get("app/k"), keywardError("sealed"));
    await assert.rejects(seal.barrier.list("app/"), keywardError("sealed"));
    await assert.rejects(seal.barrier.put("app/k", text("v")), keywardError("sealed"));
    await assert.rejects(seal.barrier.delete("app/k"), keywardError("sealed"));
    await assert.rejects(
      seal.barrier.transaction(async () => {}),
      keywardError("sealed"),
    );
  });

  it("reserves the seal's prefix", async () => {
    for (const key of ["core/keyring", "core/seal-config", "core/other"]) {
      await assert.rejects(seal.barrier.get(key), keywardError("invalid_request"));
      await assert.rejects(seal.barrier.put(key, text("x")), keywardError("invalid_request"));
      await assert.rejects(seal.barrier.delete(key), keywardError("invalid_request"));
      await assert.rejects(
        seal.barrier.transaction((tx) => tx.put(key, text("x"))),
        keywardError("invalid_request"),
      );
    }
    await assert.rejects(seal.barrier.list("core/"), keywardError("invalid_request"));
    await seal.barrier.put("app/k", text("v"));
    await seal.barrier.put("core", text("a key named core is allowed"));
    assert.deepEqual(await seal.barrier.list(""), ["app/", "core"]);
    assert.deepEqual(await storage.list(""), ["app/", "core", "core/"]);
  });

  it("rejects invalid keys", async () => {
    await assert.rejects(seal.barrier.put("/bad", text("v")), keywardError("invalid_request"));
    await assert.rejects(seal.barrier.get(""), keywardError("invalid_request"));
    await assert.rejects(seal.barrier.list("bad"), keywardError("invalid_request"));
  });

  it("transaction commits encrypted values", async () => {
    await seal.barrier.put("app/old", text("old"));
    const result = await seal.barrier.transaction(async (tx) => {
      await tx.put("app/new", text("new"));
      assert.equal(decode(await tx.get("app/new")), "new");
      assert.equal(decode(await tx.get("app/old")), "old");
      await tx.delete("app/old");
      assert.deepEqual(await tx.list("app/"), ["new"]);
      assert.deepEqual(await tx.list(""), ["app/"]);
      return "done";
    });
    assert.equal(result, "done");
    assert.equal(decode(await seal.barrier.get("app/new")), "new");
    assert.equal(await seal.barrier.get("app/old"), undefined);
    assert.equal(decode(await storage.get("app/new"))?.includes("new"), false);
  });

  it("transaction rolls back on throw", async () => {
    await seal.barrier.put("app/k", text("before"));
    await assert.rejects(
      seal.barrier.transaction(async (tx) => {
        await tx.put("app/k", text("after"));
        throw new Error("abort");
      }),
      /abort/,
    );
    assert.equal(decode(await seal.barrier.get("app/k")), "before");
  });

  it("seal during transaction rolls back", async () => {
    await seal.barrier.put("app/k", text("before"));
    await assert.rejects(
      seal.barrier.transaction(async (tx) => {
        await tx.put("app/k", text("first"));
        await seal.seal();
        await tx.put("app/other", text("second"));
      }),
      keywardError("sealed"),
    );
    assert.equal(await storage.get("app/other"), undefined);
  });

  it("rotate keeps old values readable", async () => {
    await seal.barrier.put("app/old", text("old term"));
    assert.equal(termOf((await storage.get("app/old"))!), 1);

    await seal.rotate();
    await seal.barrier.put("app/new", text("new term"));
    await seal.barrier.transaction((tx) => tx.put("app/new-tx", text("new term tx")));

    assert.equal(termOf((await storage.get("app/new"))!), 2);
    assert.equal(termOf((await storage.get("app/new-tx"))!), 2);
    assert.equal(termOf((await storage.get("app/old"))!), 1);
    assert.equal(decode(await seal.barrier.get("app/old")), "old term");
    assert.equal(decode(await seal.barrier.get("app/new")), "new term");

    await seal.barrier.put("app/old", text("rewritten"));
    assert.equal(termOf((await storage.get("app/old"))!), 2);
  });

  it("concurrent writes survive rotation", async () => {
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      writes.push(seal.barrier.put(`app/${i}`, text(`value ${i}`)));
      if (i % 20 === 10) writes.push(seal.rotate());
      if (i % 15 === 0) {
        writes.push(seal.barrier.transaction((tx) => tx.put(`app/tx-${i}`, text(`tx ${i}`))));
      }
    }
    await Promise.all(writes);
    assert.equal((await seal.keyStatus()).term, 4);
    for (let i = 0; i < 60; i++)
      assert.equal(decode(await seal.barrier.get(`app/${i}`)), `value ${i}`);
    assert.equal(decode(await seal.barrier.get("app/tx-45")), "tx 45");
  });
});

function flip(stored: Buffer, index: number): Buffer {
  const copy = Buffer.from(stored);
  copy[index] = copy[index]! ^ 0x01;
  return copy;
}

function withTerm(stored: Buffer, term: number): Buffer {
  const copy = Buffer.from(stored);
  copy.writeUInt32BE(term, 1);
  return copy;
}
