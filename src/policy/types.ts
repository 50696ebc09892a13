/**
 * The policy model, as Vault defines it: a named list of path rules, each
 * granting capabilities on the request paths its pattern matches.
 */

/** Every capability a path rule can grant, in Vault's order. `deny` overrides all others. */
export const CAPABILITIES = [
  "create",
  "read",
  "update",
  "patch",
  "delete",
  "list",
  "sudo",
  "deny",
] as const;

export type Capability = (typeof CAPABILITIES)[number];

/** The operations a request can perform; each needs the capability of the same name. */
export const OPERATIONS = ["create", "read", "update", "patch", "delete", "list"] as const;

export type Operation = (typeof OPERATIONS)[number];

/** A value in `allowed_parameters` or `denied_parameters`. Strings may start or end with `*`. */
export type ParameterValue = string | number | boolean | null;

/** One `path "…" { … }` block of a policy. */
export interface PathRule {
  /**
   * The path pattern relative to `/v1/`, without a leading slash. A trailing
   * `*` makes it a prefix match, and a `+` segment matches any one segment.
   */
  readonly path: string;
  /** Granted capabilities, each once, in `CAPABILITIES` order. A rule with `deny` has only `deny`. */
  readonly capabilities: readonly Capability[];
  /**
   * Parameters the request may contain, by lowercase name, each with the
   * values it may take (an empty list allows any value). Absent when the
   * rule does not restrict parameters this way.
   */
  readonly allowedParameters?: Readonly<Record<string, readonly ParameterValue[]>>;
  /** Parameters the request must not contain, or values they must not take (empty list: any value). */
  readonly deniedParameters?: Readonly<Record<string, readonly ParameterValue[]>>;
  /** Lowercase names of parameters the request must contain. */
  readonly requiredParameters: readonly string[];
  /**
   * Response-wrapping TTL bounds in seconds, as written. Keyward has no
   * response wrapping, so a rule with a `min_wrapping_ttl` above zero, which
   * allows only wrapped responses, allows no request (see `Acl.check`), and
   * `max_wrapping_ttl` has nothing to limit.
   */
  readonly minWrappingTtlSeconds?: number;
  readonly maxWrappingTtlSeconds?: number;
}

/** A parsed policy. */
export interface Policy {
  readonly name: string;
  readonly rules: readonly PathRule[];
  /** The policy text exactly as it was written (HCL or JSON). */
  readonly raw: string;
}
