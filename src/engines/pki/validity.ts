import { KeywardError } from "../../errors.ts";
import type { LeafNotAfterBehavior } from "./types.ts";

/** Vault's default for both the mount's default and maximum lease TTL: 32 days, in seconds. */
export const DEFAULT_MOUNT_TTL_SECONDS = 768 * 3600;

export interface MountTtls {
  defaultSeconds: number;
  maxSeconds: number;
}

export interface ValidityRequest {
  now: Date;
  /** Requested TTL in seconds; 0 or undefined takes the role's, then the mount's default. */
  ttlSeconds?: number;
  /** Requested notAfter as an RFC 3339 timestamp; wins over `ttl`. */
  notAfter?: string;
  roleTtlSeconds?: number;
  /** The role's `max_ttl`; 0 or undefined takes the mount's maximum. */
  roleMaxTtlSeconds?: number;
  mount: MountTtls;
  /** How far notBefore is backdated, in seconds, for clocks running behind. */
  notBeforeSeconds: number;
  issuer?: { notAfter: Date; behavior: LeafNotAfterBehavior };
}

/**
 * Returns the longest validity a role may grant, in seconds: its `max_ttl`
 * capped at the mount's `max_lease_ttl`, or the mount's maximum when the
 * role sets none. No certificate of a mount outlives the mount's maximum.
 */
export function maxTtlSeconds(roleMaxTtlSeconds: number | undefined, mount: MountTtls): number {
  if (!roleMaxTtlSeconds) return mount.maxSeconds;
  return Math.min(roleMaxTtlSeconds, mount.maxSeconds);
}

/**
 * Computes a certificate's validity period. A TTL or notAfter past the
 * maximum is rejected with `ttl_too_long` (Vault caps it with a warning
 * instead). A notAfter past the issuer's follows the issuer's
 * `leaf_not_after_behavior`: `err` rejects, `truncate` clamps to the
 * issuer's notAfter, `permit` keeps it.
 */
export function computeValidity(request: ValidityRequest): { notBefore: Date; notAfter: Date } {
  const now = request.now.getTime();
  const maxSeconds = maxTtlSeconds(request.roleMaxTtlSeconds, request.mount);
  let notAfter: number;
  if (request.notAfter !== undefined && request.notAfter !== "") {
    notAfter = Date.parse(request.notAfter);
    if (Number.isNaN(notAfter) || notAfter <= now) {
      throw new KeywardError(
        "invalid_field",
        '"not_after" must be a future time in RFC 3339 format',
        {
          field: "not_after",
        },
      );
    }
    if (notAfter > now + maxSeconds * 1000) {
      throw new KeywardError(
        "ttl_too_long",
        `"not_after" is more than the maximum TTL of ${maxSeconds} seconds away`,
        {
          field: "not_after",
        },
      );
    }
  } else {
    const ttl =
      request.ttlSeconds ||
      request.roleTtlSeconds ||
      Math.min(request.mount.defaultSeconds, maxSeconds);
    if (ttl > maxSeconds) {
      throw new KeywardError(
        "ttl_too_long",
        `"ttl" of ${ttl} seconds is longer than the maximum of ${maxSeconds} seconds`,
        {
          field: "ttl",
        },
      );
    }
    notAfter = now + ttl * 1000;
  }
  if (request.issuer && notAfter > request.issuer.notAfter.getTime()) {
    if (request.issuer.behavior === "err") {
      throw new KeywardError(
        "ttl_too_long",
        `the requested validity ends after the issuer's notAfter (${request.issuer.notAfter.toISOString()}); request a shorter "ttl" or set the issuer's leaf_not_after_behavior to truncate`,
        { field: "ttl" },
      );
    }
    if (request.issuer.behavior === "truncate") notAfter = request.issuer.notAfter.getTime();
  }
  // X.509 times have a resolution of one second.
  const notBefore = Math.floor((now - request.notBeforeSeconds * 1000) / 1000) * 1000;
  return { notBefore: new Date(notBefore), notAfter: new Date(Math.floor(notAfter / 1000) * 1000) };
}
