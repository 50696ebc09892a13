/**
 * A bounded read-through cache of serialised values, for stores whose
 * values change only through the store itself.
 *
 * Values are kept as strings so that each reader parses its own copy and
 * no caller can change what another caller reads. A read that started
 * before any write does not fill the cache when it finishes, so a slow read
 * never replaces a newer value with an older one.
 * When the cache holds more than `maxEntries` entries or more than
 * `maxChars` characters in all, the least recently used entries go.
 */
export class ReadCache {
  readonly #maxEntries: number;
  readonly #maxChars: number;
  readonly #entries = new Map<string, string>();
  /** The total length of the cached strings. */
  #chars = 0;
  /** Writes since the cache was created. A read fills the cache only if none happened meanwhile. */
  #writes = 0;

  constructor(maxEntries: number, maxChars = Number.POSITIVE_INFINITY) {
    this.#maxEntries = maxEntries;
    this.#maxChars = maxChars;
  }

  /** The number of cached entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The total length of the cached strings, in UTF-16 code units. */
  get chars(): number {
    return this.#chars;
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
    this.#remove(name);
    if (text !== undefined) this.#store(name, text);
  }

  /**
   * Records a write of `name` like `written`, but caches `text` only when
   * `name` was cached already. Bulk writes use it, so that they do not push
   * the entries in use out of the cache.
   */
  refreshed(name: string, text: string | undefined): void {
    this.#writes += 1;
    const cached = this.#entries.has(name);
    this.#remove(name);
    if (cached && text !== undefined) this.#store(name, text);
  }

  /** Forgets `name` without recording a write, e.g. after a write whose outcome is unknown. */
  forget(name: string): void {
    this.#writes += 1;
    this.#remove(name);
  }

  #remove(name: string): void {
    const cached = this.#entries.get(name);
    if (cached === undefined) return;
    this.#entries.delete(name);
    this.#chars -= cached.length;
  }

  #store(name: string, text: string): void {
    this.#entries.set(name, text);
    this.#chars += text.length;
    while (this.#entries.size > this.#maxEntries || this.#chars > this.#maxChars) {
      // A text longer than maxChars on its own evicts everything, itself last.
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
  }
}
