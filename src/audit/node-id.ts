import { KeywardError } from "../errors.ts";

/**
 * The node id a broker uses when none is given: a server that runs as the
 * only node of its storage keeps its audit chains under this id.
 */
export const DEFAULT_AUDIT_NODE_ID = "local";

/** The maximum length of a node id, in characters. */
export const MAX_NODE_ID_LENGTH = 64;

const NODE_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_NODE_ID_LENGTH - 1}}$`);

/** Reports whether `value` is a valid node id. */
export function isValidNodeId(value: unknown): value is string {
  return typeof value === "string" && NODE_ID.test(value);
}

/**
 * Returns `value` when it is a valid node id: 1 to 64 letters, digits,
 * `.`, `-` and `_`, starting with a letter or digit. Throws `invalid_field`
 * naming `field` otherwise.
 */
export function validateNodeId(value: unknown, field: string): string {
  if (!isValidNodeId(value)) {
    throw new KeywardError(
      "invalid_field",
      `${field} must be 1-${MAX_NODE_ID_LENGTH} characters of A-Z, a-z, 0-9, '.', '-' and '_', starting with a letter or digit`,
      { field },
    );
  }
  return value;
}
