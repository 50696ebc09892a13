import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import { isKeywardError, KeywardError } from "../../errors.ts";
import { NODE_ID_PATTERN } from "../coordination.ts";
import type { StorageDatabase } from "../sql/schema.ts";
import { SqlStorage } from "../sql/sql-storage.ts";
import type { Storage } from "../storage.ts";
import { isLocalHost, type PostgresConnection, parsePostgresUrl } from "./connection.ts";
import { PostgresCoordination } from "./coordination.ts";
import { migratePostgres } from "./migrations.ts";
import { TimeoutAwarePool } from "./pool.ts";
import { AdvisoryLockRetryLane } from "./retry-lane.ts";
import { timeoutNote } from "./timeouts.ts";
import { isDatabaseUnavailable } from "./unavailable.ts";

export { describePostgresUrl, SSL_MODES, type SslMode } from "./connection.ts";
export { DEFAULT_POSTGRES_TIMEOUTS, type PostgresTimeouts } from "./timeouts.ts";

export interface PostgresStorageOptions {
  /** A `postgres://` or `postgresql://` URL; see `parsePostgresUrl` for its parameters. */
  url: string;
  /** A PEM file of CA certificates for TLS to the database; overrides the URL's `sslrootcert`. */
  caFile?: string;
  /** The maximum number of connections the pool opens. */
  maxConnections?: number;
  /** Receives warnings about plaintext connections and connections that fail while idle. */
  logger?: Logger;
  /** See `SqlStorageOptions.checkNestedCalls`. */
  checkNestedCalls?: boolean;
  /**
   * This node's id, set on every connection as the session setting
   * `keyward.node_id`, so the change feed can tell this node's own changes
   * from other nodes'. Without it the storage offers no coordination.
   */
  nodeId?: string;
}

/** The default maximum number of pooled connections per Keyward process. */
export const POSTGRES_POOL_SIZE = 10;
/** How long an unused pooled connection stays open, in milliseconds. */
export const POSTGRES_IDLE_TIMEOUT_MS = 30_000;
/**
 * SQLSTATE codes after which a transaction is run again:
 * serialization_failure and deadlock_detected.
 */
export const RETRYABLE_SQLSTATES = ["40001", "40P01"] as const;
/**
 * Attempts of one transaction in all, the first included. The time budget
 * below usually ends the retries first, and this limit bounds the attempts
 * of short transactions that conflict at once.
 */
export const POSTGRES_TRANSACTION_ATTEMPTS = 50;
/**
 * No retry of a transaction starts later than this after its first
 * attempt, in milliseconds, not counting the time its retries waited to
 * enter the retry lane. Two nodes with queued changes to one record
 * can make one of them lose several times in a row, so the retries need
 * time to find a gap between the other node's commits.
 */
export const POSTGRES_TRANSACTION_RETRY_BUDGET_MS = 2_000;

/**
 * Removes every occurrence of the secret from a driver message. The pg
 * driver does not put the password in its messages (checked on pg 8.23),
 * so this only guards against a future driver that does.
 */
function scrub(text: string, secret: string | undefined): string {
  if (secret === undefined || secret === "") return text;
  return text.split(secret).join("***");
}

/**
 * Returns why opening failed, for the message. A rejected login (SQLSTATE
 * class 28) gets a fixed text, because the server's own message names the
 * user, which is part of the URL's credentials.
 */
function failureReason(error: unknown, driverCode: string | undefined, password?: string): string {
  if (driverCode?.startsWith("28")) {
    return `the server rejected the login (SQLSTATE ${driverCode}); check the user name and password in the storage URL and the server's pg_hba.conf`;
  }
  return scrub(error instanceof Error ? error.message : String(error), password);
}

/**
 * Translates a failure to connect, check or migrate into `storage_failure`
 * naming the database, never the credentials. The message gives the
 * driver's reason, and names the timeout parameter when a timeout ended
 * the call (see `timeoutNote`).
 */
function openFailure(error: unknown, connection: PostgresConnection): KeywardError {
  const password =
    typeof connection.config.password === "string" ? connection.config.password : undefined;
  if (isKeywardError(error)) {
    // A failed migration carries the driver's error as its cause, which its message leaves out.
    if (error.cause === undefined) return error;
    const reason = failureReason(error.cause, driverCodeOf(error.cause), password);
    const note = timeoutNote(error.cause, connection.timeouts);
    return new KeywardError(error.code, `${error.message}: ${reason}${note}`, {
      cause: error.cause,
      details: error.details,
    });
  }
  const driverCode = driverCodeOf(error);
  const reason = failureReason(error, driverCode, password);
  const note = timeoutNote(error, connection.timeouts);
  return new KeywardError(
    "storage_failure",
    `postgresql storage failed to connect to ${connection.description}: ${reason}${note}`,
    { cause: error, details: driverCode === undefined ? undefined : { driverCode } },
  );
}

/** Returns the SQLSTATE or Node.js error code of a driver error, when it has one. */
function driverCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Checks that the database stores text as UTF-8. Keys are compared by their
 * UTF-8 bytes; a database in another encoding would reject some keys or
 * order them differently.
 */
async function checkEncoding(db: Kysely<StorageDatabase>, description: string): Promise<void> {
  const { rows } = await sql<{ encoding: string }>`
    select current_setting('server_encoding') as encoding
  `.execute(db);
  const encoding = rows[0]?.encoding;
  if (encoding !== "UTF8") {
    throw new KeywardError(
      "storage_failure",
      `postgresql storage ${description} uses encoding ${encoding}; create the database with ENCODING 'UTF8'`,
    );
  }
}

