import { KeywardError } from "../../src/errors.ts";
import type {
  ScanOptions,
  Storage,
  StorageWriter,
  TransactionOptions,
} from "../../src/storage/storage.ts";

/**
 * A Storage wrapper that tests can tell to fail. While `failWrites` is on,
 * `put` and `delete` reject with `storage_failure`, and so does every
 * transaction: its work runs, its writes reject, and if the work still
 * resolves the transaction rolls back and rejects. While `failReads` is on,
 * `get` and `list` reject too. Otherwise every call goes to the wrapped
 * storage.
 */
export class FailingStorage implements Storage {
  readonly inner: Storage;
  failWrites = false;
  failReads = false;
  /** How many calls have been made to fail so far. */
  failures = 0;
  /** A key fragment: the next transaction that writes a key containing it fails at its commit. */
  #failTransactionWriting: string | undefined;

  constructor(inner: Storage) {
    this.inner = inner;
  }

  get kind(): string {
    return this.inner.kind;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#read(() => this.inner.get(key));
  }

  list(prefix: string): Promise<string[]> {
    return this.#read(() => this.inner.list(prefix));
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return this.#read(() => this.inner.scan(prefix, options));
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#write(() => this.inner.put(key, value));
  }

  delete(key: string): Promise<void> {
    return this.#write(() => this.inner.delete(key));
  }

  /**
   * Makes the next transaction that puts or deletes a key containing
   * `fragment` fail once, after its work ran, so it rolls back. Other
   * transactions and later ones are not affected.
   */
  failNextTransactionWriting(fragment: string): void {
    this.#failTransactionWriting = fragment;
  }

  transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    return this.inner.transaction(async (tx) => {
      const written: string[] = [];
      const result = await work(this.#wrapWriter(tx, written));
      if (this.failWrites) throw this.#failure("commit a transaction");
      const fragment = this.#failTransactionWriting;
      if (fragment !== undefined && written.some((key) => key.includes(fragment))) {
        this.#failTransactionWriting = undefined;
        throw this.#failure("commit a transaction");
      }
      return result;
    }, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Wraps a transaction's writer; `written` collects the keys it puts or deletes. */
  #wrapWriter(tx: StorageWriter, written: string[]): StorageWriter {
    return {
      get: (key) => this.#read(() => tx.get(key)),
      list: (prefix) => this.#read(() => tx.list(prefix)),
      scan: (prefix, options) => this.#read(() => tx.scan(prefix, options)),
      put: (key, value) => {
        written.push(key);
        return this.#write(() => tx.put(key, value));
      },
      delete: (key) => {
        written.push(key);
        return this.#write(() => tx.delete(key));
      },
    };
  }

  #failure(operation: string): KeywardError {
    this.failures += 1;
    return new KeywardError("storage_failure", `test storage failed to ${operation}`, {
      cause: new Error("failure injected by FailingStorage"),
    });
  }

  async #read<T>(call: () => Promise<T>): Promise<T> {
    if (this.failReads) throw this.#failure("read");
    return call();
  }

  async #write<T>(call: () => Promise<T>): Promise<T> {
    if (this.failWrites) throw this.#failure("write");
    return call();
  }
}
