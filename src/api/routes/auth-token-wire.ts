import { parseOptionalDuration } from "../../auth/duration.ts";
import { isOrphan, remainingTtl, type TokenRecord } from "../../auth/token-record.ts";
import type { CreateTokenRequest, IssuedToken } from "../../auth/token-store.ts";
import { durationSchema, objectBody } from "./auth-shared.ts";

/* Schemas and Vault's response shapes of the token auth method's routes. */

export const tokenField = {
  type: "string",
  minLength: 1,
  maxLength: 512,
  description: "The token.",
} as const;
export const accessorField = {
  type: "string",
  minLength: 1,
  maxLength: 128,
  description: "The token's accessor.",
} as const;
export const incrementField = durationSchema(
  "Requested TTL from now; ignored for periodic tokens.",
);

export const createBody = objectBody({
  id: {
    ...tokenField,
    description: "Choose the token instead of generating one (root callers only).",
  },
  policies: {
    type: "array",
    maxItems: 64,
    items: { type: "string", maxLength: 4096 },
    description:
      "Policies; a subset of the caller's unless the caller is root. Default: the caller's.",
  },
  meta: {
    type: "object",
    maxProperties: 64,
    additionalProperties: { type: "string", maxLength: 4096 },
    description: "String metadata, returned by lookups.",
  },
  no_parent: {
    type: "boolean",
    description: "Create an orphan (root callers only; rejected for other callers).",
  },
  no_default_policy: { type: "boolean", description: "Leave out the default policy." },
  renewable: { type: "boolean", description: "Allow renewal (default true)." },
  ttl: durationSchema("TTL; default 768h, capped at the maximum TTL."),
  explicit_max_ttl: durationSchema("Hard limit on the token's lifetime, renewals included."),
  period: durationSchema(
    "Make the token periodic: each renewal grants this TTL (root callers only).",
  ),
  display_name: {
    type: "string",
    maxLength: 256,
    description: 'Display name; stored as "token-<name>".',
  },
  num_uses: {
    type: "integer",
    minimum: 0,
    maximum: 2 ** 31 - 1,
    description: "Use limit; 0 for unlimited.",
  },
  type: {
    type: "string",
    enum: ["service", "default"],
    description: 'Only "service" tokens exist.',
  },
});

export interface CreateBody {
  id?: string;
  policies?: string[];
  meta?: Record<string, string>;
  no_parent?: boolean;
  no_default_policy?: boolean;
  renewable?: boolean;
  ttl?: number | string;
  explicit_max_ttl?: number | string;
  period?: number | string;
  display_name?: string;
  num_uses?: number;
}

export function createRequest(body: CreateBody): CreateTokenRequest {
  return {
    id: body.id,
    policies: body.policies,
    meta: body.meta,
    noParent: body.no_parent,
    noDefaultPolicy: body.no_default_policy,
    renewable: body.renewable,
    ttl: parseOptionalDuration(body.ttl, "ttl"),
    explicitMaxTtl: parseOptionalDuration(body.explicit_max_ttl, "explicit_max_ttl"),
    period: parseOptionalDuration(body.period, "period"),
    displayName: body.display_name,
    numUses: body.num_uses,
  };
}

function metadataOrNull(meta: Readonly<Record<string, string>>): Record<string, string> | null {
  return Object.keys(meta).length === 0 ? null : { ...meta };
}

/** Vault's `auth` block for a token: what creation, login and renewal return. */
export function tokenAuthBlock(clientToken: string, record: TokenRecord, now: number) {
  return {
    client_token: clientToken,
    accessor: record.accessor,
    policies: [...record.policies],
    token_policies: [...record.policies],
    metadata: metadataOrNull(record.meta),
    lease_duration: remainingTtl(record, now),
    renewable: record.renewable,
    entity_id: "",
    token_type: record.type,
    orphan: isOrphan(record),
    num_uses: record.numUses,
  };
}

/**
 * Returns the `auth` block of a token just issued. Its `lease_duration` is
 * counted from the issue time, so it equals the granted TTL (3600 for
 * `ttl=1h`, not 3599 a millisecond later).
 */
export function issuedAuthBlock(issued: IssuedToken) {
  return tokenAuthBlock(issued.token, issued.record, issued.record.createdAt);
}

/**
 * Vault's lookup data for a token. `id` is the token itself, which only a
 * lookup that was given the token returns. An accessor lookup sends "".
 */
export function tokenLookupData(record: TokenRecord, now: number, id: string) {
  const data: Record<string, unknown> = {
    accessor: record.accessor,
    creation_time: Math.floor(record.createdAt / 1000),
    creation_ttl: record.creationTtl,
    display_name: record.displayName,
    entity_id: "",
    expire_time: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
    explicit_max_ttl: record.explicitMaxTtl,
    id,
    issue_time: new Date(record.createdAt).toISOString(),
    meta: metadataOrNull(record.meta),
    num_uses: record.numUses,
    orphan: isOrphan(record),
    path: record.path,
    policies: [...record.policies],
    renewable: record.renewable,
    ttl: remainingTtl(record, now),
    type: record.type,
  };
  if (record.lastRenewedAt !== null) {
    data.last_renewal = new Date(record.lastRenewedAt).toISOString();
    data.last_renewal_time = Math.floor(record.lastRenewedAt / 1000);
  }
  if (record.period > 0) data.period = record.period;
  if (record.boundCidrs.length > 0) data.bound_cidrs = [...record.boundCidrs];
  if (record.role !== undefined) data.role = record.role;
  return data;
}
