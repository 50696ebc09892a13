import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Acl } from "../../src/policy/acl.ts";
import { parsePolicy } from "../../src/policy/parse.ts";
import type { Operation } from "../../src/policy/types.ts";

/** Compiles `path "secret/foo" { capabilities = [all but sudo and deny]  <constraints> }`. */
function aclWith(constraints: string): Acl {
  const text = `path "secret/foo" {\n  capabilities = ["create", "read", "update", "patch", "delete", "list"]\n  ${constraints}\n}`;
  return Acl.compile([parsePolicy("p", text)]);
}

interface ParameterCase {
  name: string;
  constraints: string;
  parameters: Record<string, unknown>;
  allowed: boolean;
}

// The constraint examples of Vault's policy documentation ("Parameter
// Constraints"), plus the edge cases of how values match.
const cases: ParameterCase[] = [
  {
    name: "ok required present",
    constraints: 'required_parameters = ["bar", "baz"]',
    parameters: { bar: 1, baz: 2 },
    allowed: true,
  },
  {
    name: "fail required missing",
    constraints: 'required_parameters = ["bar", "baz"]',
    parameters: { bar: 1 },
    allowed: false,
  },
  {
    name: "fail required with no body",
    constraints: 'required_parameters = ["bar"]',
    parameters: {},
    allowed: false,
  },
  {
    name: "ok allowed any value",
    constraints: 'allowed_parameters = { "bar" = [] }',
    parameters: { bar: "anything" },
    allowed: true,
  },
  {
    name: "fail allowed other name",
    constraints: 'allowed_parameters = { "bar" = [] }',
    parameters: { other: 1 },
    allowed: false,
  },
  {
    name: "ok allowed listed value",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zap" },
    allowed: true,
  },
  {
    name: "fail allowed unlisted value",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zoo" },
    allowed: false,
  },
  {
    name: "fail allowed extra parameter",
    constraints: 'allowed_parameters = { "bar" = ["zip"] }',
    parameters: { bar: "zip", baz: 1 },
    allowed: false,
  },
  {
    name: "ok allowed no parameters",
    constraints: 'allowed_parameters = { "bar" = ["zip"] }',
    parameters: {},
    allowed: true,
  },
  {
    name: "ok allowed star opens others",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"], "*" = [] }',
    parameters: { bar: "zip", other: "x" },
    allowed: true,
  },
  {
    name: "fail allowed star keeps listed values",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"], "*" = [] }',
    parameters: { bar: "nope", other: "x" },
    allowed: false,
  },
  {
    name: "ok allowed star alone",
    constraints: 'allowed_parameters = { "*" = [] }',
    parameters: { a: 1, b: 2 },
    allowed: true,
  },
  {
    name: "ok allowed prefix glob",
    constraints: 'allowed_parameters = { "bar" = ["baz/*"] }',
    parameters: { bar: "baz/quux" },
    allowed: true,
  },
  {
    name: "ok allowed prefix glob with commas",
    constraints: 'allowed_parameters = { "bar" = ["baz/*"] }',
    parameters: { bar: "baz/quux,wibble,wobble" },
    allowed: true,
  },
  {
    name: "fail allowed prefix glob",
    constraints: 'allowed_parameters = { "bar" = ["baz/*"] }',
    parameters: { bar: "qux/baz" },
    allowed: false,
  },
  {
    name: "ok allowed value prefix",
    constraints: 'allowed_parameters = { "bar" = ["foo-*"] }',
    parameters: { bar: "foo-bar" },
    allowed: true,
  },
  {
    name: "fail allowed value prefix",
    constraints: 'allowed_parameters = { "bar" = ["foo-*"] }',
    parameters: { bar: "bar-foo" },
    allowed: false,
  },
  {
    name: "ok allowed value suffix",
    constraints: 'allowed_parameters = { "bar" = ["*-prod"] }',
    parameters: { bar: "db-prod" },
    allowed: true,
  },
  {
    name: "fail allowed value suffix",
    constraints: 'allowed_parameters = { "bar" = ["*-prod"] }',
    parameters: { bar: "db-dev" },
    allowed: false,
  },
  {
    name: "ok allowed value infix",
    constraints: 'allowed_parameters = { "bar" = ["*mid*"] }',
    parameters: { bar: "amidst" },
    allowed: true,
  },
  {
    name: "fail lone star value is literal",
    constraints: 'allowed_parameters = { "bar" = ["*"] }',
    parameters: { bar: "x" },
    allowed: false,
  },
  {
    name: "ok lone star value matches itself",
    constraints: 'allowed_parameters = { "bar" = ["*"] }',
    parameters: { bar: "*" },
    allowed: true,
  },
  {
    name: "ok allowed comma list",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zip, zap" },
    allowed: true,
  },
  {
    name: "fail allowed comma list",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zip,zoo" },
    allowed: false,
  },
  {
    name: "ok allowed array value",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: ["zip", "zap"] },
    allowed: true,
  },
  {
    name: "fail allowed array value",
    constraints: 'allowed_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: ["zip", "no"] },
    allowed: false,
  },
  {
    name: "fail allowed empty string",
    constraints: 'allowed_parameters = { "bar" = ["zip"] }',
    parameters: { bar: "" },
    allowed: false,
  },
  {
    name: "ok allowed number",
    constraints: 'allowed_parameters = { "ttl" = [60, 120] }',
    parameters: { ttl: 60 },
    allowed: true,
  },
  {
    name: "fail allowed number",
    constraints: 'allowed_parameters = { "ttl" = [60, 120] }',
    parameters: { ttl: 61 },
    allowed: false,
  },
  {
    name: "fail number is no string",
    constraints: 'allowed_parameters = { "ttl" = ["60"] }',
    parameters: { ttl: 60 },
    allowed: false,
  },
  {
    name: "ok allowed boolean",
    constraints: 'allowed_parameters = { "exportable" = [false] }',
    parameters: { exportable: false },
    allowed: true,
  },
  {
    name: "fail allowed boolean",
    constraints: 'allowed_parameters = { "exportable" = [false] }',
    parameters: { exportable: true },
    allowed: false,
  },
  {
    name: "ok names ignore case",
    constraints: 'allowed_parameters = { "Bar" = ["zip"] }',
    parameters: { BAR: "zip" },
    allowed: true,
  },
  {
    name: "fail denied any value",
    constraints: 'denied_parameters = { "bar" = [] }',
    parameters: { bar: "x" },
    allowed: false,
  },
  {
    name: "ok denied other name",
    constraints: 'denied_parameters = { "bar" = [] }',
    parameters: { foo: "x" },
    allowed: true,
  },
  {
    name: "fail denied listed value",
    constraints: 'denied_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zip" },
    allowed: false,
  },
  {
    name: "ok denied unlisted value",
    constraints: 'denied_parameters = { "bar" = ["zip", "zap"] }',
    parameters: { bar: "zoo" },
    allowed: true,
  },
  {
    name: "fail denied inside comma list",
    constraints: 'denied_parameters = { "bar" = ["zip"] }',
    parameters: { bar: "ok,zip" },
    allowed: false,
  },
  {
    name: "fail denied inside array",
    constraints: 'denied_parameters = { "bar" = ["zip"] }',
    parameters: { bar: ["ok", "zip"] },
    allowed: false,
  },
  {
    name: "fail denied glob value",
    constraints: 'denied_parameters = { "type" = ["rsa-*"] }',
    parameters: { type: "rsa-2048" },
    allowed: false,
  },
  {
    name: "fail denied star",
    constraints: 'denied_parameters = { "*" = [] }',
    parameters: { anything: 1 },
    allowed: false,
  },
  {
    name: "ok denied star without parameters",
    constraints: 'denied_parameters = { "*" = [] }',
    parameters: {},
    allowed: true,
  },
  {
    name: "fail denied names ignore case",
    constraints: 'denied_parameters = { "bar" = [] }',
    parameters: { Bar: "x" },
    allowed: false,
  },
  {
    name: "fail denied beats allowed",
    constraints: 'allowed_parameters = { "bar" = [] }\n  denied_parameters = { "bar" = ["zip"] }',
    parameters: { bar: "zip" },
    allowed: false,
  },
  {
    name: "ok allowed after denied check",
    constraints: 'allowed_parameters = { "bar" = [] }\n  denied_parameters = { "bar" = ["zip"] }',
    parameters: { bar: "zap" },
    allowed: true,
  },
];

