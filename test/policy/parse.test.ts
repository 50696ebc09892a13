import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isKeywardError } from "../../src/errors.ts";
import { MAX_NESTING_DEPTH } from "../../src/policy/hcl.ts";
import { parsePolicy } from "../../src/policy/parse.ts";
import type { PathRule } from "../../src/policy/types.ts";

interface OkCase {
  name: string;
  text: string;
  rules: Partial<PathRule>[];
}

const okCases: OkCase[] = [
  {
    name: "ok single block",
    text: 'path "secret/foo" {\n  capabilities = ["read"]\n}\n',
    rules: [{ path: "secret/foo", capabilities: ["read"] }],
  },
  {
    name: "ok empty policy",
    text: "",
    rules: [],
  },
  {
    name: "ok comments of every kind",
    text: [
      "# hash comment",
      "// slash comment",
      "/* block",
      "   comment */",
      'path "a" { /* inline */ capabilities = ["list"] # trailing',
      "}",
    ].join("\n"),
    rules: [{ path: "a", capabilities: ["list"] }],
  },
  {
    name: "ok several blocks in order",
    text: 'path "a/*" { capabilities = ["read"] }\npath "b/+/c" { capabilities = ["update", "create"] }',
    rules: [
      { path: "a/*", capabilities: ["read"] },
      { path: "b/+/c", capabilities: ["create", "update"] },
    ],
  },
  {
    name: "ok trailing comma and commas between keys",
    text: 'path "a" { capabilities = ["read", "list",], required_parameters = ["x"], }',
    rules: [{ path: "a", capabilities: ["read", "list"], requiredParameters: ["x"] }],
  },
  {
    name: "ok string escapes",
    text: 'path "a/\\"q\\"/\\u0042/\\\\" { capabilities = ["read"] }',
    rules: [{ path: 'a/"q"/B/\\', capabilities: ["read"] }],
  },
  {
    name: "ok leading slash removed",
    text: 'path "/sys/mounts" { capabilities = ["read"] }',
    rules: [{ path: "sys/mounts", capabilities: ["read"] }],
  },
  {
    name: "ok deny drops other capabilities",
    text: 'path "a" { capabilities = ["read", "deny", "sudo"] }',
    rules: [{ path: "a", capabilities: ["deny"] }],
  },
  {
    name: "ok duplicate capabilities once",
    text: 'path "a" { capabilities = ["sudo", "read", "read"] }',
    rules: [{ path: "a", capabilities: ["read", "sudo"] }],
  },
  {
    name: "ok no capabilities grants nothing",
    text: 'path "a" { }',
    rules: [{ path: "a", capabilities: [] }],
  },
  {
    name: "ok legacy policy write",
    text: 'path "a" { policy = "write" }',
    rules: [{ path: "a", capabilities: ["create", "read", "update", "delete", "list"] }],
  },
  {
    name: "ok legacy policy adds to capabilities",
    text: 'path "a" { policy = "read"\n capabilities = ["sudo"] }',
    rules: [{ path: "a", capabilities: ["read", "list", "sudo"] }],
  },
  {
    name: "ok parameters lowercased",
    text: [
      'path "secret/foo" {',
      '  capabilities = ["create"]',
      '  allowed_parameters = { "Bar" = ["zip", "zap"], "*" = [] }',
      "  denied_parameters = { baz = [1, true] }",
      '  required_parameters = ["Bar"]',
      "}",
    ].join("\n"),
    rules: [
      {
        path: "secret/foo",
        allowedParameters: { bar: ["zip", "zap"], "*": [] },
        deniedParameters: { baz: [1, true] },
        requiredParameters: ["bar"],
      },
    ],
  },
  {
    name: "ok wrapping TTLs accepted",
    text: 'path "a" { capabilities = ["update"]\n min_wrapping_ttl = "1s"\n max_wrapping_ttl = 90 }',
    rules: [{ path: "a", minWrappingTtlSeconds: 1, maxWrappingTtlSeconds: 90 }],
  },
  {
    name: "ok wrapping TTL in hours",
    text: 'path "a" { max_wrapping_ttl = "2h" }',
    rules: [{ path: "a", maxWrappingTtlSeconds: 7200 }],
  },
  {
    name: "ok name and comment ignored",
    text: 'name = "other"\npath "a" { comment = "why"\n capabilities = ["read"] }',
    rules: [{ path: "a", capabilities: ["read"] }],
  },
  {
    name: "ok path as object attribute",
    text: 'path = { "a" = { capabilities = ["read"] }, "b" = { capabilities = ["list"] } }',
    rules: [
      { path: "a", capabilities: ["read"] },
      { path: "b", capabilities: ["list"] },
    ],
  },
  {
    name: "ok JSON form",
    text: JSON.stringify({
      path: {
        "transit/*": { capabilities: ["read"] },
        "secret/foo": {
          capabilities: ["create"],
          allowed_parameters: { bar: ["zip"] },
          required_parameters: ["bar"],
        },
      },
    }),
    rules: [
      { path: "transit/*", capabilities: ["read"] },
      {
        path: "secret/foo",
        capabilities: ["create"],
        allowedParameters: { bar: ["zip"] },
        requiredParameters: ["bar"],
      },
    ],
  },
  {
    name: "ok JSON form indented",
    text: '\n  {\n    "path": {\n      "a": { "capabilities": ["deny"] }\n    }\n  }\n',
    rules: [{ path: "a", capabilities: ["deny"] }],
  },
  {
    name: "ok JSON list of path objects",
    text: '{"path": [{"a": {"capabilities": ["read"]}}, {"b": {"policy": "deny"}}]}',
    rules: [
      { path: "a", capabilities: ["read"] },
      { path: "b", capabilities: ["deny"] },
    ],
  },
  {
    name: "ok JSON null parameter value",
    text: '{"path": {"a": {"allowed_parameters": {"x": [null, 2.5]}}}}',
    rules: [{ path: "a", allowedParameters: { x: [null, 2.5] } }],
  },
];

