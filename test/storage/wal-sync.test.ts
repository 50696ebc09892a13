import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { openSqliteStorage } from "../../src/storage/sqlite/index.ts";
import { WalSync } from "../../src/storage/sqlite/wal-sync.ts";

const root = await mkdtemp(join(tmpdir(), "keyward-wal-sync-"));
after(() => rm(root, { recursive: true, force: true }));

/** Opens a database in WAL mode with one commit, so its log file exists. */
function databaseWithLog(name: string): { path: string; database: SqliteDatabase.Database } {
  const path = join(root, name);
  const database = new SqliteDatabase(path);
  database.pragma("journal_mode = WAL");
  database.exec("create table t (x integer)");
  database.exec("insert into t values (1)");
  return { path, database };
}

describe("WalSync", () => {
  it("shares flushes among concurrent callers", async () => {
    const { path, database } = databaseWithLog("shared.db");
    const sync = new WalSync(path);
    try {
      await Promise.all(Array.from({ length: 100 }, () => sync.sync()));
      // The first caller starts a flush, and the 99 others wait for the one after it.
      assert.equal(sync.flushes, 2);
    } finally {
      await sync.close();
      database.close();
    }
  });

  it("flushes again for a later caller", async () => {
    const { path, database } = databaseWithLog("later.db");
    const sync = new WalSync(path);
    try {
      await sync.sync();
      await sync.sync();
      assert.equal(sync.flushes, 2);
    } finally {
      await sync.close();
      database.close();
    }
  });

  it("fails without a log file", async () => {
    const sync = new WalSync(join(root, "missing.db"));
    await assert.rejects(sync.sync(), { code: "ENOENT" });
    await sync.close();
  });

  it("fails after close", async () => {
    const { path, database } = databaseWithLog("closed.db");
    const sync = new WalSync(path);
    await sync.close();
    await assert.rejects(sync.sync(), /after close/);
    database.close();
  });
});

describe("sqlite storage flushes", () => {
  it("keeps writes that waited for flushes", async () => {
    const path = join(root, "kept.db");
    const storage = await openSqliteStorage({ path });
    await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        storage.transaction(async (tx) => {
          await tx.put(`k/${index}`, new Uint8Array([index]));
        }),
      ),
    );
    await storage.transaction(async (tx) => tx.put("unsynced", new Uint8Array([9])), {
      syncToDisk: false,
    });
    await storage.close();
    const reopened = await openSqliteStorage({ path });
    try {
      assert.equal((await reopened.list("k/")).length, 50);
      assert.deepEqual(Buffer.from((await reopened.get("unsynced"))!), Buffer.from([9]));
    } finally {
      await reopened.close();
    }
  });
});
