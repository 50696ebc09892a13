import { KeywardError } from "../../errors.ts";
import type { KeyIndexState } from "./index-rebuild.ts";
import { formatIndexTime, type KeyIndexName, parseIndexEntry } from "./key-index.ts";
import { type KeyStore, MAX_KEY_NAME_LENGTH } from "./store.ts";

/** The largest page a key list or search returns when `limit` is set. */
export const MAX_LIST_LIMIT = 1000;

/**
 * Entries read by the first and the largest storage scan of a search
 * without `limit`, which returns every match. Each scan reads twice as many
 * as the one before, so a search that matches few keys reads few rows
 * beyond them, and one that matches many reads them in pages of 1000.
 */
const FIRST_SEARCH_PAGE_SIZE = 100;
const MAX_SEARCH_PAGE_SIZE = 1000;

/** Returns the size of the next scan of a search: `limit` + 1 with a limit, else the growing page. */
function nextPageSize(limit: number | undefined, previous: number | undefined): number {
  if (limit !== undefined) return limit + 1;
  if (previous === undefined) return FIRST_SEARCH_PAGE_SIZE;
  return Math.min(2 * previous, MAX_SEARCH_PAGE_SIZE);
}

/** Letters, digits, `_`, `.` and `-`: the characters of key names, so of name prefixes and name cursors. */
const NAME_CHARACTERS = /^[\w.-]+$/;

/**
 * A character above every character of a key name in byte order (`~`,
 * 0x7E, while names use at most `z`, 0x7A). `<s>~` sorts after every name
 * that starts with `<s>`.
 */
const ABOVE_NAME_CHARACTERS = "~";

/** A key list or search, as the list endpoint's query parameters give it. */
export interface KeySearchQuery {
  /** Start after this cursor: a key name, or for a time window the `next_after` of the previous page. */
  after?: string;
  /** Only names that start with this. */
  prefix?: string;
  /** At most this many keys (1 to MAX_LIST_LIMIT); all matches when absent. */
  limit?: number;
  /** Keys whose scheduled deletion is at or after this ISO 8601 time. */
  expiresAfter?: string;
  /** Keys whose scheduled deletion is before this ISO 8601 time. */
  expiresBefore?: string;
  /** Keys whose automatic rotation falls due at or after this ISO 8601 time. */
  rotatesAfter?: string;
  /** Keys whose automatic rotation falls due before this ISO 8601 time. */
  rotatesBefore?: string;
}

/** The time a key has in the index a search reads. */
export type KeyTimeInfo = { deletionDate: string } | { nextRotationDate: string };

/** One page of a key list or search. */
export interface KeySearchResult {
  /** Key names: in ascending byte order, or for a time window in time order. */
  keys: string[];
  /** For a time window: each key's deletion or rotation time. */
  keyInfo?: Record<string, KeyTimeInfo>;
  /** Present when more keys may follow: the `after` of the next page. */
  nextAfter?: string;
}

/** A validated time window over one index, in milliseconds: [from, to). */
interface TimeWindow {
  index: KeyIndexName;
  from: number | undefined;
  to: number | undefined;
}

