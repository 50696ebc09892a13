import type { FastifyRequest } from "fastify";
import { KeywardError } from "../errors.ts";

/**
 * Rejects JSON values of the wrong type before schema validation coerces
 * them. The app's Ajv runs with `coerceTypes: "array"` so that Vault
 * clients can send numbers and booleans as strings ("3600", "true"). The
 * same setting turns `true` into 1 or "true", and `[1]` into 1, so a
 * boolean or a one-item array would pass as a number or a string. Ajv
 * coerces the body in place, so this check runs as a `preValidation` hook,
 * on the body as the client sent it.
 *
 * Compared with the route's body schema, a value is rejected when it is:
 * - a boolean where the schema allows no boolean;
 * - an array where the schema allows no array;
 * - a number where the schema allows only booleans, or a number inside an
 *   object or array where it allows no number;
 * - a number where a top-level string is expected, but outside the safe
 *   integer range, whose digits JSON parsing may already have lost.
 * A number is accepted for a top-level string field because Vault does so,
 * and because `keyward write` (like Vault's CLI) sends a value such as
 * `key_id=42` as a JSON number. A string is accepted wherever a number or
 * boolean is expected, and Ajv then converts or rejects it. Anything else is
 * left to the schema.
 */

/** The parts of a JSON schema that the check follows. */
interface Schema {
  type?: string | string[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
}

type JsonType = "null" | "boolean" | "number" | "string" | "array" | "object";

/** The value at fault: its field name as the error handler writes it, and the types it may have. */
interface WrongType {
  field: string;
  types: string[];
}

function jsonTypeOf(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value as JsonType;
}

function typesOf(schema: Schema): string[] | undefined {
  if (schema.type === undefined) return undefined;
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

/** Returns true when `value` of JSON type `actual` is allowed where `types` are expected. */
function acceptsType(value: unknown, actual: JsonType, types: string[], nested: boolean): boolean {
  const numeric = types.includes("number") || types.includes("integer");
  switch (actual) {
    case "boolean":
      return types.includes("boolean");
    case "array":
      return types.includes("array");
    case "number":
      if (numeric) return true;
      if (nested || !types.includes("string")) return false;
      return !Number.isInteger(value) || Number.isSafeInteger(value);
    default:
      return true;
  }
}

function childField(parent: string, name: string | number): string {
  if (typeof name === "number") return `${parent}[${name}]`;
  return parent === "" ? name : `${parent}.${name}`;
}

/** Returns the first value in `value` whose JSON type `schema` rejects, or `undefined`. */
function findWrongType(
  value: unknown,
  schema: Schema,
  field: string,
  nested: boolean,
): WrongType | undefined {
  if (schema.anyOf) {
    const found: WrongType[] = [];
    for (const branch of schema.anyOf) {
      const wrong = findWrongType(value, branch, field, nested);
      if (wrong === undefined) return undefined;
      found.push(wrong);
    }
    // A value inside one branch is the more precise result. Otherwise, list every branch's types.
    const deeper = found.find((wrong) => wrong.field !== field);
    return deeper ?? { field, types: [...new Set(found.flatMap((wrong) => wrong.types))] };
  }

  const actual = jsonTypeOf(value);
  const types = typesOf(schema);
  if (types !== undefined && !acceptsType(value, actual, types, nested)) return { field, types };

  if (actual === "object") {
    for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
      const childSchema =
        schema.properties?.[name] ??
        (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
      if (childSchema === undefined) continue;
      // The body's own fields are top level, and fields of objects inside it are nested.
      const found = findWrongType(child, childSchema, childField(field, name), field !== "");
      if (found) return found;
    }
  }
  if (actual === "array" && schema.items) {
    const items = value as unknown[];
    for (let index = 0; index < items.length; index += 1) {
      const found = findWrongType(items[index], schema.items, childField(field, index), true);
      if (found) return found;
    }
  }
  return undefined;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  array: "a list",
  object: "an object",
  null: "null",
};

function describeTypes(types: string[]): string {
  const names = types.map((type) => TYPE_NAMES[type] ?? type);
  return names.length === 1
    ? (names[0] as string)
    : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
}

/**
 * A `preValidation` hook that throws `invalid_field` naming the field when
 * the raw body contains a value of a type the route's body schema does not
 * allow (see the rules above). Routes without a body schema pass.
 */
export async function rejectWrongJsonTypes(request: FastifyRequest): Promise<void> {
  const schema = (request.routeOptions.schema as { body?: Schema } | undefined)?.body;
  if (schema === undefined || request.body === undefined || request.body === null) return;
  const found = findWrongType(request.body, schema, "", false);
  if (found === undefined) return;
  if (found.field === "") {
    throw new KeywardError("invalid_request", "the request body must be a JSON object");
  }
  throw new KeywardError(
    "invalid_field",
    `invalid field "${found.field}": must be ${describeTypes(found.types)}`,
    { field: found.field },
  );
}
