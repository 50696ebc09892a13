import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadPublicKey } from "../../src/crypto/asymmetric-keys.ts";
import { ed25519Verify } from "../../src/crypto/ed25519.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface SignatureTest extends WycheproofTest {
  msg: string;
  sig: string;
}

interface EddsaGroup extends WycheproofGroup<SignatureTest> {
  publicKeyPem: string;
}

describe("Wycheproof Ed25519", () => {
  it("checks every Ed25519 case", (t) => {
    const vectors = loadVectors<EddsaGroup>("ed25519_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      const publicKey = loadPublicKey(group.publicKeyPem);
      for (const test of group.tests) {
        tally.record(test, ed25519Verify(publicKey, hex(test.msg), hex(test.sig)));
      }
    }
    t.diagnostic(`ed25519: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
