import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Acl } from "../../src/policy/acl.ts";
import { parsePolicy } from "../../src/policy/parse.ts";
import type { Capability, Operation } from "../../src/policy/types.ts";

/** Builds an ACL from one policy per text; each rule is `pattern: capabilities`. */
function aclOf(...policies: Record<string, Capability[]>[]): Acl {
  return Acl.compile(
    policies.map((rules, index) =>
      parsePolicy(
        `p${index}`,
        Object.entries(rules)
          .map(
            ([path, capabilities]) =>
              `path ${JSON.stringify(path)} { capabilities = ${JSON.stringify(capabilities)} }`,
          )
          .join("\n"),
      ),
    ),
  );
}

interface MatchCase {
  name: string;
  rules: Record<string, Capability[]>;
  path: string;
  /** The capabilities the winning rule grants; [] when no rule matches. */
  expected: Capability[];
}

// Cases from the examples and the five priority rules in Vault's policy
// documentation ("Policies", policy syntax and priority matching).
const matchCases: MatchCase[] = [
  {
    name: "ok exact path",
    rules: { "secret/foo": ["read"] },
    path: "secret/foo",
    expected: ["read"],
  },
  {
    name: "fail exact path is no prefix",
    rules: { "secret/foo": ["read"] },
    path: "secret/food",
    expected: [],
  },
  {
    name: "fail exact path has no children",
    rules: { "secret/foo": ["read"] },
    path: "secret/foo/bar",
    expected: [],
  },
  {
    name: "ok glob child",
    rules: { "secret/bar/*": ["read"] },
    path: "secret/bar/zip",
    expected: ["read"],
  },
  {
    name: "ok glob grandchild",
    rules: { "secret/bar/*": ["read"] },
    path: "secret/bar/zip/zap",
    expected: ["read"],
  },
  {
    name: "fail glob sibling prefix",
    rules: { "secret/bar/*": ["read"] },
    path: "secret/bars/zip",
    expected: [],
  },
  {
    name: "ok glob inside segment",
    rules: { "secret/zip-*": ["read"] },
    path: "secret/zip-zap",
    expected: ["read"],
  },
  {
    name: "ok glob inside segment deeper",
    rules: { "secret/zip-*": ["read"] },
    path: "secret/zip-zap/zong",
    expected: ["read"],
  },
  {
    name: "fail glob inside segment",
    rules: { "secret/zip-*": ["read"] },
    path: "secret/zip/zap",
    expected: [],
  },
  {
    name: "ok glob without slash",
    rules: { "secret/foo*": ["read"] },
    path: "secret/foobar",
    expected: ["read"],
  },
  {
    name: "ok plus one segment",
    rules: { "secret/+/teamb": ["read"] },
    path: "secret/foo/teamb",
    expected: ["read"],
  },
  {
    name: "fail plus two segments",
    rules: { "secret/+/teamb": ["read"] },
    path: "secret/foo/bar/teamb",
    expected: [],
  },
  {
    name: "ok two plus segments",
    rules: { "secret/+/+/teamb": ["read"] },
    path: "secret/bar/foo/teamb",
    expected: ["read"],
  },
  {
    name: "fail plus needs a segment",
    rules: { "secret/+": ["read"] },
    path: "secret",
    expected: [],
  },
  {
    name: "ok plus then glob",
    rules: { "secret/+/*": ["read"] },
    path: "secret/a/b/c",
    expected: ["read"],
  },
  {
    name: "fail plus then glob too short",
    rules: { "secret/+/*": ["read"] },
    path: "secret/a",
    expected: [],
  },
  {
    name: "ok plus then partial glob",
    rules: { "secret/+/ab*": ["read"] },
    path: "secret/x/abc/d",
    expected: ["read"],
  },
  {
    name: "fail plus then partial glob",
    rules: { "secret/+/ab*": ["read"] },
    path: "secret/x/ba",
    expected: [],
  },
  {
    name: "ok leading plus",
    rules: { "+/config": ["read"] },
    path: "transit/config",
    expected: ["read"],
  },
  {
    name: "ok plus inside name is literal",
    rules: { "a/b+c": ["read"] },
    path: "a/b+c",
    expected: ["read"],
  },
  {
    name: "fail plus inside name is literal",
    rules: { "a/b+c": ["read"] },
    path: "a/bxc",
    expected: [],
  },
  {
    name: "ok star matches everything",
    rules: { "*": ["read"] },
    path: "anything/at/all",
    expected: ["read"],
  },
  {
    name: "ok leading slash in request",
    rules: { "secret/foo": ["read"] },
    path: "/secret/foo",
    expected: ["read"],
  },
  {
    name: "ok exact beats glob",
    rules: { "secret/*": ["read"], "secret/foo": ["update"] },
    path: "secret/foo",
    expected: ["update"],
  },
  {
    name: "ok exact deny beats glob",
    rules: {
      "secret/*": ["create", "read", "update", "patch", "delete", "list"],
      "secret/super-secret": ["deny"],
    },
    path: "secret/super-secret",
    expected: ["deny"],
  },
  {
    name: "ok glob still grants siblings",
    rules: { "secret/*": ["read"], "secret/super-secret": ["deny"] },
    path: "secret/other",
    expected: ["read"],
  },
  {
    name: "ok longest prefix wins",
    rules: { "secret/*": ["read"], "secret/team/*": ["update"] },
    path: "secret/team/x",
    expected: ["update"],
  },
  {
    name: "ok rule 1 later wildcard wins",
    rules: { "foo/+": ["read"], "foo/a*": ["update"] },
    path: "foo/ab",
    expected: ["update"],
  },
  {
    name: "ok rule 1 later plus wins",
    rules: { "foo/+/bar/baz": ["read"], "foo/bar/+/baz": ["update"] },
    path: "foo/bar/bar/baz",
    expected: ["update"],
  },
  {
    name: "ok rule 2 no glob wins",
    rules: { "foo/+/ba*": ["read"], "foo/+/bar": ["update"] },
    path: "foo/x/bar",
    expected: ["update"],
  },
  {
    name: "ok rule 2 plus beats star",
    rules: { "foo/*": ["read"], "foo/+": ["update"] },
    path: "foo/x",
    expected: ["update"],
  },
  {
    name: "ok rule 3 fewer plus wins",
    rules: { "secret/*": ["read"], "secret/+/+/foo/*": ["update"] },
    path: "secret/a/b/foo/c",
    expected: ["read"],
  },
  {
    name: "ok rule 4 longer wins",
    rules: { "foo/+/bar/b*": ["read"], "foo/+/bar/ba*": ["update"] },
    path: "foo/x/bar/baz",
    expected: ["update"],
  },
  {
    name: "ok rule 5 larger string wins",
    rules: { "x/+/+/b": ["read"], "x/+/a/+": ["update"] },
    path: "x/q/a/b",
    expected: ["update"],
  },
];

