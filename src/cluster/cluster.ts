import type { Logger } from "pino";
import { KeywardError } from "../errors.ts";
import type { Coordination, NodeRecord } from "../storage/coordination.ts";

/** Time between heartbeats, and between attempts to take the leader lock, in milliseconds. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A node whose last heartbeat is older than this counts as down in `members()`, in milliseconds. */
export const NODE_DOWN_AFTER_MS = 10_000;
/**
 * A leader whose last heartbeat is older than this loses its lock to the
 * next node that tries to take it, in milliseconds. It covers a leader
 * that stopped (a paused process) while its connection stays open.
 */
export const STALE_LEADER_MS = 15_000;

export interface ClusterOptions {
  nodeId: string;
  /** The storage's coordination; absent for a single node (SQLite). */
  coordination?: Coordination;
  /** The address clients reach this node's API at; read at each heartbeat, because it is known only once the server listens. */
  apiAddress: () => string;
  version: string;
  sealed: () => boolean;
  logger: Logger;
  heartbeatIntervalMs?: number;
}

/** One node as `/v1/sys/ha-status` reports it. */
export interface ClusterMember extends NodeRecord {
  /** True for the node that sends the response. */
  self: boolean;
  /** True when the node sent a heartbeat within `NODE_DOWN_AFTER_MS`. */
  up: boolean;
}

/**
 * This node's place among the nodes sharing one storage: whether it leads
 * (runs the scheduled jobs), what other nodes changed, and who else is
 * there. On a single node (no coordination) the node leads whenever it
 * campaigns, and no change ever comes from elsewhere.
 *
 * A node campaigns while unsealed. Every `heartbeatIntervalMs` it records a
 * heartbeat and, unless it leads, tries to take the leader lock. It stops
 * leading when it resigns (at seal) or when its coordination session fails.
 */
export class Cluster {
  readonly nodeId: string;
  readonly #coordination: Coordination | undefined;
  readonly #options: ClusterOptions;
  readonly #logger: Logger;
  readonly #leadershipListeners: ((leader: boolean) => void)[] = [];
  readonly #startedAt = new Date().toISOString();
  #timer: NodeJS.Timeout | undefined;
  #campaigning = false;
  #leader = false;
  #ticking: Promise<void> | undefined;
  #lastFailure: string | undefined;
  #closed = false;

  constructor(options: ClusterOptions) {
    this.nodeId = options.nodeId;
    this.#coordination = options.coordination;
    this.#options = options;
    this.#logger = options.logger;
    this.#coordination?.onLeadershipLost(() => this.#setLeader(false));
  }

  /** True when several nodes may share the storage (Vault's `ha_enabled`). */
  get haEnabled(): boolean {
    return this.#coordination !== undefined;
  }

  /** True while this node runs the scheduled jobs. */
  get isLeader(): boolean {
    return this.#leader;
  }

  /** Registers a listener called each time this node starts or stops leading. */
  onLeadershipChange(listener: (leader: boolean) => void): void {
    this.#leadershipListeners.push(listener);
  }

  /**
   * Starts the heartbeats and the change feed. `onChanges` receives the
   * storage keys other nodes changed, or `undefined` when changes may have
   * been missed and every cache must go.
   */
  async start(onChanges: (keys: readonly string[] | undefined) => void): Promise<void> {
    if (this.#coordination === undefined) return;
    try {
      await this.#coordination.watch(onChanges);
    } catch (error) {
      // A node id already in use cannot be fixed by waiting: the server must not start.
      if (error instanceof KeywardError && error.field === "node_id") throw error;
      // Otherwise the heartbeat keeps trying to open the session.
      this.#logger.warn({ err: error }, "failed to start the change feed; retrying");
    }
    const interval = this.#options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.#timer = setInterval(() => this.#tick(), interval);
    this.#timer.unref();
    this.#tick();
  }

  /** Starts competing for leadership; a single node leads at once. */
  campaign(): void {
    this.#campaigning = true;
    if (this.#coordination === undefined) this.#setLeader(true);
    else this.#tick();
  }

  /** Stops leading and competing, as at seal. */
  async resign(): Promise<void> {
    this.#campaigning = false;
    this.#setLeader(false);
    await this.#coordination?.resign().catch((error: unknown) => {
      this.#logger.warn(
        { err: error },
        "failed to release the leader lock; it goes with the session",
      );
    });
  }

  /**
   * Confirms with the database that this node leads, right before work
   * meant for the leader alone. A single node leads while it campaigns.
   */
  async confirmLeadership(): Promise<boolean> {
    if (!this.#leader) return false;
    if (this.#coordination === undefined) return true;
    return this.#coordination.confirmLeadership();
  }

  /** Lists the nodes sharing the storage, this one first. */
  async members(): Promise<ClusterMember[]> {
    const self = this.#selfRecord();
    if (this.#coordination === undefined) return [{ ...self, self: true, up: true }];
    const records = await this.#coordination.members();
    const others = records
      .filter((record) => record.nodeId !== this.nodeId)
      .map((record) => ({
        ...record,
        self: false,
        up: record.heartbeatAgeMs <= NODE_DOWN_AFTER_MS,
      }));
    return [{ ...self, self: true, up: true }, ...others];
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#ticking;
    await this.resign();
    await this.#coordination?.close();
  }

  #selfRecord(): NodeRecord {
    const now = new Date().toISOString();
    return {
      nodeId: this.nodeId,
      apiAddress: this.#options.apiAddress(),
      version: this.#options.version,
      startedAt: this.#startedAt,
      heartbeatAt: now,
      heartbeatAgeMs: 0,
      sealed: this.#options.sealed(),
      leader: this.#leader,
    };
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#logger.info({ node: this.nodeId }, leader ? "became leader" : "stopped leading");
    for (const listener of this.#leadershipListeners) listener(leader);
  }

  /** One heartbeat and, when campaigning, one attempt at the leader lock. Never runs twice at once. */
  #tick(): void {
    const coordination = this.#coordination;
    if (coordination === undefined || this.#ticking !== undefined || this.#closed) return;
    this.#ticking = (async () => {
      try {
        if (this.#campaigning && !coordination.leading) {
          await coordination.evictStaleLeader(STALE_LEADER_MS);
          const locked = await coordination.tryLead();
          // A seal while the lock was being taken gives it back.
          if (locked && !this.#campaigning) await coordination.resign();
          else if (locked) this.#setLeader(true);
        }
        await coordination.heartbeat({
          apiAddress: this.#options.apiAddress(),
          version: this.#options.version,
          startedAt: this.#startedAt,
          sealed: this.#options.sealed(),
          leader: this.#leader,
        });
        if (this.#lastFailure !== undefined) {
          this.#logger.info({}, "coordination with the other nodes restored");
          this.#lastFailure = undefined;
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        // Logged once per distinct failure, not at every heartbeat.
        if (reason !== this.#lastFailure) {
          this.#logger.warn({ err: error }, "cluster heartbeat failed");
          this.#lastFailure = reason;
        }
      } finally {
        this.#ticking = undefined;
      }
    })();
  }
}
