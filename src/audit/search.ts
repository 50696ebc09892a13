import { KeywardError } from "../errors.ts";
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
  /** The matching records in sequence order, after `offset`, at most `limit`. */
  records: ChainedRecord[];
  /** All matching records, including those outside the page. */
  total: number;
}

/** A validated query, with times as milliseconds since the epoch. */
export interface RecordFilter {
  fromMs?: number;
  toMs?: number;
  accessor?: string;
  pathPrefix?: string;
  key?: string;
  type?: SearchType;
  limit: number;
  offset: number;
}

function parseTime(field: string, value: string | Date): number {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
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
  return {
    fromMs: query.from === undefined ? undefined : parseTime("from", query.from),
    toMs: query.to === undefined ? undefined : parseTime("to", query.to),
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

/** Collects one page of matching records from lines in sequence order. */
export async function searchLines(
  lines: AsyncIterable<string>,
  filter: RecordFilter,
): Promise<SearchResult> {
  const records: ChainedRecord[] = [];
  let total = 0;
  for await (const line of lines) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      // A damaged value is reported by verification, not by search.
      continue;
    }
    if (record === null || typeof record !== "object") continue;
    if (!matchesFilter(record as ChainedRecord, filter)) continue;
    total += 1;
    if (total > filter.offset && records.length < filter.limit) {
      records.push(record as ChainedRecord);
    }
  }
  return { records, total };
}