describe("parameter constraints", () => {
  for (const testCase of cases) {
    it(testCase.name, () => {
      const acl = aclWith(testCase.constraints);
      const decision = acl.check({
        path: "secret/foo",
        operation: "create",
        parameters: testCase.parameters,
      });
      assert.equal(decision.allowed, testCase.allowed);
    });
  }

  it("keeps a __proto__ parameter", () => {
    const parameters = JSON.parse('{"__proto__": "x"}') as Record<string, unknown>;
    const denying = aclWith('denied_parameters = { "__proto__" = [] }');
    const denied = denying.check({ path: "secret/foo", operation: "update", parameters });
    assert.equal(denied.allowed, false);

    const allowing = aclWith('allowed_parameters = { "__proto__" = [] }');
    const other = allowing.check({ path: "secret/foo", operation: "update", parameters: { a: 1 } });
    assert.equal(other.allowed, false);
    const named = allowing.check({ path: "secret/foo", operation: "update", parameters });
    assert.equal(named.allowed, true);
  });

  it("applies to create, read, update and patch", () => {
    const acl = aclWith('denied_parameters = { "bar" = [] }');
    const checked: Operation[] = ["create", "read", "update", "patch"];
    for (const operation of checked) {
      const decision = acl.check({ path: "secret/foo", operation, parameters: { bar: 1 } });
      assert.equal(decision.allowed, false, operation);
    }
  });

  it("skips delete and list", () => {
    const acl = aclWith('denied_parameters = { "bar" = [] }\n  required_parameters = ["baz"]');
    for (const operation of ["delete", "list"] as const) {
      const decision = acl.check({ path: "secret/foo", operation, parameters: { bar: 1 } });
      assert.equal(decision.allowed, true, operation);
    }
  });

  it("merges constraints of one pattern", () => {
    const acl = Acl.compile([
      parsePolicy(
        "a",
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = { "bar" = ["zip"] }\n}',
      ),
      parsePolicy(
        "b",
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = { "bar" = ["zap"] }\n}',
      ),
    ]);
    const check = (bar: string) =>
      acl.check({ path: "secret/foo", operation: "create", parameters: { bar } }).allowed;
    assert.equal(check("zip"), true);
    assert.equal(check("zap"), true);
    assert.equal(check("zoo"), false);
  });

  it("lets an empty list win a merge", () => {
    const acl = Acl.compile([
      parsePolicy(
        "a",
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = { "bar" = ["zip"] }\n}',
      ),
      parsePolicy(
        "b",
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = { "bar" = [] }\n}',
      ),
    ]);
    const decision = acl.check({
      path: "secret/foo",
      operation: "create",
      parameters: { bar: "any" },
    });
    assert.equal(decision.allowed, true);
  });
});
