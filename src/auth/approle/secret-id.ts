import { invalidField } from "../../errors.ts";
import { cidrsWithin } from "../cidr.ts";
import type { AppRole } from "./role.ts";

/** A stored secret ID. The secret ID itself is never stored, only its HMAC. */
export interface SecretIdRecord {
  /** HMAC-SHA256 of the secret ID in hex, which is part of the storage key. */
  readonly hmac: string;
  readonly accessor: string;
  readonly roleName: string;
  /** CIDR blocks logins with this secret ID must come from, or empty for anywhere. */
  readonly cidrList: readonly string[];
  /** CIDR blocks issued tokens are bound to, or empty to use the role's. */
  readonly tokenBoundCidrs: readonly string[];
  /** Copied into the metadata of every token issued with this secret ID. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Unix milliseconds. */
  readonly createdAt: number;
  readonly lastUpdatedAt: number;
  /** Unix milliseconds, or null for a secret ID that never expires. */
  readonly expiresAt: number | null;
  /** Logins left, or 0 for unlimited. The secret ID is deleted at its last login. */
  readonly numUses: number;
  /** The lifetime granted at creation, in seconds, or 0 for none. */
  readonly ttl: number;
}

/** Options of a new secret ID, already parsed. Absent fields take the role's defaults. */
export interface SecretIdRequest {
  /** A secret ID chosen by the caller (Vault's custom-secret-id); a random UUID otherwise. */
  secretId?: string;
  metadata?: Record<string, string>;
  cidrList?: string[];
  tokenBoundCidrs?: string[];
  numUses?: number;
  /** Seconds. */
  ttl?: number;
}

/** The limits a new secret ID gets from the request and its role. */
export interface SecretIdLimits {
  cidrList: string[];
  tokenBoundCidrs: string[];
  numUses: number;
  ttl: number;
}

/**
 * Resolves a new secret ID's limits against its role, as Vault does: the
 * role's values are the defaults and also the maximums, so a request may
 * narrow them but not widen them. Throws `invalid_field` otherwise.
 */
export function secretIdLimits(role: AppRole, request: SecretIdRequest): SecretIdLimits {
  const cidrList = request.cidrList ?? [];
  if (role.secretIdBoundCidrs.length > 0 && !cidrsWithin(cidrList, role.secretIdBoundCidrs)) {
    throw invalidField("cidr_list", "cidr_list must lie within the role's secret_id_bound_cidrs");
  }
  const tokenBoundCidrs = request.tokenBoundCidrs ?? [];
  if (role.tokenBoundCidrs.length > 0 && !cidrsWithin(tokenBoundCidrs, role.tokenBoundCidrs)) {
    throw invalidField(
      "token_bound_cidrs",
      "token_bound_cidrs must lie within the role's token_bound_cidrs",
    );
  }

  const numUses = request.numUses ?? role.secretIdNumUses;
  if (role.secretIdNumUses > 0 && (numUses === 0 || numUses > role.secretIdNumUses)) {
    throw invalidField(
      "num_uses",
      `num_uses must be 1 to ${role.secretIdNumUses}, the role's secret_id_num_uses`,
    );
  }
  const ttl = request.ttl ?? role.secretIdTtl;
  if (role.secretIdTtl > 0 && (ttl === 0 || ttl > role.secretIdTtl)) {
    throw invalidField(
      "ttl",
      `ttl must be 1 to ${role.secretIdTtl} seconds, the role's secret_id_ttl`,
    );
  }
  return { cidrList, tokenBoundCidrs, numUses, ttl };
}

export function isSecretIdExpired(record: SecretIdRecord, now: number): boolean {
  return record.expiresAt !== null && now >= record.expiresAt;
}