describe("Acl matching", () => {
  for (const testCase of matchCases) {
    it(testCase.name, () => {
      const decision = aclOf(testCase.rules).check({ path: testCase.path, operation: "read" });
      assert.deepEqual(decision.capabilities, [...testCase.expected].sort());
      assert.equal(decision.allowed, testCase.expected.includes("read"));
    });
  }

  it("denies by default", () => {
    const acl = Acl.compile([]);
    assert.deepEqual(acl.check({ path: "secret/foo", operation: "read" }), {
      allowed: false,
      sudo: false,
      capabilities: [],
    });
    assert.deepEqual(acl.capabilities("secret/foo"), ["deny"]);
  });

  it("maps each operation to its capability", () => {
    const operations: Operation[] = ["create", "read", "update", "patch", "delete", "list"];
    for (const granted of operations) {
      const acl = aclOf({ "a/*": [granted] });
      for (const operation of operations) {
        const { allowed } = acl.check({ path: "a/b", operation });
        assert.equal(allowed, operation === granted, `${granted} grants ${operation}`);
      }
    }
  });

  it("reports sudo separately", () => {
    const acl = aclOf({ "sys/audit/*": ["update", "sudo"], "sys/mounts": ["read"] });
    assert.deepEqual(acl.check({ path: "sys/audit/file", operation: "update" }), {
      allowed: true,
      sudo: true,
      capabilities: ["sudo", "update"],
    });
    assert.equal(acl.check({ path: "sys/mounts", operation: "read" }).sudo, false);
  });

  it("grants deny no sudo", () => {
    const acl = aclOf({ a: ["sudo"] }, { a: ["deny"] });
    assert.deepEqual(acl.check({ path: "a", operation: "read" }), {
      allowed: false,
      sudo: false,
      capabilities: ["deny"],
    });
  });
});

