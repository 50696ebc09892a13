import { invalidField, KeywardError, notFound } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { globMatch } from "../util/glob.ts";
import { KeyedLock } from "../util/keyed-lock.ts";
import { DEFAULT_POLICY, isRootPolicySet, normalisePolicies } from "./token-policies.ts";

/** Token roles by name: `auth/token/roles/<name>`. */
const ROLE_PREFIX = "auth/token/roles/";

/** Role names: 1 to 256 of a-z, A-Z, 0-9, "_", "." and "-". */
const ROLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,256}$/;
/** A path suffix: letters, digits, "_", "." and "-" in segments separated by "/". */
const PATH_SUFFIX_PATTERN = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

/**
 * A token role (Vault's `auth/token/roles/<name>`): settings that tokens
 * created through `auth/token/create/<name>` get, for any creator.
 * Durations are in seconds, and 0 means none.
 */
export interface TokenRole {
  readonly name: string;
  /** Policies a token of the role may have; empty to allow the creator's own policies. */
  readonly allowedPolicies: readonly string[];
  /** Policies a token of the role may never have. */
  readonly disallowedPolicies: readonly string[];
  /** Glob patterns (`*` matches any run of characters) of allowed policies. */
  readonly allowedPoliciesGlob: readonly string[];
  /** Glob patterns of disallowed policies. */
  readonly disallowedPoliciesGlob: readonly string[];
  /** Create tokens with no parent, for any creator. */
  readonly orphan: boolean;
  readonly renewable: boolean;
  /** Appended to the tokens' creation path, `auth/token/create/<name>/<suffix>`, which lookups show. */
  readonly pathSuffix: string;
  readonly tokenBoundCidrs: readonly string[];
  readonly tokenExplicitMaxTtl: number;
  readonly tokenNoDefaultPolicy: boolean;
  readonly tokenNumUses: number;
  readonly tokenPeriod: number;
}

export type TokenRoleSettings = Partial<Omit<TokenRole, "name">>;

const ROLE_DEFAULTS: Omit<TokenRole, "name"> = {
  allowedPolicies: [],
  disallowedPolicies: [],
  allowedPoliciesGlob: [],
  disallowedPoliciesGlob: [],
  orphan: false,
  renewable: true,
  pathSuffix: "",
  tokenBoundCidrs: [],
  tokenExplicitMaxTtl: 0,
  tokenNoDefaultPolicy: false,
  tokenNumUses: 0,
  tokenPeriod: 0,
};

export function checkTokenRoleName(name: string): void {
  if (!ROLE_NAME_PATTERN.test(name)) {
    throw invalidField(
      "role_name",
      'the role name must be 1 to 256 of a-z, A-Z, 0-9, "_", "." and "-"',
    );
  }
}

/** Applies `settings` to a role, or to the defaults for a new one, and checks the result. */
export function applyTokenRoleSettings(
  name: string,
  existing: TokenRole | undefined,
  settings: TokenRoleSettings,
): TokenRole {
  const defined = Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as TokenRoleSettings;
  const role: TokenRole = { ...ROLE_DEFAULTS, ...existing, ...defined, name };
  const dotSegment = role.pathSuffix.split("/").some((part) => part === "." || part === "..");
  if (role.pathSuffix !== "" && (!PATH_SUFFIX_PATTERN.test(role.pathSuffix) || dotSegment)) {
    throw invalidField(
      "path_suffix",
      'the path suffix must be segments of a-z, A-Z, 0-9, "_", "." and "-" separated by "/", none of them "." or ".."',
    );
  }
  const allowedPolicies = policyNames(role.allowedPolicies, "allowed_policies");
  if (isRootPolicySet(allowedPolicies)) {
    throw invalidField("allowed_policies", "a token role cannot allow the root policy");
  }
  return Object.freeze({
    ...role,
    // Policy names are lower case, so patterns are too, or an upper-case pattern would never match.
    allowedPoliciesGlob: globPatterns(role.allowedPoliciesGlob),
    disallowedPoliciesGlob: globPatterns(role.disallowedPoliciesGlob),
    allowedPolicies,
    disallowedPolicies: policyNames(role.disallowedPolicies, "disallowed_policies"),
  });
}

/** Splits glob patterns at commas, trims and lower-cases them, and drops empty ones. */
function globPatterns(patterns: readonly string[]): string[] {
  const split = patterns.flatMap((pattern) => pattern.split(",").map((part) => part.trim()));
  return [...new Set(split.filter((part) => part !== "").map((part) => part.toLowerCase()))];
}

/**
 * Normalises a role's policy list: names split at commas, trimmed,
 * lower-cased, checked, sorted and without duplicates. `default` is not
 * added, and unlike a token's list, `root` does not absorb the others.
 */
