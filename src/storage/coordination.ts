/**
 * The coordination of Keyward nodes sharing one database: a feed of the
 * storage keys other nodes changed, a leader lock for scheduled
 * work, and a table of nodes with their last heartbeat. PostgreSQL storage
 * offers it. SQLite does not, because one process opens the file exclusively.
 */
export interface Coordination {
  /** This node's id, as other nodes see it in the change feed and the node table. */
  readonly nodeId: string;
  /**
   * Starts the change feed. `listener` receives, in batches soon after each
   * commit, the storage keys that other nodes wrote or deleted. It receives
   * `undefined` after the feed's connection was lost and opened again,
   * because changes may have been missed and every cache must go.
   */
  watch(listener: (keys: readonly string[] | undefined) => void): Promise<void>;
  /** Tries to take the leader lock; true when this node holds it afterwards. */
  tryLead(): Promise<boolean>;
  /** Releases the leader lock if this node holds it. */
  resign(): Promise<void>;
  /**
   * Checks with the database that this node still holds the leader lock,
   * so work meant for the leader alone starts only while it does. A node
   * paused long enough for another to take over learns it here.
   */
  confirmLeadership(): Promise<boolean>;
  /**
   * Ends the coordination session of a leader whose last heartbeat is older
   * than `maxAgeMs`, which frees the lock for another node. A leader that
   * stopped without losing its connection (a paused process) would
   * otherwise keep the lock. Returns the node id evicted, if any.
   */
  evictStaleLeader(maxAgeMs: number): Promise<string | undefined>;
  /** True while this node holds the leader lock. */
  readonly leading: boolean;
  /** Registers a listener called when this node loses the leader lock without resigning (its connection failed). */
  onLeadershipLost(listener: () => void): void;
  /** Records this node's state with the database's current time as its heartbeat. */
  heartbeat(state: NodeState): Promise<void>;
  /** Lists every node that has sent a heartbeat, with the age of its last one. */
  members(): Promise<NodeRecord[]>;
  /** Resigns, stops the feed and closes the connection. */
  close(): Promise<void>;
}

/** The state a node reports about itself with each heartbeat. */
export interface NodeState {
  /** The address clients reach this node's API at, such as `https://10.0.0.5:8200`. */
  apiAddress: string;
  version: string;
  /** When this process started (ISO 8601). */
  startedAt: string;
  sealed: boolean;
  /** True while the node holds the leader lock. */
  leader: boolean;
}

/** One node as the node table records it. */
export interface NodeRecord extends NodeState {
  nodeId: string;
  /** When the last heartbeat arrived, by the database's clock (ISO 8601). */
  heartbeatAt: string;
  /** Milliseconds since the last heartbeat, by the database's clock. */
  heartbeatAgeMs: number;
}

/** Letters, digits, `.`, `_` and `-`, 1 to 64 characters, starting with a letter or digit. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
