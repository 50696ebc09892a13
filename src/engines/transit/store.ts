import { isKeywardError, KeywardError, notFound } from "../../errors.ts";
import type { ManagedKey } from "../../keys/types.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { ReadCache } from "../../util/read-cache.ts";

/** Keys kept decrypted in memory per mount; the least recently used go first. */
const KEY_CACHE_ENTRIES = 10_000;

/** Maximum length of a key name, in characters. */
export const MAX_KEY_NAME_LENGTH = 128;

/**
 * Letters, digits, `_`, `.` and `-`, starting and ending with a letter, digit
 * or `_` (the key model's own rule), so a name is always one path segment and
 * never `.` or `..`.
 */
const KEY_NAME_PATTERN = /^\w(?:[\w.-]*\w)?$/;

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
 * Transit keys as JSON values behind the barrier, at `<mount>/keys/<name>`.
 *
 * Keys read recently are cached in memory as decrypted JSON, so an encrypt
 * or sign does not read storage and decrypt the key each time. This is the
 * same exposure as the keyring, which is in memory while unsealed. The
 * store belongs to one unsealed period: the server builds new stores at
 * each unseal and drops them at seal, cache included. Changes to one key
 * run one at a time under a per-key lock. A change computes the new key from
 * a snapshot, writes it, and only then becomes visible, so a failed write
 * leaves the stored key exactly as it was.
 */
export class KeyStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();
  // NOTE: the cache assumes this process makes every change to the mount's
  // keys. Several servers sharing one database must invalidate it on
  // changes made elsewhere.
  readonly #cache = new ReadCache(KEY_CACHE_ENTRIES);

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/keys/`;
  }

  #path(name: string): string {
    return this.#prefix + name;
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

  /** Lists key names in ascending order. */
  async list(): Promise<string[]> {
    const children = await this.#barrier.list(this.#prefix);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Writes a key, wrapping a storage error that is not a `KeywardError` as `storage_failure`. */
  async put(key: ManagedKey): Promise<void> {
    const text = JSON.stringify(key);
    await this.#translate(
      () => this.#barrier.put(this.#path(key.name), Buffer.from(text, "utf8")),
      key.name,
    );
    this.#cache.written(key.name, text);
  }

  async delete(name: string): Promise<void> {
    await this.#translate(() => this.#barrier.delete(this.#path(name)), name);
    this.#cache.written(name, undefined);
  }

  /** Runs a write; after a failure the stored value is unknown, so the cached one is dropped. */
  async #translate(write: () => Promise<void>, name: string): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#cache.forget(name);
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", `failed to store key "${name}"`, { cause: error });
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
   * Reads key `name` under its lock, applies `change` to it and stores the
   * result, which it returns. `change` gets a freshly read copy, and nothing
   * outside this call sees the result before the write succeeds, so a failed
   * write leaves the stored key unchanged.
   */
  async update(
    name: string,
    change: (key: ManagedKey) => ManagedKey | Promise<ManagedKey>,
  ): Promise<ManagedKey> {
    return this.withLock(name, async () => {
      const updated = await change(await this.get(name));
      await this.put(updated);
      return updated;
    });
  }
}
