import { DiscardedConnectionError } from "./pool.ts";

/**
 * SQLSTATEs after which the database cannot serve the session now but may
 * later: admin_shutdown, crash_shutdown, cannot_connect_now (starting up
 * or shutting down), too_many_connections, and the ends of the timeouts
 * Keyward sets on its sessions: query_canceled (`statement_timeout`, or
 * an operator's pg_cancel_backend), lock_not_available (`lock_timeout`)
 * and idle_in_transaction_session_timeout. Class 08 (connection
 * exception) counts too.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "57014",
  "55P03",
  "25P03",
]);

/** Node.js socket error codes of a database that cannot be reached. */
const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * Messages of the pg driver (8.23) and its pool for a lost or unopened
 * connection. The driver gives these errors no code, so the message is
 * all there is to go on.
 */
const DRIVER_MESSAGES = new Set([
  "Connection terminated",
  "Connection terminated unexpectedly",
  "Connection terminated due to connection timeout",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
  "timeout exceeded when trying to connect",
  "timeout expired",
  "Query read timeout",
]);

/** The maximum number of causes followed, so that a cycle of causes ends. */
const MAX_CAUSE_DEPTH = 5;

/**
 * True when a pg driver error means that PostgreSQL cannot be reached or
 * cannot serve the session right now (stopped, restarting, unreachable,
 * out of connections, too slow to respond, or blocked by a lock), so the
 * same request may succeed later. Such errors become `storage_unavailable`
 * (HTTP 503) instead of `storage_failure`. Follows `cause`, which the pool
 * sets on a connection timeout.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    if (current instanceof DiscardedConnectionError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") {
      if (UNAVAILABLE_SQLSTATES.has(code) || NETWORK_ERROR_CODES.has(code)) return true;
      if (/^08[0-9A-Z]{3}$/.test(code)) return true;
    }
    if (DRIVER_MESSAGES.has(current.message)) return true;
    current = current.cause;
  }
  return false;
}
