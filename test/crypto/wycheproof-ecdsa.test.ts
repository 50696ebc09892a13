import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadPublicKey } from "../../src/crypto/asymmetric-keys.ts";
import { type EcdsaSignatureEncoding, ecdsaVerify } from "../../src/crypto/ecdsa.ts";
import { digest } from "../../src/crypto/hash.ts";
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

interface EcdsaGroup extends WycheproofGroup<SignatureTest> {
  publicKeyPem: string;
  sha: string;
}

/**
 * Runs every case twice: through the message path (node:crypto) and the
 * prehashed path (SHA-256 of the message, verified by @noble/curves). Both
 * must give the Wycheproof result.
 */
function checkFile(fileName: string, encoding: EcdsaSignatureEncoding): CaseTally {
  const vectors = loadVectors<EcdsaGroup>(fileName);
  const tally = new CaseTally();
  for (const group of vectors.testGroups) {
    assert.equal(group.sha, "SHA-256");
    const publicKey = loadPublicKey(group.publicKeyPem);
    for (const test of group.tests) {
      const message = hex(test.msg);
      const signature = hex(test.sig);
      const viaMessage = ecdsaVerify(publicKey, "P-256", message, signature, {
        hash: "sha2-256",
        prehashed: false,
        encoding,
      });
      const viaDigest = ecdsaVerify(publicKey, "P-256", digest("sha2-256", message), signature, {
        hash: "sha2-256",
        prehashed: true,
        encoding,
      });
      tally.record(test, viaMessage);
      if (viaDigest !== viaMessage) tally.fail(test, `prehashed path returned ${viaDigest}`);
    }
  }
  assert.equal(tally.total, vectors.numberOfTests);
  return tally;
}

describe("Wycheproof ECDSA P-256", () => {
  it("checks every DER case", (t) => {
    const tally = checkFile("ecdsa_secp256r1_sha256_test.json", "der");
    t.diagnostic(`ecdsa_secp256r1_sha256 (DER): ${tally.summary()}`);
    assert.deepEqual(tally.failures, []);
  });

  it("checks every P1363 case", (t) => {
    const tally = checkFile("ecdsa_secp256r1_sha256_p1363_test.json", "ieee-p1363");
    t.diagnostic(`ecdsa_secp256r1_sha256_p1363: ${tally.summary()}`);
    assert.deepEqual(tally.failures, []);
  });
});