interface FailCase {
  name: string;
  text: string;
  line: number;
  column: number;
  message: RegExp;
}

const failCases: FailCase[] = [
  {
    name: "fail unknown capability",
    text: 'path "a" {\n  capabilities = ["read", "reed"]\n}',
    line: 2,
    column: 27,
    message: /unknown capability "reed"/,
  },
  {
    name: "fail missing equals sign",
    text: 'path "a" {\n  capabilities ["read"]\n}',
    line: 2,
    column: 16,
    message: /expected "=" or "\{" after "capabilities"/,
  },
  {
    name: "fail unterminated string",
    text: 'path "a" {\n  capabilities = ["read]\n}',
    line: 2,
    column: 19,
    message: /unterminated string/,
  },
  {
    name: "fail unterminated block",
    text: 'path "a" {\n  capabilities = ["read"]\n',
    line: 3,
    column: 1,
    message: /expected a key, found the end of the policy/,
  },
  {
    name: "fail unterminated comment",
    text: 'path "a" { capabilities = ["read"] }\n  /* never closed',
    line: 2,
    column: 3,
    message: /unterminated \/\* comment/,
  },
  {
    name: "fail unknown top-level key",
    text: '\npaths "a" { capabilities = ["read"] }',
    line: 2,
    column: 1,
    message: /unknown top-level key "paths"/,
  },
  {
    name: "fail unknown key in path",
    text: 'path "a" {\n  capability = ["read"]\n}',
    line: 2,
    column: 3,
    message: /unknown key "capability" in path "a"/,
  },
  {
    name: "fail duplicate key",
    text: 'path "a" {\n  capabilities = ["read"]\n  capabilities = ["list"]\n}',
    line: 3,
    column: 3,
    message: /duplicate key "capabilities"/,
  },
  {
    name: "fail glob inside path",
    text: 'path "secret/*/foo" { capabilities = ["read"] }',
    line: 1,
    column: 6,
    message: /"\*" is allowed only as the last character/,
  },
  {
    name: "fail plus before glob",
    text: 'path "secret/+*" { capabilities = ["read"] }',
    line: 1,
    column: 6,
    message: /"\+\*" is not allowed/,
  },
  {
    name: "fail star parameter with values",
    text: 'path "a" {\n  allowed_parameters = {\n    "*" = ["x"]\n  }\n}',
    line: 3,
    column: 5,
    message: /allowed_parameters "\*" only takes an empty list/,
  },
  {
    name: "fail parameter not a list",
    text: 'path "a" {\n  denied_parameters = { bar = "zip" }\n}',
    line: 2,
    column: 25,
    message: /denied_parameters "bar" must be a list/,
  },
  {
    name: "fail capabilities not a list",
    text: 'path "a" { capabilities = "read" }',
    line: 1,
    column: 27,
    message: /capabilities must be a list of strings/,
  },
  {
    name: "fail enterprise key",
    text: 'path "a" {\n  mfa_methods = ["duo"]\n}',
    line: 2,
    column: 3,
    message: /"mfa_methods" is a Vault Enterprise feature/,
  },
  {
    name: "fail legacy policy value",
    text: 'path "a" { policy = "admin" }',
    line: 1,
    column: 21,
    message: /unknown policy "admin"/,
  },
  {
    name: "fail legacy policy inherited name",
    text: 'path "a" { policy = "constructor" }',
    line: 1,
    column: 21,
    message: /unknown policy "constructor"/,
  },
  {
    name: "fail heredoc",
    text: 'path "a" {\n  comment = <<EOT\nx\nEOT\n}',
    line: 2,
    column: 13,
    message: /heredoc strings are not supported/,
  },
  {
    name: "fail unexpected character",
    text: 'path "a" { capabilities = [@] }',
    line: 1,
    column: 28,
    message: /unexpected character "@"/,
  },
  {
    name: "fail invalid escape",
    text: 'path "a\\q" { }',
    line: 1,
    column: 8,
    message: /invalid escape sequence "\\\\q"/,
  },
  {
    name: "fail two path labels",
    text: 'path "a" "b" { }',
    line: 1,
    column: 10,
    message: /a path block takes one label/,
  },
  {
    name: "fail wrapping TTLs reversed",
    text: 'path "a" {\n  min_wrapping_ttl = "2m"\n  max_wrapping_ttl = "1m"\n}',
    line: 1,
    column: 10,
    message: /min_wrapping_ttl \(120s\) is greater than max_wrapping_ttl \(60s\)/,
  },
  {
    name: "fail wrapping TTL unit",
    text: 'path "a" { min_wrapping_ttl = "1d" }',
    line: 1,
    column: 31,
    message: /min_wrapping_ttl must be a whole number of seconds/,
  },
  {
    name: "fail JSON missing brace",
    text: '{\n  "path": {\n    "a": { "capabilities": ["read"] }\n  }\n',
    line: 5,
    column: 1,
    message: /expected a key, found the end of the policy/,
  },
  {
    name: "fail JSON text after object",
    text: '{"path": {}}\n{"path": {}}',
    line: 2,
    column: 1,
    message: /expected the end of the policy/,
  },
  {
    name: "fail JSON unknown capability",
    text: '{\n  "path": {\n    "a": { "capabilities": ["write"] }\n  }\n}',
    line: 3,
    column: 29,
    message: /unknown capability "write"/,
  },
  {
    name: "fail nesting too deep",
    text: `path "a" { comment = ${"[".repeat(MAX_NESTING_DEPTH + 5)} }`,
    line: 1,
    // The path block is the first level, so the list that passes the limit is bracket number MAX_NESTING_DEPTH.
    column: 22 + MAX_NESTING_DEPTH - 1,
    message: /nested more than/,
  },
];

