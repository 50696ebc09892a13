import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import type { ScanOptions, TransactionOptions } from "../../storage/storage.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { ReadCache } from "../../util/read-cache.ts";

/** Records and folder listings kept decrypted in memory. */
const CACHE_ENTRIES = 1_000;

/**
 * Folders whose records are cached, because issuing reads them on every
 * request. Certificates, revocation entries and CRLs are not: they are
 * written once per certificate and read rarely.
 */
const CACHED_FOLDERS = ["issuers/", "keys/", "roles/", "config/"];

/** Folders whose listings are cached, with the same invalidation as their records. */
const CACHED_LISTS = new Set(["issuers", "keys", "roles"]);

/** The cached text of a record that is not stored. */
const ABSENT = "";

/**
 * The maximum number of records one batched transaction writes, unless a
 * single group of writes is larger and goes alone. It stays below the
 * barrier's headroom of 1,000 encryptions per transaction.
 */
const MAX_BATCH_WRITES = 900;

/** One record of a group of writes. */
export interface RecordWrite {
  path: string;
  value: unknown;
}

/** A group of writes waiting for the next batched transaction, stored together or not at all. */
interface QueuedGroup {
  writes: { path: string; text: string }[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

function isCached(path: string): boolean {
  return CACHED_FOLDERS.some((folder) => path.startsWith(folder));
}

/** Returns the cache name of the listing that contains `path`, when that listing is cached. */
function listingOf(path: string): string | undefined {
  const folder = path.slice(0, path.lastIndexOf("/"));
  return CACHED_LISTS.has(folder) ? `list:${folder}` : undefined;
}

/** Reads and writes of PKI records inside one storage transaction, with the store's paths and JSON encoding. */
export interface PkiTransaction {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

function decodeRecord<T>(value: Uint8Array | string | undefined, path: string): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(typeof value === "string" ? value : Buffer.from(value).toString("utf8")) as T;
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { path, reason: "stored PKI record is not valid JSON" },
    });
  }
}

/**
 * The PKI engine's records as JSON values behind the barrier, each under
 * `<mount>/<folder>/<id>` or `<mount>/config/<name>`. Changes to one
 * record run one at a time under a per-path lock.
 *
 * Issuers, keys, roles and configuration records, and the listings of
 * issuers, keys and roles, are cached decrypted in memory, as transit
 * caches its keys. Every write through this store, inside a transaction
 * or not, invalidates what it changes. The store belongs to one unsealed
 * period and rejects reads while the barrier is sealed.
 */
