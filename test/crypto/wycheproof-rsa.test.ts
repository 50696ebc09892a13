import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadPrivateKey, loadPublicKey } from "../../src/crypto/asymmetric-keys.ts";
import { rsaOaepDecrypt, rsaVerify } from "../../src/crypto/rsa.ts";
import { isKeywardError } from "../../src/errors.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface PssTest extends WycheproofTest {
  msg: string;
  sig: string;
}

interface PssGroup extends WycheproofGroup<PssTest> {
  publicKeyPem: string;
  sha: string;
  mgfSha: string;
  sLen: number;
}

interface OaepTest extends WycheproofTest {
  msg: string;
  ct: string;
  label: string;
}

interface OaepGroup extends WycheproofGroup<OaepTest> {
  privateKeyPkcs8: string;
  sha: string;
  mgfSha: string;
}

describe("Wycheproof RSA", () => {
  it("checks every PSS case", (t) => {
    const vectors = loadVectors<PssGroup>("rsa_pss_2048_sha256_mgf1_32_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      assert.equal(group.sha, "SHA-256");
      assert.equal(group.mgfSha, "SHA-256");
      const publicKey = loadPublicKey(group.publicKeyPem);
      for (const test of group.tests) {
        const accepted = rsaVerify(publicKey, hex(test.msg), hex(test.sig), {
          hash: "sha2-256",
          prehashed: false,
          padding: "pss",
          saltLength: group.sLen,
        });
        tally.record(test, accepted);
      }
    }
    t.diagnostic(`rsa_pss_2048_sha256_mgf1_32: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });

  it("checks every OAEP case", (t) => {
    const vectors = loadVectors<OaepGroup>("rsa_oaep_2048_sha256_mgf1sha256_test.json");
    const tally = new CaseTally();
    for (const group of vectors.testGroups) {
      assert.equal(group.sha, "SHA-256");
      assert.equal(group.mgfSha, "SHA-256");
      const privateKey = loadPrivateKey(hex(group.privateKeyPkcs8));
      for (const test of group.tests) {
        let accepted: boolean;
        try {
          const plaintext = rsaOaepDecrypt(privateKey, hex(test.ct), "sha2-256", hex(test.label));
          accepted = plaintext.equals(hex(test.msg));
        } catch (error) {
          if (!isKeywardError(error) || error.code !== "decryption_failed") throw error;
          accepted = false;
        }
        tally.record(test, accepted);
      }
    }
    t.diagnostic(`rsa_oaep_2048_sha256_mgf1sha256: ${tally.summary()}`);
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
