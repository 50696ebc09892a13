import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, backoffDelay } from "../../src/agent/backoff.ts";

/** The largest value a random source in [0, 1) returns. */
const ALMOST_ONE = 1 - Number.EPSILON;

describe("agent backoff", () => {
  it("lowest random gives 1 s", () => {
    for (const attempt of [0, 1, 5, 20, 1000]) {
      assert.equal(
        backoffDelay(attempt, () => 0),
        BACKOFF_MIN_MS,
      );
    }
  });

  it("ceiling doubles per attempt", () => {
    const ceilings = [0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, () => ALMOST_ONE));
    assert.deepEqual(ceilings, [1000, 1999, 3999, 7999, 15_999, 31_999]);
  });

  it("ceiling stops at 60 s", () => {
    for (const attempt of [6, 7, 30, 1000, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(attempt, () => ALMOST_ONE);
      assert.ok(delay <= BACKOFF_MAX_MS, `attempt ${attempt}: ${delay}`);
      assert.ok(delay >= BACKOFF_MAX_MS - 1, `attempt ${attempt}: ${delay}`);
    }
  });

  it("jitter spans the whole range", () => {
    assert.equal(
      backoffDelay(4, () => 0.5),
      BACKOFF_MIN_MS + (16_000 - BACKOFF_MIN_MS) / 2,
    );
  });

  it("default random stays in bounds", () => {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const delay = backoffDelay(attempt % 12);
      assert.ok(delay >= BACKOFF_MIN_MS, String(delay));
      assert.ok(delay <= BACKOFF_MAX_MS, String(delay));
    }
  });

  it("negative attempt acts as first", () => {
    assert.equal(
      backoffDelay(-3, () => ALMOST_ONE),
      BACKOFF_MIN_MS,
    );
  });
});
