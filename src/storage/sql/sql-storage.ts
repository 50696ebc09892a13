import { AsyncLocalStorage } from "node:async_hooks";
import type { IsolationLevel, Kysely, Transaction } from "kysely";
import { isKeywardError, KeywardError } from "../../errors.ts";
import type { Coordination } from "../coordination.ts";
import { validateKey, validatePrefix, validateScanOptions, validateValue } from "../keys.ts";
import {
  type ConflictRetryPolicy,
  nextConflictRetry,
  waitBeforeRetry,
  writeConflictError,
} from "../retry.ts";
import type { ScanOptions, Storage, StorageWriter, TransactionOptions } from "../storage.ts";
import {
  compilePointStatements,
  deleteValue,
  listChildren,
  type PointStatements,
  scanKeys,
  selectValue,
  upsertValue,
} from "./queries.ts";
import type { StorageDatabase } from "./schema.ts";

export interface SqlStorageOptions {
  /** The backend's name, such as `sqlite`. */
  kind: string;
  /** An open Kysely instance whose schema is migrated. Closed by `close()`. */
  db: Kysely<StorageDatabase>;
  /**
   * The isolation level for `transaction()`. SQLite needs none: Kysely's
   * SQLite driver has one connection, so its transactions already run one
   * at a time.
   */
  isolationLevel?: IsolationLevel;
  /**
   * When set, `transaction()` runs `work` again after a failure whose driver
   * code is listed, such as PostgreSQL's serialization failure. Without it a
   * transaction runs once.
   */
  retry?: TransactionRetry;
  /**
   * Called when a transaction fails with `write_conflict` because every
   * attempt lost a conflict, so the backend can log it: the API logs a 503
   * only at debug level.
   */
  onRetriesExhausted?: (error: KeywardError) => void;
  /**
   * Makes the commits made so far durable. A backend whose connection
   * commits without waiting for the disk (SQLite with `synchronous =
   * NORMAL`) sets it, and every write except a transaction run with
   * `syncToDisk: false` waits for it before it resolves. Without it every
   * commit is durable when it returns.
   */
  syncCommits?: () => Promise<void>;
  /**
   * Called by `close()` once the calls in flight have settled and before
   * the database is closed, to stop the backend's own work on the
   * connection and release what `syncCommits` holds.
   */
  onClose?: () => Promise<void>;
  /**
   * Rejects calls made on the storage itself from inside one of its
   * transactions (see the class). The check tracks the async context of
   * every promise, which on Node.js 20 costs several percent of a
   * request's time, so it is meant for tests. Defaults to true when the
   * environment variable `KEYWARD_STORAGE_CHECKS` is `1`, as the test
   * runner sets it.
   */
  checkNestedCalls?: boolean;
  /** Opens the coordination of nodes sharing the database; only a shared backend has it. */
  openCoordination?: () => Coordination;
  /**
   * True for a driver error meaning that the database cannot be reached
   * or cannot serve now (a server restart, a lost connection). Such errors
   * become `storage_unavailable` (HTTP 503), which a client may retry,
   * instead of `storage_failure`. Without it every driver error is
   * `storage_failure`.
   */
  isUnavailable?: (error: unknown) => boolean;
}

/**
 * The retry policy of `transaction()`: the failures it runs again, and how
 * often (see `ConflictRetryPolicy`).
 */
export interface TransactionRetry extends ConflictRetryPolicy {
  /** Driver codes (such as SQLSTATE `40001`) after which the whole transaction may succeed when run again. */
  driverCodes: readonly string[];
  /**
   * When set, every attempt after the first runs inside this lane, so the
   * retries of all processes sharing the database run one at a time.
   * The time spent waiting to enter the lane does not count against
   * `budgetMs`.
   */
  lane?: RetryLane;
}

/**
 * A mutual exclusion shared by every process on one database, for the
 * retries of transactions that lost a conflict. Transactions that keep
 * running concurrently can keep aborting each other when the database
 * detects conflicts coarsely (PostgreSQL locks whole index pages for
 * serializable reads). Run one at a time, they abort only when a first
 * attempt overlaps them.
 */
export interface RetryLane {
  /**
   * Enters the lane, runs `work` with `db` bound to the connection the
   * lane reserved, and leaves the lane once `work` settles. It rejects
   * with a driver error when entering fails. Work that starts a
   * transaction must start it on the connection `work` receives.
   */
  run<T>(
    db: Kysely<StorageDatabase>,
    work: (connection: Kysely<StorageDatabase>) => Promise<T>,
  ): Promise<T>;
}

/** The state of one open transaction, visible to calls made inside its `work`. */
interface TransactionState {
  active: boolean;
}

/**
 * Translates a driver error into `storage_failure`, or into
 * `storage_unavailable` when `isUnavailable` accepts it, keeping the
 * driver error as `cause` and its code (such as `SQLITE_FULL`) in
 * `details`. KeywardErrors pass through unchanged.
 */
