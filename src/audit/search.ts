import { KeywardError } from "../errors.ts";
import { validateNodeId } from "./node-id.ts";
import type { ChainedRecord } from "./types.ts";

/** Record types a search can ask for. */
export const SEARCH_TYPES = ["request", "response", "checkpoint"] as const;
export type SearchType = (typeof SEARCH_TYPES)[number];

export const DEFAULT_SEARCH_LIMIT = 100;
export const MAX_SEARCH_LIMIT = 1000;

/** Filters of `AuditBroker.search`; every given filter must match. */
export interface SearchQuery {
  /** Store device to search; the first enabled store device when absent. */
  device?: string;
  /** Node id: only the records of that node's chain. Without it, every node's records are merged. */
  node?: string;
  /** Earliest record time, inclusive (ISO 8601). */
  from?: string | Date;
  /** Latest record time, exclusive (ISO 8601). */
  to?: string | Date;
  /** Token accessor, matched exactly. */
  accessor?: string;
  /** Start of the request path, such as `transit/encrypt/`; a leading `/v1/` is ignored. */
  path_prefix?: string;
  /** Managed key name, matched exactly against the record's `request.key_name`. */
  key?: string;
  /** Record type; without it, requests and responses match and checkpoints do not. */
  type?: SearchType;
  /** Maximum records returned, 1 to 1000; 100 by default. */
  limit?: number;
  /** Matching records to skip before the first one returned. */
  offset?: number;
}

export interface SearchResult {
  /**
   * The matching records ordered by time, after `offset`, at most `limit`.
   * Records of one node keep their chain order, and records with the same
   * time keep the order of their chains: the legacy chain, then the nodes
   * by id.
   */
  records: ChainedRecord[];
  /** All matching records, including those outside the page. */
  total: number;
}

/** A validated query, with times as milliseconds since the epoch. */
export interface RecordFilter {
  node?: string;
  fromMs?: number;
  toMs?: number;
  accessor?: string;
  pathPrefix?: string;
  key?: string;
  type?: SearchType;
  limit: number;
  offset: number;
}

/**
 * An RFC 3339 date-time: date, time with optional fraction, and `Z` or an
 * offset. `Date.parse` alone also takes forms such as `1` or `Tue, 1 Jan
 * 2030`, read in the server's time zone.
 */
const RFC3339_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Returns whether year, month and day name a real date (not 2020-02-31). */
function isRealDate(year: number, month: number, day: number): boolean {
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function parseTime(field: string, value: string | Date): number {
  let ms = Number.NaN;
  if (value instanceof Date) {
    ms = value.getTime();
  } else {
    const match = RFC3339_TIME.exec(value);
    if (match && isRealDate(Number(match[1]), Number(match[2]), Number(match[3]))) {
      ms = Date.parse(value);
    }
  }
  if (Number.isNaN(ms)) {
    throw new KeywardError(
      "invalid_field",
      `${field} must be an ISO 8601 time, such as 2024-05-01T12:00:00Z`,
      {
        field,
      },
    );
  }
  return ms;
}

function integerInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new KeywardError("invalid_field", `${field} must be an integer from ${min} to ${max}`, {
      field,
    });
  }
  return value;
}

/** Checks a query and turns it into a filter. */
export function recordFilter(query: SearchQuery): RecordFilter {
  if (query.type !== undefined && !(SEARCH_TYPES as readonly string[]).includes(query.type)) {
    throw new KeywardError("invalid_field", "type must be request, response or checkpoint", {
      field: "type",
    });
  }
  const fromMs = query.from === undefined ? undefined : parseTime("from", query.from);
  const toMs = query.to === undefined ? undefined : parseTime("to", query.to);
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) {
    throw new KeywardError("invalid_field", "to must not be earlier than from", { field: "to" });
  }
  return {
    node: query.node === undefined ? undefined : validateNodeId(query.node, "node"),
    fromMs,
    toMs,
    accessor: query.accessor,
    pathPrefix: query.path_prefix?.replace(/^\/+/, "").replace(/^v1\//, ""),
    key: query.key,
    type: query.type,
    limit: integerInRange("limit", query.limit ?? DEFAULT_SEARCH_LIMIT, 1, MAX_SEARCH_LIMIT),
    offset: integerInRange("offset", query.offset ?? 0, 0, Number.MAX_SAFE_INTEGER),
  };
}

