import { effectiveState } from "../../keys/index.ts";
import type { KeyState, KeyType } from "../../keys/types.ts";
import { yieldToEventLoop } from "./index-rebuild.ts";
import type { KeyStore } from "./store.ts";

/** Keys read per page of a count; the count yields to the event loop between pages. */
const COUNT_PAGE_SIZE = 500;

/** The keys of one type and state. */
export interface KeyCount {
  type: KeyType;
  state: KeyState;
  count: number;
  /** Versions after the first, summed over the keys counted. */
  rotations: number;
}

/**
 * Counts the keys of a mount by type and state in force at `now`. It reads
 * every key once, page by page and around the cache, so it holds one page
 * of keys and the totals, never the whole mount; its time grows with the
 * number of keys, which is why metrics run it in the background.
 */
export async function countKeys(store: KeyStore, now: Date): Promise<KeyCount[]> {
  const totals = new Map<string, KeyCount>();
  let after: string | undefined;
  for (;;) {
    const names = await store.scanNames(after, COUNT_PAGE_SIZE);
    for (const name of names) {
      const stored = await store.load(name);
      if (stored === undefined) continue;
      const { key } = stored;
      const state = effectiveState(key, now);
      const id = `${key.type}\u0000${state}`;
      const total = totals.get(id) ?? { type: key.type, state, count: 0, rotations: 0 };
      total.count += 1;
      total.rotations += Math.max(0, key.latestVersion - 1);
      totals.set(id, total);
    }
    if (names.length < COUNT_PAGE_SIZE) return [...totals.values()];
    after = names[names.length - 1];
    await yieldToEventLoop();
  }
}
