import { isKeywardError, KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";

/** Reads and writes of PKI records inside one storage transaction, with the store's paths and JSON encoding. */
export interface PkiTransaction {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

function decodeRecord<T>(value: Uint8Array | undefined, path: string): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(value).toString("utf8")) as T;
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { path, reason: "stored PKI record is not valid JSON" },
    });
  }
}

/**
 * The PKI engine's records as JSON values behind the barrier, each under
 * `<mount>/<folder>/<id>` or `<mount>/config/<name>`. Reads always go
 * through the barrier, so a sealed server rejects them. Changes to one
 * record run one at a time under a per-path lock.
 */
export class PkiStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    return decodeRecord<T>(await this.#barrier.get(this.#prefix + path), path);
  }

  async put(path: string, value: unknown): Promise<void> {
    const bytes = Buffer.from(JSON.stringify(value), "utf8");
    await this.#translate(() => this.#barrier.put(this.#prefix + path, bytes), path);
  }

  async delete(path: string): Promise<void> {
    await this.#translate(() => this.#barrier.delete(this.#prefix + path), path);
  }

  /** Lists the record names directly under `folder` (without the trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /**
   * Runs `work` in one storage transaction, so every write it makes is
   * stored or none is. The storage may run `work` again after a conflict,
   * so `work` must change nothing outside the transaction. It takes no
   * locks: callers hold the locks of the records they change.
   */
  async transaction<T>(work: (tx: PkiTransaction) => Promise<T>): Promise<T> {
    try {
      return await this.#barrier.transaction((raw) => {
        const prefix = this.#prefix;
        return work({
          get: async <V>(path: string) => decodeRecord<V>(await raw.get(prefix + path), path),
          put: (path, value) => raw.put(prefix + path, Buffer.from(JSON.stringify(value), "utf8")),
          delete: (path) => raw.delete(prefix + path),
        });
      });
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store PKI records in one transaction", {
        cause: error,
      });
    }
  }

  async #translate(write: () => Promise<void>, path: string): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a PKI record", {
        cause: error,
        details: { path },
      });
    }
  }
}
