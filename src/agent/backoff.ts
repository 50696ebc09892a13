/** Minimum wait after a failed round, in milliseconds. */
export const BACKOFF_MIN_MS = 1000;
/** Maximum wait after failed rounds, in milliseconds. */
export const BACKOFF_MAX_MS = 60_000;

/**
 * Returns the wait before retry number `attempt` (0 for the first retry)
 * with full jitter: uniform between 1 s and a ceiling that doubles with
 * each attempt, from 1 s up to 60 s. The jitter spreads the retries of many
 * agents after a server outage. `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt));
  return BACKOFF_MIN_MS + Math.floor(random() * (ceiling - BACKOFF_MIN_MS));
}
