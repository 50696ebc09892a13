import { Mutex } from "../util/mutex.ts";

/** Resolves after the I/O callbacks of the current event-loop turn have run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Writes waiting for the next commit, and that commit's outcome. */
interface Batch<T> {
  items: T[];
  /** Resolves with the error of each item that failed alone, by index, and rejects when the commit failed. */
  done: Promise<Map<number, unknown>>;
}

/**
 * Stores small writes in groups (group commit): writes that arrive while a
 * commit runs, or in the same event-loop turn, are stored together by one
 * call of `commit`, which runs them in one transaction. Each caller
 * resolves only after that transaction committed, so a resolved write is
 * as durable as one committed alone. Commits run one at a time, in order,
 * so writes to the same record are stored in call order.
 */
export class GroupCommit<T> {
  readonly #commit: (items: readonly T[]) => Promise<Map<number, unknown>>;
  readonly #queue = new Mutex();
  /** The batch that has not started yet, which every write joins until it starts. */
  #pending: Batch<T> | undefined;

  /**
   * `commit` stores every item in one transaction. It returns the errors of
   * items it skipped without failing the others (such as an item whose
   * stored record cannot be read), by index, and throws when the
   * transaction failed, which fails every item.
   */
  constructor(commit: (items: readonly T[]) => Promise<Map<number, unknown>>) {
    this.#commit = commit;
  }

  /** Adds `item` to the next commit and resolves once that commit stored it. */
  async write(item: T): Promise<void> {
    let batch = this.#pending;
    if (batch === undefined) {
      const created: Batch<T> = { items: [], done: Promise.resolve(new Map()) };
      created.done = this.#queue.run(async () => {
        // Storage calls block the event loop, so without this pause writes of
        // requests that arrived in the same turn would each start a commit.
        await nextTurn();
        // From here on, new writes wait for the next batch.
        if (this.#pending === created) this.#pending = undefined;
        return this.#commit(created.items);
      });
      this.#pending = created;
      batch = created;
    }
    const index = batch.items.push(item) - 1;
    const failures = await batch.done;
    if (failures.has(index)) throw failures.get(index);
  }
}
