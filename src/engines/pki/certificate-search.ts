import { KeywardError } from "../../errors.ts";
import {
  encodeIndexName,
  type IndexEntry,
  indexedNames,
  indexTime,
  issuerIndexSegment,
  NAME_INDEX,
  parseEntryId,
  parseNameEntry,
} from "./certificate-index.ts";
import { expiryEntries, unrevokedEntries, walkKeys } from "./index-walk.ts";
import type { PkiStore } from "./store.ts";
import type { CertificateRecord } from "./types.ts";

/** The largest page of search results. */
export const MAX_SEARCH_LIMIT = 1_000;
/** The page size of a search that sets no `limit`. */
export const DEFAULT_SEARCH_LIMIT = 100;
/**
 * Index entries one search page examines at most. A page that reaches it
 * returns the results found so far with a cursor, so a filter that matches
 * few certificates never makes one request read the whole index.
 */
export const SEARCH_ENTRY_BUDGET = 5_000;
/** Certificate records one search page reads at most, with the same effect. */
export const SEARCH_RECORD_BUDGET = 2_000;

/** The largest storage query of a search; a walk starts with smaller ones (see `walkKeys`). */
const SEARCH_PAGE_SIZE = 1_000;

/** Filters of a certificate search; every given filter must match. */
export interface CertificateSearch {
  /** Substring of the subject, case-insensitive. */
  subject?: string;
  /** Substring of any SAN, case-insensitive. */
  san?: string;
  /** Prefix of the common name or of a DNS, IP or email SAN, case-insensitive; read from the name index. */
  namePrefix?: string;
  issuerId?: string;
  /** Certificates whose notAfter is on or after this time. */
  expiresAfter?: Date;
  /** Certificates whose notAfter is before this time. */
  expiresBefore?: Date;
  includeRevoked?: boolean;
}

/** The page of results to return. */
export interface SearchPage {
  /** The `nextAfter` of the previous page of the same search. */
  after?: string;
  limit: number;
}

/** One page of search results. */
export interface SearchResult {
  certificates: CertificateRecord[];
  /** Set when the search stopped before the end of its range: pass it as `after` for the next page. */
  nextAfter?: string;
}

/** The page in progress: results, budgets and the key to resume after. */
class PageCollector {
  readonly certificates: CertificateRecord[] = [];
  readonly #limit: number;
  #examined = 0;
  #reads = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Counts an examined index entry. */
  examine(): void {
    this.#examined += 1;
  }

  async read(store: PkiStore, serialHex: string): Promise<CertificateRecord | undefined> {
    this.#reads += 1;
    return store.get<CertificateRecord>(`certs/${serialHex}`);
  }

  /** True when the page is full or a budget is spent, so the walk stops after the current entry. */
  get done(): boolean {
    return (
      this.certificates.length >= this.#limit ||
      this.#examined >= SEARCH_ENTRY_BUDGET ||
      this.#reads >= SEARCH_RECORD_BUDGET
    );
  }
}

function invalidCursor(): KeywardError {
  return new KeywardError(
    "invalid_field",
    '"after" must be the next_after value returned by the previous page of the same search',
    { field: "after" },
  );
}

