import type { Coordination } from "./coordination.ts";

/**
 * The storage boundary.
 *
 * Storage is an ordered map from string keys to opaque byte values. It never
 * sees a secret in plaintext: the barrier encrypts every value before it gets
 * here. Every backend (SQLite and PostgreSQL) implements this interface and
 * passes the same contract test suite.
 *
 * Keys are slash-separated paths such as `transit/keys/payments`. A key never
 * starts or ends with `/` and never contains an empty segment.
 *
 * Durability contract: when a write's promise resolves, the write survives a
 * process kill (SIGKILL) at any later moment.
 */
export interface StorageReader {
  /** Reads one value, or `undefined` when the key does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Lists the direct children of a prefix, in ascending byte order.
   * `prefix` is empty or ends with `/`. A child that has children of its own
   * is returned once with a trailing `/`, as Vault's list operations do, and
   * also once without it when a value exists at that exact key.
   */
  list(prefix: string): Promise<string[]>;
  /**
   * Lists one page of the keys under a prefix, at every depth, in ascending
   * byte order. `prefix` is empty or ends with `/`, and the names returned
   * are relative to it. Reads only the rows of the page, so paging through a
   * large folder never loads all of it.
   */
  scan(prefix: string, options: ScanOptions): Promise<string[]>;
}

/** The page of a `scan`. */
export interface ScanOptions {
  /** Start after this name (relative to the prefix); the last name of a page continues the scan. */
  after?: string;
  /** The maximum number of names returned, from 1 to `MAX_SCAN_LIMIT`. */
  limit: number;
}

/** The largest page a `scan` returns. */
export const MAX_SCAN_LIMIT = 10_000;

export interface StorageWriter extends StorageReader {
  /** Creates or replaces a value. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Deletes a value; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
}

/** Options of a transaction: how its commit must reach the disk. */
export interface TransactionOptions {
  /**
   * When false, the commit may return once it would survive a crash of
   * this process, before it is synced to the disk: it reaches the disk with
   * the next commit that syncs, or the next checkpoint. A write that must
   * survive power loss keeps the default, true. SQLite honours the hint;
   * PostgreSQL, whose commits do not block the event loop, ignores it.
   */
  syncToDisk?: boolean;
}

export interface Storage extends StorageWriter {
  /** The backend's name, `sqlite` or `postgresql`, for logs and `storage_type` in seal status. */
  readonly kind: string;
  /**
   * Runs `work` in one serialisable transaction: either every write in it is
   * stored or none is. The transaction commits when `work` resolves and rolls
   * back when it throws; the error is re-thrown.
   *
   * A backend may run `work` again, on a new transaction, when the database
   * aborted the previous attempt for a conflict with a concurrent
   * transaction (PostgreSQL does so with SQLSTATE 40001 and 40P01). So
   * `work` should change nothing outside its writer, or reset what it
   * changes when it starts. When every attempt the backend allows loses
   * such a conflict, the transaction fails with `write_conflict`.
   */
  transaction<T>(work: (tx: StorageWriter) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Opens the coordination of several nodes sharing this storage: present
   * only on a backend that several processes can share (PostgreSQL). The
   * caller closes it before closing the storage.
   */
  openCoordination?(): Coordination;
  /** Releases the backend's connections and files. */
  close(): Promise<void>;
}