export class PkiStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();
  // NOTE: the cache assumes this process makes every change to the mount's
  // records. Several servers sharing one database must invalidate it.
  readonly #cache = new ReadCache(CACHE_ENTRIES);
  #queue: QueuedGroup[] = [];
  #draining = false;

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    if (!isCached(path)) return decodeRecord<T>(await this.#barrier.get(this.#prefix + path), path);
    if (this.#barrier.sealed) throw sealedError();
    // An absent record is cached as the empty string, which no JSON record is.
    const text = await this.#cache.read(path, async () => {
      const value = await this.#barrier.get(this.#prefix + path);
      return value === undefined ? ABSENT : Buffer.from(value).toString("utf8");
    });
    return text === ABSENT ? undefined : decodeRecord<T>(text, path);
  }

  async put(path: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    await this.#translate(
      () => this.#barrier.put(this.#prefix + path, Buffer.from(text, "utf8")),
      path,
    );
    this.#written(path, text);
  }

  async delete(path: string): Promise<void> {
    await this.#translate(() => this.#barrier.delete(this.#prefix + path), path);
    this.#written(path, undefined);
  }

  /** Lists the record names directly under `folder` (without the trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    const load = async () => {
      const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
      return children.filter((child) => !child.endsWith("/"));
    };
    if (!CACHED_LISTS.has(folder)) return load();
    if (this.#barrier.sealed) throw sealedError();
    const text = await this.#cache.read(`list:${folder}`, async () => JSON.stringify(await load()));
    return JSON.parse(text!) as string[];
  }

  /**
   * Lists one page of the record paths under `folder` (without the
   * trailing slash), at every depth, relative to the folder, in ascending
   * byte order (see `StorageReader.scan`).
   */
  async scan(folder: string, options: ScanOptions): Promise<string[]> {
    return this.#barrier.scan(`${this.#prefix}${folder}/`, options);
  }

  /**
   * Stores a group of records together with the groups queued in the same
   * event loop turn, in one transaction, and resolves once that
   * transaction has committed. Concurrent issuance then shares one commit
   * (and one sync to disk) instead of paying one each. When the
   * transaction fails, every group in it is rejected, so a group is always
   * stored whole or not at all.
   */
  async putBatched(writes: readonly RecordWrite[]): Promise<void> {
    const encoded = writes.map((write) => ({
      path: write.path,
      text: JSON.stringify(write.value),
    }));
    await new Promise<void>((resolve, reject) => {
      this.#queue.push({ writes: encoded, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Removes the next batch from the queue: whole groups, up to `MAX_BATCH_WRITES` writes unless the first group is larger. */
  #nextBatch(): QueuedGroup[] {
    let count = 0;
    let size = 0;
    for (const group of this.#queue) {
      if (count > 0 && size + group.writes.length > MAX_BATCH_WRITES) break;
      count += 1;
      size += group.writes.length;
    }
    return this.#queue.splice(0, count);
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#nextBatch();
      const writes = batch.flatMap((group) => group.writes);
      try {
        await this.#barrier.transaction(async (tx) => {
          for (const write of writes) {
            await tx.put(this.#prefix + write.path, Buffer.from(write.text, "utf8"));
          }
        });
      } catch (error) {
        for (const write of writes) this.#forget(write.path);
        const failure = isKeywardError(error)
          ? error
          : new KeywardError("storage_failure", "failed to store PKI records in one transaction", {
              cause: error,
            });
        for (const group of batch) group.reject(failure);
        continue;
      }
      for (const write of writes) this.#written(write.path, write.text);
      for (const group of batch) group.resolve();
    }
    this.#draining = false;
  }

  /** Records a completed write of `path` in the cache. */
  #written(path: string, text: string | undefined): void {
    if (isCached(path)) this.#cache.written(path, text);
    const listing = listingOf(path);
    if (listing) this.#cache.forget(listing);
  }

  /** Drops `path` from the cache after a write whose outcome is unknown. */
  #forget(path: string): void {
    this.#cache.forget(path);
    const listing = listingOf(path);
    if (listing) this.#cache.forget(listing);
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /**
   * Runs `work` in one storage transaction, so every write it makes is
   * stored or none is. The storage may run `work` again after a conflict,
   * so `work` must change nothing outside the transaction. It takes no
   * locks: callers hold the locks of the records they change. `options`
   * go to the storage (see `TransactionOptions`).
   */
  async transaction<T>(
    work: (tx: PkiTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    // Paths written in any attempt; their cache entries are dropped once the transaction ends.
    const touched = new Set<string>();
    try {
      return await this.#barrier.transaction((raw) => {
        const prefix = this.#prefix;
        return work({
          get: async <V>(path: string) => decodeRecord<V>(await raw.get(prefix + path), path),
          put: (path, value) => {
            touched.add(path);
            return raw.put(prefix + path, Buffer.from(JSON.stringify(value), "utf8"));
          },
          delete: (path) => {
            touched.add(path);
            return raw.delete(prefix + path);
          },
        });
      }, options);
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store PKI records in one transaction", {
        cause: error,
      });
    } finally {
      for (const path of touched) this.#forget(path);
    }
  }

  async #translate(write: () => Promise<void>, path: string): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#forget(path);
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a PKI record", {
        cause: error,
        details: { path },
      });
    }
  }
}