/** Reports whether a record passes every filter. */
export function matchesFilter(record: ChainedRecord, filter: RecordFilter): boolean {
  if (filter.type === undefined ? record.type === "checkpoint" : record.type !== filter.type) {
    return false;
  }
  const time = Date.parse(record.time);
  if (filter.fromMs !== undefined && !(time >= filter.fromMs)) return false;
  if (filter.toMs !== undefined && !(time < filter.toMs)) return false;
  if (record.type === "checkpoint") {
    // A checkpoint has no request or identity, so those filters exclude it.
    return (
      filter.accessor === undefined && filter.pathPrefix === undefined && filter.key === undefined
    );
  }
  // Stored values are checked by verification, not here, so a damaged one must not throw.
  const request = record.request as Partial<typeof record.request> | undefined;
  const auth = record.auth as Partial<typeof record.auth> | undefined;
  if (filter.accessor !== undefined && auth?.accessor !== filter.accessor) return false;
  if (filter.pathPrefix !== undefined) {
    if (typeof request?.path !== "string" || !request.path.startsWith(filter.pathPrefix)) {
      return false;
    }
  }
  if (filter.key !== undefined && request?.key_name !== filter.key) return false;
  return true;
}

/** Yields the records of one chain's lines that pass the filter, skipping lines that are not records. */
async function* matchingRecords(
  lines: AsyncIterable<string>,
  filter: RecordFilter,
): AsyncGenerator<ChainedRecord> {
  for await (const line of lines) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      // A damaged value is reported by verification, not by search.
      continue;
    }
    if (record === null || typeof record !== "object") continue;
    if (matchesFilter(record as ChainedRecord, filter)) yield record as ChainedRecord;
  }
}

/** A chain's next matching record, with its time in milliseconds for the merge. */
interface ChainCursor {
  records: AsyncIterator<ChainedRecord>;
  record: ChainedRecord;
  timeMs: number;
}

/** Returns the time of a record in milliseconds, or minus infinity for a record without a valid time. */
function recordTimeMs(record: ChainedRecord): number {
  const ms = Date.parse(record.time);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

async function advance(records: AsyncIterator<ChainedRecord>): Promise<ChainCursor | undefined> {
  const next = await records.next();
  if (next.done) return undefined;
  return { records, record: next.value, timeMs: recordTimeMs(next.value) };
}

/**
 * Collects one page of matching records from several chains, each given
 * as its lines in sequence order, merged by time as `SearchResult`
 * describes. Only the current record of each chain and the page are held
 * in memory.
 *
 * NOTE: the merge assumes each chain's times never decrease. A node whose
 * clock was set back has its later records placed as early as their times
 * allow, but still in chain order.
 */
export async function searchLines(
  chains: AsyncIterable<string>[],
  filter: RecordFilter,
): Promise<SearchResult> {
  const cursors: Array<ChainCursor | undefined> = await Promise.all(
    chains.map((lines) => advance(matchingRecords(lines, filter))),
  );
  const records: ChainedRecord[] = [];
  let total = 0;
  for (;;) {
    let earliest: { index: number; cursor: ChainCursor } | undefined;
    for (const [index, cursor] of cursors.entries()) {
      if (cursor === undefined) continue;
      if (earliest === undefined || cursor.timeMs < earliest.cursor.timeMs) {
        earliest = { index, cursor };
      }
    }
    if (earliest === undefined) break;
    const { index, cursor } = earliest;
    total += 1;
    if (total > filter.offset && records.length < filter.limit) records.push(cursor.record);
    cursors[index] = await advance(cursor.records);
  }
  return { records, total };
}
