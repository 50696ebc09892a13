import { invalidField, KeywardError } from "../errors.ts";

/** The policy that allows everything. A token with it is a root token. */
export const ROOT_POLICY = "root";
/** The policy Vault attaches to every token unless `no_default_policy` is set. */
export const DEFAULT_POLICY = "default";

const MAX_POLICY_NAME_LENGTH = 128;
const MAX_POLICIES = 64;
const POLICY_NAME_PATTERN = /^[a-z0-9_.-]+$/;

/**
 * Normalises a policy list as Vault does. It splits comma-separated
 * entries, trims and lowercases names and drops empty ones. A list that
 * contains `root` becomes exactly `["root"]`, and any other list gets
 * `default` when `addDefault` is set. Returns the names sorted and without
 * duplicates.
 * Throws `invalid_field` on `field` for a name outside 1 to 128 of a-z,
 * 0-9, "_", "." and "-".
 */
export function normalisePolicies(
  names: readonly string[],
  addDefault: boolean,
  field = "policies",
): string[] {
  const normalised = names
    .flatMap((name) => name.split(","))
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  for (const name of normalised) {
    if (name.length > MAX_POLICY_NAME_LENGTH || !POLICY_NAME_PATTERN.test(name)) {
      throw invalidField(
        field,
        `invalid policy name ${JSON.stringify(name.slice(0, MAX_POLICY_NAME_LENGTH))}: use 1 to ${MAX_POLICY_NAME_LENGTH} characters from a-z, 0-9, "_", "." and "-"`,
      );
    }
  }
  if (normalised.includes(ROOT_POLICY)) return [ROOT_POLICY];
  if (addDefault) normalised.push(DEFAULT_POLICY);
  const unique = [...new Set(normalised)].sort();
  if (unique.length > MAX_POLICIES) {
    throw invalidField(field, `a token may have at most ${MAX_POLICIES} policies`);
  }
  return unique;
}

export function isRootPolicySet(policies: readonly string[]): boolean {
  return policies.includes(ROOT_POLICY);
}

/**
 * Computes a child token's policies from its parent's. Without `requested`
 * (or with an empty list) the child inherits the parent's policies. A parent without `root` may
 * only grant policies it has itself, and `default` is always allowed. `default`
 * is added unless `noDefaultPolicy` is set, and removed from an inherited
 * list when it is. Throws `permission_denied` on `policies` when the child
 * would get a policy the parent lacks.
 *
 * NOTE: Vault also lets a caller with `sudo` on `auth/token/create` grant
 * any policy, but Keyward checks only the parent's own policies.
 */
export function childPolicies(
  parent: readonly string[],
  requested: readonly string[] | undefined,
  noDefaultPolicy: boolean,
): string[] {
  const parentIsRoot = isRootPolicySet(parent);
  if (requested === undefined || requested.length === 0) {
    const inherited = parent.filter((name) => !(noDefaultPolicy && name === DEFAULT_POLICY));
    return normalisePolicies(inherited, !noDefaultPolicy);
  }
  const policies = normalisePolicies(requested, !noDefaultPolicy);
  if (!parentIsRoot) {
    const missing = policies.filter((name) => name !== DEFAULT_POLICY && !parent.includes(name));
    if (missing.length > 0) {
      throw new KeywardError(
        "permission_denied",
        `a child token's policies must be a subset of its parent's; the parent lacks ${missing.map((name) => JSON.stringify(name)).join(", ")}`,
        { field: "policies" },
      );
    }
  }
  return policies;
}
