import {
  addParameterValues,
  type ParameterConstraints,
  type ParameterLists,
  parametersPermitted,
  setParameterList,
} from "./parameters.ts";
import { comparePriority, compilePattern, matchesPattern, type PathPattern } from "./pattern.ts";
import {
  CAPABILITIES,
  type Capability,
  type Operation,
  type ParameterValue,
  type PathRule,
  type Policy,
} from "./types.ts";

/** The name of the built-in policy that allows everything. */
export const ROOT_POLICY = "root";

/** Operations whose request parameters are checked against a rule's parameter constraints, as in Vault. */
const PARAMETER_OPERATIONS: ReadonlySet<Operation> = new Set(["create", "read", "update", "patch"]);

const ROOT_CAPABILITIES: Capability[] = CAPABILITIES.filter(
  (capability) => capability !== "deny",
).sort();

export interface AclRequest {
  /** The request path without a leading slash or `/v1/`, such as `transit/encrypt/payments`. */
  path: string;
  operation: Operation;
  /** The request's body or query parameters, checked against parameter constraints. */
  parameters?: Record<string, unknown>;
}

export interface AclDecision {
  allowed: boolean;
  /** True when the winning rule grants `sudo`, which root-protected paths need in addition. */
  sudo: boolean;
  /** The winning rule's capabilities, sorted; empty when no rule matches. */
  capabilities: Capability[];
}

/** The rules of every policy for one pattern, merged. */
interface MergedRule extends ParameterConstraints {
  readonly pattern: PathPattern;
  capabilities: Set<Capability>;
  allowedParameters?: ParameterLists;
  deniedParameters?: ParameterLists;
  requiredParameters: string[];
  /**
   * True when a policy sets `min_wrapping_ttl` on the pattern, which in
   * Vault allows only wrapped responses there. Keyward cannot wrap a
   * response, so such a rule grants nothing (see `check`).
   */
  wrappingRequired: boolean;
}

/** Returns whether a rule allows only wrapped responses: a `min_wrapping_ttl` above zero. */
function requiresWrapping(rule: PathRule): boolean {
  return (rule.minWrappingTtlSeconds ?? 0) > 0;
}

function copyParameters(
  parameters: Readonly<Record<string, readonly ParameterValue[]>> | undefined,
): ParameterLists | undefined {
  if (parameters === undefined) return undefined;
  const copy: ParameterLists = {};
  for (const [name, values] of Object.entries(parameters))
    setParameterList(copy, name, [...values]);
  return copy;
}

/** Merges one list of parameter constraints into another: an empty list (any value) wins, otherwise values add up. */
function mergeParameters(
  existing: ParameterLists | undefined,
  added: Readonly<Record<string, readonly ParameterValue[]>> | undefined,
): ParameterLists | undefined {
  if (added === undefined || Object.keys(added).length === 0) return existing;
  if (existing === undefined || Object.keys(existing).length === 0) return copyParameters(added);
  for (const [name, values] of Object.entries(added)) addParameterValues(existing, name, values);
  return existing;
}

/**
 * Adds a policy's rule to the merged rule of the same pattern, as Vault
 * merges policies: capabilities add up, `deny` replaces everything, and
 * parameter constraints combine.
 */
function mergeRule(merged: MergedRule, rule: PathRule): void {
  if (merged.capabilities.has("deny")) return;
  if (rule.capabilities.includes("deny")) {
    merged.capabilities = new Set(["deny"]);
    merged.allowedParameters = undefined;
    merged.deniedParameters = undefined;
    return;
  }
  for (const capability of rule.capabilities) merged.capabilities.add(capability);
  merged.allowedParameters = mergeParameters(merged.allowedParameters, rule.allowedParameters);
  merged.deniedParameters = mergeParameters(merged.deniedParameters, rule.deniedParameters);
  for (const name of rule.requiredParameters) {
    if (!merged.requiredParameters.includes(name)) merged.requiredParameters.push(name);
  }
  if (requiresWrapping(rule)) merged.wrappingRequired = true;
}

function newRule(pattern: PathPattern, rule: PathRule): MergedRule {
  return {
    pattern,
    capabilities: new Set(rule.capabilities),
    allowedParameters: copyParameters(rule.allowedParameters),
    deniedParameters: copyParameters(rule.deniedParameters),
    requiredParameters: [...rule.requiredParameters],
    wrappingRequired: requiresWrapping(rule),
  };
}

