import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { KeywardError } from "../../src/errors.ts";
import { openStorage, parseStorageLocation } from "../../src/storage/index.ts";
import { openSqliteStorage } from "../../src/storage/sqlite/index.ts";
import { runStorageContract } from "./contract.ts";

const root = await mkdtemp(join(tmpdir(), "keyward-sqlite-"));
let fileCount = 0;

function nextPath(): string {
  fileCount += 1;
  return join(root, `storage-${fileCount}.db`);
}

runStorageContract(
  "sqlite",
  () => openSqliteStorage({ path: nextPath(), checkNestedCalls: true }),
  () => rm(root, { recursive: true, force: true }),
);

describe("sqlite storage", () => {
  const ownRoot = mkdtemp(join(tmpdir(), "keyward-sqlite-own-"));
  after(async () => rm(await ownRoot, { recursive: true, force: true }));

  it("values persist across reopen", async () => {
    const path = join(await ownRoot, "persist.db");
    const first = await openSqliteStorage({ path });
    await first.put("a/b", Uint8Array.from([0, 1, 2]));
    await first.transaction(async (tx) => {
      await tx.put("a/c", Uint8Array.from([3]));
    });
    await first.close();

    const second = await openSqliteStorage({ path });
    try {
      assert.deepEqual([...(await second.get("a/b"))!], [0, 1, 2]);
      assert.deepEqual([...(await second.get("a/c"))!], [3]);
      assert.deepEqual(await second.list("a/"), ["b", "c"]);
    } finally {
      await second.close();
    }
  });

  it("acknowledged writes survive SIGKILL", async () => {
    const path = join(await ownRoot, "killed.db");
    const fixture = new URL("./fixtures/write-then-wait.ts", import.meta.url).pathname;
    const child = spawn(process.execPath, ["--import", "tsx", fixture, path], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once("exit", (_code, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("written")) resolve();
      });
      child.once("exit", () => reject(new Error("the writer exited before writing")));
    });
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");

    const storage = await openSqliteStorage({ path });
    try {
      assert.equal((await storage.list("durable/")).length, 52);
      assert.equal(Buffer.from((await storage.get("durable/49"))!).toString(), "value 49");
      assert.equal(Buffer.from((await storage.get("durable/tx"))!).toString(), "committed");
      assert.equal(Buffer.from((await storage.get("durable/unsynced"))!).toString(), "committed");
    } finally {
      await storage.close();
    }
  });

  it("database file is private", async () => {
    const path = join(await ownRoot, "private.db");
    const storage = await openSqliteStorage({ path });
    await storage.put("k", Uint8Array.from([1]));
    await storage.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it("uses WAL and records migrations", async () => {
    const path = join(await ownRoot, "pragmas.db");
    const storage = await openSqliteStorage({ path });
    await storage.close();
    const reopened = await openSqliteStorage({ path });
    await reopened.close();

    const raw = new SqliteDatabase(path, { readonly: true });
    try {
      assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
      const applied = raw.prepare("select name from schema_migrations order by name").all();
      assert.deepEqual(applied, [{ name: "0001_create_entries" }]);
    } finally {
      raw.close();
    }
  });

  it("second opener of a file fails", async () => {
    const path = join(await ownRoot, "locked.db");
    const first = await openSqliteStorage({ path });
    try {
      await assert.rejects(openSqliteStorage({ path }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /locked by another process/);
        return true;
      });
      await first.put("still/works", new Uint8Array([1]));
      assert.deepEqual(Buffer.from((await first.get("still/works")) ?? []), Buffer.from([1]));
    } finally {
      await first.close();
    }
    const reopened = await openSqliteStorage({ path });
    await reopened.close();
  });

  it("rejects a database from a newer build", async () => {
    const path = join(await ownRoot, "newer.db");
    const storage = await openSqliteStorage({ path });
    await storage.close();
    const raw = new SqliteDatabase(path);
    raw
      .prepare("insert into schema_migrations (name, timestamp) values (?, ?)")
      .run("9999_from_the_future", new Date().toISOString());
    raw.close();

    await assert.rejects(openSqliteStorage({ path }), (error) => {
      assert.ok(error instanceof KeywardError);
      assert.equal(error.code, "storage_failure");
      assert.ok(error.cause instanceof Error);
      return true;
    });
  });

  it("driver errors become storage_failure", async () => {
    const path = join(await ownRoot, "broken.db");
    // The storage holds an exclusive lock while open, so the table is
    // dropped between two opens; the migration record stays, so the second
    // open does not recreate it.
    await (await openSqliteStorage({ path })).close();
    const raw = new SqliteDatabase(path);
    raw.exec("drop table entries");
    raw.close();
    const storage = await openSqliteStorage({ path });
    try {
      await assert.rejects(storage.get("k"), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.equal(error.message, "sqlite storage failed to read a value");
        assert.match(String((error.cause as Error).message), /no such table/);
        return true;
      });
      await assert.rejects(
        storage.transaction((tx) => tx.put("k", Uint8Array.from([1]))),
        (error) => error instanceof KeywardError && error.code === "storage_failure",
      );
    } finally {
      await storage.close();
    }
  });

  it("unopenable path fails with storage_failure", async () => {
    const path = join(await ownRoot, "missing-dir", "x.db");
    await assert.rejects(
      openSqliteStorage({ path }),
      (error) => error instanceof KeywardError && error.code === "storage_failure",
    );
  });
});

describe("openStorage", () => {
  const ownRoot = mkdtemp(join(tmpdir(), "keyward-open-"));
  after(async () => rm(await ownRoot, { recursive: true, force: true }));

  const locations: Array<[string, string, ReturnType<typeof parseStorageLocation>]> = [
    ["ok sqlite path", "sqlite:/tmp/x.db", { kind: "sqlite", path: "/tmp/x.db" }],
    ["ok relative sqlite path", "sqlite:data/k.db", { kind: "sqlite", path: "data/k.db" }],
    [
      "ok data directory",
      "/var/lib/keyward",
      { kind: "sqlite", path: "/var/lib/keyward/keyward.db" },
    ],
    ["ok postgres url", "postgres://db/k", { kind: "postgres", url: "postgres://db/k" }],
    ["ok postgresql url", "postgresql://db/k", { kind: "postgres", url: "postgresql://db/k" }],
  ];
  for (const [title, location, expected] of locations) {
    it(title, () => {
      assert.deepEqual(parseStorageLocation(location), expected);
    });
  }

  for (const [title, location] of [
    ["fail empty location", ""],
    ["fail sqlite without path", "sqlite:"],
    ["fail unknown scheme", "ftp://x"],
    ["fail mysql url", "mysql://db/k"],
  ]) {
    it(title!, () => {
      assert.throws(
        () => parseStorageLocation(location!),
        (error) => error instanceof KeywardError && error.code === "invalid_request",
      );
    });
  }

  it("data directory is created", async () => {
    const dataDir = join(await ownRoot, "new", "data");
    const storage = await openStorage(dataDir);
    try {
      assert.equal(storage.kind, "sqlite");
      await storage.put("k", Uint8Array.from([1]));
      assert.equal((await stat(join(dataDir, "keyward.db"))).isFile(), true);
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    } finally {
      await storage.close();
    }
  });

  it("postgres URL goes to postgres backend", async () => {
    // An sslmode the PostgreSQL backend rejects fails before any connection.
    await assert.rejects(
      openStorage("postgres://127.0.0.1/keyward?sslmode=prefer"),
      (error) =>
        error instanceof KeywardError &&
        error.code === "invalid_request" &&
        /PostgreSQL storage URL/.test(error.message),
    );
  });
});
