import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { KeywardError } from "../errors.ts";
import { describePostgresUrl, openPostgresStorage } from "./postgres/index.ts";
import { openSqliteStorage } from "./sqlite/index.ts";
import type { Storage } from "./storage.ts";

export { openPostgresStorage, type PostgresStorageOptions } from "./postgres/index.ts";
export { openSqliteStorage, type SqliteStorageOptions } from "./sqlite/index.ts";
export type { Storage, StorageReader, StorageWriter } from "./storage.ts";

/** A storage location, with one variant per backend. */
export type StorageOptions = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/** The SQLite file name used inside a data directory. */
export const DATA_DIR_DATABASE_FILE = "keyward.db";

/**
 * Parses a storage location: `sqlite:PATH`, a `postgres://` or
 * `postgresql://` URL, or else a data directory, which contains a SQLite file
 * named `keyward.db`.
 */
export function parseStorageLocation(location: string): StorageOptions {
  if (location.startsWith("sqlite:")) {
    const path = location.slice("sqlite:".length);
    if (path === "") {
      throw new KeywardError(
        "invalid_request",
        "invalid storage location: sqlite: needs a file path",
      );
    }
    return { kind: "sqlite", path };
  }
  if (location.startsWith("postgres://") || location.startsWith("postgresql://")) {
    return { kind: "postgres", url: location };
  }
  if (location === "") {
    throw new KeywardError("invalid_request", "invalid storage location: it is empty");
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1];
  if (scheme !== undefined) {
    throw new KeywardError(
      "invalid_request",
      `invalid storage location: unknown scheme "${scheme}"; use a directory, sqlite:<file> or postgres://...`,
    );
  }
  return { kind: "sqlite", path: join(location, DATA_DIR_DATABASE_FILE) };
}

/** Settings for `openStorage` that apply to one backend only. */
export interface OpenStorageOptions {
  /** PostgreSQL: a PEM file of CA certificates for TLS to the database. */
  caFile?: string;
  /** PostgreSQL: receives warnings about the connection pool. */
  logger?: Logger;
  /** PostgreSQL: this node's id, which enables the coordination of several nodes. */
  nodeId?: string;
}

/**
 * Opens the storage a location string or options name. A data directory is
 * created with mode 0700 when it is missing.
 */
export async function openStorage(
  location: string | StorageOptions,
  options: OpenStorageOptions = {},
): Promise<Storage> {
  const parsed = typeof location === "string" ? parseStorageLocation(location) : location;
  switch (parsed.kind) {
    case "sqlite":
      if (typeof location === "string" && !location.startsWith("sqlite:")) {
        mkdirSync(location, { recursive: true, mode: 0o700 });
      }
      return openSqliteStorage({ path: parsed.path });
    case "postgres":
      return openPostgresStorage({
        url: parsed.url,
        ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
        ...(options.nodeId === undefined ? {} : { nodeId: options.nodeId }),
      });
  }
}

/**
 * Describes a storage location for messages and logs: a SQLite file path,
 * or a PostgreSQL URL without its user name and password.
 */
export function describeStorageLocation(location: string | StorageOptions): string {
  const parsed = typeof location === "string" ? parseStorageLocation(location) : location;
  return parsed.kind === "sqlite" ? `sqlite:${parsed.path}` : describePostgresUrl(parsed.url);
}
