import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hkdfSha256 } from "../../src/crypto/hkdf.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface HkdfTest extends WycheproofTest {
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
}

describe("Wycheproof HKDF-SHA256", () => {
  it("checks every HKDF case", (t) => {
    const vectors = loadVectors<WycheproofGroup<HkdfTest>>("hkdf_sha256_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      for (const test of group.tests) {
        let accepted: boolean;
        try {
          const output = hkdfSha256(hex(test.ikm), hex(test.salt), hex(test.info), test.size);
          accepted = output.equals(hex(test.okm));
        } catch (error) {
          if (!(error instanceof RangeError)) throw error;
          accepted = false;
        }
        tally.record(test, accepted);
      }
    }
    t.diagnostic(`hkdf_sha256: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
