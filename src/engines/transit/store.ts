import { isKeywardError, KeywardError, notFound } from "../../errors.ts";
import type { ManagedKey } from "../../keys/types.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import {
  type ConflictRetryPolicy,
  nextConflictRetry,
  waitBeforeRetry,
  writeConflictError,
} from "../../storage/retry.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { ReadCache } from "../../util/read-cache.ts";
import {
  applyKeyChange,
  indexPrefix,
  type KeyIndexName,
  keysPrefix,
  readStoredKey,
  repairIndexEntries,
  type StoredKey,
} from "./key-index.ts";

/** Keys kept decrypted in memory per mount; the least recently used go first. */
const KEY_CACHE_ENTRIES = 10_000;

/**
 * The total length of the cached keys' JSON per mount (64 Mi characters),
 * so that a few keys with thousands of versions cannot fill the memory
 * within the entry limit.
 */
const KEY_CACHE_CHARS = 64 * 1024 * 1024;

/** Names read per storage scan when a whole list is built. */
const LIST_PAGE_SIZE = 1000;

/**
 * The retry limits of one `update` while other nodes keep changing the same
 * key. A node with several changes of the key queued commits them back to
 * back, so the other node can lose many times in a row.
 */
const UPDATE_RETRY: ConflictRetryPolicy = { maxAttempts: 50, budgetMs: 2_000 };

/** Maximum length of a key name, in characters. */
export const MAX_KEY_NAME_LENGTH = 128;

/**
 * Letters, digits, `_`, `.` and `-`, starting and ending with a letter, digit
 * or `_` (the key model's own rule), so a name is always one path segment and
 * never `.` or `..`.
 */
const KEY_NAME_PATTERN = /^\w(?:[\w.-]*\w)?$/;

/** Storage path of the record naming what refers to key `name` of `mount`. */
function referencePath(mount: string, name: string): string {
  return `${mount}/references/${name}`;
}

/** Throws `invalid_field` naming `field` unless `name` is a valid key name. */
export function validateKeyName(name: string, field = "name"): void {
  if (name.length === 0 || name.length > MAX_KEY_NAME_LENGTH || !KEY_NAME_PATTERN.test(name)) {
    throw new KeywardError(
      "invalid_field",
      `invalid key name: use 1 to ${MAX_KEY_NAME_LENGTH} letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_"`,
      { field },
    );
  }
}

/**
 * Transit keys as JSON values behind the barrier, at `<mount>/keys/<name>`,
 * with the index entries of `key-index.ts` beside them.
 *
 * Keys read recently are cached in memory as decrypted JSON, so an encrypt
 * or sign does not read storage and decrypt the key each time. This is the
 * same exposure as the keyring, which is in memory while unsealed. The
 * cache is bounded (`KEY_CACHE_ENTRIES`, `KEY_CACHE_CHARS`), so memory
 * grows with the keys in use, not with the keys stored; sweeps, counts and
 * lists read around it. The store belongs to one unsealed period: the
 * server builds new stores at each unseal and drops them at seal, cache
 * included.
 *
 * Changes to one key run one at a time under a per-key lock. A change
 * computes the new key from a snapshot, writes it together with its index
 * entries in one transaction, and only then becomes visible, so a failed
 * write leaves the stored key and its index entries exactly as they were.
 */
