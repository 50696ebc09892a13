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
  // PostgreSQL only: SQLite storage belongs to one process, which needs no
  // change feed and no node table.
  "0002_cluster": {
    async up(db: Kysely<unknown>): Promise<void> {
      // Every committed change to an entry is announced on the channel as
      // "<node id> <key>", the node id coming from the session setting
      // `keyward.node_id` that each node sets on its connections. Audit
      // records are left out: they are written with nearly every request
      // and no node caches them. A key too long for a notification's
      // payload is announced as "*", which makes every node drop its caches.
      await sql`
        create function keyward_notify_change() returns trigger language plpgsql as $body$
        declare
          changed text;
        begin
          if tg_op = 'DELETE' then changed := old.key; else changed := new.key; end if;
          if changed like 'sys/audit/store/%' or changed like 'sys/audit/chain/%' then
            return null;
          end if;
          if octet_length(changed) > 7000 then changed := '*'; end if;
          perform pg_notify(
            'keyward_changes',
            coalesce(current_setting('keyward.node_id', true), '') || ' ' || changed
          );
          return null;
        end
        $body$
      `.execute(db);
      await sql`
        create trigger entries_notify_change
        after insert or update or delete on entries
        for each row execute function keyward_notify_change()
      `.execute(db);
      await db.schema
        .createTable("cluster_nodes")
        .addColumn("node_id", "text", (column) => column.primaryKey().notNull())
        .addColumn("api_address", "text", (column) => column.notNull())
        .addColumn("version", "text", (column) => column.notNull())
        .addColumn("started_at", "timestamptz", (column) => column.notNull())
        .addColumn("heartbeat_at", "timestamptz", (column) => column.notNull())
        .addColumn("sealed", "boolean", (column) => column.notNull())
        .addColumn("leader", "boolean", (column) => column.notNull())
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
