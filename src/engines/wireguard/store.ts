import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import type { StorageWriter } from "../../storage/storage.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";

/** Reads and writes JSON records inside one barrier transaction. */
export interface RecordWriter {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

/**
 * The WireGuard engine's records as JSON values behind the barrier, under
 * `<mount>/`: `networks/<network>` and `peers/<network>/<peer>`. Changes
 * that touch several records run in one barrier transaction, so a failed
 * write leaves none of them changed.
 */
export class WireguardStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();
  /** The stored bytes and the frozen decoded value of each path read by `getShared`. */
  readonly #shared = new Map<string, { stored: Buffer; value: unknown }>();

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    return decode<T>(path, await this.#barrier.get(this.#prefix + path));
  }

  /**
   * Reads a record for callers that only read it: the value is deeply
   * frozen and shared between callers, and it is decoded again only when
   * the stored bytes changed since the last call for `path`. Use it for
   * records read on every request whose decoding is costly.
   */
  async getShared<T>(path: string): Promise<T | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    const stored = await this.#barrier.get(this.#prefix + path);
    if (stored === undefined) {
      this.#shared.delete(path);
      return undefined;
    }
    const cached = this.#shared.get(path);
    if (cached?.stored.equals(stored)) return cached.value as T;
    const value = deepFreeze(decode<T>(path, stored));
    this.#shared.set(path, { stored: Buffer.from(stored), value });
    return value;
  }

  /** Lists record names directly under `folder` (no trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    if (this.#barrier.sealed) throw sealedError();
    const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /** Runs `work` in one barrier transaction: every write in it is stored, or none is. */
  async transaction<T>(work: (writer: RecordWriter) => Promise<T>): Promise<T> {
    const prefix = this.#prefix;
    try {
      return await this.#barrier.transaction((tx: StorageWriter) =>
        work({
          get: async <V>(path: string) => decode<V>(path, await tx.get(prefix + path)),
          put: (path, value) => {
            this.#shared.delete(path);
            return tx.put(prefix + path, Buffer.from(JSON.stringify(value), "utf8"));
          },
          delete: (path) => {
            // Dropping the entry keeps the map to live records; the next read decodes again.
            this.#shared.delete(path);
            return tx.delete(prefix + path);
          },
        }),
      );
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a WireGuard engine record", {
        cause: error,
      });
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

function decode<T>(path: string, value: Uint8Array | undefined): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(value).toString("utf8")) as T;
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { path, reason: "stored WireGuard record is not valid JSON" },
    });
  }
}
