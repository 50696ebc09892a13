import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { KeywardError } from "../../src/errors.ts";
import { copyStorage, walkKeys } from "../../src/storage/copy.ts";
import { openSqliteStorage } from "../../src/storage/sqlite/index.ts";
import type { Storage, StorageWriter } from "../../src/storage/storage.ts";

const root = await mkdtemp(join(tmpdir(), "keyward-copy-"));
let fileCount = 0;

function open(): Promise<Storage> {
  fileCount += 1;
  return openSqliteStorage({ path: join(root, `copy-${fileCount}.db`) });
}

/** Keys at several depths, with a leaf and a folder of the same name, and binary values. */
const ENTRIES: Array<[string, Uint8Array]> = [
  ["core/seal-config", Uint8Array.from([1, 2, 3])],
  ["core/keyring", Uint8Array.from({ length: 300 }, (_, i) => (i * 31) & 0xff)],
  ["transit/keys/a", Uint8Array.from([0, 0, 0])],
  ["transit/keys/a/extra", Uint8Array.from([0xff])],
  ["transit/keys/b-c", new Uint8Array(0)],
  ["z", Uint8Array.from([9])],
  ...Array.from({ length: 600 }, (_, i): [string, Uint8Array] => [
    `bulk/${String(i).padStart(4, "0")}`,
    Uint8Array.from([i & 0xff, i >> 8]),
  ]),
];

async function fill(storage: Storage): Promise<void> {
  await storage.transaction(async (tx) => {
    for (const [key, value] of ENTRIES) await tx.put(key, value);
  });
}

async function allKeys(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of walkKeys(storage)) keys.push(key);
  return keys;
}

function assertInvalidState(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof KeywardError);
    assert.equal(error.code, "invalid_state");
    assert.match(error.message, pattern);
    return true;
  };
}

describe("copyStorage", () => {
  after(() => rm(root, { recursive: true, force: true }));

  it("walks every key in byte order", async () => {
    const storage = await open();
    try {
      await fill(storage);
      const keys = await allKeys(storage);
      assert.equal(keys.length, ENTRIES.length);
      assert.deepEqual(
        keys,
        [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
    } finally {
      await storage.close();
    }
  });

  it("copies every entry byte for byte", async () => {
    const source = await open();
    const destination = await open();
    try {
      await fill(source);
      const result = await copyStorage(source, destination);
      assert.deepEqual(result, { copied: ENTRIES.length, verified: ENTRIES.length, deleted: 0 });
      for (const [key, value] of ENTRIES) {
        const copied = await destination.get(key);
        assert.ok(copied !== undefined, `${key} is missing`);
        assert.ok(Buffer.from(copied).equals(Buffer.from(value)), `${key} differs`);
      }
    } finally {
      await source.close();
      await destination.close();
    }
  });

  it("rejects a non-empty destination", async () => {
    const source = await open();
    const destination = await open();
    try {
      await fill(source);
      await destination.put("already/here", Uint8Array.from([1]));
      await assert.rejects(copyStorage(source, destination), assertInvalidState(/not empty/));
      assert.deepEqual(await allKeys(destination), ["already/here"]);
    } finally {
      await source.close();
      await destination.close();
    }
  });

  it("force replaces the destination", async () => {
    const source = await open();
    const destination = await open();
    try {
      await fill(source);
      for (let i = 0; i < 300; i++) await destination.put(`old/${i}`, Uint8Array.from([1]));
      const result = await copyStorage(source, destination, { force: true });
      assert.equal(result.deleted, 300);
      assert.equal(result.copied, ENTRIES.length);
      assert.deepEqual(await allKeys(destination), await allKeys(source));
    } finally {
      await source.close();
      await destination.close();
    }
  });

  it("rejects an empty source", async () => {
    const source = await open();
    const destination = await open();
    try {
      await assert.rejects(copyStorage(source, destination), assertInvalidState(/no entries/));
    } finally {
      await source.close();
      await destination.close();
    }
  });

  it("detects a corrupted copy", async () => {
    const source = await open();
    const real = await open();
    // A destination that flips one bit of one value as it stores it.
    const corrupt = (writer: StorageWriter): StorageWriter => ({
      get: (key) => writer.get(key),
      list: (prefix) => writer.list(prefix),
      scan: (prefix, options) => writer.scan(prefix, options),
      delete: (key) => writer.delete(key),
      put: (key, value) => {
        if (key !== "core/keyring") return writer.put(key, value);
        const changed = Uint8Array.from(value);
        changed[7] = (changed[7] ?? 0) ^ 1;
        return writer.put(key, changed);
      },
    });
    const destination: Storage = {
      kind: real.kind,
      get: (key) => real.get(key),
      list: (prefix) => real.list(prefix),
      scan: (prefix, options) => real.scan(prefix, options),
      put: (key, value) => corrupt(real).put(key, value),
      delete: (key) => real.delete(key),
      transaction: (work) => real.transaction((tx) => work(corrupt(tx))),
      close: () => real.close(),
    };
    try {
      await fill(source);
      await assert.rejects(
        copyStorage(source, destination),
        assertInvalidState(/values of "core\/keyring" differ/),
      );
    } finally {
      await source.close();
      await destination.close();
    }
  });
});