function policyNames(names: readonly string[], field: string): string[] {
  const normalised = names.flatMap((name) =>
    name
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== "")
      .flatMap((part) => normalisePolicies([part], false, field)),
  );
  return [...new Set(normalised)].sort();
}

/**
 * Computes the policies of a token created through `role`, as Vault does.
 *
 * With allowed policies (exact or glob), the request may name only those
 * (and `default`), and a request without policies gets the exact allowed
 * ones. Without them, the token gets the creator's policies or a subset of
 * them. Either way no disallowed policy may be requested, and disallowed
 * policies are dropped from an inherited list. Throws `permission_denied` on
 * `policies`.
 */
export function roleTokenPolicies(
  role: TokenRole,
  parentPolicies: readonly string[],
  requested: readonly string[] | undefined,
  noDefaultPolicy: boolean,
): string[] {
  const addDefault = !noDefaultPolicy;
  const hasAllowed = role.allowedPolicies.length > 0 || role.allowedPoliciesGlob.length > 0;
  const isDisallowed = (name: string) =>
    role.disallowedPolicies.includes(name) ||
    role.disallowedPoliciesGlob.some((pattern) => globMatch(pattern, name));
  const isAllowed = (name: string) =>
    name === DEFAULT_POLICY ||
    role.allowedPolicies.includes(name) ||
    role.allowedPoliciesGlob.some((pattern) => globMatch(pattern, name));

  let policies: string[];
  if (requested === undefined || requested.length === 0) {
    const base = hasAllowed
      ? role.allowedPolicies
      : parentPolicies.filter((name) => !isDisallowed(name));
    policies = normalisePolicies(
      base.filter((name) => !(noDefaultPolicy && name === DEFAULT_POLICY)),
      addDefault,
    );
  } else {
    policies = normalisePolicies(requested, addDefault);
    const outside = hasAllowed
      ? policies.filter((name) => !isAllowed(name))
      : isRootPolicySet(parentPolicies)
        ? []
        : policies.filter((name) => name !== DEFAULT_POLICY && !parentPolicies.includes(name));
    if (outside.length > 0) {
      throw new KeywardError(
        "permission_denied",
        `the token's policies must be ${hasAllowed ? "among the role's allowed policies" : "a subset of the creator's"}; not allowed: ${quoted(outside)}`,
        { field: "policies" },
      );
    }
  }
  const disallowed = policies.filter(isDisallowed);
  if (disallowed.length > 0) {
    throw new KeywardError(
      "permission_denied",
      `the role disallows the policies ${quoted(disallowed)}`,
      { field: "policies" },
    );
  }
  if (isRootPolicySet(policies) && !isRootPolicySet(parentPolicies)) {
    throw new KeywardError("permission_denied", "only a root token may create a root token", {
      field: "policies",
    });
  }
  return policies;
}

function quoted(names: string[]): string {
  return names.map((name) => JSON.stringify(name)).join(", ");
}

function encode(role: TokenRole): Uint8Array {
  return Buffer.from(JSON.stringify(role), "utf8");
}

/** Token roles behind the barrier. Writes to one role run one at a time. */
export class TokenRoleStore {
  readonly #barrier: Barrier;
  readonly #locks = new KeyedLock();

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async list(): Promise<string[]> {
    return (await this.#barrier.list(ROLE_PREFIX)).filter((entry) => !entry.endsWith("/"));
  }

  /** Returns the role, or undefined when none has that name. */
  async find(name: string): Promise<TokenRole | undefined> {
    checkTokenRoleName(name);
    const key = ROLE_PREFIX + name;
    const stored = await this.#barrier.get(key);
    if (stored === undefined) return undefined;
    try {
      return Object.freeze(JSON.parse(Buffer.from(stored).toString("utf8"))) as TokenRole;
    } catch (error) {
      throw new KeywardError("storage_failure", `the token role at ${key} is not valid JSON`, {
        cause: error,
      });
    }
  }

  async read(name: string): Promise<TokenRole> {
    const role = await this.find(name);
    if (role === undefined) throw notFound(`token role "${name}"`);
    return role;
  }

  /** Creates a role, or changes the given settings of an existing one. */
  async write(name: string, settings: TokenRoleSettings): Promise<TokenRole> {
    checkTokenRoleName(name);
    return this.#locks.run(name, async () => {
      const role = applyTokenRoleSettings(name, await this.find(name), settings);
      await this.#barrier.put(ROLE_PREFIX + name, encode(role));
      return role;
    });
  }

  /** Deletes a role. Tokens created through it keep working, as in Vault. */
  async delete(name: string): Promise<void> {
    checkTokenRoleName(name);
    await this.#locks.run(name, () => this.#barrier.delete(ROLE_PREFIX + name));
  }
}
