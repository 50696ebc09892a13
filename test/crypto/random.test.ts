import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../../src/crypto/random.ts";

describe("randomBytes", () => {
  it("returns the requested length", () => {
    for (const length of [0, 1, 12, 16, 32, 64, 65, 4096, 10_000]) {
      assert.equal(randomBytes(length).length, length);
    }
  });

  it("never repeats across pool refills", () => {
    const seen = new Set<string>();
    // 2,000 draws of 16 bytes pass through about eight refills of the 4 KiB pool.
    for (let index = 0; index < 2000; index++) {
      const value = randomBytes(16).toString("hex");
      assert.ok(!seen.has(value), "a 16-byte value repeated");
      seen.add(value);
    }
  });

  it("returns a buffer the caller owns", () => {
    const first = randomBytes(12);
    const copy = Buffer.from(first);
    randomBytes(12);
    assert.deepEqual(first, copy);
  });

  it("rejects invalid lengths", () => {
    assert.throws(() => randomBytes(-1), RangeError);
    assert.throws(() => randomBytes(1.5), RangeError);
  });
});