function sorted(capabilities: Iterable<Capability>): Capability[] {
  return [...capabilities].sort();
}

/**
 * The access rules of one token, compiled from its policies.
 *
 * Matching follows Vault: rules with the same pattern in several policies
 * are merged (their capabilities add up, and `deny` in any of them wins).
 * Then the one most specific pattern that matches the path decides: an
 * exact pattern first, otherwise the glob or `+` pattern of highest
 * priority (see `pattern.ts`). A path no rule matches is denied.
 */
export class Acl {
  readonly #root: boolean;
  readonly #exact: ReadonlyMap<string, MergedRule>;
  /** Non-exact rules, highest priority first, so the first match wins. */
  readonly #patterns: readonly MergedRule[];

  private constructor(root: boolean, exact: Map<string, MergedRule>, patterns: MergedRule[]) {
    this.#root = root;
    this.#exact = exact;
    this.#patterns = patterns;
  }

  /** Compiles the policies of one token. A `root` policy among them allows everything. */
  static compile(policies: readonly Policy[]): Acl {
    if (policies.some((policy) => policy.name === ROOT_POLICY)) return new Acl(true, new Map(), []);

    const byPattern = new Map<string, MergedRule>();
    for (const policy of policies) {
      for (const rule of policy.rules) {
        const existing = byPattern.get(rule.path);
        if (existing === undefined)
          byPattern.set(rule.path, newRule(compilePattern(rule.path), rule));
        else mergeRule(existing, rule);
      }
    }

    const exact = new Map<string, MergedRule>();
    const patterns: MergedRule[] = [];
    for (const [path, rule] of byPattern) {
      if (rule.pattern.kind === "exact") exact.set(path, rule);
      else patterns.push(rule);
    }
    patterns.sort((a, b) => comparePriority(a.pattern, b.pattern));
    return new Acl(false, exact, patterns);
  }

  /** True when compiled from the `root` policy. */
  get root(): boolean {
    return this.#root;
  }

  /** Decides whether a request is allowed. A `deny` in the winning rule rejects it whatever else it grants. */
  check(request: AclRequest): AclDecision {
    if (this.#root) return { allowed: true, sudo: true, capabilities: [...ROOT_CAPABILITIES] };

    const rule = this.#find(request.path, request.operation);
    if (rule === undefined) return { allowed: false, sudo: false, capabilities: [] };
    const capabilities = sorted(rule.capabilities);
    if (rule.capabilities.has("deny")) return { allowed: false, sudo: false, capabilities };

    const sudo = rule.capabilities.has("sudo");
    // Keyward cannot wrap a response, so a rule that requires wrapping allows nothing.
    let allowed = rule.capabilities.has(request.operation) && !rule.wrappingRequired;
    if (allowed && PARAMETER_OPERATIONS.has(request.operation)) {
      allowed = parametersPermitted(rule, request.parameters ?? {});
    }
    return { allowed, sudo, capabilities };
  }

  /**
   * Returns the capabilities on a path, sorted, for `sys/capabilities`:
   * `["root"]` for the root policy and `["deny"]` when the path is denied or
   * no rule grants anything, as Vault returns them. Like Vault, it matches
   * the path as a list request would, so `secret/foo/` also finds the rule
   * for `secret/foo`.
   */
  capabilities(path: string): Array<Capability | "root"> {
    if (this.#root) return ["root"];
    const rule = this.#find(path, "list");
    if (rule === undefined || rule.capabilities.size === 0 || rule.capabilities.has("deny")) {
      return ["deny"];
    }
    return sorted(rule.capabilities);
  }

  /**
   * Finds the rule that decides a path. A list request on `a/b/` also tries
   * the exact rule for `a/b` and the patterns matching `a/b`, first, as Vault
   * does, since list paths end in a slash.
   */
  #find(rawPath: string, operation: Operation): MergedRule | undefined {
    const path = rawPath.replace(/^\/+/, "");
    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    if (operation === "list" && path.endsWith("/")) {
      const withoutSlash = path.slice(0, -1);
      const rule = this.#exact.get(withoutSlash) ?? this.#firstMatch(withoutSlash);
      if (rule !== undefined) return rule;
    }
    return this.#firstMatch(path);
  }

  #firstMatch(path: string): MergedRule | undefined {
    return this.#patterns.find((rule) => matchesPattern(rule.pattern, path));
  }
}
