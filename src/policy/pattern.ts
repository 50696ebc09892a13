/**
 * Path patterns of policy rules: how each one matches a request path, and
 * which of several matching patterns wins.
 *
 * The priority order is Vault's, from its policy documentation ("Policies",
 * priority matching): of two matching non-exact patterns P1 and P2, P1 is
 * lower priority when
 *   1. its first `+` or `*` comes earlier,
 *   2. it ends in `*` and P2 does not,
 *   3. it has more `+` segments,
 *   4. it is shorter,
 *   5. it is smaller lexicographically.
 * An exact pattern always beats every glob and wildcard pattern.
 */

export type PatternKind = "exact" | "prefix" | "segment";

export interface PathPattern {
  /** The pattern as written in the rule. */
  readonly source: string;
  /**
   * `exact`: no glob. `prefix`: a trailing `*` and no `+` segment.
   * `segment`: at least one `+` segment, with or without a trailing `*`.
   */
  readonly kind: PatternKind;
  /** The pattern without its trailing `*`. */
  readonly body: string;
  readonly endsWithGlob: boolean;
  /** Index of the first `+` segment, or of the `*` when there is none. */
  readonly firstWildcard: number;
  /** Number of `+` segments. */
  readonly wildcards: number;
  /** `body` split at `/`, for segment patterns. */
  readonly segments: readonly string[];
}

/** Compiles a rule's path. `+` is a wildcard only as a whole segment; elsewhere it is a literal character. */
export function compilePattern(source: string): PathPattern {
  const endsWithGlob = source.endsWith("*");
  const body = endsWithGlob ? source.slice(0, -1) : source;
  const segments = body.split("/");
  const wildcards = segments.filter((segment) => segment === "+").length;

  let firstWildcard = body.length;
  let offset = 0;
  for (const segment of segments) {
    if (segment === "+") {
      firstWildcard = offset;
      break;
    }
    offset += segment.length + 1;
  }

  let kind: PatternKind = "exact";
  if (wildcards > 0) kind = "segment";
  else if (endsWithGlob) kind = "prefix";
  return { source, kind, body, endsWithGlob, firstWildcard, wildcards, segments };
}

/** Tests a non-exact pattern against a request path. Exact patterns are looked up by the caller. */
export function matchesPattern(pattern: PathPattern, path: string): boolean {
  if (pattern.kind === "exact") return pattern.body === path;
  if (pattern.kind === "prefix") return path.startsWith(pattern.body);

  const parts = path.split("/");
  const segments = pattern.segments;
  if (parts.length < segments.length) return false;
  if (!pattern.endsWithGlob && parts.length !== segments.length) return false;
  const last = segments.length - 1;
  for (let i = 0; i <= last; i += 1) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if (segment === "+") continue;
    if (i === last && pattern.endsWithGlob) {
      if (!part.startsWith(segment)) return false;
    } else if (segment !== part) {
      return false;
    }
  }
  return true;
}

/**
 * Orders two non-exact patterns by priority: negative when `a` wins, positive
 * when `b` wins, 0 only for identical patterns. Sorting with it puts the
 * highest priority first.
 */
export function comparePriority(a: PathPattern, b: PathPattern): number {
  if (a.firstWildcard !== b.firstWildcard) return b.firstWildcard - a.firstWildcard;
  if (a.endsWithGlob !== b.endsWithGlob) return a.endsWithGlob ? 1 : -1;
  if (a.wildcards !== b.wildcards) return a.wildcards - b.wildcards;
  if (a.body.length !== b.body.length) return b.body.length - a.body.length;
  if (a.body !== b.body) return a.body < b.body ? 1 : -1;
  return 0;
}
