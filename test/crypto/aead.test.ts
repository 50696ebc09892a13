import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AEAD_ALGORITHMS, aeadKeyLength, aeadOpen, aeadSeal } from "../../src/crypto/aead.ts";
import { constantTimeEqual } from "../../src/crypto/compare.ts";
import { randomBytes } from "../../src/crypto/random.ts";
import { DECRYPTION_FAILED_MESSAGE, isKeywardError } from "../../src/errors.ts";
import { hex } from "./wycheproof-vectors.ts";

/** RFC 8439, section 2.8.2: the AEAD_CHACHA20_POLY1305 test vector. */
const RFC8439 = {
  key: hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  nonce: hex("070000004041424344454647"),
  aad: hex("50515253c0c1c2c3c4c5c6c7"),
  plaintext: Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
  ciphertext: hex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b" +
      "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
      "3ff4def08e4b7a9de576d26586cec64b6116",
  ),
  tag: hex("1ae10b594f09e26a7e902ecbd0600691"),
};

function rejects(action: () => unknown): boolean {
  try {
    action();
    return false;
  } catch (error) {
    assert.ok(isKeywardError(error), "expected a KeywardError");
    assert.equal(error.message, DECRYPTION_FAILED_MESSAGE);
    return true;
  }
}

describe("aead", () => {
  it("matches RFC 8439 vector", () => {
    const { key, nonce, aad, plaintext, ciphertext, tag } = RFC8439;
    const sealed = aeadSeal("chacha20-poly1305", key, nonce, plaintext, aad);
    assert.deepEqual(sealed, Buffer.concat([ciphertext, tag]));
    assert.deepEqual(aeadOpen("chacha20-poly1305", key, nonce, sealed, aad), plaintext);
  });

  for (const algorithm of AEAD_ALGORITHMS) {
    it(`${algorithm} rejects every alteration`, () => {
      const key = randomBytes(aeadKeyLength(algorithm));
      const nonce = randomBytes(12);
      const aad = Buffer.from("header");
      const sealed = aeadSeal(algorithm, key, nonce, Buffer.from("payload"), aad);
      assert.equal(sealed.length, 7 + 16);
      for (let i = 0; i < sealed.length; i++) {
        const copy = Buffer.from(sealed);
        copy[i] = (copy[i] ?? 0) ^ 0x80;
        assert.ok(
          rejects(() => aeadOpen(algorithm, key, nonce, copy, aad)),
          `byte ${i}`,
        );
      }
      assert.ok(
        rejects(() => aeadOpen(algorithm, key, nonce, sealed.subarray(0, sealed.length - 1), aad)),
      );
      assert.ok(rejects(() => aeadOpen(algorithm, key, nonce, sealed.subarray(0, 15), aad)));
      assert.ok(rejects(() => aeadOpen(algorithm, key, nonce, sealed)));
      assert.ok(rejects(() => aeadOpen(algorithm, randomBytes(key.length), nonce, sealed, aad)));
      assert.ok(rejects(() => aeadOpen(algorithm, key, randomBytes(12), sealed, aad)));
    });

    it(`${algorithm} checks parameter sizes`, () => {
      const length = aeadKeyLength(algorithm);
      assert.throws(
        () => aeadSeal(algorithm, randomBytes(length + 8), randomBytes(12), Buffer.alloc(1)),
        RangeError,
      );
      assert.throws(
        () => aeadSeal(algorithm, randomBytes(length), randomBytes(16), Buffer.alloc(1)),
        RangeError,
      );
      assert.throws(
        () => aeadOpen(algorithm, randomBytes(length), randomBytes(8), Buffer.alloc(32)),
        RangeError,
      );
    });
  }

  it("empty and absent aad agree", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const sealed = aeadSeal("aes-256-gcm", key, nonce, Buffer.from("x"), Buffer.alloc(0));
    assert.deepEqual(aeadSeal("aes-256-gcm", key, nonce, Buffer.from("x")), sealed);
  });
});

describe("constant time equal", () => {
  const cases: [string, Buffer, Buffer, boolean][] = [
    ["ok equal bytes", hex("00112233"), hex("00112233"), true],
    ["ok both empty", Buffer.alloc(0), Buffer.alloc(0), true],
    ["fail last byte differs", hex("00112233"), hex("00112234"), false],
    ["fail shorter input", hex("001122"), hex("00112233"), false],
    ["fail longer input", hex("0011223344"), hex("00112233"), false],
    ["fail one empty", Buffer.alloc(0), hex("00"), false],
  ];
  for (const [name, a, b, expected] of cases) {
    it(name, () => {
      assert.equal(constantTimeEqual(a, b), expected);
    });
  }
});
