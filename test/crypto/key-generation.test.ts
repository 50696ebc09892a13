import assert from "node:assert/strict";
import { diffieHellman, sign, verify } from "node:crypto";
import { describe, it } from "node:test";
import { generateKeys, type KeyPairSpec } from "../../src/crypto/key-generation.ts";
import { generateX25519KeyPair, x25519PublicKey } from "../../src/crypto/x25519.ts";
import { assertFinishesUnderFrequentGc } from "../helpers/gc-stress.ts";

/**
 * Pairs the worker generates and exports under frequent garbage collection.
 * KeyObjects straight from generateKeyPairSync deadlocked such a loop within
 * seconds on Node.js 20.20.2. The limit only detects a hang.
 */
const GC_PAIRS = 5_000;
const GC_HANG_LIMIT_MS = 120_000;

const SIGNING: { spec: KeyPairSpec; digest: string | null; type: string }[] = [
  { spec: { type: "ed25519" }, digest: null, type: "ed25519" },
  { spec: { type: "ec", namedCurve: "P-256" }, digest: "sha256", type: "ec" },
  { spec: { type: "ec", namedCurve: "P-384" }, digest: "sha384", type: "ec" },
  { spec: { type: "rsa", modulusLength: 2048 }, digest: "sha256", type: "rsa" },
];

describe("generateKeys", () => {
  for (const { spec, digest, type } of SIGNING) {
    it(`makes a working ${type} pair`, () => {
      const keys = generateKeys(spec);
      assert.equal(keys.privateKey.asymmetricKeyType, type);
      assert.equal(keys.privateKey.type, "private");
      assert.equal(keys.publicKey.type, "public");
      const message = Buffer.from("key generation");
      assert.ok(verify(digest, message, keys.publicKey, sign(digest, message, keys.privateKey)));
      assert.deepEqual(keys.publicKey.export({ format: "der", type: "spki" }), keys.spki);
      assert.deepEqual(keys.privateKey.export({ format: "der", type: "pkcs8" }), keys.pkcs8);
    });
  }

  it("uses exponent 65537 by default", () => {
    const { publicKey } = generateKeys({ type: "rsa", modulusLength: 2048 });
    assert.equal(publicKey.asymmetricKeyDetails?.publicExponent, 65537n);
  });

  it("makes X25519 pairs that agree", () => {
    const alice = generateKeys({ type: "x25519" });
    const bob = generateKeys({ type: "x25519" });
    assert.deepEqual(
      diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey }),
      diffieHellman({ privateKey: bob.privateKey, publicKey: alice.publicKey }),
    );
  });

  it("returns raw X25519 keys", () => {
    const { privateKey, publicKey } = generateX25519KeyPair();
    assert.equal(privateKey.length, 32);
    assert.deepEqual(x25519PublicKey(privateKey), publicKey);
    // Clamped as RFC 7748 section 5 describes.
    assert.equal(privateKey[0]! & 7, 0);
    assert.equal(privateKey[31]! & 0x80, 0);
    assert.equal(privateKey[31]! & 0x40, 0x40);
  });

  it("exports JWK under frequent garbage collection", () => {
    assertFinishesUnderFrequentGc(
      new URL("./key-generation-worker.ts", import.meta.url),
      GC_PAIRS,
      GC_HANG_LIMIT_MS,
    );
  });
});
