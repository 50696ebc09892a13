import pg from "pg";
import type { Logger } from "pino";
import { KeywardError } from "../../errors.ts";
import type { Coordination, NodeRecord, NodeState } from "../coordination.ts";
import { endClient } from "./pool.ts";
import { isDatabaseUnavailable } from "./unavailable.ts";

/** The channel the `entries` trigger announces changes on (migration 0002). */
export const CHANGE_CHANNEL = "keyward_changes";
/** The advisory lock the leader holds: "keyward" folded into a bigint, the same for every node. */
const LEADER_LOCK = "6b65797761726400";
/**
 * The same lock as `pg_locks` shows a bigint key: its high and low 32 bits
 * in `classid` and `objid`, with `objsubid` 1.
 */
const LEADER_LOCK_HIGH = 0x6b657977;
const LEADER_LOCK_LOW = 0x61726400;
/** The application name of each node's coordination session, followed by the node id, so any node can tell who holds the leader lock. */
const SESSION_NAME_PREFIX = "keyward-coordination:";
/** How long one coordination query may take before the connection counts as lost, in milliseconds. */
const QUERY_TIMEOUT_MS = 5_000;
/** The wait before reconnecting after a failure; it doubles up to the maximum. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/**
 * TCP keepalive settings of the coordination session, so the database ends
 * the session of a node that vanished from the network (and frees its
 * leader lock) within about 11 seconds instead of the system's default of
 * two hours. A node killed on a live machine closes its socket at once.
 */
const KEEPALIVE_OPTIONS =
  "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3";

interface NodeRow {
  node_id: string;
  api_address: string;
  version: string;
  started_at: Date;
  heartbeat_at: Date;
  sealed: boolean;
  leader: boolean;
  age_ms: string | number;
}

/**
 * Coordination over one dedicated PostgreSQL session: LISTEN for the change
 * feed, a session advisory lock for leadership, and the `cluster_nodes`
 * table for heartbeats. When the session fails, leadership is lost at once
 * (the database releases the lock when the session ends), the change feed
 * reports that changes may have been missed, and the session is opened
 * again with backoff.
 */
export class PostgresCoordination implements Coordination {
  readonly nodeId: string;
  readonly #config: pg.ClientConfig;
  readonly #logger: Logger | undefined;
  readonly #lostListeners: (() => void)[] = [];
  #listener: ((keys: readonly string[] | undefined) => void) | undefined;
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelayMs = RECONNECT_MIN_MS;
  #pendingKeys: string[] = [];
  #flushScheduled = false;
  #leading = false;
  #closed = false;
  /** True once a session has opened; only the first one checks that the node id is free. */
  #opened = false;
  /**
   * The end of the last query queued on the session. The scheduler confirms
   * leadership before each job while heartbeats and `members()` also run.
   * The pg driver 8.x warns that pg 9.0 removes queries issued while another
   * one runs on the same client, so each query waits for the previous one.
   */
  #queryQueue: Promise<unknown> = Promise.resolve();