export class KeyStore {
  readonly #barrier: Barrier;
  readonly #mount: string;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();
  // NOTE: the cache assumes this process makes every change to the mount's
  // keys. Several servers sharing one database must invalidate it on
  // changes made elsewhere.
  readonly #cache = new ReadCache(KEY_CACHE_ENTRIES, KEY_CACHE_CHARS);

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#mount = mount;
    this.#prefix = keysPrefix(mount);
  }

  #path(name: string): string {
    return this.#prefix + name;
  }

  /** The number of keys cached and the total length of their JSON, for tests and diagnostics. */
  get cacheUsage(): { entries: number; chars: number } {
    return { entries: this.#cache.size, chars: this.#cache.chars };
  }

  /**
   * Drops the cached copies of keys that another node changed. A read that
   * started before this call does not put its older copy in the cache.
   */
  forgetCached(names: readonly string[]): void {
    for (const name of names) this.#cache.forget(name);
  }

  /** Reads a key, or `undefined` when none has that name. */
  async find(name: string): Promise<ManagedKey | undefined> {
    // Cached values stay in memory, so the cache itself must refuse a sealed server.
    if (this.#barrier.sealed) throw sealedError();
    const text = await this.#cache.read(name, async () => {
      const value = await this.#barrier.get(this.#path(name));
      return value === undefined ? undefined : Buffer.from(value).toString("utf8");
    });
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as ManagedKey;
    } catch (error) {
      throw new KeywardError("internal", "internal error", {
        cause: error,
        details: { key: name, reason: "stored key is not valid JSON" },
      });
    }
  }

  /** Reads a key, throwing `not_found` when none has that name. */
  async get(name: string): Promise<ManagedKey> {
    const key = await this.find(name);
    if (key === undefined) throw notFound(`key "${name}"`);
    return key;
  }

  /**
   * Reads a key and its JSON text from storage without the cache, for work
   * that visits many keys once (sweeps, counts) and must not push the keys
   * in use out of the cache.
   */
  async load(name: string): Promise<StoredKey | undefined> {
    return readStoredKey(this.#barrier, this.#mount, name);
  }

  /**
   * Returns the holder (such as "kmip") that refers to key `name`, or
   * undefined. `create` with `referencedBy` records it, and it stays until
   * the mount is removed: the key's deletion, replacement by a restore and
   * export settings are left to the holder.
   */
  async referenceOf(name: string): Promise<string | undefined> {
    const value = await this.#barrier.get(referencePath(this.#mount, name));
    return value === undefined ? undefined : Buffer.from(value).toString("utf8");
  }

  /**
   * Lists up to `limit` names of keys with a reference record (see
   * `referenceOf`) after `after`, in ascending byte order: one range read.
   * A name stays listed after its key is deleted.
   */
  async scanReferences(after: string | undefined, limit: number): Promise<string[]> {
    const prefix = referencePath(this.#mount, "");
    return this.#barrier.scan(prefix, after === undefined ? { limit } : { after, limit });
  }

  /**
   * Deletes key `name`, its index entries and its reference record in one
   * transaction, for a holder removing a key it made but never used.
   * `basedOn` is the key's JSON text as `load` returned it, or undefined
   * when the key was missing. When the stored key differs, the transaction
   * deletes nothing and returns false, so a change made meanwhile is kept.
   */
  async deleteReferenced(name: string, basedOn: string | undefined): Promise<boolean> {
    let deleted = false;
    await this.#translate(
      () =>
        this.#barrier.transaction(async (tx) => {
          deleted = false;
          const stored = await readStoredKey(tx, this.#mount, name);
          if (stored?.text !== basedOn) return;
          if (stored !== undefined)
            await applyKeyChange(tx, this.#mount, name, stored.key, undefined);
          await tx.delete(referencePath(this.#mount, name));
          deleted = true;
        }),
      [name],
    );
    if (deleted) this.#cache.written(name, undefined);
    return deleted;
  }

  /** Lists every key name in ascending order, reading storage in pages. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.scanNames(after, LIST_PAGE_SIZE);
      names.push(...page);
      if (page.length < LIST_PAGE_SIZE) return names;
      after = page[page.length - 1];
    }
  }

  /** Lists up to `limit` key names after `after`, in ascending byte order: one range read. */
  async scanNames(after: string | undefined, limit: number): Promise<string[]> {
    return this.#barrier.scan(this.#prefix, after === undefined ? { limit } : { after, limit });
  }

  /**
   * Lists up to `limit` entries (`<time>/<name>`) of an index after the
   * entry `after`, in time order: one range read.
   */
  async scanIndex(
    index: KeyIndexName,
    after: string | undefined,
    limit: number,
  ): Promise<string[]> {
    const prefix = indexPrefix(this.#mount, index);
    return this.#barrier.scan(prefix, after === undefined ? { limit } : { after, limit });
  }

  /**
   * Writes a key and its index entries in one transaction, which reads the
   * stored key first to know which entries to replace. Wraps a storage
   * error that is not a `KeywardError` as `storage_failure`.
   */
  async put(key: ManagedKey): Promise<void> {
    const text = JSON.stringify(key);
    await this.#translate(
      () =>
        this.#barrier.transaction(async (tx) => {
          const stored = await readStoredKey(tx, this.#mount, key.name);
          await applyKeyChange(tx, this.#mount, key.name, stored?.key, key, text);
        }),
      [key.name],
    );
    this.#cache.written(key.name, text);
  }

  /**
   * Stores `key` unless a key of that name exists, checking in the same
   * transaction, so two nodes creating one name at once keep one key and
   * no ciphertext is made under a key that is then replaced. Returns the
   * key stored afterwards: `key`, or the one that existed.
   *
   * With `syncToDisk: false` the commit is not synced to the disk (see
   * `TransactionOptions`). It is for a caller that makes a synced commit
   * right after, which makes this one durable too, because SQLite's
   * write-ahead log keeps commits in order.
   */
  async create(
    key: ManagedKey,
    options: { referencedBy?: string; syncToDisk?: boolean } = {},
  ): Promise<{ key: ManagedKey; created: boolean }> {
    const text = JSON.stringify(key);
    let existing: { key: ManagedKey; text: string } | undefined;
    const holder = options.referencedBy;
    const syncOptions = options.syncToDisk === false ? { syncToDisk: false } : undefined;
    await this.#translate(
      () =>
        this.#barrier.transaction(async (tx) => {
          existing = await readStoredKey(tx, this.#mount, key.name);
          if (existing !== undefined) return;
          await applyKeyChange(tx, this.#mount, key.name, undefined, key, text);
          // A new key that a holder uses gets its reference record in the same commit.
          if (holder !== undefined) {
            await tx.put(referencePath(this.#mount, key.name), Buffer.from(holder, "utf8"));
          }
        }, syncOptions),
      [key.name],
    );
    if (existing !== undefined) {
      this.#cache.written(key.name, existing.text);
      return { key: existing.key, created: false };
    }
    this.#cache.written(key.name, text);
    return { key, created: true };
  }

  /** Deletes a key and its index entries in one transaction. */
  async delete(name: string): Promise<void> {
    await this.#translate(
      () =>
        this.#barrier.transaction(async (tx) => {
          const stored = await readStoredKey(tx, this.#mount, name);
          await applyKeyChange(tx, this.#mount, name, stored?.key, undefined);
        }),
      [name],
    );
    this.#cache.written(name, undefined);
  }

  /**
   * Writes key changes in one transaction, for sweeps and for `update`.
   * Each change names the stored JSON it was computed from, and is skipped
   * when the key stored now differs, so a change made meanwhile (on this
   * node or another) is never lost. Returns the names written. Only keys
   * already in the cache are refreshed there. Callers own the keys' locks.
   */
  async writeBatch(changes: readonly KeyBatchChange[]): Promise<string[]> {
    const written: string[] = [];
    const texts = new Map<string, string | undefined>();
    await this.#translate(
      () =>
        this.#barrier.transaction(async (tx) => {
          // A backend may run the transaction again after a conflict, so start over.
          written.length = 0;
          texts.clear();
          for (const change of changes) {
            const stored = await readStoredKey(tx, this.#mount, change.name);
            if (stored === undefined || stored.text !== change.basedOn) continue;
            const text = change.next === undefined ? undefined : JSON.stringify(change.next);
            await applyKeyChange(tx, this.#mount, change.name, stored.key, change.next, text);
            written.push(change.name);
            texts.set(change.name, text);
          }
        }),
      changes.map((change) => change.name),
    );
    for (const [name, text] of texts) this.#cache.refreshed(name, text);
    return written;
  }

  /**
   * Deletes index storage keys that do not match key `name` any more and
   * writes the key's own entries again, in one transaction.
   */
  async repairIndex(name: string, staleKeys: readonly string[]): Promise<void> {
    await this.#translate(
      () => this.#barrier.transaction((tx) => repairIndexEntries(tx, this.#mount, name, staleKeys)),
      [name],
    );
  }

  /** Runs a write; after a failure the stored values are unknown, so the cached ones are dropped. */
  async #translate(write: () => Promise<void>, names: readonly string[]): Promise<void> {
    try {
      await write();
    } catch (error) {
      for (const name of names) this.#cache.forget(name);
      if (isKeywardError(error)) throw error;
      const what = names.length === 1 ? `key "${names[0]}"` : `${names.length} keys`;
      throw new KeywardError("storage_failure", `failed to store ${what}`, { cause: error });
    }
  }

  /**
   * Runs `work` while holding the lock of key `name`. Work queued for the same
   * name runs in call order; work for other names runs concurrently.
   */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /**
   * Runs `work` while holding the locks of every key in `names`. The locks
   * are taken in ascending order, so two callers never wait for each other
   * in a cycle.
   */
  async withLocks<T>(names: readonly string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(names)].sort();
    const acquire = (index: number): Promise<T> => {
      const name = sorted[index];
      if (name === undefined) return work();
      return this.#locks.run(name, () => acquire(index + 1));
    };
    return acquire(0);
  }

  /**
   * Reads key `name` under its lock, applies `change` to it and stores the
   * result, which it returns. `change` gets a freshly read copy, and nothing
   * outside this call sees the result before the write succeeds, so a failed
   * write leaves the stored key unchanged.
   *
   * The write goes through only if the stored key is still the one `change`
   * saw. Another node sharing the storage may have changed it, since the
   * lock holds only in this process: then the cached copy is dropped and
   * `change` runs again on the stored key after a random wait, within the
   * limits of `UPDATE_RETRY`. When those run out it throws `write_conflict`.
   */
  async update(
    name: string,
    change: (key: ManagedKey) => ManagedKey | Promise<ManagedKey>,
  ): Promise<ManagedKey> {
    return this.withLock(name, async () => {
      const startedAt = Date.now();
      for (let attempt = 1; ; attempt++) {
        const current = await this.get(name);
        const updated = await change(current);
        const written = await this.writeBatch([
          { name, basedOn: JSON.stringify(current), next: updated },
        ]);
        if (written.length === 1) return updated;
        this.#cache.forget(name);
        const delay = nextConflictRetry(UPDATE_RETRY, attempt, startedAt);
        if (delay === undefined) {
          throw writeConflictError("transit key update", attempt, undefined, { key: name });
        }
        await waitBeforeRetry(delay);
      }
    });
  }
}

/** One change of a `writeBatch`. */
export interface KeyBatchChange {
  name: string;
  /** The stored JSON text the change was computed from. */
  basedOn: string;
  /** The key to store, or undefined to delete the key. */
  next: ManagedKey | undefined;
}
