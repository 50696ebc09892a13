import { randomBytes } from "node:crypto";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";

/** Engine types that can be mounted. */
export const ENGINE_TYPES = ["transit", "pki", "ssh", "wireguard", "wifi"] as const;
export type EngineType = (typeof ENGINE_TYPES)[number];

export interface MountEntry {
  /** Mount path without slashes, such as `transit` or `payments-transit`. */
  path: string;
  type: EngineType;
  description: string;
  accessor: string;
  createdAt: string;
  /** Lease TTLs set at mount or through `sys/mounts/<path>/tune`, in seconds; absent means the default. */
  config?: MountConfig;
}

export interface MountConfig {
  defaultLeaseTtlSeconds?: number;
  maxLeaseTtlSeconds?: number;
}

/** Storage key of the mount table, behind the barrier. */
export const MOUNT_TABLE_KEY = "sys/mounts";

/** Paths the API itself uses; an engine mounted there would shadow it. */
// `kmip/` keeps the KMIP server's objects, roles and CA, so no engine may mount there.
const RESERVED_PATHS = new Set([
  // The seal's own storage prefix (SEAL_RESERVED_PREFIX), which the barrier refuses to engines.
  "core",
  "sys",
  "auth",
  "identity",
  "cubbyhole",
  "audit",
  "devices",
  "kmip",
]);

const MOUNT_PATH = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Validates a mount path as given in `/v1/sys/mounts/<path>`, trailing slash allowed. */
export function normaliseMountPath(path: string): string {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  if (!MOUNT_PATH.test(trimmed)) {
    throw new KeywardError(
      "invalid_field",
      "mount path must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
      { field: "path" },
    );
  }
  if (RESERVED_PATHS.has(trimmed)) {
    throw new KeywardError("invalid_field", `mount path "${trimmed}" is reserved`, {
      field: "path",
    });
  }
  return trimmed;
}

/** The mount table: which engine serves which path. Stored behind the barrier. */
export class MountTable {
  readonly #barrier: Barrier;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async load(): Promise<MountEntry[] | undefined> {
    return MountTable.loadIn(this.#barrier);
  }

  /** Reads the table through `reader`, a transaction when the read must be part of one. */
  static async loadIn(reader: Pick<Barrier, "get">): Promise<MountEntry[] | undefined> {
    const value = await reader.get(MOUNT_TABLE_KEY);
    if (value === undefined) return undefined;
    return JSON.parse(Buffer.from(value).toString("utf8")) as MountEntry[];
  }

  /**
   * Reads the table and writes what `change` makes of it in one
   * transaction, so two nodes changing mounts at once never lose each
   * other's change. `change` may run more than once (the storage retries a
   * transaction after a conflict), and may throw to change nothing.
   * Returns the table written.
   */
  async update(change: (entries: MountEntry[] | undefined) => MountEntry[]): Promise<MountEntry[]> {
    return this.#barrier.transaction(async (tx) => {
      const value = await tx.get(MOUNT_TABLE_KEY);
      const stored =
        value === undefined
          ? undefined
          : (JSON.parse(Buffer.from(value).toString("utf8")) as MountEntry[]);
      const entries = change(stored);
      await tx.put(MOUNT_TABLE_KEY, Buffer.from(JSON.stringify(entries)));
      return entries;
    });
  }

  static entry(
    path: string,
    type: EngineType,
    description: string,
    now: Date,
    config?: MountConfig,
  ): MountEntry {
    return {
      path,
      type,
      description,
      accessor: `${type}_${randomBytes(4).toString("hex")}`,
      createdAt: now.toISOString(),
      ...(config && Object.keys(config).length > 0 ? { config } : {}),
    };
  }
}
