import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type pg from "pg";

/**
 * The message of the pg driver (8.23) when a query's `query_timeout`
 * passes. The driver stops waiting for the reply but leaves the query in
 * flight on the connection.
 */
export const QUERY_TIMEOUT_MESSAGE = "Query read timeout";

/** How long closing the pool waits for each server to acknowledge the end of its session, in milliseconds. */
export const CLOSE_GRACE_MS = 1_000;

/**
 * The error of a query on a connection that an earlier query timed out
 * on. Such a connection is in an unknown state, so nothing more is sent
 * on it.
 */
export class DiscardedConnectionError extends Error {
  constructor() {
    super("the connection was discarded because an earlier query on it timed out");
    this.name = "DiscardedConnectionError";
  }
}

/** Resolves after `ms` milliseconds, or at once when `signal` is aborted. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Waits until every client has emitted "end" or `CLOSE_GRACE_MS` has
 * passed, then destroys the sockets of those still open. A server that
 * is stopped never acknowledges the end of a session, and an open socket
 * would keep the process alive.
 */
async function awaitEndOrDestroy(clients: readonly pg.Client[]): Promise<void> {
  const open = clients.filter((client) => !client.connection.stream.destroyed);
  const ended = new AbortController();
  const closing = open.map(
    (client) => new Promise<void>((resolve) => client.once("end", () => resolve())),
  );
  await Promise.race([
    Promise.all(closing).then(() => ended.abort()),
    delay(CLOSE_GRACE_MS, ended.signal),
  ]);
  ended.abort();
  for (const client of open) client.connection.stream.destroy();
}

/**
 * Ends a client's session, in bounded time: when the server has not
 * acknowledged the end within `CLOSE_GRACE_MS`, the socket is destroyed.
 */
export async function endClient(client: pg.Client): Promise<void> {
  const ending = client.end().catch(() => {});
  await awaitEndOrDestroy([client]);
  await ending;
}

/** True when a driver error is the client-side query timeout. */
function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE;
}

/**
 * The checked-out connection that Kysely receives. After a query times out on
 * the client, the connection is marked broken: later queries fail at once
 * instead of queueing behind the unanswered one, and `release` makes the
 * pool close the connection instead of handing it out again.
 */
class TimeoutAwareClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  #broken = false;

  constructor(client: pg.PoolClient) {
    this.#client = client;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sqlOrCursor: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sqlOrCursor !== "string") {
      // Keyward configures no cursor, so Kysely never streams; a cursor
      // passes through unchanged.
      return (this.#client as unknown as { query: (cursor: unknown) => PostgresCursor<R> }).query(
        sqlOrCursor,
      );
    }
    return this.#run<R>(sqlOrCursor, parameters ?? []);
  }

  async #run<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.#broken) {
      // Kysely rolls back a transaction whose statement failed. The
      // connection is closed on release, and the server rolls back the
      // open transaction of a session whose connection closed, so the
      // ROLLBACK is not sent. A COMMIT is never sent after a timeout.
      if (/^\s*rollback\s*$/i.test(sql)) return { command: "ROLLBACK", rowCount: 0, rows: [] };
      throw new DiscardedConnectionError();
    }
    try {
      const result = await this.#client.query(sql, [...parameters]);
      return result as unknown as PostgresQueryResult<R>;
    } catch (error) {
      if (isQueryTimeout(error)) this.#broken = true;
      throw error;
    }
  }

  release(destroy?: boolean): void {
    // pg-pool closes a connection released with a truthy argument. With a
    // query still in flight, pg's `end()` destroys the socket instead of
    // waiting for the server to respond.
    this.#client.release(this.#broken || destroy === true);
  }
}

/**
 * The pool Kysely uses: a pg pool whose connections are discarded after
 * a client-side query timeout, and whose `end()` returns in bounded time
 * even when the server does not respond.
 */
export class TimeoutAwarePool implements PostgresPool {
  readonly #pool: pg.Pool;
  /** The open connections, so that `end()` can destroy those the server never lets go of. */
  readonly #clients = new Set<pg.PoolClient>();
  /**
   * One wrapper per connection, so Kysely, which keys its own state by
   * the client object, treats a pooled connection as the same one each time.
   */
  readonly #wrappers = new WeakMap<pg.PoolClient, TimeoutAwareClient>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
    pool.on("connect", (client) => this.#clients.add(client));
    pool.on("remove", (client) => this.#clients.delete(client));
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.#pool.connect();
    let wrapper = this.#wrappers.get(client);
    if (wrapper === undefined) {
      wrapper = new TimeoutAwareClient(client);
      this.#wrappers.set(client, wrapper);
    }
    return wrapper;
  }

  /**
   * Ends the pool. pg-pool resolves its `end()` once each connection is
   * asked to close, and each close waits for the server to end the
   * session. A server that is stopped never does, so after
   * `CLOSE_GRACE_MS` the remaining sockets are destroyed.
   */
  async end(): Promise<void> {
    await this.#pool.end();
    await awaitEndOrDestroy([...this.#clients]);
    this.#clients.clear();
  }
}