function rulesOf(text: string) {
  return parsePolicy("test", text).rules;
}

describe("parsePolicy", () => {
  for (const testCase of okCases) {
    it(testCase.name, () => {
      const rules = rulesOf(testCase.text);
      assert.equal(rules.length, testCase.rules.length);
      testCase.rules.forEach((expected, index) => {
        const rule = rules[index]!;
        for (const [field, value] of Object.entries(expected)) {
          assert.deepEqual(rule[field as keyof PathRule], value, `rule ${index} field ${field}`);
        }
      });
    });
  }

  for (const testCase of failCases) {
    it(testCase.name, () => {
      assert.throws(
        () => parsePolicy("test", testCase.text),
        (error: unknown) => {
          assert.ok(isKeywardError(error), "throws a KeywardError");
          assert.equal(error.code, "invalid_policy");
          assert.equal(error.status, 400);
          assert.equal(error.field, "policy");
          assert.match(error.message, testCase.message);
          assert.deepEqual(error.details, { line: testCase.line, column: testCase.column });
          assert.match(
            error.message,
            new RegExp(`line ${testCase.line}, column ${testCase.column}:`),
          );
          return true;
        },
      );
    });
  }

  it("keeps the raw text and name", () => {
    const text = '# reader\npath "a" { capabilities = ["read"] }\n';
    const policy = parsePolicy("reader", text);
    assert.equal(policy.name, "reader");
    assert.equal(policy.raw, text);
  });

  it("returns a frozen policy", () => {
    const policy = parsePolicy("p", 'path "a" { capabilities = ["read"] }');
    assert.ok(Object.isFrozen(policy));
    assert.ok(Object.isFrozen(policy.rules));
    assert.ok(Object.isFrozen(policy.rules[0]?.capabilities));
  });

  it("reads HCL and JSON alike", () => {
    const hcl = parsePolicy(
      "p",
      'path "secret/*" {\n  capabilities = ["read", "list"]\n  denied_parameters = { "x" = [] }\n}',
    );
    const json = parsePolicy(
      "p",
      JSON.stringify({
        path: { "secret/*": { capabilities: ["read", "list"], denied_parameters: { x: [] } } },
      }),
    );
    assert.deepEqual(json.rules, hcl.rules);
  });
});
