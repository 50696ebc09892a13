import { randomBytes } from "node:crypto";

/** How long an issued nonce stays usable, in milliseconds. */
const NONCE_LIFETIME_MS = 10 * 60 * 1000;

/** Outstanding nonces kept at most; past it the oldest are dropped, and their clients get `badNonce` and retry. */
const MAX_OUTSTANDING = 100_000;

/**
 * Anti-replay nonces (RFC 8555 section 6.5), each accepted once.
 *
 * They live in this process's memory, not behind the barrier: a nonce is
 * short-lived, written on every response and consumed on every request, so
 * storing it would double the storage writes of each ACME call. Losing them
 * on a restart or seal costs one retry, because every client answers
 * `badNonce` by retrying with the fresh nonce sent with it.
 *
 * NOTE: several Keyward servers behind one load balancer do not share
 * these nonces, so a client must reach the same server for consecutive
 * requests (or retry on `badNonce`).
 */
export class NonceStore {
  /** Nonce -> expiry time in milliseconds; a Map keeps insertion order, so the first entries are the oldest. */
  readonly #outstanding = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Issues a fresh nonce: 128 random bits, base64url. */
  issue(): string {
    const nonce = randomBytes(16).toString("base64url");
    this.#outstanding.set(nonce, this.#now() + NONCE_LIFETIME_MS);
    while (this.#outstanding.size > MAX_OUTSTANDING) {
      const oldest = this.#outstanding.keys().next().value;
      if (oldest === undefined) break;
      this.#outstanding.delete(oldest);
    }
    return nonce;
  }

  /** Consumes a nonce; returns false when it was never issued, was already used or has expired. */
  consume(nonce: string): boolean {
    const expires = this.#outstanding.get(nonce);
    if (expires === undefined) return false;
    this.#outstanding.delete(nonce);
    return expires > this.#now();
  }
}
