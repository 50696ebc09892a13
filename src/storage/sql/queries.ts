import { CompiledQuery, type Kysely } from "kysely";
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

/**
 * The point queries (read, write and delete one key), compiled once per
 * database. They run on every request, and building and compiling a Kysely
 * query each time costs more than SQLite takes to run it.
 */
export interface PointStatements {
  select: Statement;
  upsert: Statement;
  delete: Statement;
}

interface Statement {
  sql: string;
  /** For each placeholder in order, whether it takes the key or the value. */
  parameters: ("key" | "value")[];
}

/** Compiles the point queries in `db`'s SQL dialect. */
export function compilePointStatements(db: Db): PointStatements {
  // The sample values the query is compiled with identify each placeholder.
  const sampleKey = "\u0000key";
  const sampleValue = Buffer.from("\u0000value");
  const statement = (query: { compile(): CompiledQuery }): Statement => {
    const compiled = query.compile();
    return {
      sql: compiled.sql,
      parameters: compiled.parameters.map((parameter) => {
        if (parameter === sampleKey) return "key";
        if (parameter === sampleValue) return "value";
        throw new Error("a point query has a parameter that is neither the key nor the value");
      }),
    };
  };
  return {
    select: statement(db.selectFrom("entries").select("value").where("key", "=", sampleKey)),
    upsert: statement(
      db
        .insertInto("entries")
        .values({ key: sampleKey, value: sampleValue })
        .onConflict((conflict) => conflict.column("key").doUpdateSet({ value: sampleValue })),
    ),
    delete: statement(db.deleteFrom("entries").where("key", "=", sampleKey)),
  };
}

function run<Row>(db: Db, statement: Statement, key: string, value?: Buffer) {
  const parameters = statement.parameters.map((name) => (name === "key" ? key : value));
  return db.executeQuery<Row>(CompiledQuery.raw(statement.sql, parameters));
}

export async function selectValue(
  db: Db,
  statements: PointStatements,
  key: string,
): Promise<Uint8Array | undefined> {
  const result = await run<{ value: Uint8Array }>(db, statements.select, key);
  return result.rows[0]?.value;
}

export async function upsertValue(
  db: Db,
  statements: PointStatements,
  key: string,
  value: Uint8Array,
): Promise<void> {
  await run(db, statements.upsert, key, toBuffer(value));
}

export async function deleteValue(db: Db, statements: PointStatements, key: string): Promise<void> {
  await run(db, statements.delete, key);
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
 * Lists up to `limit` keys under `prefix` (empty or ending with `/`) after
 * the name `after`, relative to the prefix, in byte order: one range query
 * on the primary key.
 */
export async function scanKeys(
  db: Db,
  prefix: string,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  const cursor: KeyCursor =
    after === undefined
      ? { from: prefix, inclusive: true }
      : { from: prefix + after, inclusive: false };
  const keys = await selectKeys(db, cursor, prefixUpperBound(prefix), limit);
  return keys.map((key) => key.slice(prefix.length));
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
