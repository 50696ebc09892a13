import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aesKeyUnwrapPad, aesKeyWrapPad } from "../../src/crypto/keywrap.ts";
import { isKeywardError } from "../../src/errors.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface KeywrapTest extends WycheproofTest {
  key: string;
  msg: string;
  ct: string;
}

describe("Wycheproof AES-KWP", () => {
  it("checks every key wrap case", (t) => {
    const vectors = loadVectors<WycheproofGroup<KeywrapTest>>("aes_kwp_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      for (const test of group.tests) {
        let accepted: boolean;
        try {
          accepted = aesKeyUnwrapPad(hex(test.key), hex(test.ct)).equals(hex(test.msg));
        } catch (error) {
          if (!isKeywardError(error) || error.code !== "decryption_failed") throw error;
          accepted = false;
        }
        tally.record(test, accepted);
        if (
          test.result === "valid" &&
          !aesKeyWrapPad(hex(test.key), hex(test.msg)).equals(hex(test.ct))
        ) {
          tally.fail(test, "wrapping does not reproduce ct");
        }
      }
    }
    t.diagnostic(`aes_kwp: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
