import { type FileHandle, open } from "node:fs/promises";

/**
 * Makes SQLite's commits durable without blocking the event loop.
 *
 * The connection runs with `synchronous = NORMAL`: a commit appends its
 * pages to the write-ahead log with `write()` and returns, so it survives
 * a killed process at once, but not yet a power loss. `sync` then flushes
 * the WAL file with `fdatasync` on libuv's thread pool, and a write is
 * acknowledged only after that. Commits that arrive while a flush runs
 * share the next one, so concurrent writers share one flush (group commit)
 * and the event loop serves other requests while the disk works.
 *
 * A commit that is not yet flushed cannot be overwritten in the WAL
 * file: SQLite restarts the log from its beginning only after a checkpoint
 * has copied every frame into the database file and, under `NORMAL`,
 * synced it.
 */
export class WalSync {
  readonly #walPath: string;
  #handle: Promise<FileHandle> | undefined;
  /** The flush that runs now. */
  #running: Promise<void> | undefined;
  /** The flush that starts when the running one ends, shared by the commits that missed it. */
  #next: Promise<void> | undefined;
  #closed = false;
  #flushes = 0;

  /** `databasePath` is the database file, and its log is that path with `-wal` appended. */
  constructor(databasePath: string) {
    this.#walPath = `${databasePath}-wal`;
  }

  /** Flushes started since the log was opened, for tests. */
  get flushes(): number {
    return this.#flushes;
  }

  /** Resolves once every commit made before the call is on the disk. */
  sync(): Promise<void> {
    if (this.#running === undefined) {
      const running = this.#flush().finally(() => {
        this.#running = undefined;
      });
      this.#running = running;
      return running;
    }
    // The running flush may have started before this caller's commit, so it waits for the next one.
    this.#next ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.sync();
      });
    return this.#next;
  }

  /** Waits for the flushes in flight and closes the log file. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([this.#running, this.#next]);
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) await (await handle).close();
  }

  async #flush(): Promise<void> {
    if (this.#closed) throw new Error("cannot flush the write-ahead log after close");
    this.#flushes += 1;
    // The log exists from the first commit on, and SQLite deletes it only
    // when the last connection closes, so one handle serves every flush.
    this.#handle ??= open(this.#walPath, "r");
    const handle = await this.#handle.catch((error: unknown) => {
      this.#handle = undefined;
      throw error;
    });
    await handle.datasync();
  }
}
