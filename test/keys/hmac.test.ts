import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import {
  configureKey,
  exportKey,
  HASH_ALGORITHMS,
  hmac,
  KEY_TYPES,
  rotateKey,
  supports,
  transitionState,
  verifyHmac,
} from "../../src/keys/index.ts";
import { expectError, makeKey, NOW } from "./fixtures.ts";

const input = Buffer.from("message to authenticate");
const FAST_TYPES = KEY_TYPES.filter((type) => !type.startsWith("rsa-") || type === "rsa-2048");

describe("hmac", () => {
  for (const type of FAST_TYPES) {
    it(`${type} computes and verifies`, () => {
      assert.equal(supports(type, "hmac"), true);
      const key = makeKey(type, { exportable: true });
      const result = hmac(key, { input }, NOW);
      assert.match(result.hmac, /^keyward:v1:/);
      assert.deepEqual(verifyHmac(key, { input, hmac: result.hmac }, NOW), {
        valid: true,
        keyVersion: 1,
      });
      assert.equal(
        verifyHmac(key, { input: Buffer.from("other"), hmac: result.hmac }, NOW).valid,
        false,
      );
    });
  }

  it("matches the exported key", () => {
    const key = makeKey("aes256-gcm96", { exportable: true });
    const hmacKey = Buffer.from(exportKey(key, "hmac-key", 1)["1"]!, "base64");
    for (const algorithm of HASH_ALGORITHMS) {
      const nodeName = algorithm.replace("sha2-", "sha");
      const expected = createHmac(nodeName, hmacKey).update(input).digest("base64");
      assert.equal(hmac(key, { input, algorithm }, NOW).hmac, `keyward:v1:${expected}`, algorithm);
    }
  });

  it("hmac keys use key size", () => {
    const key = makeKey("hmac", { keySize: 64, exportable: true });
    assert.equal(Buffer.from(exportKey(key, "hmac-key", 1)["1"]!, "base64").length, 64);
    assert.equal(key.versions["1"]!.secret, undefined);
  });

  it("checks the algorithm", () => {
    const key = makeKey("hmac");
    const { hmac: tag } = hmac(key, { input, algorithm: "sha3-256" }, NOW);
    assert.equal(verifyHmac(key, { input, hmac: tag, algorithm: "sha3-256" }, NOW).valid, true);
    assert.equal(verifyHmac(key, { input, hmac: tag, algorithm: "sha2-256" }, NOW).valid, false);
    assert.equal(verifyHmac(key, { input, hmac: tag, algorithm: "sha2-512" }, NOW).valid, false);
    expectError(
      () => hmac(key, { input, algorithm: "md5" as "sha1" }, NOW),
      "invalid_field",
      "algorithm",
    );
  });

  it("tampered tags are invalid", () => {
    const key = makeKey("hmac");
    const tag = Buffer.from(hmac(key, { input }, NOW).hmac.slice("keyward:v1:".length), "base64");
    for (const variant of [
      Buffer.concat([tag, Buffer.from([0])]),
      tag.subarray(0, 16),
      Buffer.from(tag).fill(0),
    ]) {
      assert.equal(
        verifyHmac(key, { input, hmac: `keyward:v1:${variant.toString("base64")}` }, NOW).valid,
        false,
      );
    }
  });

  it("fail malformed hmac", () => {
    expectError(
      () => verifyHmac(makeKey("hmac"), { input, hmac: "vault:v1:AAAA" }, NOW),
      "invalid_signature",
      "hmac",
    );
  });

  it("versions and minimums apply", () => {
    const key = rotateKey(makeKey("hmac"), NOW);
    const old = hmac(key, { input, keyVersion: 1 }, NOW);
    assert.equal(hmac(key, { input }, NOW).keyVersion, 2);
    assert.equal(verifyHmac(key, { input, hmac: old.hmac }, NOW).keyVersion, 1);
    const restricted = configureKey(key, { minDecryptionVersion: 2 }, NOW);
    expectError(
      () => verifyHmac(restricted, { input, hmac: old.hmac }, NOW),
      "version_too_old",
      "hmac",
    );
  });

  it("verifies only after deactivation", () => {
    const key = makeKey("hmac");
    const { hmac: tag } = hmac(key, { input }, NOW);
    const deactivated = transitionState(key, "deactivated", NOW);
    assert.equal(verifyHmac(deactivated, { input, hmac: tag }, NOW).valid, true);
    expectError(() => hmac(deactivated, { input }, NOW), "invalid_state");
  });
});
