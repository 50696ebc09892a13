import { KeywardError } from "../../src/errors.ts";
import type { Barrier } from "../../src/seal/types.ts";
import type { ScanOptions, StorageWriter } from "../../src/storage/storage.ts";

/**
 * An in-memory Barrier for tests: a Map with the barrier's contract, and
 * switches that make writes fail with `storage_failure` or every call fail
 * with `sealed`.
 */
export class MemoryBarrier implements Barrier {
  readonly values = new Map<string, Uint8Array>();
  /** When true, put and delete throw `storage_failure` and change nothing. */
  failWrites = false;
  /** When true, every call throws `sealed`. */
  sealed = false;
  /** Number of successful writes (put and delete), for tests that count them. */
  writes = 0;

  #check(write: boolean): void {
    if (this.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    if (write && this.failWrites) {
      throw new KeywardError("storage_failure", "storage write failed (test switch)");
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check(false);
    const value = this.values.get(key);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async list(prefix: string): Promise<string[]> {
    this.#check(false);
    const children = new Set<string>();
    for (const key of this.values.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf("/");
      children.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return [...children].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  async scan(prefix: string, options: ScanOptions): Promise<string[]> {
    this.#check(false);
    const start = options.after === undefined ? undefined : Buffer.from(prefix + options.after);
    return [...this.values.keys()]
      .filter((key) => key.startsWith(prefix))
      .filter((key) => start === undefined || Buffer.compare(Buffer.from(key), start) > 0)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .slice(0, options.limit)
      .map((key) => key.slice(prefix.length));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#check(true);
    this.values.set(key, new Uint8Array(value));
    this.writes += 1;
  }

  async delete(key: string): Promise<void> {
    this.#check(true);
    this.values.delete(key);
    this.writes += 1;
  }

  /**
   * Applies the writes of `work` only when it resolves. NOTE: `list` inside
   * the transaction does not see the transaction's own staged writes.
   */
  async transaction<T>(work: (tx: StorageWriter) => Promise<T>): Promise<T> {
    this.#check(false);
    const staged = new Map<string, Uint8Array | undefined>();
    const tx: StorageWriter = {
      get: async (key) => (staged.has(key) ? staged.get(key) : this.get(key)),
      list: (prefix) => this.list(prefix),
      scan: (prefix, options) => this.scan(prefix, options),
      put: async (key, value) => {
        this.#check(true);
        staged.set(key, new Uint8Array(value));
      },
      delete: async (key) => {
        this.#check(true);
        staged.set(key, undefined);
      },
    };
    const result = await work(tx);
    for (const [key, value] of staged) {
      if (value === undefined) this.values.delete(key);
      else this.values.set(key, value);
      this.writes += 1;
    }
    return result;
  }
}
