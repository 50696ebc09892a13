import { type FileHandle, open } from "node:fs/promises";
import type SqliteDatabase from "better-sqlite3";
import type { Kysely } from "kysely";
import type { WalSync } from "./wal-sync.ts";

/** How often the checkpointer looks for commits to copy into the database file, in milliseconds. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000;

/** The frame counts SQLite reports for one checkpoint. */
export interface CheckpointResult {
  /** Frames in the write-ahead log when the checkpoint ran. */
  logFrames: number;
  /** Frames copied into the database file, equal to `logFrames` when the checkpoint completed. */
  checkpointedFrames: number;
}

export interface WalCheckpointerOptions {
  /** The database's Kysely instance; the checkpoint keeps its single connection while it runs. */
  db: Kysely<unknown>;
  /** The same connection's better-sqlite3 handle, for the pragmas. */
  database: SqliteDatabase.Database;
  /** The database file, whose log `walSync` flushes. */
  databasePath: string;
  walSync: WalSync;
  intervalMs?: number;
}

/**
 * Copies the write-ahead log into the database file without blocking the
 * event loop on the disk.
 *
 * SQLite's own automatic checkpoint runs inside a commit, on the event
 * loop, and under `synchronous = NORMAL` it waits for two `fsync` calls
 * there: in a measurement on a 2-vCPU VM some commits that ran one took
 * over 100 ms. The connection therefore runs with `wal_autocheckpoint = 0`,
 * and this class checkpoints at an interval, with the same order of
 * writes to the disk that SQLite keeps, but with both flushes on libuv's
 * thread pool:
 *
 * 1. flush the log, so every frame that will be copied is durable;
 * 2. copy the frames into the database file, with `synchronous = OFF` for
 *    that statement alone, so SQLite does not flush on the event loop;
 * 3. flush the database file.
 *
 * The checkpoint keeps the connection through all three steps, so no
 * transaction starts in between. The next write after a complete
 * checkpoint starts the log again from its beginning, overwriting frames
 * that by then are durable in the database file. When step 3 fails, the
 * connection is made read-only (`query_only`) until a later checkpoint
 * flushes the file, because a write would overwrite frames whose pages may
 * not be on the disk.
 */
export class WalCheckpointer {
  readonly #db: Kysely<unknown>;
  readonly #database: SqliteDatabase.Database;
  readonly #databasePath: string;
  readonly #walSync: WalSync;
  readonly #totalChanges: SqliteDatabase.Statement<[], { changes: number }>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CheckpointResult | undefined> | undefined;
  #handle: Promise<FileHandle> | undefined;
  /** The connection's change count at the last complete checkpoint. */
  #checkpointedChanges = -1;
  #readOnly = false;
  #closed = false;

  constructor(options: WalCheckpointerOptions) {
    this.#db = options.db;
    this.#database = options.database;
    this.#databasePath = options.databasePath;
    this.#walSync = options.walSync;
    this.#totalChanges = options.database.prepare("select total_changes() as changes");
    const intervalMs = options.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
    this.#timer = setInterval(() => {
      // A failed checkpoint leaves the log as it was, and the next interval tries again.
      this.checkpoint().catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }

  /**
   * Runs a checkpoint unless nothing was written since the last one.
   * Resolves with what SQLite copied, or undefined when it had nothing to
   * do. A call while a checkpoint runs shares it.
   */
  checkpoint(): Promise<CheckpointResult | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    this.#running ??= this.#db
      .connection()
      .execute(() => this.#checkpointHoldingConnection())
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /** Stops the interval, waits for a running checkpoint and closes the database file's handle. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) await (await handle.catch(() => undefined))?.close();
  }

  async #checkpointHoldingConnection(): Promise<CheckpointResult | undefined> {
    const changes = this.#totalChanges.get()?.changes ?? 0;
    if (changes === this.#checkpointedChanges && !this.#readOnly) return undefined;
    await this.#walSync.sync();
    let result: CheckpointResult;
    this.#database.pragma("synchronous = OFF");
    try {
      const [row] = this.#database.pragma("wal_checkpoint(PASSIVE)") as {
        log: number;
        checkpointed: number;
      }[];
      result = { logFrames: row?.log ?? 0, checkpointedFrames: row?.checkpointed ?? 0 };
    } finally {
      this.#database.pragma("synchronous = NORMAL");
    }
    try {
      await this.#syncDatabaseFile();
    } catch (error) {
      this.#database.pragma("query_only = ON");
      this.#readOnly = true;
      throw error;
    }
    if (this.#readOnly) {
      this.#database.pragma("query_only = OFF");
      this.#readOnly = false;
    }
    // A checkpoint that could not copy every frame runs again at the next interval.
    if (result.checkpointedFrames === result.logFrames) this.#checkpointedChanges = changes;
    return result;
  }

  async #syncDatabaseFile(): Promise<void> {
    this.#handle ??= open(this.#databasePath, "r");
    const handle = await this.#handle.catch((error: unknown) => {
      this.#handle = undefined;
      throw error;
    });
    await handle.datasync();
  }
}
