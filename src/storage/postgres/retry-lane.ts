import { type Kysely, sql } from "kysely";
import { KeywardError } from "../../errors.ts";
import type { StorageDatabase } from "../sql/schema.ts";
import type { RetryLane } from "../sql/sql-storage.ts";

/**
 * The session advisory lock of the retry lane: "kwretry" folded into a
 * bigint, the same for every node and distinct from the leader lock.
 * `pg_locks` shows it with `classid` 1802990181 (0x6b777265) and `objid`
 * 1953659136 (0x74727900).
 */
export const RETRY_LANE_LOCK = "7743783864357779712";

/**
 * The retry lane of PostgreSQL storage. The retries of one process queue
 * in memory, so at most one of its connections waits for the lock. The
 * lock is a session advisory lock, taken on the connection that then runs
 * the transaction and released after the commit or rollback. It is taken
 * before BEGIN because a serializable transaction takes its snapshot at
 * its first statement, so a transaction-level lock taken inside it would
 * leave it with a snapshot from before the previous holder committed.
 *
 * The wait for the lock is bounded by the connection's `lock_timeout`,
 * after which entering fails with SQLSTATE 55P03. The wait in the
 * process's queue has the same limit, after which entering fails with
 * `storage_unavailable`. A retry thus waits for the lane at most twice
 * that limit (plus any wait for a free pooled connection),
 * however many retries queued before it. When a node stops while it
 * holds the lock, the database releases the lock as it ends the node's
 * session.
 */
export class AdvisoryLockRetryLane implements RetryLane {
  /** Settles when the last process-local user of the lane leaves it. */
  #tail: Promise<void> = Promise.resolve();
  readonly #onUnlockFailure: (error: unknown) => void;
  readonly #queueLimitMs: number;

  /**
   * `queueLimitMs` bounds the wait behind this process's earlier retries,
   * normally the connection's `lock_timeout`. `onUnlockFailure` receives
   * the error when releasing the lock fails, for the log.
   */
  constructor(queueLimitMs: number, onUnlockFailure: (error: unknown) => void = () => {}) {
    this.#queueLimitMs = queueLimitMs;
    this.#onUnlockFailure = onUnlockFailure;
  }

  async run<T>(
    db: Kysely<StorageDatabase>,
    work: (connection: Kysely<StorageDatabase>) => Promise<T>,
  ): Promise<T> {
    const previous = this.#tail;
    let leave = () => {};
    this.#tail = new Promise((resolve) => {
      leave = resolve;
    });
    try {
      if (!(await settlesWithin(previous, this.#queueLimitMs))) {
        // The next retry still waits for the earlier ones, as if this one had run.
        const left = leave;
        leave = () => void previous.then(left);
        throw new KeywardError(
          "storage_unavailable",
          "postgresql storage timed out waiting for its turn to retry a transaction",
          { details: { queueLimitMs: this.#queueLimitMs } },
        );
      }
      return await db.connection().execute(async (connection) => {
        await sql`select pg_advisory_lock(${RETRY_LANE_LOCK}::bigint)`.execute(connection);
        try {
          return await work(connection);
        } finally {
          await unlock(connection, this.#onUnlockFailure);
        }
      });
    } finally {
      leave();
    }
  }
}

/** Resolves with true once `promise` settles, or with false after `limitMs`. */
async function settlesWithin(promise: Promise<void>, limitMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), limitMs);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Releases the lane's lock on `connection`, trying `pg_advisory_unlock_all`
 * when the first unlock fails. A failure of both is reported to
 * `onFailure` and not raised, because the transaction has already
 * committed or rolled back by then.
 * A connection that broke is discarded by the pool, and the database
 * releases the lock when it ends the session.
 *
 * NOTE: a connection that stays usable while the unlock fails (an
 * operator cancels that query) returns to the pool holding the lock.
 * Other nodes' retries then fail after `lock_timeout` until that
 * connection closes, which the pool does after 30 s unused.
 */
async function unlock(
  connection: Kysely<StorageDatabase>,
  onFailure: (error: unknown) => void,
): Promise<void> {
  try {
    await sql`select pg_advisory_unlock(${RETRY_LANE_LOCK}::bigint)`.execute(connection);
  } catch {
    try {
      await sql`select pg_advisory_unlock_all()`.execute(connection);
    } catch (error) {
      onFailure(error);
    }
  }
}
