/**
 * The table layout every SQL backend shares, typed for Kysely.
 *
 * `entries.key` must compare in byte order of its UTF-8 encoding: SQLite's
 * default BINARY collation does, and PostgreSQL needs `COLLATE "C"` on the
 * column. `list` relies on that order for its range queries.
 */
export interface StorageDatabase {
  entries: EntriesTable;
}

export interface EntriesTable {
  key: string;
  value: Uint8Array;
}

/** The name of the table that records which migrations have run. */
export const MIGRATION_TABLE = "schema_migrations";
/** The name of the table Kysely's migrator locks while it runs migrations. */
export const MIGRATION_LOCK_TABLE = "schema_migrations_lock";
