import type { Kysely } from "kysely";
import { prefixUpperBound } from "../keys.ts";
import type { StorageDatabase } from "./schema.ts";

/**
 * The queries behind the Storage interface, written once with Kysely for
 * every SQL dialect. They take either the database or an open transaction
 * (a Kysely `Transaction` is a `Kysely`) and expect validated keys.
 */
type Db = Kysely<StorageDatabase>;

/** Rows fetched per query while `listChildren` scans a prefix. */
const LIST_BATCH_SIZE = 256;

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value)
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export async function selectValue(db: Db, key: string): Promise<Uint8Array | undefined> {
  const row = await db
    .selectFrom("entries")
    .select("value")
    .where("key", "=", key)
    .executeTakeFirst();
  return row?.value;
}

export async function upsertValue(db: Db, key: string, value: Uint8Array): Promise<void> {
  const bytes = toBuffer(value);
  await db
    .insertInto("entries")
    .values({ key, value: bytes })
    .onConflict((conflict) => conflict.column("key").doUpdateSet({ value: bytes }))
    .execute();
}

export async function deleteValue(db: Db, key: string): Promise<void> {
  await db.deleteFrom("entries").where("key", "=", key).execute();
}

interface KeyCursor {
  /** The range's lower bound. */
  from: string;
  /** True when a key equal to `from` is in the range. */
  inclusive: boolean;
}

async function selectKeys(
  db: Db,
  cursor: KeyCursor,
  upper: string | undefined,
  limit: number,
): Promise<string[]> {
  let query = db
    .selectFrom("entries")
    .select("key")
    .where("key", cursor.inclusive ? ">=" : ">", cursor.from);
  if (upper !== undefined) query = query.where("key", "<", upper);
  const rows = await query.orderBy("key").limit(limit).execute();
  return rows.map((row) => row.key);
}

/**
 * Lists the direct children of `prefix` (empty or ending with `/`) in byte
 * order, folders with a trailing `/`.
 *
 * It scans the key range `[prefix, upper bound)` in batches, and skips a
 * folder's whole subtree with one new range query once the folder is listed,
 * so a folder holding many keys costs one extra query, not one row per key.
 * The output needs no sort: each listed name is a prefix of the key it came
 * from, and cutting keys at a `/` keeps their byte order.
 */
export async function listChildren(db: Db, prefix: string): Promise<string[]> {
  const upper = prefixUpperBound(prefix);
  const children: string[] = [];
  let cursor: KeyCursor = { from: prefix, inclusive: true };
  let folderToSkip: string | undefined;

  for (;;) {
    const keys = await selectKeys(db, cursor, upper, LIST_BATCH_SIZE);
    for (const key of keys) {
      if (folderToSkip !== undefined && key.startsWith(folderToSkip)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash === -1) {
        children.push(rest);
        cursor = { from: key, inclusive: false };
        continue;
      }
      const folder = rest.slice(0, slash + 1);
      children.push(folder);
      folderToSkip = prefix + folder;
      // Every key under the folder sorts below the folder path with its
      // trailing `/` replaced by `0`, the next character in byte order.
      cursor = { from: prefixUpperBound(folderToSkip)!, inclusive: true };
    }
    if (keys.length < LIST_BATCH_SIZE) return children;
  }
}
