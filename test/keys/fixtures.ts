import assert from "node:assert/strict";
import { type ErrorCode, isKeywardError, type KeywardError } from "../../src/errors.ts";
import {
  type CreateKeyOptions,
  createKey,
  type KeyType,
  type ManagedKey,
} from "../../src/keys/index.ts";

/** A fixed clock for key tests. */
export const NOW = new Date("2025-03-01T12:00:00.000Z");

/** Returns NOW plus `seconds`. */
export function after(seconds: number): Date {
  return new Date(NOW.getTime() + seconds * 1000);
}

const cache = new Map<string, ManagedKey>();

/**
 * Returns a key of `type` created at NOW. RSA generation is slow, so keys are
 * cached per type and options; callers get a deep copy.
 */
export function makeKey(
  type: KeyType,
  options: CreateKeyOptions = {},
  name = "test-key",
): ManagedKey {
  const id = `${type}|${name}|${JSON.stringify(options)}`;
  let key = cache.get(id);
  if (key === undefined) {
    key = createKey(name, type, options, NOW);
    cache.set(id, key);
  }
  return structuredClone(key);
}

/** Asserts that `action` throws a KeywardError with `code` (and `field`, when given) and returns it. */
export function expectError(action: () => unknown, code: ErrorCode, field?: string): KeywardError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  assert.ok(isKeywardError(caught), `expected a KeywardError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `unexpected code, message: ${caught.message}`);
  if (field !== undefined) assert.equal(caught.field, field);
  return caught;
}
