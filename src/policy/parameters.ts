/**
 * Parameter constraints of a path rule: `required_parameters`,
 * `denied_parameters` and `allowed_parameters`, applied as Vault applies
 * them in `vault/acl.go` of HashiCorp Vault's source.
 */
import type { ParameterValue } from "./types.ts";

/** Parameter names mapped to value lists, as in `allowed_parameters` and `denied_parameters`. */
export type ParameterLists = Record<string, ParameterValue[]>;

/**
 * Sets one parameter's list as an own property. Plain assignment would
 * treat a parameter named `__proto__` as the object's prototype and drop it.
 */
export function setParameterList(lists: ParameterLists, name: string, values: ParameterValue[]) {
  Object.defineProperty(lists, name, {
    value: values,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Adds values to a parameter's list. An empty list allows or denies any value, so it wins over any other list. */
export function addParameterValues(
  lists: ParameterLists,
  name: string,
  values: readonly ParameterValue[],
) {
  const earlier = Object.hasOwn(lists, name) ? lists[name] : undefined;
  let combined: ParameterValue[];
  if (earlier === undefined) combined = [...values];
  else if (earlier.length === 0 || values.length === 0) combined = [];
  else combined = [...earlier, ...values];
  setParameterList(lists, name, combined);
}

export interface ParameterConstraints {
  readonly allowedParameters?: Readonly<Record<string, readonly ParameterValue[]>>;
  readonly deniedParameters?: Readonly<Record<string, readonly ParameterValue[]>>;
  readonly requiredParameters: readonly string[];
}

/**
 * Matches a policy value against a request value. A string policy value
 * ending in `*` matches by prefix, one starting with `*` by suffix, and one
 * with both by substring. A lone `*` matches only itself, as in Vault, and
 * other values must be equal.
 */
function valueMatches(policyValue: ParameterValue, value: unknown): boolean {
  if (typeof policyValue === "string" && typeof value === "string") {
    if (policyValue.length < 2) return policyValue === value;
    const leading = policyValue.startsWith("*");
    const trailing = policyValue.endsWith("*");
    if (leading && trailing) return value.includes(policyValue.slice(1, -1));
    if (leading) return value.endsWith(policyValue.slice(1));
    if (trailing) return value.startsWith(policyValue.slice(0, -1));
    return value === policyValue;
  }
  return policyValue === value;
}

function inList(value: unknown, list: readonly ParameterValue[]): boolean {
  return list.some((policyValue) => valueMatches(policyValue, value));
}

/**
 * Splits a request value into the items an API may read from it: the
 * elements of an array, or the comma-separated parts of a string (many
 * Vault fields accept "a,b,c"). Returns undefined for other values.
 */
function items(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  // NOTE: Vault reads "" as an empty list, which every allowed list accepts;
  // here it is one empty item, which must itself be allowed.
  if (typeof value === "string") return value.split(",").map((part) => part.trim());
  return undefined;
}

/** Returns whether a list allows a value: an empty list allows any, otherwise the value or every item of it must be listed. */
function isAllowed(value: unknown, list: readonly ParameterValue[]): boolean {
  if (list.length === 0 || inList(value, list)) return true;
  const parts = items(value);
  return parts?.every((part) => inList(part, list)) === true;
}

/**
 * Returns a scalar request value together with every value that the route
 * schemas' type coercion (Ajv's `coerceTypes`) may turn it into: `"true"`
 * becomes `true`, `"1"` and `true` become `1`, `1` becomes `"1"`, and so on.
 * Parameter constraints are checked before validation, so a denied value
 * must also be found when it is sent in another JSON type.
 */
function coercedForms(value: unknown): unknown[] {
  const forms: unknown[] = [value];
  if (typeof value === "string") {
    if (value === "true") forms.push(true);
    if (value === "false") forms.push(false);
    if (value !== "" && !Number.isNaN(Number(value))) forms.push(Number(value));
    if (value === "") forms.push(null);
  } else if (typeof value === "number") {
    forms.push(String(value));
    if (value === 1) forms.push(true);
    if (value === 0) forms.push(false, null);
  } else if (typeof value === "boolean") {
    forms.push(String(value), value ? 1 : 0);
    if (!value) forms.push(null);
  } else if (value === null) {
    forms.push("", 0, false);
  }
  return forms;
}

function inListAsAnyType(value: unknown, list: readonly ParameterValue[]): boolean {
  return coercedForms(value).some((form) => inList(form, list));
}

/**
 * Returns whether a list denies a value: an empty list denies any, otherwise
 * the value or any item of it must be listed, in any JSON type that schema
 * coercion turns into the listed value (`"true"` and `["true"]` for `true`).
 */
function isDenied(value: unknown, list: readonly ParameterValue[]): boolean {
  if (list.length === 0 || inListAsAnyType(value, list)) return true;
  const parts = items(value);
  return parts?.some((part) => inListAsAnyType(part, list)) === true;
}

/**
 * Checks a request's parameters against a rule's constraints. Parameter
 * names compare case-insensitively. Denied parameters win over allowed ones;
 * once `allowed_parameters` names any key, unnamed parameters are rejected
 * unless it also has `"*" = []`.
 */
export function parametersPermitted(
  constraints: ParameterConstraints,
  parameters: Readonly<Record<string, unknown>>,
): boolean {
  const names = new Map<string, unknown>();
  for (const [name, value] of Object.entries(parameters)) names.set(name.toLowerCase(), value);

  for (const required of constraints.requiredParameters) {
    if (!names.has(required)) return false;
  }
  if (names.size === 0) return true;

  const denied = constraints.deniedParameters;
  if (denied !== undefined && Object.keys(denied).length > 0) {
    if (Object.hasOwn(denied, "*")) return false;
    for (const [name, value] of names) {
      const list = Object.hasOwn(denied, name) ? denied[name] : undefined;
      if (list !== undefined && isDenied(value, list)) return false;
    }
  }

  const allowed = constraints.allowedParameters;
  if (allowed === undefined || Object.keys(allowed).length === 0) return true;
  const allowsOthers = Object.hasOwn(allowed, "*");
  for (const [name, value] of names) {
    const list = Object.hasOwn(allowed, name) ? allowed[name] : undefined;
    if (list === undefined) {
      if (!allowsOthers) return false;
    } else if (!isAllowed(value, list)) {
      return false;
    }
  }
  return true;
}
