import assert from "node:assert/strict";
import { generateKeyPairSync, verify } from "node:crypto";
import { describe, it } from "node:test";
import { bytes, bytesOf, child, enumItem, struct, text } from "../../../src/kmip/server/items.ts";
import {
  call,
  newDispatcher,
  payloadOf,
  registerKey,
  resultReason,
  resultStatus,
  uidOf,
} from "./helpers.ts";

// A signing or encryption request whose algorithm does not fit the key
// gets an error, instead of a result made with the key's own algorithm.

type Dispatcher = ReturnType<typeof newDispatcher>;

/** Registers an active key and returns its Unique Identifier. */
async function registered(
  dispatcher: Dispatcher,
  objectType: "PrivateKey" | "PublicKey",
  format: string,
  material: Buffer,
  algorithm: "RSA" | "EC",
  length: number,
): Promise<string> {
  const item = await registerKey(dispatcher, objectType, format, material, algorithm, length);
  assert.equal(resultStatus(item), "Success");
  return uidOf(payloadOf(item));
}

function signWith(dispatcher: Dispatcher, uid: string, algorithm: string) {
  return call(dispatcher, "Sign", [
    text("UniqueIdentifier", uid),
    struct("CryptographicParameters", [enumItem("DigitalSignatureAlgorithm", algorithm)]),
    bytes("Data", Buffer.from("message")),
  ]);
}

describe("KMIP algorithms that do not fit the key", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });

  it("fail ECDSA with an RSA key", async () => {
    const dispatcher = newDispatcher();
    const der = rsa.privateKey.export({ format: "der", type: "pkcs1" });
    const uid = await registered(dispatcher, "PrivateKey", "PKCS_1", der, "RSA", 2048);
    const signed = await signWith(dispatcher, uid, "ECDSAWithSHA256");
    assert.equal(resultReason(signed), "InvalidField");
    const fitting = await signWith(dispatcher, uid, "SHA_256WithRSAEncryption");
    assert.equal(resultStatus(fitting), "Success");
  });

  it("ok the hash an RSA algorithm names", async () => {
    const dispatcher = newDispatcher();
    const der = rsa.privateKey.export({ format: "der", type: "pkcs1" });
    const uid = await registered(dispatcher, "PrivateKey", "PKCS_1", der, "RSA", 2048);
    for (const [algorithm, hash] of [
      ["SHA_384WithRSAEncryption", "sha384"],
      ["SHA3_256WithRSAEncryption", "sha3-256"],
    ] as const) {
      const signed = await signWith(dispatcher, uid, algorithm);
      assert.equal(resultStatus(signed), "Success", algorithm);
      const signature = bytesOf(child(payloadOf(signed), "SignatureData")!);
      assert.ok(verify(hash, Buffer.from("message"), rsa.publicKey, signature), algorithm);
    }
  });

  it("fail RSA with an EC key", async () => {
    const dispatcher = newDispatcher();
    const der = ec.privateKey.export({ format: "der", type: "pkcs8" });
    const uid = await registered(dispatcher, "PrivateKey", "PKCS_8", der, "EC", 256);
    const signed = await signWith(dispatcher, uid, "SHA_256WithRSAEncryption");
    assert.equal(resultReason(signed), "InvalidField");
    const fitting = await signWith(dispatcher, uid, "ECDSAWithSHA256");
    assert.equal(resultStatus(fitting), "Success");
  });

  it("fail Encrypt with an EC public key", async () => {
    const dispatcher = newDispatcher();
    const der = ec.publicKey.export({ format: "der", type: "spki" });
    const uid = await registered(dispatcher, "PublicKey", "X_509", der, "EC", 256);
    const encrypted = await call(dispatcher, "Encrypt", [
      text("UniqueIdentifier", uid),
      bytes("Data", Buffer.from("message")),
    ]);
    assert.equal(resultReason(encrypted), "FeatureNotSupported");
  });
});
