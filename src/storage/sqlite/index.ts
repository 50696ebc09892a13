import { closeSync, openSync } from "node:fs";
import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { isKeywardError, KeywardError } from "../../errors.ts";
import type { StorageDatabase } from "../sql/schema.ts";
import { SqlStorage } from "../sql/sql-storage.ts";
import type { Storage } from "../storage.ts";
import { WalCheckpointer } from "./checkpoint.ts";
import { migrateSqlite } from "./migrations.ts";
import { WalSync } from "./wal-sync.ts";

export interface SqliteStorageOptions {
  /** The database file. It is created with mode 0600 when missing. */
  path: string;
  /** See `SqlStorageOptions.checkNestedCalls`. */
  checkNestedCalls?: boolean;
  /** How often the write-ahead log is copied into the database file (see `WalCheckpointer`). */
  checkpointIntervalMs?: number;
}

/** How long a statement waits for a lock held by another connection, in milliseconds. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Creates the file with mode 0600 when it is missing, so the database never exists world-readable. */
function createPrivateFile(path: string): void {
  if (path === ":memory:") return;
  closeSync(openSync(path, "a", 0o600));
}

function openDatabase(path: string): SqliteDatabase.Database {
  createPrivateFile(path);
  const database = new SqliteDatabase(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    // 8 KiB pages keep a typical stored record (a barrier-encrypted PKI
    // certificate record is about 1 KiB) inside its page of the WITHOUT
    // ROWID table instead of spilling into an overflow page. It applies to
    // a new, empty file only; an existing file keeps its page size.
    database.pragma("page_size = 8192");
    // WAL lets readers run beside the writer. Under synchronous=NORMAL a
    // commit is in the WAL file when it returns, so it survives a killed
    // process. WalSync flushes the file off the event loop before a write
    // is acknowledged, so it survives power loss too.
    database.pragma("journal_mode = WAL");
    database.pragma("synchronous = NORMAL");
    // SQLite's automatic checkpoint would flush the disk inside a commit,
    // on the event loop; WalCheckpointer runs the checkpoints instead.
    database.pragma("wal_autocheckpoint = 0");
    // One process owns the file: the exclusive lock taken here is held until
    // the database is closed (the OS releases it if the process dies), so a
    // second server on the same data directory fails at start instead of
    // writing beside the first.
    database.pragma("locking_mode = EXCLUSIVE");
    database.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
}

/** Prepared statements kept per SQL text; the storage queries have a handful of shapes. */
const MAX_CACHED_STATEMENTS = 64;

/**
 * Wraps the database so that `prepare` reuses the statement compiled for the
 * same SQL text. Kysely's SQLite driver prepares every query anew, and
 * SQLite's statement compilation was the largest single cost of a transit
 * request in a CPU profile.
 */
function withStatementCache(database: SqliteDatabase.Database): SqliteDatabase.Database {
  const statements = new Map<string, SqliteDatabase.Statement>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = database.prepare(sql);
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
      statements.set(sql, statement);
    }
    return statement;
  };
  return new Proxy(database, {
    get(target, property, receiver) {
      if (property === "prepare") return prepare;
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * Opens (creating when missing) a SQLite database file as Storage and
 * brings its schema up to date. Throws `storage_failure` when the file
 * cannot be opened or migrated.
 */
export async function openSqliteStorage(options: SqliteStorageOptions): Promise<Storage> {
  let database: SqliteDatabase.Database;
  try {
    database = openDatabase(options.path);
  } catch (error) {
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") {
      throw new KeywardError(
        "storage_failure",
        `sqlite storage ${options.path} is locked by another process; stop the other Keyward server that uses this data directory`,
        { cause: error },
      );
    }
    throw new KeywardError("storage_failure", `sqlite storage failed to open ${options.path}`, {
      cause: error,
    });
  }

  const db = new Kysely<StorageDatabase>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  });
  try {
    await migrateSqlite(db as Kysely<unknown>);
  } catch (error) {
    await db.destroy();
    if (isKeywardError(error)) throw error;
    throw new KeywardError("storage_failure", "sqlite storage failed to migrate its schema", {
      cause: error,
    });
  }
  const nested =
    options.checkNestedCalls === undefined ? {} : { checkNestedCalls: options.checkNestedCalls };
  // An in-memory database has no file to flush or checkpoint.
  if (options.path === ":memory:") return new SqlStorage({ kind: "sqlite", db, ...nested });
  const walSync = new WalSync(options.path);
  const checkpointer = new WalCheckpointer({
    db: db as Kysely<unknown>,
    database,
    databasePath: options.path,
    walSync,
    ...(options.checkpointIntervalMs === undefined
      ? {}
      : { intervalMs: options.checkpointIntervalMs }),
  });
  return new SqlStorage({
    kind: "sqlite",
    db,
    ...nested,
    syncCommits: () => walSync.sync(),
    onClose: async () => {
      await checkpointer.close();
      await walSync.close();
    },
  });
}
