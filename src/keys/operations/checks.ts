import { HKDF_MAX_INFO_LENGTH } from "../../crypto/hkdf.ts";
import { KeywardError, missingField } from "../../errors.ts";
import { supports } from "../key-types/index.ts";
import type { KeyOperation, ManagedKey } from "../types.ts";

/** Throws `unsupported_operation` naming the key type and operation unless the type supports it. */
export function requireSupport(key: ManagedKey, operation: KeyOperation): void {
  if (!supports(key.type, operation)) {
    throw new KeywardError("unsupported_operation", `${key.type} keys do not support ${operation}`);
  }
}

/**
 * Returns the derivation context of a request.
 *
 * Derived keys need a non-empty context of at most 1024 bytes, node's HKDF
 * limit on info. Other keys reject a context, but an empty one counts as absent.
 */
export function requestContext(key: ManagedKey, context: Buffer | undefined): Buffer | undefined {
  if (!key.derived) {
    if (context !== undefined && context.length > 0) {
      throw new KeywardError(
        "invalid_field",
        `key "${key.name}" is not derived, so it takes no context`,
        { field: "context" },
      );
    }
    return undefined;
  }
  if (context === undefined || context.length === 0) throw missingField("context");
  // NOTE: Vault sets no such limit; a client with longer contexts gets this error.
  if (context.length > HKDF_MAX_INFO_LENGTH) {
    throw new KeywardError(
      "invalid_field",
      `context must be at most ${HKDF_MAX_INFO_LENGTH} bytes`,
      { field: "context" },
    );
  }
  return context;
}