/** Returns whichever of two range starts comes later in key order. */
function laterStart(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/** Applies the filters that need the record: subject, SAN and revocation. */
function matchesRecord(record: CertificateRecord, filters: CertificateSearch): boolean {
  const subject = filters.subject?.toLowerCase();
  if (subject !== undefined && !record.subject.toLowerCase().includes(subject)) return false;
  const san = filters.san?.toLowerCase();
  if (san !== undefined && !record.sans.some((name) => name.toLowerCase().includes(san))) {
    return false;
  }
  if (!filters.includeRevoked && record.revokedAt !== undefined) return false;
  return true;
}

/** Applies the filters that the entry's key decides: issuer and expiry window. */
function matchesEntry(entry: IndexEntry, filters: CertificateSearch): boolean {
  if (filters.issuerId !== undefined && entry.issuer !== issuerIndexSegment(filters.issuerId)) {
    return false;
  }
  if (filters.expiresAfter && entry.notAfter < indexTime(filters.expiresAfter)) return false;
  if (filters.expiresBefore && entry.notAfter >= indexTime(filters.expiresBefore)) return false;
  return true;
}

/**
 * Returns one page of the certificates that match every filter. With
 * `namePrefix` the search reads the name index from that prefix and returns
 * results in name order. Otherwise it reads the expiry index within the
 * expiry window and returns results in notAfter order. Either way it reads
 * only the records of entries whose key passes the issuer and window
 * filters. Substring filters (`subject`, `san`) are applied to those
 * records, so a page may contain fewer than `limit` results and still have
 * a `nextAfter`.
 */
export async function searchCertificates(
  store: PkiStore,
  filters: CertificateSearch,
  page: SearchPage,
): Promise<SearchResult> {
  return filters.namePrefix !== undefined
    ? searchByName(store, filters, filters.namePrefix, page)
    : searchByExpiry(store, filters, page);
}

async function searchByExpiry(
  store: PkiStore,
  filters: CertificateSearch,
  page: SearchPage,
): Promise<SearchResult> {
  if (page.after !== undefined && parseEntryId(page.after) === undefined) throw invalidCursor();
  const range = {
    after: laterStart(page.after, filters.expiresAfter && indexTime(filters.expiresAfter)),
    before: filters.expiresBefore && indexTime(filters.expiresBefore),
    pageSize: SEARCH_PAGE_SIZE,
  };
  const collector = new PageCollector(page.limit);
  for await (const entry of expiryEntries(store, range)) {
    // A revoked certificate counts against the budget, so a range of revoked ones ends a page too.
    collector.examine();
    const included = filters.includeRevoked || !entry.revoked;
    if (included && matchesEntry(entry, filters)) {
      const record = await collector.read(store, entry.serialHex);
      if (record && matchesRecord(record, filters)) collector.certificates.push(record);
    }
    if (collector.done) return { certificates: collector.certificates, nextAfter: entry.id };
  }
  return { certificates: collector.certificates };
}

async function searchByName(
  store: PkiStore,
  filters: CertificateSearch,
  namePrefix: string,
  page: SearchPage,
): Promise<SearchResult> {
  if (page.after !== undefined && parseNameEntry(page.after) === undefined) throw invalidCursor();
  const wanted = namePrefix.toLowerCase();
  const encodedPrefix = encodeIndexName(wanted);
  const collector = new PageCollector(page.limit);
  // Every key under the prefix sorts after the prefix itself, and no key equals it.
  const after = laterStart(page.after, encodedPrefix);
  const keys = walkKeys(store, NAME_INDEX, { after, pageSize: SEARCH_PAGE_SIZE });
  for await (const key of keys) {
    if (!key.startsWith(encodedPrefix)) break;
    collector.examine();
    const parsed = parseNameEntry(key);
    if (parsed && matchesEntry(parsed.entry, filters)) {
      const record = await collector.read(store, parsed.entry.serialHex);
      if (
        record &&
        firstMatchingName(record, wanted) === parsed.name &&
        matchesRecord(record, filters)
      ) {
        collector.certificates.push(record);
      }
    }
    if (collector.done) return { certificates: collector.certificates, nextAfter: key };
  }
  return { certificates: collector.certificates };
}

/**
 * Returns the encoded name under which a record first appears in the name
 * index among its names that start with `wanted`, or undefined when none
 * does. A certificate with several such names then appears once in the
 * results, at the first of its entries.
 */
function firstMatchingName(record: CertificateRecord, wanted: string): string | undefined {
  let first: string | undefined;
  for (const name of indexedNames(record)) {
    if (!name.startsWith(wanted)) continue;
    const encoded = encodeIndexName(name);
    // Keys compare as `<name>/…`, and `/` sorts after some name characters such as `-`.
    if (first === undefined || `${encoded}/` < `${first}/`) first = encoded;
  }
  return first;
}

/** The expiry report: unrevoked certificates expiring within a window, and those already expired. */
export interface ExpiryReport {
  expiring: CertificateRecord[];
  expiringCount: number;
  /** Set when `expiring` contains fewer than `expiringCount`: the `after` of a search for the rest. */
  expiringNextAfter?: string;
  expired: CertificateRecord[];
  expiredCount: number;
  expiredNextAfter?: string;
}

/**
 * Builds the expiry report. Counting walks the expiry and revoked index
 * keys page by page and reads no record. Each list contains at most `limit`
 * certificates, soonest expiry first. The rest can be read with a search over the same
 * window, starting after the list's cursor.
 */
export async function expiryReport(
  store: PkiStore,
  options: { now: Date; until: Date; limit: number },
): Promise<ExpiryReport> {
  const now = indexTime(options.now);
  const expiring = await listRange(
    store,
    { after: now, before: indexTime(options.until) },
    options.limit,
  );
  const expired = await listRange(store, { before: now }, options.limit);
  return {
    expiring: expiring.certificates,
    expiringCount: expiring.count,
    expiringNextAfter: expiring.nextAfter,
    expired: expired.certificates,
    expiredCount: expired.count,
    expiredNextAfter: expired.nextAfter,
  };
}

/** Counts the unrevoked certificates in a range and reads the first `limit` of them. */
async function listRange(
  store: PkiStore,
  range: { after?: string; before: string },
  limit: number,
): Promise<{ certificates: CertificateRecord[]; count: number; nextAfter?: string }> {
  const certificates: CertificateRecord[] = [];
  let count = 0;
  let last: string | undefined;
  for await (const entry of unrevokedEntries(store, range)) {
    count += 1;
    if (certificates.length >= limit) continue;
    const record = await store.get<CertificateRecord>(`certs/${entry.serialHex}`);
    if (record) certificates.push(record);
    last = entry.id;
  }
  return {
    certificates,
    count,
    ...(count > certificates.length && last ? { nextAfter: last } : {}),
  };
}
