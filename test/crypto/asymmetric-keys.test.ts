import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type AsymmetricKeySpec,
  describeKey,
  ed25519PrivateKeyFromSeed,
  ed25519SeedOf,
  generateKeyPair,
  loadPrivateKey,
  loadPublicKey,
  privateKeyDerToPem,
} from "../../src/crypto/asymmetric-keys.ts";
import { digestInfo } from "../../src/crypto/rsa.ts";
import { x25519PublicKey, x25519SharedSecret } from "../../src/crypto/x25519.ts";
import { hex } from "./wycheproof-vectors.ts";

describe("asymmetric keys", () => {
  const specs: AsymmetricKeySpec[] = [
    { algorithm: "ed25519" },
    { algorithm: "ecdsa", curve: "P-256" },
    { algorithm: "ecdsa", curve: "P-384" },
    { algorithm: "ecdsa", curve: "P-521" },
    { algorithm: "rsa", modulusLength: 2048 },
  ];
  for (const spec of specs) {
    it(`generates ${JSON.stringify(spec)}`, () => {
      const pair = generateKeyPair(spec);
      const privateKey = loadPrivateKey(pair.privateKeyDer);
      assert.deepEqual(describeKey(privateKey), spec);
      assert.deepEqual(describeKey(loadPublicKey(pair.publicKeyPem)), spec);
      assert.match(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
      assert.match(privateKeyDerToPem(pair.privateKeyDer), /^-----BEGIN PRIVATE KEY-----\n/);
    });
  }

  it("ed25519 seed round trip", () => {
    const pair = generateKeyPair({ algorithm: "ed25519" });
    const seed = ed25519SeedOf(loadPrivateKey(pair.privateKeyDer));
    assert.equal(seed.length, 32);
    assert.deepEqual(ed25519PrivateKeyFromSeed(seed), pair.privateKeyDer);
    assert.throws(() => ed25519PrivateKeyFromSeed(seed.subarray(1)), RangeError);
  });

  it("builds sha256 digest info", () => {
    // RFC 8017, section 9.2, note 1: the SHA-256 DigestInfo prefix.
    const prefix = "3031300d060960864801650304020105000420";
    assert.equal(
      digestInfo("sha2-256", Buffer.alloc(32)).toString("hex"),
      prefix + "00".repeat(32),
    );
  });
});

describe("x25519", () => {
  // RFC 7748, section 6.1.
  const alicePrivate = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const alicePublic = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const bobPrivate = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

  it("matches RFC 7748 example", () => {
    assert.deepEqual(x25519PublicKey(alicePrivate), alicePublic);
    assert.deepEqual(x25519PublicKey(bobPrivate), bobPublic);
    assert.deepEqual(x25519SharedSecret(alicePrivate, bobPublic), shared);
    assert.deepEqual(x25519SharedSecret(bobPrivate, alicePublic), shared);
  });

  it("fail low order public key", () => {
    assert.throws(() => x25519SharedSecret(alicePrivate, Buffer.alloc(32)));
    assert.throws(() => x25519SharedSecret(alicePrivate, Buffer.alloc(31)), RangeError);
  });
});
