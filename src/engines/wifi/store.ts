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
 * The Wi-Fi engine's records as JSON behind the barrier, under `<mount>/`:
 * `networks/<network>` and `keys/<network>/<key>`. Writes that touch several
 * records run in one transaction, so a failed write changes none of them.
 */
export class WifiStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    return decode<T>(path, await this.#barrier.get(this.#prefix + path));
  }

  /** Lists record names directly under `folder` (no trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    if (this.#barrier.sealed) throw sealedError();
    const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`. */
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
          put: (path, value) => tx.put(prefix + path, Buffer.from(JSON.stringify(value), "utf8")),
          delete: (path) => tx.delete(prefix + path),
        }),
      );
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a Wi-Fi engine record", {
        cause: error,
      });
    }
  }
}

function decode<T>(path: string, value: Uint8Array | undefined): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(value).toString("utf8")) as T;
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { path, reason: "stored Wi-Fi record is not valid JSON" },
    });
  }
}
