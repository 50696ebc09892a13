import { KeywardError } from "../errors.ts";
import { MAX_SCAN_LIMIT, type ScanOptions } from "./storage.ts";

/** The maximum length of a storage key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

const MAX_KEY_IN_MESSAGE = 80;

function quoteKey(key: string): string {
  const shown = key.length > MAX_KEY_IN_MESSAGE ? `${key.slice(0, MAX_KEY_IN_MESSAGE)}…` : key;
  return JSON.stringify(shown);
}

function invalidKey(key: string, reason: string): KeywardError {
  return new KeywardError("invalid_request", `invalid storage key ${quoteKey(key)}: ${reason}`);
}

/**
 * Checks a storage key against the rules every backend shares: non-empty, at
 * most `MAX_KEY_BYTES` UTF-8 bytes, no leading or trailing `/`, no empty
 * segment, no NUL character and no unpaired UTF-16 surrogate. UTF-8 cannot
 * encode an unpaired surrogate, so two different keys could collide.
 * Throws `invalid_request` when a rule fails.
 */
export function validateKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new KeywardError("invalid_request", "invalid storage key: the key is empty");
  }
  const bytes = Buffer.from(key, "utf8");
  if (bytes.toString("utf8") !== key) {
    throw invalidKey(key, "it contains an unpaired UTF-16 surrogate");
  }
  if (bytes.length > MAX_KEY_BYTES) {
    throw invalidKey(key, `it is longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (key.startsWith("/") || key.endsWith("/")) {
    throw invalidKey(key, "it starts or ends with '/'");
  }
  if (key.includes("//")) {
    throw invalidKey(key, "it contains an empty segment");
  }
  if (key.includes("\u0000")) {
    throw invalidKey(key, "it contains a NUL character");
  }
}

/** Checks a `list` prefix: empty, or a valid key followed by `/`. Throws `invalid_request` otherwise. */
export function validatePrefix(prefix: string): void {
  if (prefix === "") return;
  if (typeof prefix !== "string" || !prefix.endsWith("/")) {
    throw new KeywardError(
      "invalid_request",
      `invalid storage prefix ${quoteKey(String(prefix))}: a prefix is empty or ends with '/'`,
    );
  }
  validateKey(prefix.slice(0, -1));
}

/**
 * Returns the smallest string above every key that starts with `prefix`,
 * for a range query `prefix <= key < bound`. The prefix ends with `/`, and
 * `0` is the character after `/` in byte order, so the bound is the prefix
 * with its last character replaced by `0`. Returns `undefined` for the empty
 * prefix, whose range has no upper bound.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  if (prefix === "") return undefined;
  return `${prefix.slice(0, -1)}0`;
}

/** Checks that a value is a byte array. Throws `invalid_request` otherwise. */
export function validateValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) {
    throw new KeywardError("invalid_request", "invalid storage value: expected a Uint8Array");
  }
}

/** Checks the options of a `scan`. Throws `invalid_request` when they are out of range. */
export function validateScanOptions(options: ScanOptions): void {
  const { after, limit } = options;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
    throw new KeywardError(
      "invalid_request",
      `invalid scan limit: expected an integer from 1 to ${MAX_SCAN_LIMIT}, got ${limit}`,
    );
  }
  if (after !== undefined && (typeof after !== "string" || after.length === 0)) {
    throw new KeywardError("invalid_request", "invalid scan start: expected a non-empty name");
  }
}
