import assert from "node:assert/strict";
import { KeywardError } from "../../src/errors.ts";

/** Returns an `assert.throws` check for a configuration error on `field`, whose message matches `pattern` when given. */
export function configError(field: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.field, field, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  };
}
