import { EXPIRY_INDEX, type IndexEntry, parseEntryId, REVOKED_INDEX } from "./certificate-index.ts";
import type { PkiStore } from "./store.ts";

/** Keys read per storage query while walking an index for a count or a sweep. */
export const WALK_PAGE_SIZE = 2_000;

/**
 * Lets queued I/O and timers run. The SQLite driver runs each query
 * synchronously and resolves its promise as a microtask, so a long loop of
 * storage calls would otherwise block the event loop until it ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The first page of a walk, so a narrow range costs a short query. Later pages double up to the page size. */
const FIRST_PAGE_SIZE = 16;

/**
 * Yields the keys under `folder`, relative to it, in byte order, starting
 * after `after`. The first storage query reads `FIRST_PAGE_SIZE` keys, and
 * each later one twice as many as the one before, up to `pageSize`, so a
 * walk that stops early reads at most about twice the keys it used. It
 * yields to the event loop between pages. Memory stays at one page however
 * many keys the folder holds.
 */
export async function* walkKeys(
  store: PkiStore,
  folder: string,
  options: { after?: string; pageSize?: number } = {},
): AsyncGenerator<string> {
  const maxLimit = options.pageSize ?? WALK_PAGE_SIZE;
  let limit = Math.min(FIRST_PAGE_SIZE, maxLimit);
  let after = options.after;
  for (;;) {
    const page = await store.scan(folder, { after, limit });
    yield* page;
    if (page.length < limit) return;
    after = page[page.length - 1];
    limit = Math.min(limit * 2, maxLimit);
    await yieldToEventLoop();
  }
}

/** A range of entry ids: after `after` (exclusive) and with notAfter before `before`. */
export interface EntryRange {
  /** Start after this key relative to the index folder; an ISO time alone starts at that time. */
  after?: string;
  /** Stop at the first entry whose notAfter is at or after this index time. */
  before?: string;
  pageSize?: number;
}

/** Yields the parsed entries of an index of entry ids (`index/expiry` or `index/revoked`) within `range`. */
export async function* walkEntries(
  store: PkiStore,
  folder: string,
  range: EntryRange = {},
): AsyncGenerator<IndexEntry> {
  const walk = walkKeys(store, folder, { after: range.after, pageSize: range.pageSize });
  for await (const key of walk) {
    const entry = parseEntryId(key);
    // A key of another shape was not written by this index; it is skipped.
    if (!entry) continue;
    if (range.before !== undefined && entry.notAfter >= range.before) return;
    yield entry;
  }
}

/**
 * Yields the expiry index entries within `range`, each marked with whether
 * its certificate is revoked. The expiry and revoked indexes contain the
 * same entry ids in the same order, so both are walked side by side, and
 * no record is read.
 */
export async function* expiryEntries(
  store: PkiStore,
  range: EntryRange = {},
): AsyncGenerator<IndexEntry & { revoked: boolean }> {
  const revoked = walkEntries(store, REVOKED_INDEX, range);
  let nextRevoked = await revoked.next();
  try {
    for await (const entry of walkEntries(store, EXPIRY_INDEX, range)) {
      while (!nextRevoked.done && nextRevoked.value.id < entry.id) {
        nextRevoked = await revoked.next();
      }
      yield { ...entry, revoked: !nextRevoked.done && nextRevoked.value.id === entry.id };
    }
  } finally {
    await revoked.return(undefined);
  }
}

/** Yields the expiry index entries within `range` whose certificate is not revoked (see `expiryEntries`). */
export async function* unrevokedEntries(
  store: PkiStore,
  range: EntryRange = {},
): AsyncGenerator<IndexEntry> {
  for await (const entry of expiryEntries(store, range)) {
    if (!entry.revoked) yield entry;
  }
}
