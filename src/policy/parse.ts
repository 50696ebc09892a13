import { type HclEntry, type HclValue, parseHcl } from "./hcl.ts";
import { type Position, policyError } from "./hcl-tokenizer.ts";
import { addParameterValues, type ParameterLists } from "./parameters.ts";
import {
  CAPABILITIES,
  type Capability,
  type ParameterValue,
  type PathRule,
  type Policy,
} from "./types.ts";

/**
 * Vault's older `policy = "…"` shorthand, still accepted by Vault, and the
 * capabilities each value stands for.
 */
const LEGACY_POLICIES: Record<string, readonly Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "delete", "list"],
  sudo: ["create", "read", "update", "delete", "list", "sudo"],
};

const RULE_KEYS = [
  "capabilities",
  "policy",
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
  "comment",
] as const;

/**
 * Vault Enterprise keys that Keyward does not implement. They are rejected,
 * not ignored, so that a policy never silently loses an MFA or approval
 * requirement.
 */
const ENTERPRISE_KEYS = new Set(["mfa_methods", "control_group"]);

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600 };

type RuleKey = (typeof RULE_KEYS)[number];

interface MutableRule {
  path: string;
  capabilities: Capability[];
  allowedParameters?: ParameterLists;
  deniedParameters?: ParameterLists;
  requiredParameters: string[];
  minWrappingTtlSeconds?: number;
  maxWrappingTtlSeconds?: number;
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function expectString(value: HclValue, subject: string): string {
  if (value.type !== "string") throw policyError(value.position, `${subject} must be a string`);
  return value.value;
}

function expectStringList(
  value: HclValue,
  subject: string,
): { value: string; position: Position }[] {
  if (value.type !== "list")
    throw policyError(value.position, `${subject} must be a list of strings`);
  return value.items.map((item) => ({
    value: expectString(item, `each item of ${subject}`),
    position: item.position,
  }));
}

/**
 * Checks a path pattern and removes one leading slash, as Vault does.
 * A `*` is a glob only as the last character; anywhere else Vault would
 * take it literally, which is never subject the author meant, so it is rejected.
 */
function normalisePath(path: string, position: Position): string {
  const normalised = path.startsWith("/") ? path.slice(1) : path;
  const star = normalised.indexOf("*");
  if (star !== -1 && star !== normalised.length - 1) {
    throw policyError(
      position,
      `invalid path ${quote(path)}: "*" is allowed only as the last character`,
    );
  }
  if (normalised.includes("+*")) {
    throw policyError(
      position,
      `invalid path ${quote(path)}: "+*" is not allowed; use "+/*" or "*"`,
    );
  }
  return normalised;
}

function decodeCapabilities(value: HclValue): Capability[] {
  return expectStringList(value, "capabilities").map((item) => {
    if (!(CAPABILITIES as readonly string[]).includes(item.value)) {
      throw policyError(
        item.position,
        `unknown capability ${quote(item.value)}; expected one of ${CAPABILITIES.join(", ")}`,
      );
    }
    return item.value as Capability;
  });
}

function decodeLegacyPolicy(value: HclValue): readonly Capability[] {
  const name = expectString(value, "policy");
  const capabilities = Object.hasOwn(LEGACY_POLICIES, name) ? LEGACY_POLICIES[name] : undefined;
  if (capabilities === undefined) {
    throw policyError(
      value.position,
      `unknown policy ${quote(name)}; expected one of ${Object.keys(LEGACY_POLICIES).join(", ")}`,
    );
  }
  return capabilities;
}

function decodeParameterValue(value: HclValue, subject: string): ParameterValue {
  switch (value.type) {
    case "string":
    case "number":
    case "bool":
      return value.value;
    case "null":
      return null;
    default:
      throw policyError(
        value.position,
        `each value of ${subject} must be a string, number or boolean`,
      );
  }
}

/** Decodes `allowed_parameters` or `denied_parameters`: an object of lists, keyed by parameter name. */
function decodeParameters(value: HclValue, subject: string): ParameterLists {
  if (value.type !== "object") {
    throw policyError(
      value.position,
      `${subject} must be an object such as { "name" = ["value"] }`,
    );
  }
  const parameters: ParameterLists = {};
  for (const entry of value.entries) {
    if (entry.labels.length > 0 || entry.value.type !== "list") {
      throw policyError(entry.position, `${subject} ${quote(entry.key)} must be a list of values`);
    }
    const name = entry.key.toLowerCase();
    const values = entry.value.items.map((item) =>
      decodeParameterValue(item, `${subject} ${quote(entry.key)}`),
    );
    if (name === "*" && values.length > 0) {
      throw policyError(entry.position, `${subject} "*" only takes an empty list`);
    }
    // A key given twice gets both lists, as when Vault merges rules.
    addParameterValues(parameters, name, values);
  }
  return parameters;
}

/** Reads a wrapping TTL: seconds as a number or string, or a string with an s, m or h suffix. */
function decodeDuration(value: HclValue, subject: string): number {
  let seconds: number | undefined;
  if (value.type === "number") {
    seconds = value.value;
  } else if (value.type === "string") {
    const match = /^(\d+)([smh]?)$/.exec(value.value.trim());
    if (match) seconds = Number(match[1]) * (DURATION_UNITS[match[2] || "s"] ?? 1);
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds < 0) {
    throw policyError(
      value.position,
      `${subject} must be a whole number of seconds or a duration such as "90s", "5m" or "1h"`,
    );
  }
  return seconds;
}

function decodeRule(path: string, pathPosition: Position, body: HclValue): PathRule {
  if (body.type !== "object") {
    throw policyError(
      body.position,
      `the rules for path ${quote(path)} must be an object in braces`,
    );
  }
  const rule: MutableRule = {
    path: normalisePath(path, pathPosition),
    capabilities: [],
    requiredParameters: [],
  };
  const granted = new Set<Capability>();
  const seen = new Set<string>();

  for (const entry of body.entries) {
    if (ENTERPRISE_KEYS.has(entry.key)) {
      throw policyError(
        entry.position,
        `${quote(entry.key)} is a Vault Enterprise feature that Keyward does not support`,
      );
    }
    if (!(RULE_KEYS as readonly string[]).includes(entry.key)) {
      throw policyError(
        entry.position,
        `unknown key ${quote(entry.key)} in path ${quote(path)}; expected one of ${RULE_KEYS.join(", ")}`,
      );
    }
    if (seen.has(entry.key))
      throw policyError(entry.position, `duplicate key ${quote(entry.key)} in path ${quote(path)}`);
    seen.add(entry.key);
    if (entry.labels.length > 0)
      throw policyError(entry.position, `${quote(entry.key)} takes "=" and a value, not a block`);

    const value = entry.value;
    switch (entry.key as RuleKey) {
      case "capabilities":
        for (const capability of decodeCapabilities(value)) granted.add(capability);
        break;
      case "policy":
        for (const capability of decodeLegacyPolicy(value)) granted.add(capability);
        break;
      case "allowed_parameters":
        rule.allowedParameters = decodeParameters(value, "allowed_parameters");
        break;
      case "denied_parameters":
        rule.deniedParameters = decodeParameters(value, "denied_parameters");
        break;
      case "required_parameters":
        rule.requiredParameters = [
          ...new Set(
            expectStringList(value, "required_parameters").map((item) => item.value.toLowerCase()),
          ),
        ];
        break;
      case "min_wrapping_ttl":
        rule.minWrappingTtlSeconds = decodeDuration(value, "min_wrapping_ttl");
        break;
      case "max_wrapping_ttl":
        rule.maxWrappingTtlSeconds = decodeDuration(value, "max_wrapping_ttl");
        break;
      case "comment":
        expectString(value, "comment");
        break;
    }
  }

  const { minWrappingTtlSeconds: min, maxWrappingTtlSeconds: max } = rule;
  if (min !== undefined && max !== undefined && max > 0 && min > max) {
    throw policyError(
      body.position,
      `min_wrapping_ttl (${min}s) is greater than max_wrapping_ttl (${max}s) in path ${quote(path)}`,
    );
  }
  rule.capabilities = granted.has("deny")
    ? ["deny"]
    : CAPABILITIES.filter((capability) => granted.has(capability));
  return rule;
}

/**
 * Decodes one top-level `path` entry. HCL writes `path "p" { … }`; JSON and
 * the equivalent HCL write `path = { "p" = { … } }`, possibly as a list of
 * such objects.
 */
function decodePathEntry(entry: HclEntry): PathRule[] {
  const [label, ...extraLabels] = entry.labels;
  if (extraLabels.length > 0) {
    throw policyError(
      extraLabels[0]!.position,
      `a path block takes one label, the path; found ${entry.labels.length}`,
    );
  }
  if (label !== undefined) return [decodeRule(label.value, label.position, entry.value)];

  const objects = entry.value.type === "list" ? entry.value.items : [entry.value];
  const rules: PathRule[] = [];
  for (const object of objects) {
    if (object.type !== "object") {
      throw policyError(
        object.position,
        'expected a path block such as path "secret/*" { capabilities = ["read"] }',
      );
    }
    for (const pathEntry of object.entries) {
      if (pathEntry.labels.length > 0) {
        throw policyError(
          pathEntry.labels[0]!.position,
          `unexpected label after path ${quote(pathEntry.key)}`,
        );
      }
      rules.push(decodeRule(pathEntry.key, pathEntry.position, pathEntry.value));
    }
  }
  return rules;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses a policy written in HCL or in JSON; a text whose first token is `{`
 * is read as JSON. Throws `invalid_policy` whose message names the line,
 * column and problem; `details` has the line and column.
 */
export function parsePolicy(name: string, text: string): Policy {
  const rules: PathRule[] = [];
  for (const entry of parseHcl(text)) {
    switch (entry.key) {
      case "path":
        rules.push(...decodePathEntry(entry));
        break;
      case "name":
        // Vault accepts a `name` attribute and ignores it: the name comes from the request path.
        expectString(entry.value, "name");
        break;
      default:
        throw policyError(
          entry.position,
          `unknown top-level key ${quote(entry.key)}; a policy contains only path blocks`,
        );
    }
  }
  return deepFreeze({ name, rules, raw: text });
}
