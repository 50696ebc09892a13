import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { globMatch } from "../../src/util/glob.ts";

describe("globMatch", () => {
  const cases: [string, string, boolean][] = [
    ["ok exact", "abc|abc", true],
    ["ok star middle", "team-*-prod|team-web-prod", true],
    ["ok star empty", "a*b|ab", true],
    ["ok star dots", "*.example.com|a.b.example.com", true],
    ["ok only star", "*|anything/at.all", true],
    ["ok several stars", "*a*b*c*|xxaxxbxxcxx", true],
    ["fail prefix", "team-*|ops-1", false],
    ["fail suffix", "*.com|example.org", false],
    ["fail longer value", "abc|abcd", false],
    ["fail regex meaning", "a.c|abc", false],
    ["fail empty value", "a*|", false],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, () => {
      const [pattern, value] = spec.split("|") as [string, string];
      assert.equal(globMatch(pattern, value), expected);
    });
  }

  it("stays fast on backtracking patterns", () => {
    // A backtracking regex for this pattern takes exponential time; the matcher must not.
    const pattern = `${"a*".repeat(30)}b`;
    assert.equal(globMatch(pattern, "a".repeat(5000)), false);
    assert.equal(globMatch(pattern, `${"a".repeat(5000)}b`), true);
  });
});
