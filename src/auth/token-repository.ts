import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import type { StorageWriter } from "../storage/storage.ts";
import { freezeRecord, type TokenRecord } from "./token-record.ts";

/** Token records by hash: `auth/token/id/<hash>`. */
/** Storage prefix of everything the token store keeps. */
export const TOKEN_STORAGE_PREFIX = "auth/token/";
const ID_PREFIX = "auth/token/id/";
/** Accessor index: `auth/token/accessor/<accessor>` contains the token's hash. */
const ACCESSOR_PREFIX = "auth/token/accessor/";
/** Child index: `auth/token/parent/<parent hash>/<child hash>` exists for each child. */
const PARENT_PREFIX = "auth/token/parent/";

/** Maximum number of records kept in memory. The oldest are dropped first. */
const MAX_CACHED_RECORDS = 10_000;

const EMPTY = new Uint8Array(0);

function encode(record: TokenRecord): Uint8Array {
  return Buffer.from(JSON.stringify(record), "utf8");
}

function decode(key: string, value: Uint8Array): TokenRecord {
  try {
    return freezeRecord(JSON.parse(Buffer.from(value).toString("utf8")) as TokenRecord);
  } catch (error) {
    throw new KeywardError("storage_failure", `the token record at ${key} is not valid JSON`, {
      cause: error,
    });
  }
}

function childKey(parentHash: string, childHash: string): string {
  return `${PARENT_PREFIX}${parentHash}/${childHash}`;
}

/**
 * The token store's layout in the barrier: records, the accessor index and
 * the child index, with an in-memory cache of records. Every write goes
 * through this class, which keeps the cache in step. The caller serialises
 * writes, and reads may run at any time.
 */
export class TokenRepository {
  readonly #barrier: Barrier;
  readonly #cache = new Map<string, TokenRecord>();

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async load(hash: string): Promise<TokenRecord | undefined> {
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached;
    const key = ID_PREFIX + hash;
    const stored = await this.#barrier.get(key);
    if (stored === undefined) return undefined;
    const record = decode(key, stored);
    this.#remember(record);
    return record;
  }

  async hashForAccessor(accessor: string): Promise<string | undefined> {
    const stored = await this.#barrier.get(ACCESSOR_PREFIX + accessor);
    return stored === undefined ? undefined : Buffer.from(stored).toString("utf8");
  }

