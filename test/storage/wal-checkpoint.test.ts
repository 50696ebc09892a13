import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { WalCheckpointer } from "../../src/storage/sqlite/checkpoint.ts";
import { openSqliteStorage } from "../../src/storage/sqlite/index.ts";
import { WalSync } from "../../src/storage/sqlite/wal-sync.ts";

const root = await mkdtemp(join(tmpdir(), "keyward-checkpoint-"));
after(() => rm(root, { recursive: true, force: true }));

/** Opens a connection set up as the SQLite storage sets up its own, with a checkpointer that never runs by itself. */
function openConnection(name: string) {
  const path = join(root, name);
  const database = new SqliteDatabase(path);
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma("wal_autocheckpoint = 0");
  database.pragma("locking_mode = EXCLUSIVE");
  database.exec("create table t (x blob)");
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database }) });
  const walSync = new WalSync(path);
  const checkpointer = new WalCheckpointer({
    db,
    database,
    databasePath: path,
    walSync,
    intervalMs: 3_600_000,
  });
  const insert = database.prepare("insert into t values (?)");
  return {
    database,
    insert: (count: number) => {
      for (let i = 0; i < count; i++) insert.run(Buffer.alloc(2000, i));
    },
    checkpointer,
    close: async () => {
      await checkpointer.close();
      await walSync.close();
      await db.destroy();
    },
  };
}

/** Writes `count` values of 4 KiB, 25 at a time, each write waiting for its flush. */
async function writeValues(storage: Awaited<ReturnType<typeof openSqliteStorage>>, count: number) {
  const value = new Uint8Array(4096).fill(1);
  for (let start = 0; start < count; start += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, i) => storage.put(`v/${start + i}`, value)));
  }
}

describe("WalCheckpointer", () => {
  it("copies frames and restarts the log", async () => {
    const connection = openConnection("restart.db");
    try {
      connection.insert(200);
      const first = await connection.checkpointer.checkpoint();
      assert.ok(first !== undefined);
      assert.ok(first.logFrames > 100, `only ${first.logFrames} frames in the log`);
      assert.equal(first.checkpointedFrames, first.logFrames);

      connection.insert(1);
      const second = await connection.checkpointer.checkpoint();
      assert.ok(second !== undefined);
      assert.ok(second.logFrames < 10, `${second.logFrames} frames: the log did not start again`);
    } finally {
      await connection.close();
    }
  });

  it("skips a checkpoint without writes", async () => {
    const connection = openConnection("idle.db");
    try {
      connection.insert(5);
      assert.notEqual(await connection.checkpointer.checkpoint(), undefined);
      assert.equal(await connection.checkpointer.checkpoint(), undefined);
    } finally {
      await connection.close();
    }
  });

  it("shares a running checkpoint", async () => {
    const connection = openConnection("shared.db");
    try {
      connection.insert(20);
      const [first, second] = await Promise.all([
        connection.checkpointer.checkpoint(),
        connection.checkpointer.checkpoint(),
      ]);
      assert.notEqual(first, undefined);
      assert.equal(second, first);
    } finally {
      await connection.close();
    }
  });

  it("restores synchronous NORMAL", async () => {
    const connection = openConnection("pragma.db");
    try {
      connection.insert(5);
      await connection.checkpointer.checkpoint();
      // 1 is NORMAL.
      assert.equal(connection.database.pragma("synchronous", { simple: true }), 1);
    } finally {
      await connection.close();
    }
  });
});

describe("sqlite storage checkpoints", () => {
  it("bounds the log under writes", async () => {
    const checkpointed = join(root, "bounded.db");
    const storage = await openSqliteStorage({ path: checkpointed, checkpointIntervalMs: 10 });
    await writeValues(storage, 2000);
    const boundedSize = (await stat(`${checkpointed}-wal`)).size;
    await storage.close();

    const unchecked = join(root, "unbounded.db");
    const control = await openSqliteStorage({ path: unchecked, checkpointIntervalMs: 3_600_000 });
    await writeValues(control, 2000);
    const unboundedSize = (await stat(`${unchecked}-wal`)).size;
    await control.close();

    assert.ok(
      boundedSize * 2 < unboundedSize,
      `log of ${boundedSize} bytes with checkpoints, ${unboundedSize} without`,
    );

    const reopened = await openSqliteStorage({ path: checkpointed });
    try {
      assert.equal((await reopened.list("v/")).length, 2000);
    } finally {
      await reopened.close();
    }
  });

  it("keeps acknowledged writes after SIGKILL", async () => {
    const path = join(root, "killed.db");
    const fixture = new URL("./fixtures/write-while-checkpointing.ts", import.meta.url).pathname;
    const child = spawn(process.execPath, ["--import", "tsx", fixture, path], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once("exit", (_code, signal) => resolve(signal)),
    );
    let acknowledged = -1;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const lines = output.split("\n");
        output = lines.pop() ?? "";
        for (const line of lines) acknowledged = Number(line);
        // Enough writes for many checkpoints, and a kill in the middle of the run.
        if (acknowledged >= 600) resolve();
      });
      child.once("exit", () => reject(new Error("the writer exited on its own")));
    });
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");

    const storage = await openSqliteStorage({ path });
    try {
      const keys = await storage.list("durable/");
      assert.ok(
        keys.length >= acknowledged + 1,
        `${keys.length} keys, ${acknowledged + 1} acknowledged`,
      );
      const last = await storage.get(`durable/${String(acknowledged).padStart(8, "0")}`);
      assert.equal(last?.length, 3000);
    } finally {
      await storage.close();
    }
  });
});