function invalid(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

function parseTime(value: string, field: string): number {
  const time = Date.parse(value);
  const date = /^(\d{4})-(\d{2})-(\d{2})T/.exec(value);
  // Date.parse rolls a day past the month's end into the next month, so the day is checked too.
  const daysInMonth = date
    ? new Date(Date.UTC(Number(date[1]), Number(date[2]), 0)).getUTCDate()
    : 0;
  if (date === null || Number.isNaN(time) || Number(date[3]) > daysInMonth) {
    throw invalid(field, `"${field}" must be an ISO 8601 time such as 2030-01-31T00:00:00Z`);
  }
  return time;
}

function parseWindow(
  index: KeyIndexName,
  afterField: string,
  after: string | undefined,
  beforeField: string,
  before: string | undefined,
): TimeWindow {
  const from = after === undefined ? undefined : parseTime(after, afterField);
  const to = before === undefined ? undefined : parseTime(before, beforeField);
  if (from !== undefined && to !== undefined && to <= from) {
    throw invalid(beforeField, `"${beforeField}" must be later than "${afterField}"`);
  }
  return { index, from, to };
}

/** Returns the query's time window, or undefined when it has none. Throws `invalid_field` naming the field at fault. */
function timeWindowOf(query: KeySearchQuery): TimeWindow | undefined {
  const expiry = query.expiresAfter !== undefined || query.expiresBefore !== undefined;
  const rotation = query.rotatesAfter !== undefined || query.rotatesBefore !== undefined;
  if (expiry && rotation) {
    const field = query.rotatesAfter !== undefined ? "rotates_after" : "rotates_before";
    throw invalid(field, `"${field}" cannot be combined with "expires_after" or "expires_before"`);
  }
  if (expiry) {
    return parseWindow(
      "deletion",
      "expires_after",
      query.expiresAfter,
      "expires_before",
      query.expiresBefore,
    );
  }
  if (rotation) {
    return parseWindow(
      "rotation",
      "rotates_after",
      query.rotatesAfter,
      "rotates_before",
      query.rotatesBefore,
    );
  }
  return undefined;
}

function validateLimit(limit: number | undefined): void {
  if (limit === undefined) return;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid("limit", `"limit" must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
}

function validateNamePart(value: string | undefined, field: string, what: string): void {
  if (value === undefined) return;
  if (value.length > MAX_KEY_NAME_LENGTH || !NAME_CHARACTERS.test(value)) {
    throw invalid(
      field,
      `"${field}" must be ${what} of 1 to ${MAX_KEY_NAME_LENGTH} letters, digits, "_", "." or "-"`,
    );
  }
}

/** Returns the byte-wise larger of two cursors, either of which may be absent. */
function laterCursor(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) >= 0 ? a : b;
}

/**
 * Returns a scan cursor just below every name that starts with `prefix`:
 * the prefix with its last character lowered by one, then `~`. No key name
 * lies between the cursor and the prefix, so the scan's first name is the
 * first match, if any.
 */
function cursorBelowPrefix(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last - 1) + ABOVE_NAME_CHARACTERS;
}

/**
 * Lists or searches the keys of a mount. Every page is one range read of
 * storage, of at most `limit` + 1 entries: the extra entry shows whether
 * another page follows. Without `limit`, the whole result is built from
 * scans that grow up to MAX_SEARCH_PAGE_SIZE entries.
 */
export async function searchKeys(
  store: KeyStore,
  indexes: KeyIndexState,
  query: KeySearchQuery,
): Promise<KeySearchResult> {
  validateLimit(query.limit);
  validateNamePart(query.prefix, "prefix", "a name prefix");
  const window = timeWindowOf(query);
  if (window === undefined) {
    validateNamePart(query.after, "after", "a key name");
    return searchNames(store, query);
  }
  if (query.prefix !== undefined) {
    throw invalid("prefix", '"prefix" cannot be combined with a time window');
  }
  if (query.after !== undefined && parseIndexEntry(query.after) === undefined) {
    throw invalid(
      "after",
      '"after" of a time window search must be the "next_after" value of the previous page',
    );
  }
  await indexes.requireComplete();
  return searchWindow(store, window, query);
}

async function searchNames(store: KeyStore, query: KeySearchQuery): Promise<KeySearchResult> {
  const { prefix, limit } = query;
  const matches = (name: string) => prefix === undefined || name.startsWith(prefix);
  let after = laterCursor(
    query.after,
    prefix === undefined ? undefined : cursorBelowPrefix(prefix),
  );
  const keys: string[] = [];
  let pageSize: number | undefined;
  for (;;) {
    pageSize = nextPageSize(limit, pageSize);
    const page = await store.scanNames(after, pageSize);
    for (const name of page) {
      // Names come in byte order, so the first one outside the prefix ends the matches.
      if (!matches(name)) return { keys };
      if (limit !== undefined && keys.length === limit) {
        return { keys, nextAfter: keys[keys.length - 1] };
      }
      keys.push(name);
    }
    if (page.length < pageSize || limit !== undefined) return { keys };
    after = page[page.length - 1];
  }
}

async function searchWindow(
  store: KeyStore,
  window: TimeWindow,
  query: KeySearchQuery,
): Promise<KeySearchResult> {
  const { limit } = query;
  const start =
    window.from === undefined || window.from <= 0
      ? undefined
      : `${formatIndexTime(window.from - 1)}/${ABOVE_NAME_CHARACTERS}`;
  let after = laterCursor(query.after, start);
  const keys: string[] = [];
  // A Map, because a key may be named "__proto__".
  const times = new Map<string, KeyTimeInfo>();
  const result = (nextAfter?: string): KeySearchResult => {
    const keyInfo = Object.fromEntries(times);
    return nextAfter === undefined ? { keys, keyInfo } : { keys, keyInfo, nextAfter };
  };
  let lastEntry: string | undefined;
  let pageSize: number | undefined;
  for (;;) {
    pageSize = nextPageSize(limit, pageSize);
    const page = await store.scanIndex(window.index, after, pageSize);
    for (const entry of page) {
      const parsed = parseIndexEntry(entry);
      if (parsed === undefined) continue;
      if (window.to !== undefined && parsed.time >= window.to) return result();
      if (limit !== undefined && keys.length === limit) return result(lastEntry);
      const date = new Date(parsed.time).toISOString();
      keys.push(parsed.name);
      times.set(
        parsed.name,
        window.index === "deletion" ? { deletionDate: date } : { nextRotationDate: date },
      );
      lastEntry = entry;
    }
    if (page.length < pageSize || limit !== undefined) return result();
    after = page[page.length - 1];
  }
}
