/**
 * Matches `value` against a glob in which `*` stands for any run of
 * characters (dots and slashes included) and every other character stands
 * for itself.
 *
 * Written by hand instead of compiled to a regular expression: `a*a*a*…b`
 * makes a backtracking regex take exponential time, which one stored
 * pattern could use to stall the server. This greedy matcher with one
 * backtrack point takes at most `pattern.length * value.length` steps.
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  // Where the last `*` was seen, and the value position it was tried against.
  let star = -1;
  let starValue = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = p;
      starValue = v;
      p += 1;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p += 1;
      v += 1;
    } else if (star !== -1) {
      // Let the last `*` take one more character and retry from there.
      p = star + 1;
      starValue += 1;
      v = starValue;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p += 1;
  return p === pattern.length;
}
