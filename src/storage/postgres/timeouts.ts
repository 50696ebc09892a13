import type { PoolConfig } from "pg";
import type { KeywardError } from "../../errors.ts";
import { DiscardedConnectionError, QUERY_TIMEOUT_MESSAGE } from "./pool.ts";

/**
 * The bounds on every wait for PostgreSQL, in milliseconds. A server that
 * stops responding (a stopped process, a network that drops packets) or a
 * lock that another session holds makes a call fail with
 * `storage_unavailable` once one of them passes, instead of waiting forever.
 */
export interface PostgresTimeouts {
  /** Opening a connection, and waiting for a free one when the pool is full (`connect_timeout`). */
  connectMs: number;
  /** The server cancels a statement that runs longer (`statement_timeout`). */
  statementMs: number;
  /** The server cancels a statement that waits longer for a lock (`lock_timeout`). */
  lockMs: number;
  /**
   * The server ends a session whose transaction stays idle longer, which
   * rolls the transaction back and releases its locks
   * (`idle_in_transaction_session_timeout`).
   */
  idleInTransactionMs: number;
  /**
   * Keyward stops waiting for the reply to one query and discards the
   * connection (`query_timeout`). It covers a server that sends nothing,
   * which the server-side timeouts cannot.
   */
  queryMs: number;
}

/** The time the client-side query timeout adds by default to the statement timeout. */
export const QUERY_TIMEOUT_MARGIN_MS = 5_000;

/** The timeouts used when the storage URL sets none. */
export const DEFAULT_POSTGRES_TIMEOUTS: Readonly<PostgresTimeouts> = {
  connectMs: 5_000,
  statementMs: 15_000,
  lockMs: 10_000,
  idleInTransactionMs: 30_000,
  queryMs: 15_000 + QUERY_TIMEOUT_MARGIN_MS,
};

/** The storage URL parameters that set the timeouts. */
export const TIMEOUT_PARAMETERS = [
  "connect_timeout",
  "statement_timeout",
  "lock_timeout",
  "idle_in_transaction_session_timeout",
  "query_timeout",
] as const;

/** The largest timeout in milliseconds: PostgreSQL's and Node's timers both hold a signed 32-bit value. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Reads one timeout parameter as a positive whole number of `unit`
 * (1000 for seconds, 1 for milliseconds) and returns it in milliseconds,
 * or undefined when the URL does not set it. Zero is rejected: in
 * PostgreSQL and libpq it disables the timeout, and every wait must stay
 * bounded.
 */
function readTimeout(
  parameters: URLSearchParams,
  name: (typeof TIMEOUT_PARAMETERS)[number],
  unit: number,
  invalid: (reason: string) => KeywardError,
): number | undefined {
  const value = parameters.get(name);
  if (value === null) return undefined;
  const unitName = unit === 1000 ? "seconds" : "milliseconds";
  const max = Math.floor(MAX_TIMEOUT_MS / unit);
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    // Quoted as JSON, so a control character in the value shows as an escape.
    throw invalid(
      `${name} ${JSON.stringify(value)} is invalid; use a whole number of ${unitName} from 1 to ${max}`,
    );
  }
  return Number(value) * unit;
}

/**
 * Parses the timeout parameters of a storage URL: `connect_timeout` in
 * seconds, as in libpq, and the others in milliseconds, PostgreSQL's unit
 * for these settings. Each one left out takes its default, and
 * `query_timeout` defaults to `statement_timeout` plus
 * `QUERY_TIMEOUT_MARGIN_MS`, so that the server cancels a slow statement
 * before Keyward gives up on the connection. Throws what `invalid` builds.
 */
