import { KeywardError } from "../../errors.ts";
import { ECDSA_CURVES } from "./public-keys.ts";

/**
 * Parsers for role and request fields in the API's types: Vault list
 * fields, flags, strings, option maps and key size rules. Each throws
 * `invalid_field` (or `unsupported_key_type`) naming the field at fault.
 */

/** Option and extension names: printable ASCII without spaces or commas, as OpenSSH names them. */
const OPTION_NAME_PATTERN = /^[\x21-\x2b\x2d-\x7e]{1,256}$/;

/** Key families in `allowed_user_key_lengths`, and the names that select them. */
const KEY_LENGTH_NAMES: Record<string, string> = {
  rsa: "rsa",
  "ssh-rsa": "rsa",
  ed25519: "ed25519",
  "ssh-ed25519": "ed25519",
  ec: "ec",
  ecdsa: "ec",
  ...Object.fromEntries(Object.keys(ECDSA_CURVES).map((name) => [name, name])),
};

/**
 * Splits a Vault list field: an array, or one comma-separated string. Array
 * items are split on commas too, because the API's schema coercion may turn
 * a comma-separated string into a one-item array. Empty entries are dropped.
 */
export function parseList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  return items
    .flatMap((item) => {
      if (typeof item !== "string") {
        throw new KeywardError("invalid_field", `"${field}" must be a list of strings`, { field });
      }
      return item.split(",");
    })
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

export function parseBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new KeywardError("invalid_field", `"${field}" must be true or false`, { field });
  }
  return value;
}

export function parseString(value: unknown, field: string): string {
  if (value === undefined) return "";
  if (typeof value !== "string") {
    throw new KeywardError("invalid_field", `"${field}" must be a string`, { field });
  }
  return value;
}

/** Checks an option or extension name and returns it. */
export function validateOptionName(name: string, field: string): string {
  if (!OPTION_NAME_PATTERN.test(name)) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" has an invalid name; use 1 to 256 printable characters without spaces or commas`,
      { field },
    );
  }
  return name;
}

/** Validates a map of option or extension names to string values. */
export function parseOptionMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new KeywardError("invalid_field", `"${field}" must be an object of names to strings`, {
      field,
    });
  }
  const result: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    validateOptionName(name, `${field}.${name}`);
    if (typeof item !== "string") {
      throw new KeywardError("invalid_field", `"${field}.${name}" must be a string`, {
        field: `${field}.${name}`,
      });
    }
    result[name] = item;
  }
  return result;
}

export function parseKeyLengths(value: unknown): Record<string, number | number[]> {
  const field = "allowed_user_key_lengths";
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new KeywardError("invalid_field", `"${field}" must map key types to sizes`, { field });
  }
  const result: Record<string, number | number[]> = {};
  for (const [name, sizes] of Object.entries(value)) {
    const family = KEY_LENGTH_NAMES[name];
    if (family === undefined) {
      throw new KeywardError(
        "unsupported_key_type",
        `"${field}.${name}": key type is not supported; use rsa, ec, ed25519 or an SSH key type name`,
        { field: `${field}.${name}` },
      );
    }
    const valid = (size: unknown) => Number.isSafeInteger(size) && (size as number) >= 0;
    if (Array.isArray(sizes) ? sizes.length === 0 || !sizes.every(valid) : !valid(sizes)) {
      throw new KeywardError(
        "invalid_field",
        `"${field}.${name}" must be a size in bits or a list of sizes`,
        { field: `${field}.${name}` },
      );
    }
    result[family] = sizes as number | number[];
  }
  return result;
}
