import type {
  ScanOptions,
  Storage,
  StorageWriter,
  TransactionOptions,
} from "../../src/storage/storage.ts";

/** Storage rows read and written, for one storage key prefix or in all. */
export interface RowCounts {
  /** Rows returned by `get` (found or not, one each), `list` and `scan`. */
  read: number;
  /** Rows written by `put` and `delete`. */
  written: number;
}

/**
 * A Storage wrapper that counts the rows each call reads or writes, in
 * transactions too, so a test can assert that an operation touched only a
 * bounded number of rows. Counts are kept per first path segment (the
 * mount, `sys`, `core` …) and in all.
 */
export class CountingStorage implements Storage {
  readonly inner: Storage;
  readonly #counts = new Map<string, RowCounts>();

  constructor(inner: Storage) {
    this.inner = inner;
    if (inner.openCoordination !== undefined) {
      this.openCoordination = inner.openCoordination.bind(inner);
    }
  }

  readonly openCoordination?: Storage["openCoordination"];

  get kind(): string {
    return this.inner.kind;
  }

  /** Returns the rows counted under the first path segment `segment`, or in all without it. */
  counts(segment?: string): RowCounts {
    if (segment !== undefined) return { ...(this.#counts.get(segment) ?? { read: 0, written: 0 }) };
    const total: RowCounts = { read: 0, written: 0 };
    for (const counts of this.#counts.values()) {
      total.read += counts.read;
      total.written += counts.written;
    }
    return total;
  }

  /** Sets every count back to zero. */
  reset(): void {
    this.#counts.clear();
  }

  #count(key: string, kind: keyof RowCounts, rows: number): void {
    const segment = key.split("/", 1)[0] ?? "";
    const counts = this.#counts.get(segment) ?? { read: 0, written: 0 };
    counts[kind] += rows;
    this.#counts.set(segment, counts);
  }

  #wrap(writer: StorageWriter): StorageWriter {
    return {
      get: async (key) => {
        this.#count(key, "read", 1);
        return writer.get(key);
      },
      list: async (prefix) => {
        const children = await writer.list(prefix);
        this.#count(prefix, "read", children.length);
        return children;
      },
      scan: async (prefix: string, options: ScanOptions) => {
        const names = await writer.scan(prefix, options);
        this.#count(prefix, "read", names.length);
        return names;
      },
      put: async (key, value) => {
        this.#count(key, "written", 1);
        return writer.put(key, value);
      },
      delete: async (key) => {
        this.#count(key, "written", 1);
        return writer.delete(key);
      },
    };
  }

  readonly #direct = this.#wrap({
    get: (key) => this.inner.get(key),
    list: (prefix) => this.inner.list(prefix),
    scan: (prefix, options) => this.inner.scan(prefix, options),
    put: (key, value) => this.inner.put(key, value),
    delete: (key) => this.inner.delete(key),
  });

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#direct.get(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.#direct.list(prefix);
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return this.#direct.scan(prefix, options);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#direct.put(key, value);
  }

  delete(key: string): Promise<void> {
    return this.#direct.delete(key);
  }

  transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    return this.inner.transaction((tx) => work(this.#wrap(tx)), options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
