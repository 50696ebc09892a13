import { KeywardError } from "../errors.ts";
import { ROOT_POLICY } from "./acl.ts";

export { ROOT_POLICY };

/** The name of the built-in policy that Vault attaches to every token not created with `no_default_policy`. */
export const DEFAULT_POLICY = "default";

/** Maximum policy name length in characters. */
export const MAX_POLICY_NAME_LENGTH = 128;

const POLICY_NAME_PATTERN = /^[a-z0-9_.-]+$/;

/**
 * The `default` policy until an operator replaces it: a token may look
 * itself up, renew and revoke itself, and read its own capabilities, as
 * Vault's default policy allows.
 */
export const DEFAULT_POLICY_TEXT = `# Allow a token to look up its own properties.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow a token to renew itself.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow a token to revoke itself.
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}
`;

/**
 * Lowercases a policy name, as Vault does, and checks it: 1 to 128 of
 * a-z, 0-9, "_", "." and "-", and not "." or "..". Throws `invalid_field`
 * ("name") otherwise.
 */
export function normalisePolicyName(name: string): string {
  const normalised = name.toLowerCase();
  if (
    normalised.length === 0 ||
    normalised.length > MAX_POLICY_NAME_LENGTH ||
    !POLICY_NAME_PATTERN.test(normalised) ||
    normalised === "." ||
    normalised === ".."
  ) {
    throw new KeywardError(
      "invalid_field",
      `invalid policy name ${JSON.stringify(name)}: use 1 to ${MAX_POLICY_NAME_LENGTH} characters from a-z, 0-9, "_", "." and "-"`,
      { field: "name" },
    );
  }
  return normalised;
}