describe("Acl with several policies", () => {
  it("unions one pattern's capabilities", () => {
    const acl = aclOf({ "secret/*": ["read"] }, { "secret/*": ["list", "update"] });
    assert.deepEqual(acl.capabilities("secret/x"), ["list", "read", "update"]);
  });

  it("lets deny win on one pattern", () => {
    const acl = aclOf({ "secret/foo": ["read", "update"] }, { "secret/foo": ["deny"] });
    assert.equal(acl.check({ path: "secret/foo", operation: "read" }).allowed, false);
    assert.deepEqual(acl.capabilities("secret/foo"), ["deny"]);
  });

  it("lets deny win in any order", () => {
    const acl = aclOf({ "secret/foo": ["deny"] }, { "secret/foo": ["read"] });
    assert.deepEqual(acl.capabilities("secret/foo"), ["deny"]);
  });

  it("takes only the highest-priority pattern", () => {
    // Vault's documentation: "If different patterns appear in the applicable
    // policies, we take only the highest-priority match from those policies."
    const acl = aclOf({ "secret/*": ["read"] }, { "secret/foo": ["update"] });
    assert.deepEqual(acl.capabilities("secret/foo"), ["update"]);
    assert.equal(acl.check({ path: "secret/foo", operation: "read" }).allowed, false);
  });

  it("lets a specific grant override a broader deny", () => {
    const acl = aclOf({ "secret/*": ["deny"] }, { "secret/public": ["read"] });
    assert.equal(acl.check({ path: "secret/public", operation: "read" }).allowed, true);
    assert.equal(acl.check({ path: "secret/private", operation: "read" }).allowed, false);
  });

  it("treats root as allowing everything", () => {
    const acl = Acl.compile([
      parsePolicy("root", ""),
      parsePolicy("p", 'path "a" { capabilities = ["deny"] }'),
    ]);
    assert.equal(acl.root, true);
    assert.deepEqual(acl.check({ path: "a", operation: "delete" }), {
      allowed: true,
      sudo: true,
      capabilities: ["create", "delete", "list", "patch", "read", "sudo", "update"],
    });
    assert.deepEqual(acl.capabilities("anything"), ["root"]);
  });
});

describe("Acl list paths", () => {
  it("matches a list path without its slash", () => {
    const acl = aclOf({ "transit/keys": ["list"] });
    assert.equal(acl.check({ path: "transit/keys/", operation: "list" }).allowed, true);
    assert.equal(acl.check({ path: "transit/keys/", operation: "read" }).allowed, false);
    assert.deepEqual(acl.capabilities("transit/keys/"), ["list"]);
  });

  it("prefers the pattern for the bare path", () => {
    const acl = aclOf({ "secret/a*": ["list"], "secret/a/*": ["read"] });
    assert.deepEqual(acl.check({ path: "secret/a/", operation: "list" }).capabilities, ["list"]);
    assert.deepEqual(acl.check({ path: "secret/a/", operation: "read" }).capabilities, ["read"]);
  });

  it("returns deny for empty capabilities", () => {
    const acl = Acl.compile([
      parsePolicy("p", 'path "a/*" { capabilities = ["read"] }\npath "a/b" { }'),
    ]);
    assert.deepEqual(acl.capabilities("a/b"), ["deny"]);
    assert.deepEqual(acl.capabilities("a/c"), ["read"]);
  });
});
