/**
 * A bounded read-through cache of serialised values, for stores whose
 * values change only through the store itself.
 *
 * Values are kept as strings so that each reader parses its own copy and
 * no caller can change what another caller reads. A read that started
 * before any write does not fill the cache when it finishes, so a slow read
 * never replaces a newer value with an older one.
 * When the cache is full, the least recently used entry goes.
 */
export class ReadCache {
  readonly #maxEntries: number;
  readonly #entries = new Map<string, string>();
  /** Writes since the cache was created. A read fills the cache only if none happened meanwhile. */
  #writes = 0;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  /**
   * Returns the cached text of `name`, or calls `load` and caches what it
   * returns. `undefined` (nothing stored) is not cached.
   */
  async read(name: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const cached = this.#entries.get(name);
    if (cached !== undefined) {
      // Re-inserting moves the entry to the end, which Map iteration treats as newest.
      this.#entries.delete(name);
      this.#entries.set(name, cached);
      return cached;
    }
    const writesBefore = this.#writes;
    const loaded = await load();
    if (loaded !== undefined && this.#writes === writesBefore) {
      this.#store(name, loaded);
    }
    return loaded;
  }

  /** Records that `name` now contains `text` in storage (or nothing, for `undefined`). */
  written(name: string, text: string | undefined): void {
    this.#writes += 1;
    this.#entries.delete(name);
    if (text !== undefined) this.#store(name, text);
  }

  /** Forgets `name` without recording a write, e.g. after a write whose outcome is unknown. */
  forget(name: string): void {
    this.#writes += 1;
    this.#entries.delete(name);
  }

  #store(name: string, text: string): void {
    this.#entries.set(name, text);
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}
