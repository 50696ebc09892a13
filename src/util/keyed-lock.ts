/**
 * Serialises async work per name: work queued for the same name runs in call
 * order, one at a time; work for different names runs concurrently.
 */
export class KeyedLock {
  /** The tail of each name's chain of queued work. It never rejects. */
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(name) ?? Promise.resolve();
    const current = previous.then(work);
    const tail = current.catch(() => undefined);
    this.#tails.set(name, tail);
    try {
      return await current;
    } finally {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    }
  }
}
