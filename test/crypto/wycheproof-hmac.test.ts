import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type HashAlgorithm, hmac, hmacVerify } from "../../src/crypto/hash.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface MacTest extends WycheproofTest {
  key: string;
  msg: string;
  tag: string;
}

interface MacGroup extends WycheproofGroup<MacTest> {
  keySize: number;
  /** Tag length in bits; shorter than the hash output for truncated tags. */
  tagSize: number;
}

function checkFile(fileName: string, algorithm: HashAlgorithm): CaseTally {
  const vectors = loadVectors<MacGroup>(fileName);
  const tally = new CaseTally();
  for (const group of vectors.testGroups) {
    const tagLength = group.tagSize / 8;
    for (const test of group.tests) {
      const key = hex(test.key);
      const message = hex(test.msg);
      const tag = hex(test.tag);
      tally.record(test, hmacVerify(algorithm, key, message, tag, tagLength));
      if (
        test.result === "valid" &&
        !hmac(algorithm, key, message).subarray(0, tagLength).equals(tag)
      ) {
        tally.fail(test, "computed tag differs");
      }
    }
  }
  assert.equal(tally.total, vectors.numberOfTests);
  return tally;
}

describe("Wycheproof HMAC", () => {
  it("checks every HMAC-SHA256 case", (t) => {
    const tally = checkFile("hmac_sha256_test.json", "sha2-256");
    t.diagnostic(`hmac_sha256: ${tally.summary()}`);
    assert.deepEqual(tally.failures, []);
  });

  it("checks every HMAC-SHA512 case", (t) => {
    const tally = checkFile("hmac_sha512_test.json", "sha2-512");
    t.diagnostic(`hmac_sha512: ${tally.summary()}`);
    assert.deepEqual(tally.failures, []);
  });
});
