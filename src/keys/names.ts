import { KeywardError } from "../errors.ts";

/** Maximum key name length in characters. */
export const MAX_KEY_NAME_LENGTH = 128;

/**
 * Key names use letters, digits, "_", "-" and ".", and start and end with a
 * letter, digit or "_", as Vault's transit paths accept.
 */
const KEY_NAME_PATTERN = /^\w(?:[\w.-]*\w)?$/;

/** Throws `invalid_field` ("name") unless `name` is a valid key name. */
export function validateKeyName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new KeywardError("invalid_field", "name must be a non-empty string", { field: "name" });
  }
  if (name.length > MAX_KEY_NAME_LENGTH || !KEY_NAME_PATTERN.test(name)) {
    throw new KeywardError(
      "invalid_field",
      `name must be at most ${MAX_KEY_NAME_LENGTH} characters of letters, digits, "_", "-" and ".", ` +
        'starting and ending with a letter, digit or "_"',
      { field: "name" },
    );
  }
  return name;
}
