import { isKeywardError, KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";

/**
 * The PKI engine's records as JSON values behind the barrier, each under
 * `<mount>/<folder>/<id>` or `<mount>/config/<name>`. Reads always go
 * through the barrier, so a sealed server rejects them. Changes to one
 * record run one at a time under a per-path lock.
 */
export class PkiStore {
  readonly #barrier: Barrier;
  readonly #prefix: string;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier, mount: string) {
    this.#barrier = barrier;
    this.#prefix = `${mount}/`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    const value = await this.#barrier.get(this.#prefix + path);
    if (value === undefined) return undefined;
    try {
      return JSON.parse(Buffer.from(value).toString("utf8")) as T;
    } catch (error) {
      throw new KeywardError("internal", "internal error", {
        cause: error,
        details: { path, reason: "stored PKI record is not valid JSON" },
      });
    }
  }

  async put(path: string, value: unknown): Promise<void> {
    const bytes = Buffer.from(JSON.stringify(value), "utf8");
    await this.#translate(() => this.#barrier.put(this.#prefix + path, bytes), path);
  }

  async delete(path: string): Promise<void> {
    await this.#translate(() => this.#barrier.delete(this.#prefix + path), path);
  }

  /** Lists the record names directly under `folder` (without the trailing slash), in ascending order. */
  async list(folder: string): Promise<string[]> {
    const children = await this.#barrier.list(`${this.#prefix}${folder}/`);
    return children.filter((child) => !child.endsWith("/"));
  }

  /** Runs `work` while holding the lock of `name`; work for other names runs concurrently. */
  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  async #translate(write: () => Promise<void>, path: string): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a PKI record", {
        cause: error,
        details: { path },
      });
    }
  }
}
