import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { ReadCache } from "../../util/read-cache.ts";

/** Records kept decrypted in memory: CA slots, roles and the revocation state, read on every sign. */
const CACHE_ENTRIES = 1_000;

/** Folders whose records are cached; certificate records are written once and rarely read. */
const CACHED_FOLDERS = ["ca/", "roles/", "revocation"];

/**
 * The SSH engine's records as JSON values behind the barrier, under
 * `<mount>/<path>`, and the KRL as raw bytes.
 *
 * CA slots, roles and the revocation state are cached decrypted in memory,
 * as transit caches its keys: the store belongs to one unsealed period and
 * rejects reads once the barrier is sealed. Changes to one record run one at
 * a time under a per-path lock through `update`.
 */
export class SshStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();
  // NOTE: the cache assumes this process makes every change to the mount's
  // records. Several servers sharing one database must invalidate it.
  readonly #cache = new ReadCache(CACHE_ENTRIES);

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  #cached(path: string): boolean {
    return CACHED_FOLDERS.some((folder) => path.startsWith(folder));
  }

  async get<T>(path: string): Promise<T | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    const load = async () => {
      const value = await this.#barrier.get(this.#prefix + path);
      return value === undefined ? undefined : Buffer.from(value).toString("utf8");
    };
    const text = this.#cached(path) ? await this.#cache.read(path, load) : await load();
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new KeywardError("internal", "internal error", {
        cause: error,
        details: { path, reason: "stored SSH record is not valid JSON" },
      });
    }
  }

  async put(path: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    await this.#translate(path, () =>
      this.#barrier.put(this.#prefix + path, Buffer.from(text, "utf8")),
    );
    if (this.#cached(path)) this.#cache.written(path, text);
  }

  async delete(path: string): Promise<void> {
    await this.#translate(path, () => this.#barrier.delete(this.#prefix + path));
    if (this.#cached(path)) this.#cache.written(path, undefined);
  }

  async getBytes(path: string): Promise<Buffer | undefined> {
    const value = await this.#barrier.get(this.#prefix + path);
    return value === undefined ? undefined : Buffer.from(value);
  }

  async putBytes(path: string, value: Uint8Array): Promise<void> {
    await this.#translate(path, () => this.#barrier.put(this.#prefix + path, value));
  }

  /** Lists record names directly under `folder` (no trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /**
   * Reads `path` under its lock, applies `change` and stores what it returns.
   * Other callers read the new value only after the write succeeds.
   */
  async update<T>(path: string, change: (current: T | undefined) => T | Promise<T>): Promise<T> {
    return this.withLock(path, async () => {
      const next = await change(await this.get<T>(path));
      await this.put(path, next);
      return next;
    });
  }

  async #translate(path: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#cache.forget(path);
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store an SSH engine record", {
        cause: error,
        details: { path },
      });
    }
  }
}
