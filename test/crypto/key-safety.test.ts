import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { loadPrivateKey, loadPublicKey } from "../../src/crypto/asymmetric-keys.ts";
import { checkKeyObject, checkSpki, importSpki } from "../../src/crypto/key-safety.ts";

// Node.js 20 aborts the process when asked for the details or the JWK of
// an EC key at the point at infinity. These keys must be rejected with an
// exception before that; a test that reached the abort would end the test
// process instead of failing.

/** Builds the SPKI of a P-256 key with the given point bytes. */
function p256Spki(point: Buffer): Buffer {
  const bits = Buffer.concat([Buffer.from([0x03, point.length + 1, 0x00]), point]);
  const algorithm = Buffer.from("301306072a8648ce3d020106082a8648ce3d030107", "hex");
  const body = Buffer.concat([algorithm, bits]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** The order of P-256's base point (SEC 2, section 2.4.2). */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const INFINITY = p256Spki(Buffer.from([0x00]));
const ZERO_SCALAR_SEC1 = Buffer.from(
  `30310201010420${"00".repeat(32)}a00a06082a8648ce3d030107`,
  "hex",
);

describe("key safety checks", () => {
  it("fail point at infinity", () => {
    assert.throws(() => importSpki(INFINITY), RangeError);
    assert.throws(() => checkSpki(INFINITY), RangeError);
  });

  it("fail hybrid point", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const uncompressed = publicKey.export({ format: "der", type: "spki" }).subarray(-65);
    const hybrid = Buffer.from(uncompressed);
    hybrid[0] = 0x06 | (uncompressed[64]! & 1);
    assert.throws(() => checkSpki(p256Spki(hybrid)), RangeError);
  });

  it("fail EC scalar 0", () => {
    const key = createPrivateKey({ key: ZERO_SCALAR_SEC1, format: "der", type: "sec1" });
    assert.throws(() => checkKeyObject(key), RangeError);
    const pkcs8 = key.export({ format: "der", type: "pkcs8" });
    assert.throws(() => loadPrivateKey(pkcs8), RangeError);
  });

  it("fail EC scalar at or above the order", () => {
    for (const scalar of [P256_ORDER, P256_ORDER + 1n, (1n << 256n) - 1n]) {
      const hex = scalar.toString(16).padStart(64, "0");
      const sec1 = Buffer.from(`30310201010420${hex}a00a06082a8648ce3d030107`, "hex");
      const key = createPrivateKey({ key: sec1, format: "der", type: "sec1" });
      assert.throws(() => checkKeyObject(key), RangeError, scalar.toString(16));
    }
  });

  it("fail PEM public key at infinity", () => {
    const pem = `-----BEGIN PUBLIC KEY-----\n${INFINITY.toString("base64")}\n-----END PUBLIC KEY-----\n`;
    assert.throws(() => loadPublicKey(pem));
  });

  it("ok usable keys", () => {
    for (const pair of [
      generateKeyPairSync("ec", { namedCurve: "P-256" }),
      generateKeyPairSync("ed25519"),
      generateKeyPairSync("rsa", { modulusLength: 2048 }),
    ]) {
      assert.equal(checkKeyObject(pair.privateKey), pair.privateKey);
      assert.equal(checkKeyObject(pair.publicKey), pair.publicKey);
      const spki = pair.publicKey.export({ format: "der", type: "spki" });
      assert.equal(importSpki(spki).asymmetricKeyType, pair.publicKey.asymmetricKeyType);
    }
    const compressed = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      format: "jwk",
    });
    const x = Buffer.from(compressed.x!, "base64url");
    const y = Buffer.from(compressed.y!, "base64url");
    const point = Buffer.concat([Buffer.from([0x02 | (y[31]! & 1)]), x]);
    assert.equal(importSpki(p256Spki(point)).asymmetricKeyType, "ec");
  });
});
