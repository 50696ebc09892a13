import { KeywardError } from "../errors.ts";

/**
 * The limits on running again work that lost a conflict with concurrent
 * work. The retries stop at whichever limit is reached first.
 */
export interface ConflictRetryPolicy {
  /** The maximum number of attempts, the first one included. */
  maxAttempts: number;
  /**
   * No retry starts later than this after the first attempt started, in
   * milliseconds, so a request that keeps losing fails in bounded time.
   */
  budgetMs: number;
}

/** The upper bound of the random wait before the first retry, in milliseconds. */
export const RETRY_BASE_DELAY_MS = 5;
/** The largest upper bound of the random wait before a retry, in milliseconds. */
export const RETRY_MAX_DELAY_MS = 100;

/**
 * Returns a random wait before retry number `retry` (1 for the first), in
 * milliseconds: uniform between 0 and a bound that doubles from
 * `RETRY_BASE_DELAY_MS` with each retry up to `RETRY_MAX_DELAY_MS`. The
 * random part spreads out work that conflicted together. A node with a
 * queue of changes to one record starts the next as soon as the previous
 * commits, so the cap keeps the loser retrying often enough to find a gap.
 */
export function conflictRetryDelay(retry: number): number {
  const bound = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** Math.max(0, retry - 1));
  return Math.random() * bound;
}

/**
 * Returns the wait before the next attempt after attempt number `attempt`
 * (1 for the first) lost a conflict, or undefined when `policy` allows no
 * further attempt. `startedAt` is when the first attempt started, from
 * `Date.now()`.
 */
export function nextConflictRetry(
  policy: ConflictRetryPolicy,
  attempt: number,
  startedAt: number,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const delay = conflictRetryDelay(attempt);
  if (Date.now() + delay - startedAt > policy.budgetMs) return undefined;
  return delay;
}

/**
 * Waits `delay` milliseconds. The timer is not unref'd, so a process stays
 * up for a request that is waiting to retry.
 */
export function waitBeforeRetry(delay: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delay));
}

/**
 * Builds the error for work that lost a conflict with concurrent work on
 * every attempt: `write_conflict` (HTTP 503), which a client may retry as
 * it is. `operation` names the work for the operator's log, such as
 * `postgresql transaction`, and never reaches the caller. The message is
 * public, so it names no key.
 */
export function writeConflictError(
  operation: string,
  attempts: number,
  cause: unknown,
  details: Record<string, unknown> = {},
): KeywardError {
  return new KeywardError(
    "write_conflict",
    "the change conflicted with concurrent changes on every attempt; retry the request",
    { cause, details: { ...details, operation, attempts } },
  );
}
