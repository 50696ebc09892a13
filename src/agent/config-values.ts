import { isAbsolute, resolve } from "node:path";
import { parseDuration } from "../auth/duration.ts";
import { invalidField, KeywardError, missingField } from "../errors.ts";

/** A JSON object from the config file, read field by field. */
export type ConfigObject = Record<string, unknown>;

/** Returns `value` as a JSON object, or throws `invalid_field` naming `field`. */
export function requireObject(value: unknown, field: string): ConfigObject {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidField(field, `"${field}" must be a JSON object`);
  }
  return value as ConfigObject;
}

/** Throws `unknown_field` for the first key of `object` outside `allowed`. */
export function rejectUnknownFields(
  object: ConfigObject,
  allowed: readonly string[],
  prefix: string,
): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      const field = `${prefix}${key}`;
      throw new KeywardError(
        "unknown_field",
        `unknown field "${field}"; expected one of ${allowed.join(", ")}`,
        { field },
      );
    }
  }
}

/** Reads a required non-empty string. */
export function requireString(object: ConfigObject, key: string, field: string): string {
  const value = object[key];
  if (value === undefined || value === null) throw missingField(field);
  if (typeof value !== "string" || value.length === 0) {
    throw invalidField(field, `"${field}" must be a non-empty string`);
  }
  return value;
}

/** Reads an optional non-empty string. Absent and null both give `undefined`. */
export function optionalString(
  object: ConfigObject,
  key: string,
  field: string,
): string | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    throw invalidField(field, `"${field}" must be a non-empty string`);
  }
  return value;
}

/** Reads an optional boolean. */
export function optionalBoolean(
  object: ConfigObject,
  key: string,
  field: string,
): boolean | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalidField(field, `"${field}" must be true or false`);
  return value;
}

/** Reads a string that must match `pattern`. The error message expects `description`. */
export function requireMatching(
  object: ConfigObject,
  key: string,
  field: string,
  pattern: RegExp,
  description: string,
): string {
  const value = requireString(object, key, field);
  if (!pattern.test(value)) throw invalidField(field, `"${field}" must be ${description}`);
  return value;
}

/**
 * Resolves a path from the config file. A relative path is taken relative to
 * the directory of the config file, so the agent finds the same files
 * whatever its working directory is.
 */
export function resolvePath(value: string, baseDir: string, field: string): string {
  if (value.includes("\0")) throw invalidField(field, `"${field}" must not contain a NUL byte`);
  return isAbsolute(value) ? resolve(value) : resolve(baseDir, value);
}

/**
 * Reads an optional duration in seconds within `[minSeconds, maxSeconds]`:
 * whole seconds or a string such as "30s", "5m" or "1h30m".
 */
export function optionalDuration(
  object: ConfigObject,
  key: string,
  field: string,
  bounds: { minSeconds: number; maxSeconds: number; defaultSeconds: number },
): number {
  const value = object[key];
  if (value === undefined || value === null) return bounds.defaultSeconds;
  const range = `between ${bounds.minSeconds} and ${bounds.maxSeconds} seconds`;
  if (typeof value !== "number" && typeof value !== "string") {
    throw invalidField(field, `"${field}" must be a duration such as "30s", ${range}`);
  }
  let seconds: number;
  try {
    seconds = parseDuration(value, field);
  } catch {
    throw invalidField(
      field,
      `"${field}" must be whole seconds or a duration such as "30s" or "2m", ${range}`,
    );
  }
  if (seconds < bounds.minSeconds || seconds > bounds.maxSeconds) {
    throw invalidField(field, `"${field}" must be ${range}, got ${seconds}`);
  }
  return seconds;
}

/** File permission bits as an octal string: three digits with an optional leading zero. */
const MODE_TEXT = /^0?[0-7]{3}$/;

/** Reads an optional file mode given as an octal string such as "0640" and returns the number. */
export function optionalMode(
  object: ConfigObject,
  key: string,
  field: string,
  defaultMode: number,
): number {
  const value = object[key];
  if (value === undefined || value === null) return defaultMode;
  if (typeof value !== "string" || !MODE_TEXT.test(value)) {
    throw invalidField(
      field,
      `"${field}" must be an octal permission string such as "0600" or "640" (a JSON string, not a number; no setuid, setgid or sticky bits)`,
    );
  }
  return Number.parseInt(value, 8);
}

/**
 * Reads an optional mode for a file that contains a secret or a private
 * key: as `optionalMode`, but any permission for other users (the last
 * octal digit) is rejected. Group access stays allowed, for services that
 * read the file through their group.
 */
export function optionalPrivateMode(
  object: ConfigObject,
  key: string,
  field: string,
  defaultMode: number,
): number {
  const mode = optionalMode(object, key, field, defaultMode);
  if ((mode & 0o007) !== 0) {
    throw invalidField(
      field,
      `"${field}" must give other users no access, because the file contains a secret or a private key; use "0600" or "0640" with "group"`,
    );
  }
  return mode;
}
