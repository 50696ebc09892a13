import { randomBytes } from "node:crypto";
import { invalidField, KeywardError } from "../errors.ts";
import { cidrsWithin } from "./cidr.ts";
import { childPolicies, isRootPolicySet, ROOT_POLICY } from "./token-policies.ts";
import { freezeRecord, initialLifetime, TOKEN_TYPE, type TokenRecord } from "./token-record.ts";
import { roleTokenPolicies, type TokenRole } from "./token-roles.ts";

/** Prefix of tokens Keyward generates, so a leaked one is easy to spot in a scan. */
export const TOKEN_PREFIX = "kw.";
/** Length of a generated token: the prefix and 256 bits in unpadded base64url. */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + 43;
/** Maximum length of a token, generated or chosen by an operator. */
export const MAX_TOKEN_LENGTH = 512;

/** A token just issued: the token itself (shown once) and its record. */
export interface IssuedToken {
  token: string;
  record: TokenRecord;
  warnings: string[];
}

/** Options of `auth/token/create`. Durations are in seconds. */
export interface CreateTokenRequest {
  /** A chosen token instead of a generated one, for root callers only. */
  id?: string;
  policies?: string[];
  meta?: Record<string, string>;
  /** Create an orphan. Only root callers may, and others are ignored, as in Vault. */
  noParent?: boolean;
  noDefaultPolicy?: boolean;
  renewable?: boolean;
  ttl?: number;
  explicitMaxTtl?: number;
  /** Root callers only. */
  period?: number;
  displayName?: string;
  numUses?: number;
}

/** A token for a successful login through an auth method. Durations are in seconds. */
export interface LoginTokenRequest {
  /** Final policies, already normalised, without `root`. */
  policies: string[];
  meta: Record<string, string>;
  displayName: string;
  /** The login path, such as `auth/approle/login`. */
  path: string;
  ttl: number;
  maxTtl: number;
  explicitMaxTtl: number;
  period: number;
  numUses: number;
  boundCidrs: string[];
}

/** Generates a token: the prefix and 256 random bits, base64url-encoded. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

function generateAccessor(): string {
  return randomBytes(18).toString("base64url");
}

export function checkTokenLength(token: string, field: string): void {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw invalidField(field, `the token must be 1 to ${MAX_TOKEN_LENGTH} characters`);
  }
}

/**
 * Checks the options of `auth/token/create` that only root callers may set.
 * Throws `permission_denied` when a non-root caller sets `id` or `period`,
 * and `invalid_field` for a chosen ID of the wrong length.
 *
 * NOTE: Vault also allows `id`, `period` and `no_parent` to callers with
 * `sudo` on the create path, but Keyward checks only for the root policy.
 */
export function checkCreateOptions(
  request: CreateTokenRequest,
  callerIsRoot: boolean,
  orphanRoute = false,
): void {
  if (request.id !== undefined && !callerIsRoot) {
    throw new KeywardError("permission_denied", "only a root token may choose a token ID", {
      field: "id",
    });
  }
  if (request.period !== undefined && request.period > 0 && !callerIsRoot) {
    throw new KeywardError("permission_denied", "only a root token may create a periodic token", {
      field: "period",
    });
  }
  // The create-orphan route makes orphans for any caller its policy admits, and ignores no_parent.
  if (request.noParent === true && !callerIsRoot && !orphanRoute) {
    throw new KeywardError(
      "permission_denied",
      "only a root token may create an orphan token with no_parent; use auth/token/create-orphan with a policy that grants it",
      { field: "no_parent" },
    );
  }
  if (request.id !== undefined) checkTokenLength(request.id, "id");
}

/**
 * Vault prefixes a chosen display name with `token-` and replaces
 * characters other than letters, digits, `-` and `_` with `-`.
 */
function tokenDisplayName(requested: string | undefined): string {
  if (requested === undefined || requested === "") return "token";
  return `token-${requested}`.replace(/[^A-Za-z0-9_-]/g, "-").replace(/-+$/, "");
}

/** Builds a root token's record: policy `root`, no expiry, no parent, not renewable. */
export function rootTokenRecord(
  hash: string,
  now: number,
  accessor = generateAccessor(),
): TokenRecord {
  return freezeRecord({
    hash,
    accessor,
    parentHash: "",
    policies: [ROOT_POLICY],
    displayName: "root",
    meta: {},
    path: "auth/token/root",
    createdAt: now,
    lastRenewedAt: null,
    creationTtl: 0,
    expiresAt: null,
    explicitMaxTtl: 0,
    maxTtl: 0,
    period: 0,
    numUses: 0,
    renewable: false,
    boundCidrs: [],
    type: TOKEN_TYPE,
  });
}

/**
 * Builds the record of a token created through `auth/token/create`, as a
 * child of `parent` unless `orphan`, with the settings of `role` when it
 * was created through `auth/token/create/<role>`. The new token keeps the
 * parent's bound CIDRs unless the role binds it more narrowly. Throws
 * `permission_denied` when the parent has a use limit, the policies are
 * not allowed or the role's bound CIDRs are wider than the parent's.
 */
