import { KeywardError } from "../errors.ts";
import { formatAddress, parseAddress } from "../util/ip-address.ts";

/** The prefix length that identifies one IPv6 client for rate limits. */
const IPV6_SOURCE_PREFIX = 64n;

/**
 * Returns the rate-limit key of a client address: an IPv4 address itself
 * (also when written as IPv4-mapped IPv6), and the /64 prefix of an IPv6
 * address. A host usually has a whole /64, so limiting single IPv6
 * addresses would let it pick a new address for each attempt. Text that is
 * not an IP address is returned as it is.
 */
export function rateLimitSource(address: string): string {
  const parsed = parseAddress(address);
  if (parsed === undefined || parsed.family === 4) return address;
  if (parsed.value >> 32n === 0xffffn) return formatAddress(4, parsed.value & 0xffffffffn);
  const network = (parsed.value >> IPV6_SOURCE_PREFIX) << IPV6_SOURCE_PREFIX;
  return `${formatAddress(6, network)}/${IPV6_SOURCE_PREFIX}`;
}

export interface LoginRateLimiterOptions {
  /** Failures a key may have in a burst before `check` rejects it. Default 10. */
  capacity?: number;
  /** Milliseconds for an emptied allowance to refill completely. Default 60 000 (one minute). */
  refillMs?: number;
  /** Maximum number of keys tracked. Beyond it the least recently failed keys are dropped. Default 100 000. */
  maxKeys?: number;
  /** When true, `succeed` clears the key's failures. Default false. */
  resetOnSuccess?: boolean;
  /** Source of the current time in milliseconds, which tests fix. */
  clock?: () => number;
}

interface Bucket {
  /** Failures still allowed. It refills continuously up to the capacity. */
  allowance: number;
  updatedAt: number;
}

/**
 * Limits failed attempts per key (a source address, a role ID) with a token
 * bucket: each key may fail `capacity` times in a burst, and its allowance
 * refills at `capacity` per `refillMs`. With the defaults that is 10
 * failures per minute, after which `check` throws `rate_limited` (429)
 * until the allowance refills. Successes cost nothing.
 *
 * `succeed` clears failures only when `resetOnSuccess` is set. Leave it
 * off for per-address limits: a caller holding one valid credential could
 * otherwise reset its address's count between guesses at another one.
 *
 * State lives in memory and is per process, so a restart clears it.
 */
export class LoginRateLimiter {
  readonly #capacity: number;
  readonly #refillMs: number;
  readonly #maxKeys: number;
  readonly #resetOnSuccess: boolean;
  readonly #clock: () => number;
  /** Buckets in order of their last failure, so the first entries are the stalest. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: LoginRateLimiterOptions = {}) {
    this.#capacity = options.capacity ?? 10;
    this.#refillMs = options.refillMs ?? 60_000;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#resetOnSuccess = options.resetOnSuccess ?? false;
    this.#clock = options.clock ?? Date.now;
    if (!(this.#capacity >= 1 && this.#refillMs > 0 && this.#maxKeys >= 1)) {
      throw new RangeError("capacity and maxKeys must be at least 1 and refillMs positive");
    }
  }

  /** Throws `rate_limited` when `key` has no failures left. Changes nothing. */
  check(key: string): void {
    const bucket = this.#refilled(key);
    if (bucket === undefined || bucket.allowance >= 1) return;
    const waitMs = ((1 - bucket.allowance) * this.#refillMs) / this.#capacity;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    throw new KeywardError(
      "rate_limited",
      `too many failed attempts; retry in ${seconds} second${seconds === 1 ? "" : "s"}`,
      { details: { retryAfterSeconds: seconds } },
    );
  }

  /** Records one failure for `key`. */
  fail(key: string): void {
    const bucket = this.#refilled(key) ?? { allowance: this.#capacity, updatedAt: this.#clock() };
    bucket.allowance = Math.max(0, bucket.allowance - 1);
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    this.#evict();
  }

  /** Records a success for `key`, which clears its failures when `resetOnSuccess` is set. */
  succeed(key: string): void {
    if (this.#resetOnSuccess) this.#buckets.delete(key);
  }

  /** The number of keys with failures on record, for tests and metrics. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Returns the key's bucket refilled to now, or undefined (dropping it) when it is full. */
  #refilled(key: string): Bucket | undefined {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) return undefined;
    const now = this.#clock();
    const elapsed = Math.max(0, now - bucket.updatedAt);
    bucket.allowance = Math.min(
      this.#capacity,
      bucket.allowance + (elapsed * this.#capacity) / this.#refillMs,
    );
    bucket.updatedAt = now;
    if (bucket.allowance >= this.#capacity) {
      this.#buckets.delete(key);
      return undefined;
    }
    return bucket;
  }

  #evict(): void {
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxKeys) return;
      this.#buckets.delete(key);
    }
  }
}
