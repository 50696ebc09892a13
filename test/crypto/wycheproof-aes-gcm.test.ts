import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aeadOpen, aeadSeal } from "../../src/crypto/aead.ts";
import { isKeywardError } from "../../src/errors.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface AeadTest extends WycheproofTest {
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
}

interface AeadGroup extends WycheproofGroup<AeadTest> {
  keySize: number;
  ivSize: number;
  tagSize: number;
}

const vectors = loadVectors<AeadGroup>("aes_gcm_test.json");

function algorithmFor(keySize: number): "aes-128-gcm" | "aes-256-gcm" | undefined {
  if (keySize === 128) return "aes-128-gcm";
  if (keySize === 256) return "aes-256-gcm";
  return undefined;
}

/** True when Keyward opens the case's ciphertext to its message. */
function opens(algorithm: "aes-128-gcm" | "aes-256-gcm", test: AeadTest): boolean {
  try {
    const plaintext = aeadOpen(
      algorithm,
      hex(test.key),
      hex(test.iv),
      Buffer.concat([hex(test.ct), hex(test.tag)]),
      hex(test.aad),
    );
    return plaintext.equals(hex(test.msg));
  } catch (error) {
    if (isKeywardError(error) && error.code === "decryption_failed") return false;
    throw error;
  }
}

describe("Wycheproof AES-GCM", () => {
  it("checks every AES-GCM case", (t) => {
    const tally = new CaseTally();
    // Keyward's AEAD takes only 128/256-bit keys and 96-bit nonces with
    // 128-bit tags, as its key types use. Cases outside those parameters
    // (192-bit keys, other IV sizes) must be rejected as unsupported.
    let outsideParameters = 0;

    for (const group of vectors.testGroups) {
      const algorithm = algorithmFor(group.keySize);
      const supported = algorithm !== undefined && group.ivSize === 96 && group.tagSize === 128;

      for (const test of group.tests) {
        if (!supported) {
          outsideParameters += 1;
          assert.throws(
            () =>
              aeadOpen(
                algorithm ?? "aes-256-gcm",
                hex(test.key),
                hex(test.iv),
                hex(test.ct + test.tag),
              ),
            RangeError,
            `tcId ${test.tcId}: parameters outside Keyward's AEAD must be rejected`,
          );
          continue;
        }

        tally.record(test, opens(algorithm, test));
        if (test.result === "valid") {
          const sealed = aeadSeal(
            algorithm,
            hex(test.key),
            hex(test.iv),
            hex(test.msg),
            hex(test.aad),
          );
          if (!sealed.equals(Buffer.concat([hex(test.ct), hex(test.tag)]))) {
            tally.fail(test, "encryption does not reproduce ct || tag");
          }
        }
      }
    }

    t.diagnostic(`aes_gcm: ${tally.summary()}; ${outsideParameters} outside Keyward's parameters`);
    assert.equal(tally.total + outsideParameters, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