function translateError(
  kind: string,
  operation: string,
  error: unknown,
  isUnavailable?: (error: unknown) => boolean,
): KeywardError {
  if (isKeywardError(error)) return error;
  const driverCode = (error as { code?: unknown } | null)?.code;
  const code = isUnavailable?.(error) ? "storage_unavailable" : "storage_failure";
  return new KeywardError(code, `${kind} storage failed to ${operation}`, {
    cause: error,
    details: typeof driverCode === "string" ? { driverCode } : undefined,
  });
}

/**
 * The Storage interface over any SQL database Kysely supports. The backend
 * folders (such as `sqlite/`) open the connection and run migrations, then
 * hand the Kysely instance to this class.
 *
 * With `checkNestedCalls`, calls made on this object from inside its own
 * `transaction()` work are rejected with `internal`, because the SQLite
 * driver's single connection is held by the transaction and such a call
 * would wait forever. This covers fire-and-forget calls started inside
 * `work` too, since they inherit its async context.
 */
export class SqlStorage implements Storage {
  readonly kind: string;
  readonly openCoordination?: () => Coordination;
  readonly #db: Kysely<StorageDatabase>;
  readonly #isolationLevel: IsolationLevel | undefined;
  readonly #retry: TransactionRetry | undefined;
  readonly #onRetriesExhausted: ((error: KeywardError) => void) | undefined;
  readonly #statements: PointStatements;
  readonly #syncCommits: (() => Promise<void>) | undefined;
  readonly #onClose: (() => Promise<void>) | undefined;
  readonly #isUnavailable: ((error: unknown) => boolean) | undefined;
  readonly #transactionContext: AsyncLocalStorage<TransactionState> | undefined;
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: SqlStorageOptions) {
    this.kind = options.kind;
    if (options.openCoordination !== undefined) this.openCoordination = options.openCoordination;
    this.#db = options.db;
    this.#isolationLevel = options.isolationLevel;
    this.#retry = options.retry;
    this.#onRetriesExhausted = options.onRetriesExhausted;
    this.#isUnavailable = options.isUnavailable;
    this.#statements = compilePointStatements(options.db);
    const checkNestedCalls = options.checkNestedCalls ?? process.env.KEYWARD_STORAGE_CHECKS === "1";
    this.#transactionContext = checkNestedCalls ? new AsyncLocalStorage() : undefined;
    this.#syncCommits = options.syncCommits;
    this.#onClose = options.onClose;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#call("read a value", () => {
      validateKey(key);
      return selectValue(this.#db, this.#statements, key);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#call("list keys", () => {
      validatePrefix(prefix);
      return listChildren(this.#db, prefix);
    });
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return this.#call("scan keys", () => {
      validatePrefix(prefix);
      validateScanOptions(options);
      return scanKeys(this.#db, prefix, options.after, options.limit);
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#call("write a value", () => {
      validateKey(key);
      validateValue(value);
      return upsertValue(this.#db, this.#statements, key, value).then(() => this.#flush());
    });
  }

  delete(key: string): Promise<void> {
    return this.#call("delete a value", () => {
      validateKey(key);
      return deleteValue(this.#db, this.#statements, key).then(() => this.#flush());
    });
  }

  transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    // No operation name: the transaction translates driver errors itself
    // and must re-throw the work's own errors unchanged.
    return this.#call(undefined, async () => {
      const startedAt = Date.now();
      // The time spent waiting for the retry lane, which the budget leaves out.
      const waited = { ms: 0 };
      for (let attempt = 1; ; attempt++) {
        let result: T;
        try {
          const lane = this.#retry?.lane;
          result =
            attempt === 1 || lane === undefined
              ? await this.#runTransaction(this.#db, work)
              : await this.#runInLane(lane, work, waited);
        } catch (error) {
          const retry = this.#retry;
          if (retry === undefined || !this.#isRetryable(error)) throw error;
          const delay = nextConflictRetry(retry, attempt, startedAt + waited.ms);
          if (delay === undefined) throw this.#retriesExhausted(attempt, error);
          await waitBeforeRetry(delay);
          continue;
        }
        if (options.syncToDisk !== false) await this.#flush();
        return result;
      }
    });
  }

  /**
   * Runs one attempt of a transaction inside the retry lane, and adds the
   * time spent waiting to enter the lane to `waited.ms`. A failure to
   * enter the lane is translated like a driver error, and errors of the
   * attempt itself pass through unchanged.
   */
  async #runInLane<T>(
    lane: RetryLane,
    work: (tx: StorageWriter) => Promise<T>,
    waited: { ms: number },
  ): Promise<T> {
    const queuedAt = Date.now();
    let attemptError: { error: unknown } | undefined;
    try {
      return await lane.run(this.#db, async (connection) => {
        waited.ms += Date.now() - queuedAt;
        try {
          return await this.#runTransaction(connection, work);
        } catch (error) {
          attemptError = { error };
          throw error;
        }
      });
    } catch (error) {
      if (attemptError !== undefined && error === attemptError.error) throw error;
      throw translateError(this.kind, "enter the retry lane", error, this.#isUnavailable);
    }
  }

  /** Builds the `write_conflict` error of a transaction that lost a conflict on every attempt, and reports it. */
  #retriesExhausted(attempts: number, error: KeywardError): KeywardError {
    const conflict = writeConflictError(`${this.kind} transaction`, attempts, error, {
      driverCode: error.details?.driverCode,
    });
    this.#onRetriesExhausted?.(conflict);
    return conflict;
  }

  /** Makes the commits so far durable, when the backend commits without waiting for the disk. */
  async #flush(): Promise<void> {
    if (this.#syncCommits === undefined) return;
    try {
      await this.#syncCommits();
    } catch (error) {
      throw translateError(this.kind, "sync a commit to the disk", error, this.#isUnavailable);
    }
  }

  async #runTransaction<T>(
    db: Kysely<StorageDatabase>,
    work: (tx: StorageWriter) => Promise<T>,
  ): Promise<T> {
    const state: TransactionState = { active: true };
    let workError: { error: unknown } | undefined;
    let builder = db.transaction();
    if (this.#isolationLevel !== undefined)
      builder = builder.setIsolationLevel(this.#isolationLevel);
    try {
      return await builder.execute(async (trx) => {
        const writer = new SqlTransactionWriter(
          this.kind,
          trx,
          state,
          this.#statements,
          this.#isUnavailable,
        );
        try {
          const context = this.#transactionContext;
          return await (context === undefined
            ? work(writer)
            : context.run(state, () => work(writer)));
        } catch (error) {
          workError = { error };
          throw error;
        }
      });
    } catch (error) {
      // The work's own error is re-thrown as it is. Anything else came
      // from BEGIN, COMMIT or ROLLBACK and is translated.
      if (workError !== undefined && error === workError.error) throw error;
      throw translateError(this.kind, "commit a transaction", error, this.#isUnavailable);
    } finally {
      state.active = false;
    }
  }

  /**
   * True when a failed transaction may succeed if run again: a
   * `storage_failure` with a listed driver code, raised by one of the
   * transaction's statements or by its commit.
   */
  #isRetryable(error: unknown): error is KeywardError {
    if (this.#retry === undefined || !isKeywardError(error)) return false;
    if (error.code !== "storage_failure") return false;
    const driverCode = error.details?.driverCode;
    return typeof driverCode === "string" && this.#retry.driverCodes.includes(driverCode);
  }

  /** Waits for the calls in flight, then closes the database. Later calls fail with `storage_failure`. */
  async close(): Promise<void> {
    this.#assertOutsideTransaction();
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
    try {
      await this.#onClose?.();
      await this.#db.destroy();
    } catch (error) {
      throw translateError(this.kind, "close the database", error, this.#isUnavailable);
    }
  }

  #assertOutsideTransaction(): void {
    if (this.#transactionContext?.getStore()?.active) {
      throw new KeywardError(
        "internal",
        "a storage call was made on the storage itself inside one of its transactions; use the transaction's writer",
      );
    }
  }

  /**
   * Runs one call: checks the storage is usable, tracks the call for
   * `close()` and, when `operation` names it, translates driver errors.
   */
  #call<T>(operation: string | undefined, run: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      this.#assertOutsideTransaction();
      if (this.#closed) {
        throw new KeywardError(
          "storage_failure",
          `${this.kind} storage is closed and accepts no more calls`,
        );
      }
      promise = run();
      if (operation !== undefined) {
        promise = promise.catch((error: unknown) => {
          throw translateError(this.kind, operation, error, this.#isUnavailable);
        });
      }
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pending.add(promise);
    const forget = () => this.#pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

/** The writer that a transaction's `work` receives. It runs every call on the transaction's connection. */
class SqlTransactionWriter implements StorageWriter {
  readonly #kind: string;
  readonly #trx: Transaction<StorageDatabase>;
  readonly #state: TransactionState;
  readonly #statements: PointStatements;
  readonly #isUnavailable: ((error: unknown) => boolean) | undefined;

  constructor(
    kind: string,
    trx: Transaction<StorageDatabase>,
    state: TransactionState,
    statements: PointStatements,
    isUnavailable: ((error: unknown) => boolean) | undefined,
  ) {
    this.#kind = kind;
    this.#trx = trx;
    this.#state = state;
    this.#statements = statements;
    this.#isUnavailable = isUnavailable;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#call("read a value in a transaction", () => {
      validateKey(key);
      return selectValue(this.#trx, this.#statements, key);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#call("list keys in a transaction", () => {
      validatePrefix(prefix);
      return listChildren(this.#trx, prefix);
    });
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return this.#call("scan keys in a transaction", () => {
      validatePrefix(prefix);
      validateScanOptions(options);
      return scanKeys(this.#trx, prefix, options.after, options.limit);
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#call("write a value in a transaction", () => {
      validateKey(key);
      validateValue(value);
      return upsertValue(this.#trx, this.#statements, key, value);
    });
  }

  delete(key: string): Promise<void> {
    return this.#call("delete a value in a transaction", () => {
      validateKey(key);
      return deleteValue(this.#trx, this.#statements, key);
    });
  }

  async #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (!this.#state.active) {
      throw new KeywardError(
        "internal",
        "a transaction's writer was used after the transaction ended",
      );
    }
    try {
      return await run();
    } catch (error) {
      throw translateError(this.#kind, operation, error, this.#isUnavailable);
    }
  }
}
