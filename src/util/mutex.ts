/**
 * A minimal async mutex: `run` executes its functions one at a time, in call
 * order. Keyward has no dependency that provides one, so it lives here.
 *
 * It is not re-entrant: a function running under `run` that calls `run` on
 * the same mutex and awaits the result waits forever.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `work` after every earlier `run` call has settled, and returns its result. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
