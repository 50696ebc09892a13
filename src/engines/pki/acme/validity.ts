import type { Role } from "../roles.ts";
import { type MountTtls, maxTtlSeconds } from "../validity.ts";
import type { IssuancePolicy } from "./policy.ts";
import { AcmeProblem } from "./problems.ts";
import type { OrderRecord } from "./records.ts";

/** An RFC 3339 date-time, the format of an order's `notBefore` and `notAfter` (RFC 8555 section 7.1.3). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * How far before the newOrder request a requested `notBefore` may lie, in
 * seconds. A client's clock may run a little behind the server's, but a
 * certificate backdated further would claim a validity from before it was
 * ordered.
 */
export const MAX_NOT_BEFORE_BACKDATE_SECONDS = 300;

/** The validity an order requests, as ISO 8601 strings; an absent field is left to the role. */
export interface RequestedValidity {
  notBefore?: string;
  notAfter?: string;
}

function readTime(value: unknown, field: "notBefore" | "notAfter"): number | undefined {
  if (value === undefined) return undefined;
  const time = typeof value === "string" && RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new AcmeProblem(
      "malformed",
      `"${field}" must be an RFC 3339 date-time, such as 2030-01-01T00:00:00Z`,
    );
  }
  return time;
}

/** Returns the role's maximum validity in seconds: its `max_ttl` capped at the mount's maximum. */
function maxSecondsOf(role: Role, mount: MountTtls): number {
  return maxTtlSeconds(role.max_ttl, mount);
}

/** Returns the validity the role gives when the order sets no `notAfter`, in seconds. */
function defaultSecondsOf(role: Role, mount: MountTtls): number {
  return role.ttl || Math.min(mount.defaultSeconds, maxSecondsOf(role, mount));
}

/**
 * Checks the `notBefore` and `notAfter` of a newOrder payload against the
 * role (RFC 8555 section 7.4). The certificate's validity must end no later
 * than the role's maximum TTL after `now`, start no earlier than
 * `MAX_NOT_BEFORE_BACKDATE_SECONDS` before `now`, and end after it starts
 * and after `now`. RFC 8555 names no error type for a validity the server
 * will not grant, so this throws `malformed`, as for other unacceptable
 * newOrder fields. `rejectedIdentifier` is only for identifiers.
 */
export function readRequestedValidity(
  payload: Record<string, unknown>,
  policy: IssuancePolicy,
  mount: MountTtls,
  now: Date,
): RequestedValidity {
  const notBefore = readTime(payload.notBefore, "notBefore");
  const notAfter = readTime(payload.notAfter, "notAfter");
  if (notBefore === undefined && notAfter === undefined) return {};

  const nowMs = now.getTime();
  const maxSeconds = maxSecondsOf(policy.role, mount);
  const start = notBefore ?? nowMs;
  const end = notAfter ?? start + defaultSecondsOf(policy.role, mount) * 1000;
  if (notBefore !== undefined && notBefore < nowMs - MAX_NOT_BEFORE_BACKDATE_SECONDS * 1000) {
    throw new AcmeProblem(
      "malformed",
      `"notBefore" may lie at most ${MAX_NOT_BEFORE_BACKDATE_SECONDS} seconds in the past`,
    );
  }
  if (end <= start || end <= nowMs) {
    throw new AcmeProblem("malformed", '"notAfter" must be in the future and after "notBefore"');
  }
  if (end > nowMs + maxSeconds * 1000) {
    throw new AcmeProblem(
      "malformed",
      `the requested validity ends more than the role's maximum TTL of ${maxSeconds} seconds from now; request an earlier "notAfter"`,
    );
  }
  return {
    ...(notBefore === undefined ? {} : { notBefore: new Date(notBefore).toISOString() }),
    ...(notAfter === undefined ? {} : { notAfter: new Date(notAfter).toISOString() }),
  };
}

/** Tells whether an order requests the validity `requested`, so that an open order can be reused. */
export function sameRequestedValidity(order: OrderRecord, requested: RequestedValidity): boolean {
  return order.notBefore === requested.notBefore && order.notAfter === requested.notAfter;
}

/**
 * Returns what `issueCertificate` needs to give the certificate an order's
 * requested validity: a `not_after`, and a role whose `not_before_duration`
 * puts notBefore at the requested time when issuance runs at `issuedAt`.
 * The duration is negative for a notBefore in the future. Returns undefined
 * when the order requests no validity, so the role's TTL applies.
 *
 * NOTE: an issuer whose `leaf_not_after_behavior` is `truncate` still cuts
 * notAfter to its own, so the certificate can end before the order's notAfter.
 */
export function issuanceValidity(
  order: OrderRecord,
  role: Role,
  mount: MountTtls,
  issuedAt: Date,
): { notAfter: string; role: Role } | undefined {
  if (order.notBefore === undefined && order.notAfter === undefined) return undefined;
  const notBefore = order.notBefore === undefined ? undefined : Date.parse(order.notBefore);
  const notAfter =
    order.notAfter ??
    new Date(
      (notBefore ?? issuedAt.getTime()) + defaultSecondsOf(role, mount) * 1000,
    ).toISOString();
  return {
    notAfter,
    role:
      notBefore === undefined
        ? role
        : { ...role, not_before_duration: (issuedAt.getTime() - notBefore) / 1000 },
  };
}
