import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import { bytes, enumItem, integer, struct } from "../../../src/kmip/server/items.ts";
import { call, newDispatcher, resultReason, resultStatus } from "./helpers.ts";

/** Registers `objectType` with one Key Block and returns the Batch Item. */
function register(
  objectType: string,
  format: string,
  material: Buffer,
  algorithm: string,
  length: number,
) {
  const block: KmipItem[] = [
    enumItem("KeyFormatType", format),
    struct("KeyValue", [bytes("KeyMaterial", material)]),
    enumItem("CryptographicAlgorithm", algorithm),
    integer("CryptographicLength", length),
  ];
  return call(newDispatcher(), "Register", [
    enumItem("ObjectType", objectType),
    struct("Attributes", [integer("CryptographicUsageMask", 0x4)]),
    struct(objectType, [struct("KeyBlock", block)]),
  ]);
}

/** A P-256 SubjectPublicKeyInfo whose point is the point at infinity (the single byte 00). */
const INFINITY_SPKI = Buffer.from("3019301306072a8648ce3d020106082a8648ce3d03010703020000", "hex");
/** A P-256 ECPrivateKey (SEC 1) whose scalar is 0, so its public point is the point at infinity. */
const ZERO_SCALAR_SEC1 = Buffer.from(
  `30310201010420${"00".repeat(32)}a00a06082a8648ce3d030107`,
  "hex",
);

describe("KMIP Register checks", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ecPkcs8 = ec.privateKey.export({ format: "der", type: "pkcs8" });
  const rsaPkcs1 = rsa.privateKey.export({ format: "der", type: "pkcs1" });
  // A 9216-bit public key from a random odd modulus: generating a real pair takes seconds.
  const modulus = randomBytes(9216 / 8);
  modulus[0]! |= 0x80;
  modulus[modulus.length - 1]! |= 1;
  const hugeSpki = createPublicKey({
    key: { kty: "RSA", n: modulus.toString("base64url"), e: "AQAB" },
    format: "jwk",
  }).export({ format: "der", type: "spki" });

  // The point of one P-256 pair with the scalar of another: OpenSSL loads it as given.
  const { x, y } = ec.privateKey.export({ format: "jwk" });
  const { d } = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    format: "jwk",
  });
  const mismatchedPkcs8 = createPrivateKey({
    key: { kty: "EC", crv: "P-256", x, y, d },
    format: "jwk",
  }).export({ format: "der", type: "pkcs8" });

  const rejected: [string, string, string, Buffer, string, number][] = [
    ["AES of 20 bytes", "SymmetricKey", "Raw", randomBytes(20), "AES", 160],
    ["AES of no bytes", "SymmetricKey", "Raw", Buffer.alloc(0), "AES", 0],
    ["AES length mismatch", "SymmetricKey", "Raw", randomBytes(32), "AES", 128],
    ["random PKCS#1 key", "PrivateKey", "PKCS_1", randomBytes(64), "RSA", 2048],
    ["random PKCS#8 key", "PrivateKey", "PKCS_8", randomBytes(64), "EC", 256],
    ["EC key named RSA", "PrivateKey", "PKCS_8", ecPkcs8, "RSA", 2048],
    ["RSA length mismatch", "PrivateKey", "PKCS_1", rsaPkcs1, "RSA", 4096],
    ["RSA of 9216 bits", "PublicKey", "X_509", hugeSpki, "RSA", 9216],
    // Node.js aborts the process when asked for details of these keys, unless they are rejected first.
    ["EC point at infinity", "PublicKey", "X_509", INFINITY_SPKI, "EC", 256],
    ["EC scalar 0", "PrivateKey", "ECPrivateKey", ZERO_SCALAR_SEC1, "EC", 256],
    ["EC point of another key", "PrivateKey", "PKCS_8", mismatchedPkcs8, "EC", 256],
  ];
  for (const [name, objectType, format, material, algorithm, length] of rejected) {
    it(`rejects ${name}`, async () => {
      const item = await register(objectType, format, material, algorithm, length);
      assert.equal(resultReason(item), "InvalidField");
    });
  }

  it("accepts keys that fit", async () => {
    const aes = await register("SymmetricKey", "Raw", randomBytes(24), "AES", 192);
    assert.equal(resultStatus(aes), "Success");
    const rsaKey = await register("PrivateKey", "PKCS_1", rsaPkcs1, "RSA", 2048);
    assert.equal(resultStatus(rsaKey), "Success");
    const ecKey = await register("PrivateKey", "PKCS_8", ecPkcs8, "EC", 256);
    assert.equal(resultStatus(ecKey), "Success");
  });
});
