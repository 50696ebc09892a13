import { isKeywardError, KeywardError } from "../errors.ts";
import { sealedError } from "../seal/keyring-store.ts";
import type { Barrier } from "../seal/types.ts";
import type { StorageWriter } from "../storage/storage.ts";
import { KeyedLock } from "./keyed-lock.ts";

/** Reads and writes JSON records inside one barrier transaction. */
export interface RecordWriter {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

/** The barrier prefix of a JSON record store and the wording of its errors. */
export interface JsonRecordStoreOptions {
  /** The barrier prefix of every record, ending in "/". */
  prefix: string;
  /** The message of the `storage_failure` error when a transaction fails in storage. */
  storageFailureMessage: string;
  /** The `reason` detail of the `internal` error when a stored record is not valid JSON. */
  invalidJsonReason: string;
}

/**
 * Records kept as UTF-8 JSON behind the barrier under one prefix, with a
 * lock per name for read-modify-write sequences. Every read and list throws
 * `sealed` while the barrier is sealed. A record that is not valid JSON
 * raises `internal`, and a transaction that fails in storage raises
 * `storage_failure`. A `KeywardError` thrown inside a transaction passes
 * through unchanged.
 */
export class JsonRecordStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #options: JsonRecordStoreOptions;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier, options: JsonRecordStoreOptions) {
    this.#barrier = barrier;
    this.#prefix = options.prefix;
    this.#options = options;
  }

  async get<T>(path: string): Promise<T | undefined> {
    return this.decode<T>(path, await this.getStored(path));
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
          get: async <V>(path: string) => this.decode<V>(path, await tx.get(prefix + path)),
          put: (path, value) => {
            this.beforeWrite(path);
            return tx.put(prefix + path, Buffer.from(JSON.stringify(value), "utf8"));
          },
          delete: (path) => {
            this.beforeWrite(path);
            return tx.delete(prefix + path);
          },
        }),
      );
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", this.#options.storageFailureMessage, {
        cause: error,
      });
    }
  }

  /** Reads the stored bytes of the record at `path`, undefined when there is none. */
  protected async getStored(path: string): Promise<Uint8Array | undefined> {
    if (this.#barrier.sealed) throw sealedError();
    return this.#barrier.get(this.#prefix + path);
  }

  /** Parses stored bytes as JSON, returning undefined for a missing record. */
  protected decode<T>(path: string, stored: Uint8Array | undefined): T | undefined {
    if (stored === undefined) return undefined;
    try {
      return JSON.parse(Buffer.from(stored).toString("utf8")) as T;
    } catch (error) {
      throw new KeywardError("internal", "internal error", {
        cause: error,
        details: { path, reason: this.#options.invalidJsonReason },
      });
    }
  }

  /**
   * Called inside a transaction before each put or delete of `path`, before
   * the write is queued and whether or not the transaction commits. A
   * subclass that caches records drops `path` here.
   */
  protected beforeWrite(_path: string): void {}
}
