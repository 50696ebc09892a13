import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { ReadCache } from "../../util/read-cache.ts";
import type { TransitMountConfig } from "./types.ts";

/** Bounds of a scheduled deletion's waiting period, in days. */
export const MIN_DELETION_WINDOW_DAYS = 7;
export const MAX_DELETION_WINDOW_DAYS = 30;

/** Throws `invalid_field` naming `field` unless `days` is a whole number of days in 7..30. */
export function validateDeletionWindow(days: number, field: string): void {
  if (
    !Number.isInteger(days) ||
    days < MIN_DELETION_WINDOW_DAYS ||
    days > MAX_DELETION_WINDOW_DAYS
  ) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be a whole number of days from ${MIN_DELETION_WINDOW_DAYS} to ${MAX_DELETION_WINDOW_DAYS}`,
      { field },
    );
  }
}

/**
 * The mount-wide settings, stored as JSON at `<mount>/config/keys` and
 * cached after the first read, since encrypt requests read them.
 */
export class MountConfigStore {
  readonly #barrier: Barrier;
  readonly #path: string;
  readonly #defaults: TransitMountConfig;
  readonly #lock = new KeyedLock();
  readonly #cache = new ReadCache(1);

  constructor(barrier: Barrier, mount: string, defaults: TransitMountConfig) {
    this.#barrier = barrier;
    this.#path = `${mount}/config/keys`;
    this.#defaults = defaults;
  }

  /** Reads the stored settings; a setting never written keeps its default. */
  async read(): Promise<TransitMountConfig> {
    // Cached values stay in memory, so the cache itself must refuse a sealed server.
    if (this.#barrier.sealed) throw sealedError();
    // Settings never written are cached as `{}`, so that a mount left at its
    // defaults does not read storage on every request.
    const text = await this.#cache.read(this.#path, async () => {
      const value = await this.#barrier.get(this.#path);
      return value === undefined ? "{}" : Buffer.from(value).toString("utf8");
    });
    const stored = JSON.parse(text ?? "{}") as Partial<TransitMountConfig>;
    return { ...this.#defaults, ...stored };
  }

  /** Merges `changes` into the stored settings and returns the result. */
  async write(changes: Partial<TransitMountConfig>): Promise<TransitMountConfig> {
    if (changes.deletionWindowDays !== undefined) {
      validateDeletionWindow(changes.deletionWindowDays, "deletion_window");
    }
    return this.#lock.run("config", async () => {
      const updated = { ...(await this.read()), ...changes };
      const text = JSON.stringify(updated);
      try {
        await this.#barrier.put(this.#path, Buffer.from(text, "utf8"));
        this.#cache.written(this.#path, text);
      } catch (error) {
        this.#cache.forget(this.#path);
        if (isKeywardError(error)) throw error;
        throw new KeywardError(
          "storage_failure",
          "failed to store the transit mount configuration",
          {
            cause: error,
          },
        );
      }
      return updated;
    });
  }
}
