import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { x25519SharedSecret } from "../../src/crypto/x25519.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface XdhTest extends WycheproofTest {
  public: string;
  private: string;
  shared: string;
}

/**
 * Returns Keyward's stand on an `acceptable` X25519 case. Cases whose shared
 * secret is all zero come from low-order public keys, and RFC 7748 section 6.1
 * lets an implementation abort on them, as OpenSSL does, so they are rejected.
 * The rest (twist points, non-canonical and special public keys) are accepted,
 * because RFC 7748 computes them like any other input.
 */
function acceptableStand(test: XdhTest): boolean {
  return !test.flags.includes("ZeroSharedSecret");
}

describe("Wycheproof X25519", () => {
  it("checks every X25519 case", (t) => {
    const vectors = loadVectors<WycheproofGroup<XdhTest>>("x25519_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      for (const test of group.tests) {
        let accepted: boolean;
        try {
          accepted = x25519SharedSecret(hex(test.private), hex(test.public)).equals(
            hex(test.shared),
          );
        } catch {
          accepted = false;
        }
        tally.record(test, accepted, acceptableStand(test));
      }
    }
    t.diagnostic(`x25519: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
