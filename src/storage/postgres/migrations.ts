import { type Kysely, type Migration, Migrator, sql } from "kysely";
import { KeywardError } from "../../errors.ts";
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from "../sql/schema.ts";

/**
 * The PostgreSQL schema's migrations, applied in name order. The names match
 * the SQLite migrations that create the same tables. Never edit a migration
 * that has shipped; add a new one.
 */
export const POSTGRES_MIGRATIONS: Record<string, Migration> = {
  "0001_create_entries": {
    async up(db: Kysely<unknown>): Promise<void> {
      // COLLATE "C" compares keys by their UTF-8 bytes, as SQLite's BINARY
      // collation does, whatever the database's default collation is. The
      // primary key's btree index then serves the range scans of `list`
      // (`key >= prefix and key < bound order by key`) and `LIKE 'prefix%'`.
      await db.schema
        .createTable("entries")
        .addColumn("key", "text", (column) =>
          column.modifyFront(sql`collate "C"`).primaryKey().notNull(),
        )
        .addColumn("value", "bytea", (column) => column.notNull())
        .execute();
    },
  },
};

/**
 * Applies every pending migration, once even when several nodes start at
 * once. Kysely's migrator for PostgreSQL (0.28) takes a session advisory
 * lock, reads which migrations have run while holding it, and applies the
 * pending ones in one transaction, so a failed one leaves no partial
 * schema. It also rejects a database that has applied a migration this
 * build does not know (one written by a newer Keyward).
 * Throws `storage_failure` when a migration fails.
 */
export async function migratePostgres(db: Kysely<unknown>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => POSTGRES_MIGRATIONS },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const driverCode = (error as { code?: unknown }).code;
    throw new KeywardError("storage_failure", "postgresql storage failed to migrate its schema", {
      cause: error,
      details: typeof driverCode === "string" ? { driverCode } : undefined,
    });
  }
}