/**
 * Opens PostgreSQL storage through a bounded pool of connections, checks the
 * database's encoding and brings its schema up to date. Throws
 * `invalid_request` for an unusable URL, and `storage_failure` when the
 * database cannot be reached, checked or migrated. No message contains the
 * URL's user name or password.
 *
 * Transactions run at SERIALIZABLE isolation, because the Storage contract
 * promises serialisable transactions: work that reads a value and writes it
 * back must not lose a concurrent update, and READ COMMITTED would lose it
 * (and REPEATABLE READ allows write skew between two keys). PostgreSQL
 * aborts one of two conflicting serialisable transactions with SQLSTATE
 * 40001 instead of blocking, so `transaction()` runs the work again after
 * a random wait, up to `POSTGRES_TRANSACTION_ATTEMPTS` times in all and
 * for at most `POSTGRES_TRANSACTION_RETRY_BUDGET_MS`. The retries of every
 * node run one at a time under an advisory lock (`retry-lane.ts`). A
 * serializable read locks the whole index page it visits, and new keys
 * with a common prefix share a page. So concurrent creations of different
 * names would otherwise abort each other again and again. A transaction that
 * loses every attempt fails with `write_conflict` (HTTP 503), which is
 * logged as a warning. A call that fails because the database cannot be
 * reached, is restarting or does not respond in time fails with
 * `storage_unavailable` (HTTP 503), other driver errors with
 * `storage_failure`. The connection's timeouts come from the URL (see
 * `parsePostgresTimeouts`). The server cancels a statement that runs or
 * waits for a lock too long. When the reply to a query does not arrive
 * in time, the pool closes its connection instead of reusing it.
 * Calls outside a transaction are single statements, atomic at the
 * session's default isolation.
 */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<Storage> {
  const connection = parsePostgresUrl(options.url, { caFile: options.caFile });
  const logger = options.logger;
  if (connection.sslMode === "disable" && !isLocalHost(connection.host)) {
    logger?.warn(
      { database: connection.description },
      "postgresql storage connects without TLS to a host that is not loopback; set sslmode=verify-full in the storage URL",
    );
  }

  const nodeId = options.nodeId;
  if (nodeId !== undefined) {
    if (!NODE_ID_PATTERN.test(nodeId)) {
      throw new KeywardError("invalid_request", `invalid node id ${JSON.stringify(nodeId)}`);
    }
    // The node id's characters need no quoting in the options string.
    connection.config.options = [connection.config.options, `-c keyward.node_id=${nodeId}`]
      .filter(Boolean)
      .join(" ");
  }
  const pool = new pg.Pool({
    ...connection.config,
    max: options.maxConnections ?? POSTGRES_POOL_SIZE,
    idleTimeoutMillis: POSTGRES_IDLE_TIMEOUT_MS,
    keepAlive: true,
  });
  // An idle connection that the server or network closes emits "error" on
  // the pool, which removes the connection. Without a listener the event
  // would end the process.
  // A connection that fails while checked out (the server ended its
  // session, say) emits "error" on its client, where the pool keeps no
  // listener: without one the event would end the process. The query in
  // flight fails on its own and the pool drops the broken connection. An
  // idle connection's failure reaches the pool's own "error" event below.
  const inUseFailure = (error: Error & { code?: string }) => {
    logger?.warn(
      { database: connection.description, driverCode: error.code, reason: error.message },
      "postgresql connection failed while in use; the pool opens a new one when needed",
    );
  };
  pool.on("acquire", (client) => client.on("error", inUseFailure));
  pool.on("release", (_error, client) => client.off("error", inUseFailure));
  pool.on("error", (error: Error & { code?: string }) => {
    logger?.warn(
      { database: connection.description, driverCode: error.code, reason: error.message },
      "postgresql connection failed while idle; the pool opens a new one when needed",
    );
  });

  const db = new Kysely<StorageDatabase>({
    dialect: new PostgresDialect({ pool: new TimeoutAwarePool(pool) }),
  });
  try {
    await checkEncoding(db, connection.description);
    await migratePostgres(db as Kysely<unknown>);
  } catch (error) {
    // The open failure is the error to report; ending the pool only closes
    // the connections opened so far.
    await db.destroy().catch(() => {});
    throw openFailure(error, connection);
  }
  return new SqlStorage({
    kind: "postgresql",
    db,
    ...(options.checkNestedCalls === undefined
      ? {}
      : { checkNestedCalls: options.checkNestedCalls }),
    isolationLevel: "serializable",
    isUnavailable: isDatabaseUnavailable,
    retry: {
      driverCodes: RETRYABLE_SQLSTATES,
      maxAttempts: POSTGRES_TRANSACTION_ATTEMPTS,
      budgetMs: POSTGRES_TRANSACTION_RETRY_BUDGET_MS,
      lane: new AdvisoryLockRetryLane(connection.timeouts.lockMs, (error) => {
        logger?.warn(
          { database: connection.description, driverCode: driverCodeOf(error) },
          "postgresql storage failed to release the retry lane lock; retries on every node wait for it until this connection closes",
        );
      }),
    },
    onRetriesExhausted: (error) => {
      logger?.warn(
        { database: connection.description, ...error.details },
        "postgresql transaction lost a conflict with concurrent transactions on every attempt; the request fails with write_conflict",
      );
    },
    ...(nodeId === undefined
      ? {}
      : {
          openCoordination: () =>
            new PostgresCoordination(
              connection.config,
              nodeId,
              logger?.child({ component: "coordination" }),
            ),
        }),
  });
}
