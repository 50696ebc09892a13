import type { AppRole, RoleSettings } from "../../auth/approle/role.ts";
import type { SecretIdRecord, SecretIdRequest } from "../../auth/approle/secret-id.ts";
import { parseCidrList } from "../../auth/cidr.ts";
import { parseOptionalDuration } from "../../auth/duration.ts";
import { invalidField } from "../../errors.ts";
import { cidrListSchema, durationSchema, objectBody } from "./auth-shared.ts";

/* Schemas, request parsing and Vault's response shapes of the AppRole routes. */

/** Go's zero time, which Vault reports as the expiry of a secret ID that never expires. */
const NO_EXPIRY = "0001-01-01T00:00:00Z";
const MAX_METADATA_BYTES = 16 * 1024;

export const roleParams = {
  type: "object",
  required: ["role_name"],
  properties: { role_name: { type: "string", minLength: 1, maxLength: 256 } },
} as const;

const policiesSchema = (description: string) =>
  ({
    type: "array",
    maxItems: 64,
    items: { type: "string", maxLength: 4096 },
    description: `${description} An array or a comma-separated string.`,
  }) as const;

const count = (description: string) =>
  ({ type: "integer", minimum: 0, maximum: 2 ** 31 - 1, description }) as const;

export const roleBody = objectBody({
  bind_secret_id: { type: "boolean", description: "Require a secret ID at login (default true)." },
  secret_id_bound_cidrs: cidrListSchema("CIDR blocks logins must come from."),
  secret_id_num_uses: count("Default and maximum logins per secret ID; 0 for unlimited."),
  secret_id_ttl: durationSchema("Default and maximum secret ID lifetime; 0 for none."),
  local_secret_ids: {
    type: "boolean",
    description: "Accepted for Vault compatibility; no effect.",
  },
  token_policies: policiesSchema("Policies of issued tokens."),
  policies: policiesSchema("Deprecated alias of token_policies."),
  token_ttl: durationSchema("TTL of issued tokens; 0 for the default (768h)."),
  token_max_ttl: durationSchema("Maximum lifetime of issued tokens; 0 for the system maximum."),
  token_explicit_max_ttl: durationSchema("Hard lifetime limit of issued tokens."),
  token_period: durationSchema("Make issued tokens periodic with this period."),
  period: durationSchema("Deprecated alias of token_period."),
  token_num_uses: count("Use limit of issued tokens; 0 for unlimited."),
  token_bound_cidrs: cidrListSchema(
    "CIDR blocks logins must come from and issued tokens are bound to.",
  ),
  token_no_default_policy: {
    type: "boolean",
    description: "Leave the default policy out of issued tokens.",
  },
  token_type: {
    type: "string",
    enum: ["default", "service"],
    description: 'Only "service" tokens exist.',
  },
});

export interface RoleBody {
  bind_secret_id?: boolean;
  secret_id_bound_cidrs?: string[];
  secret_id_num_uses?: number;
  secret_id_ttl?: number | string;
  token_policies?: string[];
  policies?: string[];
  token_ttl?: number | string;
  token_max_ttl?: number | string;
  token_explicit_max_ttl?: number | string;
  token_period?: number | string;
  period?: number | string;
  token_num_uses?: number;
  token_bound_cidrs?: string[];
  token_no_default_policy?: boolean;
}

/** Returns a field or its deprecated alias. Setting both is an error. */
function either<T>(value: T | undefined, alias: T | undefined, name: string, aliasName: string) {
  if (value !== undefined && alias !== undefined) {
    throw invalidField(aliasName, `set ${name} or its deprecated alias ${aliasName}, not both`);
  }
  return value ?? alias;
}

/** Converts a role body to role settings. Throws `invalid_field` naming the field at fault. */
export function roleSettings(body: RoleBody): RoleSettings {
  const cidrs = (value: string[] | undefined, field: string) =>
    value === undefined ? undefined : parseCidrList(value, field);
  const period = either(body.token_period, body.period, "token_period", "period");
  const periodField = body.period === undefined ? "token_period" : "period";
  return {
    bindSecretId: body.bind_secret_id,
    secretIdBoundCidrs: cidrs(body.secret_id_bound_cidrs, "secret_id_bound_cidrs"),
    secretIdNumUses: body.secret_id_num_uses,
    secretIdTtl: parseOptionalDuration(body.secret_id_ttl, "secret_id_ttl"),
    tokenPolicies: either(body.token_policies, body.policies, "token_policies", "policies"),
    tokenTtl: parseOptionalDuration(body.token_ttl, "token_ttl"),
    tokenMaxTtl: parseOptionalDuration(body.token_max_ttl, "token_max_ttl"),
    tokenExplicitMaxTtl: parseOptionalDuration(
      body.token_explicit_max_ttl,
      "token_explicit_max_ttl",
    ),
    tokenPeriod: parseOptionalDuration(period, periodField),
    tokenNumUses: body.token_num_uses,
    tokenBoundCidrs: cidrs(body.token_bound_cidrs, "token_bound_cidrs"),
    tokenNoDefaultPolicy: body.token_no_default_policy,
  };
}

