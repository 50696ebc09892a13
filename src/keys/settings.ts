import { KeywardError } from "../errors.ts";
import { MAX_HMAC_KEY_SIZE, MIN_HMAC_KEY_SIZE } from "./key-types/hmac.ts";
import type { KeyType } from "./types.ts";

/** Shortest automatic rotation period in seconds (one hour, as Vault requires). */
export const MIN_AUTO_ROTATE_PERIOD = 3600;

/** Throws `invalid_field` ("auto_rotate_period") unless `seconds` is 0 or an integer of at least 3600. */
export function validateAutoRotatePeriod(seconds: unknown): number {
  const valid =
    typeof seconds === "number" &&
    Number.isSafeInteger(seconds) &&
    (seconds === 0 || seconds >= MIN_AUTO_ROTATE_PERIOD);
  if (!valid) {
    throw new KeywardError(
      "invalid_field",
      `auto_rotate_period must be 0 (disabled) or at least ${MIN_AUTO_ROTATE_PERIOD} seconds`,
      { field: "auto_rotate_period" },
    );
  }
  return seconds;
}

/** Throws `invalid_field` ("key_size") unless `bytes` fits the key type (hmac keys only, 32 to 512). */
export function validateKeySize(type: KeyType, bytes: unknown): number {
  if (type !== "hmac") {
    throw new KeywardError("invalid_field", "key_size applies only to hmac keys", {
      field: "key_size",
    });
  }
  const valid =
    typeof bytes === "number" &&
    Number.isInteger(bytes) &&
    bytes >= MIN_HMAC_KEY_SIZE &&
    bytes <= MAX_HMAC_KEY_SIZE;
  if (!valid) {
    throw new KeywardError(
      "invalid_field",
      `key_size must be an integer from ${MIN_HMAC_KEY_SIZE} to ${MAX_HMAC_KEY_SIZE} bytes`,
      { field: "key_size" },
    );
  }
  return bytes;
}

/** Throws `invalid_field` naming `field` unless `value` is a boolean. */
export function validateBoolean(field: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new KeywardError("invalid_field", `${field} must be true or false`, { field });
  }
  return value;
}