export function parsePostgresTimeouts(
  parameters: URLSearchParams,
  invalid: (reason: string) => KeywardError,
): PostgresTimeouts {
  const defaults = DEFAULT_POSTGRES_TIMEOUTS;
  const statementMs =
    readTimeout(parameters, "statement_timeout", 1, invalid) ?? defaults.statementMs;
  const queryMs =
    readTimeout(parameters, "query_timeout", 1, invalid) ?? statementMs + QUERY_TIMEOUT_MARGIN_MS;
  if (queryMs < statementMs) {
    throw invalid(
      `query_timeout ${queryMs} is shorter than statement_timeout ${statementMs}; a slow statement would cost its connection instead of being cancelled by the server`,
    );
  }
  return {
    connectMs: readTimeout(parameters, "connect_timeout", 1000, invalid) ?? defaults.connectMs,
    statementMs,
    lockMs: readTimeout(parameters, "lock_timeout", 1, invalid) ?? defaults.lockMs,
    idleInTransactionMs:
      readTimeout(parameters, "idle_in_transaction_session_timeout", 1, invalid) ??
      defaults.idleInTransactionMs,
    queryMs: Math.min(queryMs, MAX_TIMEOUT_MS),
  };
}

/**
 * Returns the pg client settings for the timeouts. The driver sends the
 * three server-side ones in the startup message, so they apply to every
 * statement of the session, and it runs `connectionTimeoutMillis` and
 * `query_timeout` as timers of its own.
 */
export function timeoutSettings(timeouts: PostgresTimeouts): PoolConfig {
  return {
    connectionTimeoutMillis: timeouts.connectMs,
    query_timeout: timeouts.queryMs,
    statement_timeout: timeouts.statementMs,
    lock_timeout: timeouts.lockMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
  };
}

/** SQLSTATEs of the server-side timeouts, with the parameter that sets each. */
const TIMEOUT_SQLSTATES: ReadonlyMap<string, keyof PostgresTimeouts> = new Map([
  ["57014", "statementMs"],
  ["55P03", "lockMs"],
  ["25P03", "idleInTransactionMs"],
]);

/** Messages of the pg driver (8.23) and its pool when opening a connection timed out. */
const CONNECT_TIMEOUT_MESSAGES = new Set([
  "timeout exceeded when trying to connect",
  "Connection terminated due to connection timeout",
]);

/** The storage URL parameter of each timeout. */
const PARAMETER_OF: Readonly<Record<keyof PostgresTimeouts, (typeof TIMEOUT_PARAMETERS)[number]>> =
  {
    connectMs: "connect_timeout",
    statementMs: "statement_timeout",
    lockMs: "lock_timeout",
    idleInTransactionMs: "idle_in_transaction_session_timeout",
    queryMs: "query_timeout",
  };

/** The maximum number of causes followed, so that a cycle of causes ends. */
const MAX_CAUSE_DEPTH = 5;

/** Returns the timeout that ended the call a driver error reports, following `cause`, or undefined for other errors. */
function expiredTimeout(error: unknown): keyof PostgresTimeouts | undefined {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    if (current instanceof DiscardedConnectionError) return "queryMs";
    if (current.message === QUERY_TIMEOUT_MESSAGE) return "queryMs";
    if (CONNECT_TIMEOUT_MESSAGES.has(current.message)) return "connectMs";
    const code = (current as { code?: unknown }).code;
    const timeout = typeof code === "string" ? TIMEOUT_SQLSTATES.get(code) : undefined;
    if (timeout !== undefined) return timeout;
    current = current.cause;
  }
  return undefined;
}

/**
 * Returns a note naming the timeout parameter and its value when `error`
 * reports that one of the timeouts ended a call, such as ` (statement_timeout
 * is 1 ms)`, or an empty string for other errors. A start that fails this
 * way points the operator at the parameter, for example a value written in
 * seconds where milliseconds are meant. SQLSTATE 57014 also follows an
 * operator's pg_cancel_backend, which the note cannot tell apart.
 */
export function timeoutNote(error: unknown, timeouts: PostgresTimeouts): string {
  const timeout = expiredTimeout(error);
  if (timeout === undefined) return "";
  const value =
    timeout === "connectMs" ? `${timeouts.connectMs / 1000} s` : `${timeouts[timeout]} ms`;
  return ` (${PARAMETER_OF[timeout]} is ${value})`;
}