/** Returns Vault's read-role shape, where `policies` and `period` repeat their `token_` fields. */
export function roleData(role: AppRole) {
  return {
    bind_secret_id: role.bindSecretId,
    local_secret_ids: false,
    policies: [...role.tokenPolicies],
    period: role.tokenPeriod,
    secret_id_bound_cidrs: [...role.secretIdBoundCidrs],
    secret_id_num_uses: role.secretIdNumUses,
    secret_id_ttl: role.secretIdTtl,
    token_bound_cidrs: [...role.tokenBoundCidrs],
    token_explicit_max_ttl: role.tokenExplicitMaxTtl,
    token_max_ttl: role.tokenMaxTtl,
    token_no_default_policy: role.tokenNoDefaultPolicy,
    token_num_uses: role.tokenNumUses,
    token_period: role.tokenPeriod,
    token_policies: [...role.tokenPolicies],
    token_ttl: role.tokenTtl,
    token_type: "default",
  };
}

export function secretIdData(record: SecretIdRecord) {
  return {
    cidr_list: [...record.cidrList],
    creation_time: new Date(record.createdAt).toISOString(),
    expiration_time:
      record.expiresAt === null ? NO_EXPIRY : new Date(record.expiresAt).toISOString(),
    last_updated_time: new Date(record.lastUpdatedAt).toISOString(),
    metadata: { ...record.metadata },
    secret_id_accessor: record.accessor,
    secret_id_num_uses: record.numUses,
    secret_id_ttl: record.ttl,
    token_bound_cidrs: [...record.tokenBoundCidrs],
  };
}

/**
 * Reads secret ID metadata: Vault takes a JSON object encoded as a string;
 * an object is accepted too. Every value must be a string.
 */
function parseMetadata(
  value: string | Record<string, unknown> | undefined,
): Record<string, string> | undefined {
  if (value === undefined || value === "") return undefined;
  const invalid = () =>
    invalidField(
      "metadata",
      'metadata must be a JSON object of string values, such as {"tag": "prod"}',
    );
  let parsed: unknown = value;
  if (typeof value === "string") {
    if (Buffer.byteLength(value, "utf8") > MAX_METADATA_BYTES) throw invalid();
    try {
      parsed = JSON.parse(value);
    } catch {
      throw invalid();
    }
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw invalid();
  const entries = Object.entries(parsed);
  if (entries.some(([, item]) => typeof item !== "string")) throw invalid();
  if (Buffer.byteLength(JSON.stringify(parsed), "utf8") > MAX_METADATA_BYTES) throw invalid();
  return Object.fromEntries(entries) as Record<string, string>;
}

export const secretIdBody = objectBody({
  metadata: {
    type: ["string", "object"],
    description:
      "A JSON object of string values (as a string, as Vault takes it), copied into issued tokens' metadata.",
  },
  cidr_list: cidrListSchema(
    "CIDR blocks logins with this secret ID must come from; within the role's.",
  ),
  token_bound_cidrs: cidrListSchema("CIDR blocks issued tokens are bound to; within the role's."),
  num_uses: count("Logins allowed; 0 for unlimited. At most the role's secret_id_num_uses."),
  ttl: durationSchema("Lifetime; at most the role's secret_id_ttl."),
});

/** The body of `custom-secret-id`: a secret ID body plus the chosen secret ID. */
export const customSecretIdBody = {
  ...secretIdBody,
  properties: {
    ...secretIdBody.properties,
    secret_id: {
      type: "string",
      minLength: 1,
      maxLength: 1024,
      description: "The secret ID to issue.",
    },
  },
  required: ["secret_id"],
};

export interface SecretIdBody {
  metadata?: string | Record<string, unknown>;
  cidr_list?: string[];
  token_bound_cidrs?: string[];
  num_uses?: number;
  ttl?: number | string;
}

export function secretIdRequest(body: SecretIdBody): SecretIdRequest {
  return {
    metadata: parseMetadata(body.metadata),
    cidrList: body.cidr_list === undefined ? undefined : parseCidrList(body.cidr_list, "cidr_list"),
    tokenBoundCidrs:
      body.token_bound_cidrs === undefined
        ? undefined
        : parseCidrList(body.token_bound_cidrs, "token_bound_cidrs"),
    numUses: body.num_uses,
    ttl: parseOptionalDuration(body.ttl, "ttl"),
  };
}

export const secretIdField = {
  type: "string",
  minLength: 1,
  maxLength: 1024,
  description: "The secret ID.",
} as const;
export const secretIdAccessorField = {
  type: "string",
  minLength: 1,
  maxLength: 128,
  description: "The secret ID's accessor.",
} as const;