export function createdTokenRecord(
  hash: string,
  parent: TokenRecord,
  request: CreateTokenRequest,
  orphan: boolean,
  now: number,
  role?: TokenRole,
): { record: TokenRecord; warnings: string[] } {
  if (parent.numUses > 0) {
    throw new KeywardError(
      "permission_denied",
      "a token with a use limit cannot create other tokens",
    );
  }
  const noDefaultPolicy = request.noDefaultPolicy === true || role?.tokenNoDefaultPolicy === true;
  const policies =
    role === undefined
      ? childPolicies(parent.policies, request.policies, noDefaultPolicy)
      : roleTokenPolicies(role, parent.policies, request.policies, noDefaultPolicy);
  const settings = {
    ttl: request.ttl ?? 0,
    explicitMaxTtl: smallestLimit(request.explicitMaxTtl ?? 0, role?.tokenExplicitMaxTtl ?? 0),
    maxTtl: 0,
    period: role !== undefined && role.tokenPeriod > 0 ? role.tokenPeriod : (request.period ?? 0),
  };
  const lifetime = initialLifetime(settings, isRootPolicySet(policies), now);
  const parentless = orphan || role?.orphan === true;
  const record = freezeRecord({
    hash,
    accessor: generateAccessor(),
    parentHash: parentless ? "" : parent.hash,
    policies,
    displayName: tokenDisplayName(request.displayName),
    meta: { ...(request.meta ?? {}) },
    path: creationPath(orphan, role),
    createdAt: now,
    lastRenewedAt: null,
    creationTtl: lifetime.creationTtl,
    expiresAt: lifetime.expiresAt,
    explicitMaxTtl: settings.explicitMaxTtl,
    maxTtl: 0,
    period: settings.period,
    numUses: smallestLimit(request.numUses ?? 0, role?.tokenNumUses ?? 0),
    renewable:
      lifetime.expiresAt !== null && request.renewable !== false && role?.renewable !== false,
    boundCidrs: childBoundCidrs(parent, role),
    type: TOKEN_TYPE,
    ...(role === undefined ? {} : { role: role.name }),
  });
  return { record, warnings: lifetime.warnings };
}

/**
 * Returns the bound CIDRs of a token created by `parent`: the role's, or
 * else the parent's. A token bound to CIDR blocks may not create a child
 * or an orphan usable from outside them, so a role's blocks must lie
 * within the parent's. Throws `permission_denied` otherwise.
 */
function childBoundCidrs(parent: TokenRecord, role: TokenRole | undefined): string[] {
  const roleCidrs = role?.tokenBoundCidrs ?? [];
  if (parent.boundCidrs.length === 0) return [...roleCidrs];
  if (roleCidrs.length === 0) return [...parent.boundCidrs];
  if (cidrsWithin(roleCidrs, parent.boundCidrs)) return [...roleCidrs];
  throw new KeywardError(
    "permission_denied",
    "the role's token_bound_cidrs must lie within the bound CIDRs of the token that creates the new token",
    { field: "token_bound_cidrs" },
  );
}

/** Returns the smaller of two limits where 0 means none. */
function smallestLimit(first: number, second: number): number {
  if (first === 0) return second;
  if (second === 0) return first;
  return Math.min(first, second);
}

function creationPath(orphan: boolean, role: TokenRole | undefined): string {
  if (role === undefined) return orphan ? "auth/token/create-orphan" : "auth/token/create";
  const suffix = role.pathSuffix === "" ? "" : `/${role.pathSuffix}`;
  return `auth/token/create/${role.name}${suffix}`;
}

/**
 * Builds the record of an orphan token issued by an auth method's login.
 * Throws `permission_denied` for a `root` policy: auth methods cannot issue
 * root tokens, as in Vault.
 */
export function loginTokenRecord(
  hash: string,
  request: LoginTokenRequest,
  now: number,
): { record: TokenRecord; warnings: string[] } {
  if (isRootPolicySet(request.policies)) {
    throw new KeywardError("permission_denied", "auth methods cannot issue root tokens", {
      field: "token_policies",
    });
  }
  const lifetime = initialLifetime(request, false, now);
  const record = freezeRecord({
    hash,
    accessor: generateAccessor(),
    parentHash: "",
    policies: [...request.policies],
    displayName: request.displayName,
    meta: { ...request.meta },
    path: request.path,
    createdAt: now,
    lastRenewedAt: null,
    creationTtl: lifetime.creationTtl,
    expiresAt: lifetime.expiresAt,
    explicitMaxTtl: request.explicitMaxTtl,
    maxTtl: request.maxTtl,
    period: request.period,
    numUses: request.numUses,
    renewable: lifetime.expiresAt !== null,
    boundCidrs: [...request.boundCidrs],
    type: TOKEN_TYPE,
  });
  return { record, warnings: lifetime.warnings };
}
