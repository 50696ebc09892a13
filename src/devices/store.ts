import { isKeywardError, KeywardError } from "../errors.ts";
import { sealedError } from "../seal/keyring-store.ts";
import type { Barrier } from "../seal/types.ts";
import type { StorageWriter } from "../storage/storage.ts";
import { KeyedLock } from "../util/keyed-lock.ts";

/** Barrier prefix of every record of the device registry. */
export const DEVICES_PREFIX = "devices/";

/** Reads and writes JSON records inside one barrier transaction. */
export interface RecordWriter {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

/**
 * The device registry's records as JSON values behind the barrier, under
 * `devices/`. Changes that touch several records run in one barrier
 * transaction, so a failed write leaves none of them changed.
 */
export class DeviceStore {
  readonly #barrier: Barrier;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async get<T>(path: string): Promise<T | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    return decode<T>(path, await this.#barrier.get(DEVICES_PREFIX + path));
  }

  async put(path: string, value: unknown): Promise<void> {
    await this.transaction((writer) => writer.put(path, value));
  }

  /** Lists record names directly under `folder` (no trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    if (this.#barrier.sealed) throw sealedError();
    const children = await this.#barrier.list(`${DEVICES_PREFIX}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  /** Runs `work` in one barrier transaction: every write in it is stored, or none is. */
  async transaction<T>(work: (writer: RecordWriter) => Promise<T>): Promise<T> {
    try {
      return await this.#barrier.transaction((tx: StorageWriter) =>
        work({
          get: async <V>(path: string) => decode<V>(path, await tx.get(DEVICES_PREFIX + path)),
          put: (path, value) =>
            tx.put(DEVICES_PREFIX + path, Buffer.from(JSON.stringify(value), "utf8")),
          delete: (path) => tx.delete(DEVICES_PREFIX + path),
        }),
      );
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a device registry record", {
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
      details: { path, reason: "stored device registry record is not valid JSON" },
    });
  }
}
