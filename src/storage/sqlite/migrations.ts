import { type Kysely, type Migration, Migrator, sql } from "kysely";
import { KeywardError } from "../../errors.ts";
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from "../sql/schema.ts";

/**
 * The SQLite schema's migrations, applied in name order. Kysely's migrator
 * records each applied name in `schema_migrations`, and refuses to run
 * against a database that has applied a migration this build does not know
 * (one written by a newer Keyward).
 *
 * Never edit a migration that has shipped; add a new one.
 */
export const SQLITE_MIGRATIONS: Record<string, Migration> = {
  "0001_create_entries": {
    async up(db: Kysely<unknown>): Promise<void> {
      // WITHOUT ROWID stores rows in key order, so a range scan over a
      // prefix reads adjacent pages.
      await db.schema
        .createTable("entries")
        .addColumn("key", "text", (column) => column.primaryKey().notNull())
        .addColumn("value", "blob", (column) => column.notNull())
        .modifyEnd(sql`without rowid`)
        .execute();
    },
  },
};

/** Applies every pending migration. Throws `storage_failure` when one fails. */
export async function migrateSqlite(db: Kysely<unknown>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => SQLITE_MIGRATIONS },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new KeywardError("storage_failure", "sqlite storage failed to migrate its schema", {
      cause: error,
    });
  }
}
