import { invalidField, KeywardError } from "../../errors.ts";
import { isRootPolicySet, normalisePolicies } from "../token-policies.ts";

/** Role names: 1 to 256 of a-z, A-Z, 0-9, space, "_", "." and "-", the characters Vault accepts. */
export const ROLE_NAME_PATTERN = /^[A-Za-z0-9 _.-]{1,256}$/;
/** Maximum length of a role ID, generated or chosen. */
export const MAX_ROLE_ID_LENGTH = 256;

/** An AppRole. Durations are in seconds, and 0 means the default, or no limit for counts. */
export interface AppRole {
  readonly name: string;
  readonly roleId: string;
  /** Require a secret ID at login. */
  readonly bindSecretId: boolean;
  /** CIDR blocks logins must come from, or empty for anywhere. */
  readonly secretIdBoundCidrs: readonly string[];
  /** Default and maximum logins per secret ID, or 0 for unlimited. */
  readonly secretIdNumUses: number;
  /** Default and maximum secret ID lifetime, or 0 for none. */
  readonly secretIdTtl: number;
  /** Policies of issued tokens, normalised, without `default` (added at login unless `tokenNoDefaultPolicy`). */
  readonly tokenPolicies: readonly string[];
  readonly tokenTtl: number;
  readonly tokenMaxTtl: number;
  readonly tokenExplicitMaxTtl: number;
  readonly tokenPeriod: number;
  readonly tokenNumUses: number;
  /** CIDR blocks logins must come from and issued tokens are bound to. */
  readonly tokenBoundCidrs: readonly string[];
  readonly tokenNoDefaultPolicy: boolean;
}

/** The settable fields of a role, already parsed. Absent fields keep their value or default. */
export type RoleSettings = Partial<Omit<AppRole, "name" | "roleId">>;

const ROLE_DEFAULTS: Omit<AppRole, "name" | "roleId"> = {
  bindSecretId: true,
  secretIdBoundCidrs: [],
  secretIdNumUses: 0,
  secretIdTtl: 0,
  tokenPolicies: [],
  tokenTtl: 0,
  tokenMaxTtl: 0,
  tokenExplicitMaxTtl: 0,
  tokenPeriod: 0,
  tokenNumUses: 0,
  tokenBoundCidrs: [],
  tokenNoDefaultPolicy: false,
};

export function checkRoleName(name: string): void {
  if (!ROLE_NAME_PATTERN.test(name)) {
    throw invalidField(
      "role_name",
      'the role name must be 1 to 256 of a-z, A-Z, 0-9, space, "_", "." and "-"',
    );
  }
}

export function checkRoleId(roleId: string): void {
  if (roleId.length === 0 || roleId.length > MAX_ROLE_ID_LENGTH) {
    throw invalidField("role_id", `the role ID must be 1 to ${MAX_ROLE_ID_LENGTH} characters`);
  }
}

/**
 * Applies `settings` to a role (or to the defaults for a new one) and
 * checks the result as Vault does. Token policies may not include `root`,
 * and `token_ttl` may not exceed `token_max_ttl`. A role needs at least one
 * constraint: `bind_secret_id`, `secret_id_bound_cidrs` or
 * `token_bound_cidrs`. Throws `invalid_field` or `invalid_request`.
 */
export function applyRoleSettings(
  name: string,
  roleId: string,
  existing: AppRole | undefined,
  settings: RoleSettings,
): AppRole {
  const base = existing ?? { ...ROLE_DEFAULTS, name, roleId };
  const defined = Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as RoleSettings;
  const role: AppRole = { ...base, ...defined, name, roleId };

  const tokenPolicies = normalisePolicies(role.tokenPolicies, false, "token_policies");
  if (isRootPolicySet(tokenPolicies)) {
    throw invalidField("token_policies", "an AppRole cannot issue tokens with the root policy");
  }
  if (role.tokenMaxTtl > 0 && role.tokenTtl > role.tokenMaxTtl) {
    throw invalidField("token_ttl", "token_ttl must not be greater than token_max_ttl");
  }
  if (
    !role.bindSecretId &&
    role.secretIdBoundCidrs.length === 0 &&
    role.tokenBoundCidrs.length === 0
  ) {
    throw new KeywardError(
      "invalid_request",
      "a role needs at least one constraint: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs",
    );
  }
  return Object.freeze({ ...role, tokenPolicies });
}
