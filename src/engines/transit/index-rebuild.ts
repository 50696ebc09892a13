import { isKeywardError, KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { keysPrefix, readStoredKey, writeIndexEntries } from "./key-index.ts";
import type { Logger } from "./types.ts";

/**
 * The layout version of the indexes in `key-index.ts`. A mount whose marker
 * has another version, or none, gets its indexes rebuilt.
 * NOTE: a rebuild only adds entries. A later version that changes the
 * layout must also delete the entries of the old one.
 */
export const INDEX_VERSION = 1;

/** Keys read and indexed per transaction of a rebuild. */
const REBUILD_PAGE_SIZE = 500;

/** How long a search waits for a rebuild before it fails with `index_rebuilding`, in milliseconds. */
const REBUILD_WAIT_MS = 1000;

/** Pages between two progress lines in the log (50,000 keys). */
const PAGES_PER_PROGRESS_LOG = 100;

/**
 * The marker at `<mount>/index/state`. `complete` is set once every key
 * written by a version without indexes is indexed. Until then, `after` is
 * the last key name indexed, so a rebuild interrupted by a seal or a crash
 * resumes after it.
 */
interface IndexMarker {
  version: number;
  complete: boolean;
  after?: string;
}

function markerPath(mount: string): string {
  return `${mount}/index/state`;
}

function encodeMarker(marker: IndexMarker): Uint8Array {
  return Buffer.from(JSON.stringify(marker), "utf8");
}

/** Yields to the event loop, so requests waiting for it run between two pages of background work. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Tracks whether a mount's indexes cover every key, and rebuilds them when
 * they may not: for keys written by a Keyward version without indexes.
 *
 * Every key write keeps the indexes current whether or not the marker is
 * complete, so the rebuild only has to add the entries of keys written
 * before. It reads the keys page by page, each page in its own
 * transaction, and records its progress in the marker in the same
 * transaction. A mount without keys is marked complete at once.
 */
export class KeyIndexState {
  readonly #barrier: Barrier;
  readonly #mount: string;
  readonly #logger: Logger;
  #ready = false;
  #rebuild: Promise<void> | undefined;

  constructor(barrier: Barrier, mount: string, logger: Logger) {
    this.#barrier = barrier;
    this.#mount = mount;
    this.#logger = logger;
  }

  /** Resolves once the indexes cover every key, rebuilding them first when needed. */
  async ensureComplete(): Promise<void> {
    if (this.#ready) return;
    this.#rebuild ??= this.#run().finally(() => {
      this.#rebuild = undefined;
    });
    await this.#rebuild;
  }

  /**
   * Returns when the indexes cover every key. When they may not, it starts
   * a rebuild (unless one runs) and waits up to REBUILD_WAIT_MS for it, so
   * a search of a mount with few keys returns at once. After that it throws
   * `index_rebuilding`, and the rebuild goes on in the background.
   */
  async requireComplete(): Promise<void> {
    if (this.#ready) return;
    const rebuild = this.ensureComplete();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), REBUILD_WAIT_MS);
    });
    try {
      if ((await Promise.race([rebuild, timeout])) !== "timeout") return;
    } finally {
      clearTimeout(timer);
    }
    rebuild.catch((error: unknown) => {
      // A seal stops the rebuild; the next unseal resumes it where it stopped.
      if (isKeywardError(error) && error.code === "sealed") return;
      this.#logger.error({ mount: this.#mount, err: error }, "key index rebuild failed");
    });
    throw new KeywardError(
      "index_rebuilding",
      `the key indexes of mount "${this.#mount}" are being rebuilt after an upgrade; retry the search later`,
    );
  }

  /**
   * Reads the marker and marks the indexes complete when the marker
   * records that, or when the mount has no keys. Returns whether they are
   * complete.
   */
  async #markComplete(): Promise<boolean> {
    const marker = await this.#readMarker();
    if (marker?.version === INDEX_VERSION && marker.complete) {
      this.#ready = true;
      return true;
    }
    if (marker !== undefined) return false;
    // A key created while this runs indexes itself, so an empty mount needs no rebuild.
    const empty = await this.#barrier.transaction(async (tx) => {
      const first = await tx.scan(keysPrefix(this.#mount), { limit: 1 });
      if (first.length > 0) return false;
      await tx.put(
        markerPath(this.#mount),
        encodeMarker({ version: INDEX_VERSION, complete: true }),
      );
      return true;
    });
    this.#ready = empty;
    return empty;
  }

  async #readMarker(): Promise<IndexMarker | undefined> {
    const value = await this.#barrier.get(markerPath(this.#mount));
    if (value === undefined) return undefined;
    return JSON.parse(Buffer.from(value).toString("utf8")) as IndexMarker;
  }

  async #run(): Promise<void> {
    if (await this.#markComplete()) return;
    const marker = await this.#readMarker();
    let after = marker?.version === INDEX_VERSION ? marker.after : undefined;
    const started = Date.now();
    let indexed = 0;
    let pages = 0;
    this.#logger.info(
      { mount: this.#mount, version: INDEX_VERSION, resumeAfter: after },
      "key index rebuild started",
    );
    for (;;) {
      const names = await this.#barrier.scan(keysPrefix(this.#mount), {
        after,
        limit: REBUILD_PAGE_SIZE,
      });
      const last = names.at(-1);
      const progress: IndexMarker = { version: INDEX_VERSION, complete: last === undefined };
      if (last !== undefined) progress.after = last;
      await this.#barrier.transaction(async (tx) => {
        for (const name of names) {
          const stored = await readStoredKey(tx, this.#mount, name);
          if (stored !== undefined) await writeIndexEntries(tx, this.#mount, stored.key);
        }
        await tx.put(markerPath(this.#mount), encodeMarker(progress));
      });
      if (last === undefined) break;
      after = last;
      indexed += names.length;
      pages += 1;
      if (pages % PAGES_PER_PROGRESS_LOG === 0) {
        this.#logger.info({ mount: this.#mount, indexed }, "key index rebuild in progress");
      }
      await yieldToEventLoop();
    }
    this.#ready = true;
    this.#logger.info(
      { mount: this.#mount, indexed, durationMs: Date.now() - started },
      "key index rebuild finished",
    );
  }
}
