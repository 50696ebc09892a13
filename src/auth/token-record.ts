/** The only token type Keyward issues. Vault's batch tokens are not supported. */
export const TOKEN_TYPE = "service";

/** TTL of a token created without one: 768 hours, Vault's default. */
export const DEFAULT_TOKEN_TTL_SECONDS = 768 * 3600;
/** Maximum lifetime of a non-periodic token, renewals included: 768 hours, Vault's default. */
export const MAX_TOKEN_TTL_SECONDS = 768 * 3600;

/**
 * A stored token. The token itself is never stored: `hash` is its HMAC
 * under the installation's token key, and the storage key is derived from it.
 * Records are immutable, so every change writes a new one.
 */
export interface TokenRecord {
  /** HMAC-SHA256 of the token, hex. */
  readonly hash: string;
  /** A non-secret handle on the token for lookup and revocation. */
  readonly accessor: string;
  /** `hash` of the parent token, or empty for an orphan. */
  readonly parentHash: string;
  /** Normalised policy names, sorted. */
  readonly policies: readonly string[];
  readonly displayName: string;
  readonly meta: Readonly<Record<string, string>>;
  /** The API path that created the token, such as `auth/token/create`. */
  readonly path: string;
  /** Creation time, Unix milliseconds. */
  readonly createdAt: number;
  /** Time of the last renewal in Unix milliseconds, or null before the first. */
  readonly lastRenewedAt: number | null;
  /** The TTL granted at creation, in seconds, or 0 for a token that never expires. */
  readonly creationTtl: number;
  /** Expiry in Unix milliseconds, or null for a token that never expires. */
  readonly expiresAt: number | null;
  /** Hard limit on the lifetime from creation, in seconds, or 0 for none. */
  readonly explicitMaxTtl: number;
  /** Limit on the lifetime from creation set by the issuing role, in seconds, or 0 for the system maximum. */
  readonly maxTtl: number;
  /** For a periodic token, the TTL each renewal grants, in seconds, or 0 otherwise. */
  readonly period: number;
  /** Uses left, or 0 for unlimited. A limited token is revoked at its last use. */
  readonly numUses: number;
  readonly renewable: boolean;
  /** CIDR blocks the token may be used from, or empty for anywhere. */
  readonly boundCidrs: readonly string[];
  readonly type: typeof TOKEN_TYPE;
  /** The token role it was created through, if any. */
  readonly role?: string;
}

/** The settings that decide a token's expiry. All durations are in seconds. */
export interface LifetimeSettings {
  /** Requested TTL, or 0 for the default. */
  ttl: number;
  explicitMaxTtl: number;
  maxTtl: number;
  period: number;
}

export interface Lifetime {
  creationTtl: number;
  expiresAt: number | null;
  warnings: string[];
}

/**
 * Returns the latest expiry a token may reach through renewals, in Unix
 * milliseconds, or null when it has none. A non-periodic token is limited
 * by the role's max TTL or the system maximum, whichever is lower. The
 * explicit max TTL limits every token, periodic ones included.
 */
export function expiryLimit(
  createdAt: number,
  settings: Pick<LifetimeSettings, "explicitMaxTtl" | "maxTtl" | "period">,
): number | null {
  const limits: number[] = [];
  if (settings.explicitMaxTtl > 0) limits.push(settings.explicitMaxTtl);
  if (settings.period === 0) {
    limits.push(
      settings.maxTtl > 0
        ? Math.min(settings.maxTtl, MAX_TOKEN_TTL_SECONDS)
        : MAX_TOKEN_TTL_SECONDS,
    );
  }
  return limits.length === 0 ? null : createdAt + Math.min(...limits) * 1000;
}

function capped(expiresAt: number, limit: number | null, warnings: string[]): number {
  if (limit === null || expiresAt <= limit) return expiresAt;
  warnings.push("the requested TTL exceeds the token's maximum TTL, so the TTL was capped at it");
  return limit;
}

/**
 * Computes a new token's expiry, as Vault does. A periodic token lives one
 * period, and a root token with no TTL and no explicit max TTL never
 * expires. Any other token gets the requested TTL or the 768-hour default.
 * The result is capped by `expiryLimit`, with a warning when the cap applies.
 */
export function initialLifetime(settings: LifetimeSettings, root: boolean, now: number): Lifetime {
  const warnings: string[] = [];
  let ttl: number;
  if (settings.period > 0) {
    ttl = settings.period;
  } else if (settings.ttl === 0 && root && settings.explicitMaxTtl === 0) {
    return { creationTtl: 0, expiresAt: null, warnings };
  } else {
    ttl = settings.ttl > 0 ? settings.ttl : DEFAULT_TOKEN_TTL_SECONDS;
  }
  const expiresAt = capped(now + ttl * 1000, expiryLimit(now, settings), warnings);
  return { creationTtl: Math.floor((expiresAt - now) / 1000), expiresAt, warnings };
}

/**
 * Computes the expiry after a renewal at `now`. A periodic token gets its
 * period again. Another token gets `increment` seconds when that is given
 * and positive, else its creation TTL. The result is capped by `expiryLimit`.
 */
export function renewedExpiry(
  record: TokenRecord,
  increment: number | undefined,
  now: number,
): { expiresAt: number; warnings: string[] } {
  const warnings: string[] = [];
  let ttl: number;
  if (record.period > 0) ttl = record.period;
  else ttl = increment !== undefined && increment > 0 ? increment : record.creationTtl;
  const expiresAt = capped(now + ttl * 1000, expiryLimit(record.createdAt, record), warnings);
  return { expiresAt, warnings };
}

export function isExpired(record: TokenRecord, now: number): boolean {
  return record.expiresAt !== null && now >= record.expiresAt;
}

/** Returns the seconds until expiry, rounded down, or 0 for a token that never expires. */
export function remainingTtl(record: TokenRecord, now: number): number {
  if (record.expiresAt === null) return 0;
  return Math.max(0, Math.floor((record.expiresAt - now) / 1000));
}

export function isOrphan(record: TokenRecord): boolean {
  return record.parentHash === "";
}

/** Freezes a record and its lists, so a cached record cannot be changed by a caller. */
export function freezeRecord(record: TokenRecord): TokenRecord {
  Object.freeze(record.policies);
  Object.freeze(record.meta);
  Object.freeze(record.boundCidrs);
  return Object.freeze(record);
}