  /**
   * `config` is the storage's connection settings: `options`, which carry
   * the node id, and the timeouts, except the query timeout, which is
   * `QUERY_TIMEOUT_MS` here.
   */
  constructor(config: pg.ClientConfig, nodeId: string, logger?: Logger) {
    const options = [config.options, KEEPALIVE_OPTIONS].filter(Boolean).join(" ");
    this.#config = {
      ...config,
      options,
      application_name: `${SESSION_NAME_PREFIX}${nodeId}`,
      keepAlive: true,
      query_timeout: QUERY_TIMEOUT_MS,
    };
    this.nodeId = nodeId;
    this.#logger = logger;
  }

  get leading(): boolean {
    return this.#leading;
  }

  async watch(listener: (keys: readonly string[] | undefined) => void): Promise<void> {
    this.#listener = listener;
    await this.#session();
  }

  async tryLead(): Promise<boolean> {
    if (this.#leading) return true;
    const client = await this.#session();
    const result = await this.#query<{ locked: boolean }>(
      client,
      "select pg_try_advisory_lock($1::bigint) as locked",
      [BigInt(`0x${LEADER_LOCK}`).toString()],
    );
    this.#leading = result.rows[0]?.locked === true && this.#client === client;
    return this.#leading;
  }

  async resign(): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    const client = this.#client;
    if (client === undefined) return;
    await this.#query(client, "select pg_advisory_unlock($1::bigint)", [
      BigInt(`0x${LEADER_LOCK}`).toString(),
    ]);
  }

  async confirmLeadership(): Promise<boolean> {
    if (!this.#leading || this.#client === undefined) return false;
    const client = this.#client;
    try {
      const result = await this.#query<{ held: boolean }>(
        client,
        `select exists(
           select 1 from pg_locks
            where pid = pg_backend_pid() and locktype = 'advisory' and granted
              and classid = $1::oid and objid = $2::oid and objsubid = 1
         ) as held`,
        [LEADER_LOCK_HIGH, LEADER_LOCK_LOW],
      );
      if (result.rows[0]?.held === true) return true;
    } catch {
      // The session failed, which ended the leadership (see #lose).
      return false;
    }
    this.#loseLeadership();
    return false;
  }

  async evictStaleLeader(maxAgeMs: number): Promise<string | undefined> {
    const client = await this.#session();
    const result = await this.#query<{ node_id: string }>(
      client,
      `select n.node_id, pg_terminate_backend(a.pid) as terminated
         from pg_locks l
         join pg_stat_activity a on a.pid = l.pid
         join cluster_nodes n on a.application_name = $3 || n.node_id
        where l.locktype = 'advisory' and l.granted
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = $1::oid and l.objid = $2::oid and l.objsubid = 1
          and a.pid <> pg_backend_pid()
          and n.heartbeat_at < now() - ($4::double precision * interval '1 millisecond')`,
      [LEADER_LOCK_HIGH, LEADER_LOCK_LOW, SESSION_NAME_PREFIX, maxAgeMs],
    );
    const evicted = result.rows[0]?.node_id;
    if (evicted !== undefined) {
      this.#logger?.warn(
        { evicted, maxAgeMs },
        "ended the coordination session of a leader that stopped sending heartbeats",
      );
    }
    return evicted;
  }

  onLeadershipLost(listener: () => void): void {
    this.#lostListeners.push(listener);
  }

  async heartbeat(state: NodeState): Promise<void> {
    const client = await this.#session();
    await this.#query(
      client,
      `insert into cluster_nodes
         (node_id, api_address, version, started_at, heartbeat_at, sealed, leader)
       values ($1, $2, $3, $4, now(), $5, $6)
       on conflict (node_id) do update set
         api_address = excluded.api_address, version = excluded.version,
         started_at = excluded.started_at, heartbeat_at = now(),
         sealed = excluded.sealed, leader = excluded.leader`,
      [
        this.nodeId,
        state.apiAddress,
        state.version,
        state.startedAt,
        state.sealed,
        state.leader && this.#leading,
      ],
    );
  }

  /**
   * Lists the nodes. `leader` comes from the database's lock table, not
   * from the heartbeats, so a leader that died stops being named at once.
   */
  async members(): Promise<NodeRecord[]> {
    const client = await this.#session();
    const holder = await this.#query<{ name: string }>(
      client,
      `select a.application_name as name
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = $1::oid and l.objid = $2::oid and l.objsubid = 1`,
      [LEADER_LOCK_HIGH, LEADER_LOCK_LOW],
    );
    const holderName = holder.rows[0]?.name;
    const leaderId = holderName?.startsWith(SESSION_NAME_PREFIX)
      ? holderName.slice(SESSION_NAME_PREFIX.length)
      : undefined;
    const result = await this.#query<NodeRow>(
      client,
      `select node_id, api_address, version, started_at, heartbeat_at, sealed, leader,
              (extract(epoch from (now() - heartbeat_at)) * 1000)::bigint as age_ms
         from cluster_nodes order by node_id`,
    );
    return result.rows.map((row) => ({
      nodeId: row.node_id,
      apiAddress: row.api_address,
      version: row.version,
      startedAt: row.started_at.toISOString(),
      heartbeatAt: row.heartbeat_at.toISOString(),
      heartbeatAgeMs: Number(row.age_ms),
      sealed: row.sealed,
      leader: row.node_id === leaderId,
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#leading = false;
    // Ending the session releases the leader lock too. A server that does
    // not respond gets its socket closed, which ends the session as soon as
    // the server reads again.
    if (client !== undefined) await endClient(client);
  }

  /** Returns the open session, opening it when there is none. */
  #session(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<pg.Client> {
    const client = new pg.Client(this.#config);
    client.on("error", (error) => this.#lose(client, error));
    client.on("end", () => this.#lose(client, undefined));
    client.on("notification", (message) => this.#receive(message.payload));
    try {
      await client.connect();
      await client.query(`listen ${CHANGE_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw translate(error, "open the coordination session");
    }
    const reconnected = this.#reconnectDelayMs > RECONNECT_MIN_MS;
    if (!this.#opened) {
      // Another running node with this id would share the change feed's
      // filter and the audit chains, so the first session checks for one.
      const twins = await client
        .query<{ count: string }>(
          "select count(*) as count from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
          [`${SESSION_NAME_PREFIX}${this.nodeId}`],
        )
        .catch(async (error: unknown) => {
          await client.end().catch(() => {});
          throw translate(error, "check the node id");
        });
      if (Number(twins.rows[0]?.count ?? 0) > 0) {
        await client.end().catch(() => {});
        throw new KeywardError(
          "invalid_field",
          `node id "${this.nodeId}" is in use by another running node; give each node its own --node-id (after a crash, wait about 15 s for the old session to end)`,
          { field: "node_id" },
        );
      }
      this.#opened = true;
    }
    this.#client = client;
    this.#reconnectDelayMs = RECONNECT_MIN_MS;
    // Changes committed while no session listened were not announced here.
    if (reconnected) this.#listener?.(undefined);
    return client;
  }

  /** Handles the end of a session: leadership is gone, and the feed may have missed changes. */
  #lose(client: pg.Client, error: Error | undefined): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    if (this.#closed) return;
    this.#logger?.warn(
      { reason: error?.message ?? "connection ended", leading: this.#leading },
      "coordination session with postgresql lost; reconnecting",
    );
    this.#loseLeadership();
    this.#listener?.(undefined);
    this.#scheduleReconnect();
  }

  #loseLeadership(): void {
    if (!this.#leading) return;
    this.#leading = false;
    for (const listener of this.#lostListeners) listener();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#listener === undefined || this.#reconnectTimer !== undefined) return;
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, RECONNECT_MAX_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#session().catch((error: unknown) => {
        const cause = (error as { cause?: unknown }).cause;
        this.#logger?.warn(
          {
            reason: error instanceof Error ? error.message : String(error),
            cause: cause instanceof Error ? cause.message : undefined,
            driverCode: (error as { details?: { driverCode?: string } }).details?.driverCode,
          },
          "failed to reopen the coordination session with postgresql; retrying",
        );
        this.#scheduleReconnect();
      });
    }, delay);
    this.#reconnectTimer.unref();
  }

  /** Collects the keys of one burst of notifications and hands them over together. */
  #receive(payload: string | undefined): void {
    if (payload === undefined) return;
    const space = payload.indexOf(" ");
    if (space === -1 || payload.slice(0, space) === this.nodeId) return;
    this.#pendingKeys.push(payload.slice(space + 1));
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const keys = this.#pendingKeys;
      this.#pendingKeys = [];
      this.#listener?.(keys.includes("*") ? undefined : keys);
    });
  }

  /**
   * Runs one query after the queries queued before it; a failure ends the
   * session, because its state (lock, LISTEN) is then unknown.
   */
  #query<Row extends pg.QueryResultRow>(
    client: pg.Client,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<Row>> {
    const run = async () => {
      try {
        return await client.query<Row>(text, values);
      } catch (error) {
        this.#lose(client, error instanceof Error ? error : undefined);
        throw translate(error, "run a coordination query");
      }
    };
    const result = this.#queryQueue.then(run);
    this.#queryQueue = result.catch(() => {});
    return result;
  }
}

function closedError(): KeywardError {
  return new KeywardError("storage_failure", "the coordination session is closed");
}

function translate(error: unknown, operation: string): KeywardError {
  const code = (error as { code?: unknown } | null)?.code;
  const errorCode = isDatabaseUnavailable(error) ? "storage_unavailable" : "storage_failure";
  return new KeywardError(errorCode, `postgresql storage failed to ${operation}`, {
    cause: error,
    details: typeof code === "string" ? { driverCode: code } : undefined,
  });
}