  /** Stores a new record with its index entries in one transaction. Throws `already_exists` when the hash is taken. */
  async insert(record: TokenRecord): Promise<void> {
    await this.#barrier.transaction(async (tx) => {
      if ((await tx.get(ID_PREFIX + record.hash)) !== undefined) {
        throw new KeywardError("already_exists", "a token with this ID already exists", {
          field: "id",
        });
      }
      await tx.put(ID_PREFIX + record.hash, encode(record));
      await tx.put(ACCESSOR_PREFIX + record.accessor, Buffer.from(record.hash, "utf8"));
      if (record.parentHash !== "") await tx.put(childKey(record.parentHash, record.hash), EMPTY);
    });
    this.#remember(record);
  }

  /** Replaces a record whose hash, accessor and parent are unchanged. */
  async update(record: TokenRecord): Promise<void> {
    await this.#barrier.put(ID_PREFIX + record.hash, encode(record));
    this.#remember(record);
  }

  /**
   * Counts one use of a use-limited token in a transaction that reads the
   * stored record, so nodes sharing the storage never grant more uses than
   * the limit between them. The last use deletes the record in the same
   * transaction (the caller then removes the descendants). Returns the
   * record after the use, with `last` set on the last use, or undefined
   * when the token is gone or used up.
   */
  async takeUse(hash: string): Promise<{ record: TokenRecord; last: boolean } | undefined> {
    let result: { record: TokenRecord; last: boolean } | undefined;
    await this.#barrier.transaction(async (tx) => {
      // A storage that retries a conflicting transaction runs this again from the start.
      result = undefined;
      const current = await this.#readIn(tx, hash);
      if (current === undefined) return;
      if (current.numUses === 0) {
        result = { record: current, last: false };
        return;
      }
      const record = freezeRecord({ ...current, numUses: current.numUses - 1 });
      const last = record.numUses === 0;
      if (last) await this.#deleteRecord(tx, current);
      else await tx.put(ID_PREFIX + hash, encode(record));
      result = { record, last };
    });
    const taken = result as { record: TokenRecord; last: boolean } | undefined;
    if (taken === undefined || taken.last) this.#cache.delete(hash);
    else this.#remember(taken.record);
    return taken;
  }

  /** Hashes of the direct children of a token. */
  async children(hash: string): Promise<string[]> {
    const entries = await this.#barrier.list(`${PARENT_PREFIX}${hash}/`);
    return entries.filter((entry) => !entry.endsWith("/"));
  }

  /**
   * Deletes a token and all its descendants in one transaction, and returns
   * the records deleted (a child whose record is already gone is skipped).
   * The tree is read before the transaction, because storage may not be
   * called outside a transaction while one runs. The caller's write lock
   * keeps the tree from changing in between.
   */
  async deleteTree(hash: string): Promise<TokenRecord[]> {
    const childrenOf = new Map<string, string[]>();
    const queue = [hash];
    while (queue.length > 0) {
      const next = queue.shift() as string;
      if (childrenOf.has(next)) continue;
      const children = await this.children(next);
      childrenOf.set(next, children);
      queue.push(...children);
    }

    const deleted: TokenRecord[] = [];
    await this.#barrier.transaction(async (tx) => {
      // A storage that retries a conflicting transaction runs this again from the start.
      deleted.length = 0;
      for (const [current, children] of childrenOf) {
        const record = await this.#readIn(tx, current);
        if (record !== undefined) {
          deleted.push(record);
          await this.#deleteRecord(tx, record);
        }
        for (const child of children) await tx.delete(childKey(current, child));
      }
    });
    for (const current of childrenOf.keys()) this.#cache.delete(current);
    return deleted;
  }

  /**
   * Deletes one token and makes its direct children orphans, in one
   * transaction. Returns the deleted record, or undefined when it was gone.
   */
  async deleteOrphaningChildren(hash: string): Promise<TokenRecord | undefined> {
    const children = await this.children(hash);
    const orphaned: TokenRecord[] = [];
    let deleted: TokenRecord | undefined;
    await this.#barrier.transaction(async (tx) => {
      // A storage that retries a conflicting transaction runs this again from the start.
      orphaned.length = 0;
      deleted = await this.#readIn(tx, hash);
      if (deleted !== undefined) await this.#deleteRecord(tx, deleted);
      for (const child of children) {
        await tx.delete(childKey(hash, child));
        const record = await this.#readIn(tx, child);
        if (record === undefined) continue;
        const orphan = freezeRecord({ ...record, parentHash: "" });
        await tx.put(ID_PREFIX + child, encode(orphan));
        orphaned.push(orphan);
      }
    });
    this.#cache.delete(hash);
    for (const record of orphaned) this.#remember(record);
    return deleted;
  }

  async listHashes(): Promise<string[]> {
    return (await this.#barrier.list(ID_PREFIX)).filter((entry) => !entry.endsWith("/"));
  }

  async listAccessors(): Promise<string[]> {
    return (await this.#barrier.list(ACCESSOR_PREFIX)).filter((entry) => !entry.endsWith("/"));
  }

  clearCache(): void {
    this.#cache.clear();
  }

  async #readIn(tx: StorageWriter, hash: string): Promise<TokenRecord | undefined> {
    const key = ID_PREFIX + hash;
    const stored = await tx.get(key);
    return stored === undefined ? undefined : decode(key, stored);
  }

  async #deleteRecord(tx: StorageWriter, record: TokenRecord): Promise<void> {
    await tx.delete(ID_PREFIX + record.hash);
    await tx.delete(ACCESSOR_PREFIX + record.accessor);
    if (record.parentHash !== "") await tx.delete(childKey(record.parentHash, record.hash));
  }

  #remember(record: TokenRecord): void {
    this.#cache.delete(record.hash);
    this.#cache.set(record.hash, record);
    if (this.#cache.size > MAX_CACHED_RECORDS) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }
}
